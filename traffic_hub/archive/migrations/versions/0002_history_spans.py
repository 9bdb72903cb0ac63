"""0002 — the history: `event_spans` (one row per event with its life), kept by a trigger (issue 19).

Why: the history window and `at=` queries need each event's life as a time range (GiST) with its latest
geometry, commune and sources, which the version rows alone cannot answer fast; an AFTER INSERT trigger
on `event_versions` keeps it, so the archiver's exactly-once holds for it too. Also the time of the last
archived record per partition (`archive_offsets.last_record_at`, for /readyz's lag in seconds). The
migration back-fills the spans of an archive written before it. Was `schema_version` 2 before Alembic.

Downgrade: supported, and loses nothing that cannot come back: the spans are derived from the version
rows (upgrading again back-fills them); only `last_record_at` is forgotten until the next record.
"""

from __future__ import annotations

from traffic_hub.archive.migrations import execute
from traffic_hub.archive.schema import HISTORY_MIGRATION

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

DOWNGRADE = """
DROP TRIGGER event_versions_span ON event_versions;
DROP FUNCTION archive_span();
DROP TABLE event_spans;
DROP FUNCTION archive_life(timestamptz, timestamptz, timestamptz);
DROP INDEX event_versions_event_time;
ALTER TABLE archive_offsets DROP COLUMN last_record_at;
"""


def upgrade() -> None:
    execute(HISTORY_MIGRATION)


def downgrade() -> None:
    execute(DOWNGRADE)
