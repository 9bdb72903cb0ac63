"""The archive's schema: the SQL of its first migrations, `migrate` at start, monthly partitions, retention.

The schema changes are Alembic revisions (`traffic_hub/archive/migrations/`, docs/migrations.md), each
executing one SQL constant: the first two live here (`BASE_MIGRATION`, `HISTORY_MIGRATION`), later ones in
the module of the feature they serve (`analytics_schema.py`, …). `migrate` is what the archiver and the API
call at first contact: Alembic in a worker thread, under the advisory lock `LOCK_ID`, so processes starting
together never race and a database migrated before Alembic (table `schema_version`) is adopted, not re-run.
Big tables are partitioned by month of the Kafka record's timestamp; partitions are created when a
batch first needs them (under the same lock) and dropped past the retention.
"""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from traffic_hub.archive import migrations
from traffic_hub.archive.migrations import LOCK_ID

log = logging.getLogger(__name__)

PARTITIONED = ("event_versions", "reports", "waze_observations", "waze_jam_hours")
_SUFFIX = re.compile(r"_p(\d{4})(\d{2})$")

BASE_VERSION = 1  # the base archive: offsets, every event version, every report (revision 0001)
BASE_MIGRATION = """
CREATE EXTENSION IF NOT EXISTS postgis;
CREATE TABLE archive_offsets (
    topic text NOT NULL,
    partition integer NOT NULL,
    next_offset bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, partition)
);
CREATE TABLE event_versions (
    topic text NOT NULL,
    partition integer NOT NULL,
    "offset" bigint NOT NULL,
    received_at timestamptz NOT NULL,
    event_id text NOT NULL,
    version integer,
    deleted boolean NOT NULL DEFAULT false,
    type text,
    status text,
    lifecycle text,
    starts_at timestamptz,
    ends_at timestamptz,
    commune text,
    street text,
    sources jsonb,
    event jsonb,
    geom geometry(Geometry, 4326),
    PRIMARY KEY (topic, partition, "offset", received_at)
) PARTITION BY RANGE (received_at);
CREATE INDEX event_versions_event ON event_versions (event_id, version);
CREATE INDEX event_versions_time ON event_versions (received_at);
CREATE INDEX event_versions_commune ON event_versions (commune, received_at);
CREATE INDEX event_versions_geom ON event_versions USING gist (geom);
CREATE TABLE reports (
    topic text NOT NULL,
    partition integer NOT NULL,
    "offset" bigint NOT NULL,
    received_at timestamptz NOT NULL,
    key text,
    deleted boolean NOT NULL DEFAULT false,
    kind text,
    source text,
    principal text,
    reported_at timestamptz,
    payload jsonb,
    PRIMARY KEY (topic, partition, "offset", received_at)
) PARTITION BY RANGE (received_at);
CREATE INDEX reports_key ON reports (key, received_at);
CREATE INDEX reports_principal ON reports (principal, received_at);
"""

