"""0003 — the analytics: `waze_observations` (every Waze alert, jam, irregularity with its numbers and line).

Why: closure impact and the reality check ask which Waze jams lay near a closure in given hours, which
needs a spatial index on the jam's geometry; a trigger on `reports` fills the table in the archiver's own
transaction (so exactly once), partitioned by month like `reports`; the migration back-fills the reports
archived before it (analytics_schema.py says more). Was `schema_version` 3 before Alembic.

Downgrade: supported, and loses nothing: every row is derived from `reports`, and upgrading again
back-fills them all.
"""

from __future__ import annotations

from traffic_hub.archive.analytics_schema import ANALYTICS_MIGRATION
from traffic_hub.archive.migrations import execute

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None

DOWNGRADE = """
DROP TRIGGER reports_waze ON reports;
DROP FUNCTION waze_observation();
DROP FUNCTION waze_partition(timestamptz);
DROP FUNCTION waze_number(jsonb);
DROP TABLE waze_observations;
DROP INDEX event_versions_type_start;
"""


def upgrade() -> None:
    execute(ANALYTICS_MIGRATION)


def downgrade() -> None:
    execute(DOWNGRADE)
