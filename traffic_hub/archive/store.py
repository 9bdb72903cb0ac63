"""The API's side of the archive: a small connection pool that fails fast, and how far behind the archiver is.

The history routes read PostgreSQL; nothing else in the API does, and the API must keep serving when the
database is down. So the pool opens without waiting, a monitor checks the database every few seconds, and
while it is down a history request gets `Unavailable` (503 with Retry-After) at once instead of waiting
on a connection; a request that still meets a dead connection, or a query past the statement timeout,
gets the same. The monitor also reads the archiver's progress (the offsets it stored with its rows, in
the database) against the topics' end offsets (from Kafka), so `/readyz` can say how far behind it is even
when the archiver runs in another process. It brings the schema to this release's Alembic head
(`schema.migrate`: a worker thread, its own connection, under the archiver's advisory lock) so an API
started before any archiver finds the tables; `/readyz` shows the schema version it found.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from traffic_hub.archive import schema
from traffic_hub.errors import Unavailable
from traffic_hub.kafka.starting import start_or_stop, stop_quietly
from traffic_hub.lifecycle import Service
from traffic_hub.topics import Topics

log = logging.getLogger(__name__)

CHECK_EVERY_S = 2.0
STATEMENT_TIMEOUT_MS = 10_000  # a history query never holds a request longer (then 503, Retry-After)
ACQUIRE_TIMEOUT_S = 2.0
RETRY_AFTER_S = 5
BEHIND_RECORDS = 10_000  # /readyz says "behind" past this lag (a warning: the archive is not a readiness gate)
BEHIND_SECONDS = 300.0


@dataclass
class Lag:
    """One topic's archive lag: records not archived yet, and an upper bound of their age in seconds."""

    records: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, float | int]:
        return {"records": self.records, "seconds": round(self.seconds, 1)}


@dataclass
class ArchiveStatus:
    database: str = "unknown"  # "up", "down", "unknown" (not checked yet)
    error: str | None = None
    schema_version: int | None = None
    lag: dict[str, Lag] = field(default_factory=dict)
    lag_known: bool = False
    checked_at: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        behind = any(v.records > BEHIND_RECORDS or v.seconds > BEHIND_SECONDS for v in self.lag.values())
        state = "down" if self.database != "up" else ("behind" if behind else "ok")
        return {
            "status": state,
            "database": self.database,
            "schema_version": self.schema_version,  # the Alembic revision's number (revision "0003" → 3)
            **({"error": self.error} if self.error else {}),
            "lag": {topic: lag.as_dict() for topic, lag in sorted(self.lag.items())} if self.lag_known else None,
            "checked_at": self.checked_at.isoformat(timespec="seconds") if self.checked_at else None,
        }


def _topic_lag(
    stored: dict[tuple[str, int], tuple[int, datetime | None]], ends: dict[tuple[str, int], int], now: datetime
) -> dict[str, Lag]:
    """Per topic: end offset − next archived offset, and since when the oldest unarchived record may wait
    (now − the last archived record's time, where something is left; never-archived partitions count all)."""
    lag: dict[str, Lag] = {}
    for (topic, partition), end in ends.items():
        next_offset, last_at = stored.get((topic, partition), (0, None))
        behind = max(0, end - next_offset)
        entry = lag.setdefault(topic, Lag())
        entry.records += behind
        if behind and last_at is not None:
            entry.seconds = max(entry.seconds, (now - last_at).total_seconds())
    return lag