# History (issue 19, d-history): one row per event with its life span, kept by a trigger on the
# version rows, so the archiver's exactly-once insert (ON CONFLICT DO NOTHING: a replayed row fires
# nothing) keeps it exactly once too. A span's life runs from the first archived version to the
# earlier of "ended/cancelled/deleted" (the version that first said so) and the validity's end.
HISTORY_VERSION = 2  # revision 0002
HISTORY_MIGRATION = """
ALTER TABLE archive_offsets ADD COLUMN last_record_at timestamptz;
CREATE INDEX event_versions_event_time ON event_versions (event_id, received_at);
CREATE TABLE event_spans (
    event_id text PRIMARY KEY,
    first_at timestamptz NOT NULL,
    last_at timestamptz NOT NULL,
    last_topic text NOT NULL,
    last_partition integer NOT NULL,
    last_offset bigint NOT NULL,
    deleted boolean NOT NULL DEFAULT false,
    ended_at timestamptz,
    ends_at timestamptz,
    life tstzrange NOT NULL,
    type text,
    commune text,
    sources text[] NOT NULL DEFAULT '{}',
    waze_only boolean NOT NULL DEFAULT false,
    geom geometry(Geometry, 4326)
);
CREATE INDEX event_spans_life ON event_spans USING gist (life);
CREATE INDEX event_spans_first ON event_spans (first_at, event_id);
CREATE INDEX event_spans_commune ON event_spans (commune, first_at, event_id);
CREATE INDEX event_spans_geom ON event_spans USING gist (geom);
CREATE INDEX event_spans_sources ON event_spans USING gin (sources);
CREATE INDEX event_spans_end ON event_spans (upper(life));
CREATE FUNCTION archive_life(first timestamptz, ended timestamptz, ends timestamptz) RETURNS tstzrange
LANGUAGE sql IMMUTABLE AS $$
    SELECT tstzrange(first, GREATEST(first, LEAST(coalesce(ended, 'infinity'::timestamptz),
                                                  coalesce(ends, 'infinity'::timestamptz))), '[)')
$$;
CREATE FUNCTION archive_span() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    ended timestamptz := CASE WHEN NEW.deleted OR NEW.lifecycle IN ('ended', 'cancelled')
                              THEN NEW.received_at END;
    names text[];
    waze boolean;
BEGIN
    IF NEW.event ? 'unstorable' OR NEW.event ? 'raw' OR NEW.event_id = '' THEN
        RETURN NULL;  -- a degraded row says nothing of the event's life
    END IF;
    IF jsonb_typeof(NEW.sources) = 'array' THEN
        SELECT coalesce(bool_and(coalesce(e->>'kind', '') LIKE 'waze%'
                                 OR coalesce(e->>'source', '') LIKE 'waze%'), false)
          INTO waze FROM jsonb_array_elements(NEW.sources) e;
        SELECT coalesce(array_agg(DISTINCT x ORDER BY x), '{}') INTO names
          FROM jsonb_array_elements(NEW.sources) e,
               unnest(ARRAY[e->>'source', split_part(e->>'source', ':', 1)]) x
         WHERE x IS NOT NULL AND x <> '';
    END IF;
    INSERT INTO event_spans AS s (event_id, first_at, last_at, last_topic, last_partition, last_offset,
                                  deleted, ended_at, ends_at, life, type, commune, sources, waze_only, geom)
    VALUES (NEW.event_id, NEW.received_at, NEW.received_at, NEW.topic, NEW.partition, NEW."offset",
            NEW.deleted, ended, NEW.ends_at, archive_life(NEW.received_at, ended, NEW.ends_at), NEW.type,
            NEW.commune, coalesce(names, '{}'), coalesce(waze, false), NEW.geom)
    ON CONFLICT (event_id) DO UPDATE SET
        last_at = EXCLUDED.last_at,
        last_topic = EXCLUDED.last_topic,
        last_partition = EXCLUDED.last_partition,
        last_offset = EXCLUDED.last_offset,
        deleted = EXCLUDED.deleted,
        ended_at = CASE WHEN EXCLUDED.ended_at IS NULL THEN NULL
                        ELSE coalesce(s.ended_at, EXCLUDED.ended_at) END,
        ends_at = CASE WHEN EXCLUDED.deleted THEN s.ends_at ELSE EXCLUDED.ends_at END,
        life = archive_life(
            s.first_at,
            CASE WHEN EXCLUDED.ended_at IS NULL THEN NULL ELSE coalesce(s.ended_at, EXCLUDED.ended_at) END,
            CASE WHEN EXCLUDED.deleted THEN s.ends_at ELSE EXCLUDED.ends_at END),
        type = coalesce(EXCLUDED.type, s.type),
        commune = coalesce(EXCLUDED.commune, s.commune),
        sources = CASE WHEN EXCLUDED.deleted THEN s.sources ELSE EXCLUDED.sources END,
        waze_only = CASE WHEN EXCLUDED.deleted THEN s.waze_only ELSE EXCLUDED.waze_only END,
        geom = coalesce(EXCLUDED.geom, s.geom)
    WHERE CASE WHEN s.last_topic = EXCLUDED.last_topic AND s.last_partition = EXCLUDED.last_partition
               THEN s.last_offset < EXCLUDED.last_offset
               ELSE s.last_at < EXCLUDED.last_at END;
    RETURN NULL;
END
$$;
CREATE TRIGGER event_versions_span AFTER INSERT ON event_versions
    FOR EACH ROW EXECUTE FUNCTION archive_span();
-- an archive written before this version: its spans, replayed in record order through the trigger
CREATE TEMP TABLE archive_backfill ON COMMIT DROP AS SELECT * FROM event_versions;
DELETE FROM event_versions;
INSERT INTO event_versions SELECT * FROM archive_backfill ORDER BY topic, partition, "offset";
"""


