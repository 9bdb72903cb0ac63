"""0001 — the base archive: consumed offsets, every event version, every report (issue 19).

Why: the archiver stores each record of the events and reports topics with its Kafka partition and
offset, and the next offsets in `archive_offsets` in the same transaction, which is what makes it exactly
once; the big tables are partitioned by month (partitions are created on demand, not here). PostGIS is
enabled here for the events' geometry. Was `schema_version` 1 before Alembic.

Downgrade: not supported. Undoing it would drop the whole archive; if that is really wanted, drop the
database (the archiver rebuilds it from the topics' retained history at its next start).
"""

from __future__ import annotations

from traffic_hub.archive.migrations import execute, irreversible
from traffic_hub.archive.schema import BASE_MIGRATION

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None
IRREVERSIBLE = "it would drop the whole archive; drop the database instead (the archiver rebuilds it from the topics)"


def upgrade() -> None:
    execute(BASE_MIGRATION)


def downgrade() -> None:
    raise irreversible(revision, IRREVERSIBLE)
