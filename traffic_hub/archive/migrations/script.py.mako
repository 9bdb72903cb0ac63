"""${up_revision} — ${message}.

Why: <what this change is for, who needs it, and what it back-fills>.

Downgrade: <supported (what it loses) | not supported, and why>.
"""

from __future__ import annotations

from traffic_hub.archive.migrations import execute, irreversible

revision = ${repr(up_revision)}
down_revision: str | None = ${repr(down_revision)}
branch_labels: str | None = None
depends_on: str | None = None
IRREVERSIBLE = "..."  # only if downgrade() cannot undo it: why (delete this line and write downgrade() otherwise)


def upgrade() -> None:
    execute(...)  # the SQL constant, e.g. from traffic_hub.archive.rollup_schema import ROLLUP_MIGRATION


def downgrade() -> None:
    raise irreversible(revision, IRREVERSIBLE)