async def migrate(database: str | psycopg.AsyncConnection[Any]) -> int:
    """Bring the archive to this release's schema; returns its version number (the Alembic revision's).

    Alembic is synchronous: it runs in a worker thread, on a connection of its own (to `database`, a libpq
    URL, or to the database an open connection is connected to), under the advisory lock (migrations/env.py)."""
    url = database if isinstance(database, str) else _conninfo(database)
    outcome = await asyncio.to_thread(migrations.upgrade, url)
    if outcome.adopted:
        log.info("archive schema: the pre-Alembic version table says %s: stamped as revision %s",
                 int(outcome.adopted), outcome.adopted)
    if outcome.applied:
        log.info("archive schema: applied %s; now at revision %s", ", ".join(outcome.applied), outcome.revision)
    return outcome.number or 0


def _conninfo(conn: psycopg.AsyncConnection[Any]) -> str:
    """The connection string of an open connection, password included (libpq keeps it out of `dsn`)."""
    password = conn.info.password
    return make_conninfo(conn.info.dsn, password=password) if password else conn.info.dsn


def month_start(at: datetime) -> datetime:
    return datetime(at.year, at.month, 1, tzinfo=UTC)


def next_month(start: datetime) -> datetime:
    return datetime(start.year + start.month // 12, start.month % 12 + 1, 1, tzinfo=UTC)


def partition_name(table: str, start: datetime) -> str:
    return f"{table}_p{start.year:04d}{start.month:02d}"


async def ensure_partition(conn: psycopg.AsyncConnection[object], table: str, start: datetime) -> None:
    """The month partition of `table` starting at `start` (inside the caller's transaction)."""
    await conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_ID,))
    await conn.execute(
        sql.SQL("CREATE TABLE IF NOT EXISTS {} PARTITION OF {} FOR VALUES FROM ({}) TO ({})").format(
            sql.Identifier(partition_name(table, start)),
            sql.Identifier(table),
            sql.Literal(start),
            sql.Literal(next_month(start)),
        )
    )


def months_back(now: datetime, months: int) -> datetime:
    """The first instant kept: the start of the month `months` months before `now`'s month."""
    index = now.year * 12 + (now.month - 1) - months
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


async def drop_expired(conn: psycopg.AsyncConnection[object], now: datetime, months: int) -> list[str]:
    """Drop the month partitions that end before the retention window; returns their names."""
    keep_from = months_back(now, months)
    dropped: list[str] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_ID,))
        for table in PARTITIONED:
            cur = await conn.execute(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = %s",
                (table,),
            )
            for found_row in await cur.fetchall():
                name = str(found_row[0])  # type: ignore[index]
                found = _SUFFIX.search(name)
                if not found:
                    continue
                start = datetime(int(found[1]), int(found[2]), 1, tzinfo=UTC)
                if next_month(start) <= keep_from:
                    await conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(name)))
                    dropped.append(name)
    return dropped
