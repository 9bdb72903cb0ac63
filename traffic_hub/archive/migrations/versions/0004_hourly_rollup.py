"""0004 — the Waze jams' hourly roll-up per road segment and jam line (`waze_jam_hours`, `waze_jam_lines`).

Why: the jams per segment of a week and a closure's impact re-derived every jam's state from the raw
reports, > 20 s and ~2 s on a year at MEL scale; the roll-up holds the same time integrals cut into hours,
kept by a trigger on `waze_observations` in the archiver's own transaction (so exactly once), and the
migration back-fills it from the observations archived before (rollup_schema.py says more; on a year of
MEL volume the back-fill takes minutes, once). Was `schema_version` 4 on the branch that introduced it.

Downgrade: supported, and loses nothing: every row is derived from `waze_observations`, and upgrading
again back-fills them all.
"""

from __future__ import annotations

from traffic_hub.archive.migrations import execute
from traffic_hub.archive.rollup_schema import ROLLUP_MIGRATION

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None

DOWNGRADE = """
DROP TRIGGER waze_observations_rollup ON waze_observations;
DROP FUNCTION waze_jam_rollup();
DROP FUNCTION waze_jam_add;
DROP FUNCTION waze_jam_hours_partition(timestamptz);
DROP FUNCTION waze_jam_line(geometry);
DROP FUNCTION waze_jam_segment(text, text, geometry);
DROP TABLE waze_jam_lines;
DROP TABLE waze_jam_hours;
"""


def upgrade() -> None:
    execute(ROLLUP_MIGRATION)


def downgrade() -> None:
    execute(DOWNGRADE)