class HistoryDb(Service):
    """The pool the history routes read through; `status()` is what `/readyz` shows of the archive."""

    def __init__(
        self, database_url: str, bootstrap_servers: str, topics: Topics, client_id: str, partitions: int = 3
    ) -> None:
        super().__init__()
        self._partitions = partitions
        self._topics = topics
        self._bootstrap = bootstrap_servers
        self._client_id = client_id
        self.pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]] = AsyncConnectionPool(
            database_url,
            min_size=1,
            max_size=4,
            open=False,
            timeout=ACQUIRE_TIMEOUT_S,
            kwargs={
                "autocommit": True,  # each statement its own transaction: a returned connection holds none
                "connect_timeout": 3,
                "application_name": "traffic-hub-history",
                "options": f"-c statement_timeout={STATEMENT_TIMEOUT_MS} -c default_transaction_read_only=on",
            },
        )
        self._status = ArchiveStatus()
        self._consumer: AIOKafkaConsumer | None = None
        self._url = database_url
        self._migrated = False
        self._migration: asyncio.Task[int] | None = None

    def tasks(self) -> dict[str, Coroutine[Any, Any, None]]:
        return {"history-monitor": self._monitor()}

    async def before_start(self) -> None:
        await self.pool.open(wait=False)

    async def after_stop(self) -> None:
        if self._migration is not None:
            self._migration.cancel()  # stops waiting for it; the thread finishes (or waits on the lock) alone
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await stop_quietly(consumer.stop(), 5)
        with contextlib.suppress(psycopg.Error, OSError, TimeoutError):
            async with asyncio.timeout(5):
                await self.pool.close()

    @property
    def up(self) -> bool:
        return self._status.database == "up"

    def status(self) -> dict[str, Any]:
        return self._status.as_dict()

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A pooled connection, or `Unavailable` at once while the database is known to be down."""
        if not self.up:
            raise Unavailable(
                f"the history archive is unavailable ({self._status.error or 'database not reached yet'}); "
                "the rest of the API is not affected", retry_after_s=RETRY_AFTER_S,
            )
        try:
            async with self.pool.connection() as conn:
                yield conn
        except PoolTimeout as exc:
            raise Unavailable("the history archive is busy or unreachable", retry_after_s=RETRY_AFTER_S) from exc
        except psycopg.errors.QueryCanceled as exc:
            raise Unavailable(
                f"the history query took longer than {STATEMENT_TIMEOUT_MS // 1000} s; narrow it (a shorter "
                "window, a commune or a bbox)", retry_after_s=RETRY_AFTER_S,
            ) from exc
        except (psycopg.OperationalError, psycopg.errors.UndefinedTable, OSError) as exc:
            self._mark_down(exc)
            raise Unavailable("the history archive is unavailable", retry_after_s=RETRY_AFTER_S) from exc

    def _mark_down(self, exc: BaseException) -> None:
        self._status.database = "down"
        self._status.error = type(exc).__name__
        self._migrated = False

    async def _monitor(self) -> None:
        while True:
            await self.check()
            await asyncio.sleep(CHECK_EVERY_S)

    async def check(self) -> None:
        """One look at the database (migrations on first contact) and the archiver's lag."""
        now = datetime.now(UTC)
        try:
            async with asyncio.timeout(ACQUIRE_TIMEOUT_S + 3):
                stored = await self._stored_offsets()
        except (psycopg.Error, PoolTimeout, OSError, TimeoutError) as exc:
            if self._status.database != "down":
                log.warning("history archive unreachable: %s", type(exc).__name__)
            self._mark_down(exc)
            self._status.checked_at = now
            return
        self._status.database, self._status.error, self._status.checked_at = "up", None, now
        try:
            ends = await self._end_offsets(stored)
        except (KafkaError, OSError, TimeoutError):
            self._status.lag_known = False
            return
        self._status.lag = _topic_lag(stored, ends, now)
        self._status.lag_known = True

    async def _stored_offsets(self) -> dict[tuple[str, int], tuple[int, datetime | None]]:
        if not self._migrated:
            self._status.schema_version = await self._migrate()
            self._migrated = True
        async with self.pool.connection(timeout=ACQUIRE_TIMEOUT_S) as conn:
            cur = await conn.execute("SELECT topic, partition, next_offset, last_record_at FROM archive_offsets")
            found = await cur.fetchall()
        return {(str(t), int(p)): (int(o), at) for t, p, o, at in found}

    async def _migrate(self) -> int:
        """One migration run at a time, which a check's timeout does not cancel: upgrading a big archive may
        outlast it, and the next check then waits for the same run rather than starting another."""
        task = self._migration
        if task is None or task.done():
            if task is not None and not task.cancelled():
                task.exception()  # seen: a failed run is simply run again at the next check
            task = self._migration = asyncio.create_task(schema.migrate(self._url), name="archive-migrate")
        return await asyncio.shield(task)

    async def _end_offsets(self, stored: dict[tuple[str, int], Any]) -> dict[tuple[str, int], int]:
        """The topics' end offsets: the partitions the hub creates (`partitions`) and any archived beyond."""
        consumer = self._consumer or await self._lag_consumer()
        wanted = {(topic, p) for topic in (self._topics.reports, self._topics.events)
                  for p in range(self._partitions)} | set(stored)
        async with asyncio.timeout(5):
            ends = await consumer.end_offsets([TopicPartition(t, p) for t, p in sorted(wanted)])
        return {(tp.topic, tp.partition): int(offset) for tp, offset in ends.items()}

    async def _lag_consumer(self) -> AIOKafkaConsumer:
        """A started consumer for the end offsets, kept for the next checks; one that fails to start (no
        broker, or none answering in time) is stopped before the error goes on, so nothing stays open."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap, client_id=f"{self._client_id}-archive-lag",
            enable_auto_commit=False, request_timeout_ms=4000,
        )
        await start_or_stop(consumer, 5)
        self._consumer = consumer
        return consumer
