"""The archiver role: reports and events topics → PostgreSQL, exactly once.

One consumer in the group `{prefix}.archiver` (no Kafka commits): each poll's records are written with
the partitions' next offsets in `archive_offsets`, in ONE transaction. On (re)assignment the consumer
seeks to the stored offsets, so after a crash the uncommitted tail is read again and nothing is lost;
inserts are `ON CONFLICT DO NOTHING` on (topic, partition, offset, received_at), so a replay (or a
member that read past a rebalance) never doubles a row. A database or broker outage tears the session
down and retries with backoff; nothing else in the hub waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine, Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from psycopg import sql

from traffic_hub.archive import rows, schema
from traffic_hub.kafka import ensure_topics
from traffic_hub.kafka.starting import start_whole, stop_quietly
from traffic_hub.lifecycle import Service
from traffic_hub.topics import Topics

log = logging.getLogger(__name__)

RETENTION_EVERY_S = 3600.0
# what PostgreSQL says of a row it will not take (not a connection problem): the row is degraded, not retried
REFUSED = (psycopg.DataError, psycopg.IntegrityError, psycopg.InternalError, psycopg.ProgrammingError)
Records = list[ConsumerRecord[bytes, bytes]]


def _insert(table: str, columns: Sequence[str], geometry: bool) -> sql.Composed:
    names = [sql.Identifier(c) for c in columns]
    values: list[sql.Composable] = [sql.Placeholder()] * len(columns)
    if geometry:
        names.append(sql.Identifier("geom"))
        values.append(sql.SQL("ST_SetSRID(ST_GeomFromGeoJSON({}), 4326)").format(sql.Placeholder()))
    return sql.SQL("INSERT INTO {} ({}) VALUES ({}) ON CONFLICT DO NOTHING").format(
        sql.Identifier(table), sql.SQL(", ").join(names), sql.SQL(", ").join(values)
    )


INSERT_EVENT = _insert("event_versions", rows.EVENT_COLUMNS, geometry=True)
INSERT_REPORT = _insert("reports", rows.REPORT_COLUMNS, geometry=False)
UPSERT_OFFSET = (  # last_record_at: the Kafka time of the last archived record (what /readyz's lag in seconds uses)
    "INSERT INTO archive_offsets (topic, partition, next_offset, updated_at, last_record_at) "
    "VALUES (%s, %s, %s, now(), %s) "
    "ON CONFLICT (topic, partition) DO UPDATE SET next_offset = "
    "GREATEST(archive_offsets.next_offset, EXCLUDED.next_offset), updated_at = now(), "
    "last_record_at = GREATEST(archive_offsets.last_record_at, EXCLUDED.last_record_at)"
)


class _Seek(ConsumerRebalanceListener):  # type: ignore[misc]
    """On assignment, resume each partition at the offset stored with the rows."""

    def __init__(self, archiver: Archiver, consumer: AIOKafkaConsumer) -> None:
        self._archiver = archiver
        self._consumer = consumer

    async def on_partitions_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        return None

    async def on_partitions_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        stored = await self._archiver.stored_offsets()
        for tp in assigned:
            # never archived: from offset 0 (past the retention, `earliest` resets to the first kept one).
            # Not `await seek_to_beginning()`: it waits for the fetcher, which waits for this listener.
            self._consumer.seek(tp, stored.get((tp.topic, tp.partition), 0))


class Archiver(Service):
    def __init__(
        self,
        database_url: str,
        bootstrap_servers: str,
        topics: Topics,
        client_id: str,
        *,
        retention_months: int = 24,
        partitions: int = 3,
        replication_factor: int = 1,
        max_records: int = 5000,
    ) -> None:
        super().__init__()
        self._url = database_url
        self._bootstrap = bootstrap_servers
        self._topics = topics
        self._client_id = client_id
        self._retention_months = retention_months
        self._partitions = partitions
        self._replication = replication_factor
        self._max_records = max_records
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._months: set[tuple[str, datetime]] = set()
        self._db_lock = asyncio.Lock()  # the rebalance listener and the writer share one connection
        self.rows_written = 0
        self.connected = False
        self.last_error: str | None = None
        self._next: dict[tuple[str, int], int] = {}  # next offset archived, per (topic, partition)
        self.lag: dict[str, int] = {}  # topic → records not archived yet (what /readyz can show)

    def tasks(self) -> dict[str, Coroutine[Any, Any, None]]:
        return {"archiver": self._run()}

    async def after_stop(self) -> None:
        await self._close_db()

    async def _close_db(self) -> None:
        conn, self._conn = self._conn, None
        self.connected = False
        if conn is not None:
            with contextlib.suppress(psycopg.Error, OSError):
                await conn.close()

    async def _run(self) -> None:
        backoff = 0.5
        while True:
            try:
                await self._session()
            except (psycopg.Error, KafkaError, OSError, TimeoutError) as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
            backoff = 0.5 if self.connected else min(backoff * 2, 30.0)  # a session that worked starts afresh
            log.warning("archiver: %s; retrying in %.1f s", self.last_error, backoff)
            await self._close_db()
            await asyncio.sleep(backoff)

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        async with asyncio.timeout(10):
            conn = await psycopg.AsyncConnection.connect(self._url, connect_timeout=5, application_name="archiver")
        self._conn = conn
        self._months = set()  # a database that came back may be a new one (restored, re-created): no partition known
        version = await schema.migrate(conn)
        self.connected = True
        log.info("archiver: database schema version %d", version)
        return conn

    async def stored_offsets(self) -> dict[tuple[str, int], int]:
        conn = self._conn
        if conn is None:
            raise psycopg.OperationalError("archive database not connected")
        async with self._db_lock, conn.transaction():
            cur = await conn.execute("SELECT topic, partition, next_offset FROM archive_offsets")
            found = await cur.fetchall()
        return {(str(t), int(p)): int(o) for t, p, o in found}

    async def _session(self) -> None:
        conn = await self._connect()
        await ensure_topics(self._bootstrap, self._topics, self._partitions, self._replication)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            client_id=self._client_id,
            group_id=f"{self._topics.prefix}.archiver",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=200,
            max_partition_fetch_bytes=4 * 1024 * 1024,
        )
        try:  # a consumer whose start fails is stopped too (finally): each retry would leave one open
            await start_whole(consumer.start(), 15)
            consumer.subscribe([self._topics.reports, self._topics.events], listener=_Seek(self, consumer))
            retention_due = 0.0
            loop = asyncio.get_running_loop()
            while True:
                if loop.time() >= retention_due:
                    async with self._db_lock:
                        dropped = await schema.drop_expired(conn, datetime.now(UTC), self._retention_months)
                    if dropped:
                        log.info("archiver: retention dropped %s", ", ".join(dropped))
                    retention_due = loop.time() + RETENTION_EVERY_S
                batches = await consumer.getmany(timeout_ms=500, max_records=self._max_records)
                if batches:
                    async with self._db_lock:
                        await self._write(conn, batches)
                self._measure_lag(consumer)
        finally:
            await stop_quietly(consumer.stop(), 5)

    def _measure_lag(self, consumer: AIOKafkaConsumer) -> None:
        lag: dict[str, int] = {}
        for tp in consumer.assignment():
            high = consumer.highwater(tp)
            done = self._next.get((tp.topic, tp.partition))
            if high is not None and done is not None:
                lag[tp.topic] = lag.get(tp.topic, 0) + max(0, high - done)
        self.lag = lag

    async def _write(self, conn: psycopg.AsyncConnection[Any], batches: dict[TopicPartition, Records]) -> None:
        events: list[rows.Row] = []
        reports: list[rows.Row] = []
        months: set[tuple[str, datetime]] = set()
        offsets: list[tuple[str, int, int, datetime]] = []
        for tp, records in batches.items():
            if not records:
                continue
            is_events = tp.topic == self._topics.events
            table = "event_versions" if is_events else "reports"
            for r in records:
                if is_events:
                    row, geo = rows.event_row(tp.topic, tp.partition, r.offset, r.timestamp, r.key, r.value)
                    events.append((*row, geo))
                else:
                    reports.append(rows.report_row(tp.topic, tp.partition, r.offset, r.timestamp, r.key, r.value))
                months.add((table, schema.month_start(rows.record_time(r.timestamp))))
            last = records[-1]
            offsets.append((tp.topic, tp.partition, last.offset + 1, rows.record_time(last.timestamp)))
        async with conn.transaction():
            for table, start in sorted(months - self._months):
                await schema.ensure_partition(conn, table, start)
            try:
                async with conn.transaction(), conn.cursor() as cur:  # a savepoint: a refused row undoes only it
                    if events:
                        await cur.executemany(INSERT_EVENT, events)
                    if reports:
                        await cur.executemany(INSERT_REPORT, reports)
            except REFUSED as exc:
                log.warning("archiver: a record was refused (%s); writing this batch row by row", type(exc).__name__)
                await self._one_by_one(conn, events, reports)
            async with conn.cursor() as cur:
                await cur.executemany(UPSERT_OFFSET, offsets)
        self._months |= months
        self._next.update({(t, p): o for t, p, o, _ in offsets})
        self.rows_written += len(events) + len(reports)

    async def _one_by_one(
        self, conn: psycopg.AsyncConnection[Any], events: list[rows.Row], reports: list[rows.Row]
    ) -> None:
        """Each row in its own savepoint, degraded step by step until PostgreSQL takes it."""
        for statement, batch, is_events in ((INSERT_EVENT, events, True), (INSERT_REPORT, reports, False)):
            for row in batch:
                tries = [row, rows.without_geometry(row), rows.bare(row, is_events)] if is_events else [
                    row, rows.bare(row, is_events)]
                for attempt in tries:
                    try:
                        async with conn.transaction():
                            await conn.execute(statement, attempt)
                        break
                    except REFUSED as exc:
                        log.warning("archiver: %s at %s offset %s: %s", type(exc).__name__, row[0], row[2], exc)
