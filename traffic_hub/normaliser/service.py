"""The normaliser service: a consumer group over the reports topic, writing canonical events.

Several instances share the partitions. Offsets are committed only after the events of a batch are
acknowledged by the broker, so a killed instance loses nothing: its partitions are re-read by
another from the last commit, and re-writing an event (same key, same version) changes nothing.

Membership is static (KIP-345, `group_instance_id` = the instance's stable name): a process killed
with SIGKILL and restarted under the same `TRAFFIC_HUB_INSTANCE` takes its partitions back at once,
instead of waiting in "(Re-)joining group" until the dead member's session expires (10 s), which
broke the 2 s promise after a crash. See `_consumer` for the two corners this opens and how they are
closed (a clean stop still leaves at once; two processes sharing a name fall back to dynamic).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Coroutine, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeAlias

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError

from traffic_hub.errors import Unavailable, WriteRejected
from traffic_hub.kafka.publisher import Publisher
from traffic_hub.lifecycle import Service
from traffic_hub.model import Event, Lifecycle
from traffic_hub.normaliser.conflation import EventIndex
from traffic_hub.normaliser.pipeline import Pipeline
from traffic_hub.normaliser.placement import Placer
from traffic_hub.publishing import Record, dead_letter
from traffic_hub.topics import Topics
from traffic_hub.view import Change, LiveView, Stored, micros

log = logging.getLogger(__name__)

KafkaRecord: TypeAlias = ConsumerRecord[bytes, bytes]

# A dead member is dropped after this long; with static membership it only matters when an instance
# dies and does not come back (the survivors take over its partitions then). The broker's minimum is
# 6 s; 10 s leaves room for an event loop slowed by placement threads on a loaded machine.
SESSION_TIMEOUT_MS = 10000
# Our member id replaced this many times within the window = another live process joins with our
# instance name and the broker fences us each time we rejoin (and we fence it back): see `_Fencing`.
FENCED_TIMES = 3
FENCED_WINDOW_S = 60.0


class SharedInstanceName(Exception):
    """Another live process uses this instance's group_instance_id."""


class _Fencing:
    """Notices a group_instance_id shared by two live processes.

    A static member whose id is taken over by a newcomer is fenced: its next heartbeat is refused
    (unknown member), it rejoins under the same instance id and fences the other in turn, about once
    a heartbeat, for ever, each taking all the partitions back and forth. A rebalance keeps the member
    id; only a rejoin from scratch (fenced, or our own session expired) gives a new one. Several new
    ids within a minute mean a shared name. aiokafka keeps the member id on its private coordinator:
    if that ever moves, `member_id` reads None and the check is simply off.
    """

    def __init__(self) -> None:
        self._member: str | None = None
        self._changes: deque[float] = deque(maxlen=FENCED_TIMES)

    def check(self, consumer: AIOKafkaConsumer) -> None:
        member = _member_id(consumer)
        if not member or member == self._member:
            return
        if self._member is not None:
            self._changes.append(time.monotonic())
        self._member = member
        if len(self._changes) == FENCED_TIMES and self._changes[-1] - self._changes[0] < FENCED_WINDOW_S:
            raise SharedInstanceName(member)


class Normaliser(Service):
    def __init__(
        self,
        bootstrap_servers: str,
        topics: Topics,
        publisher: Publisher,
        placer: Placer,
        client_id: str,
        gate: asyncio.Event | None = None,
        live: LiveView | None = None,
        retention: timedelta = timedelta(days=7),
        sweep_every_s: float = 300.0,
    ) -> None:
        super().__init__()
        self._retention = retention
        self._sweep_every_s = sweep_every_s
        self._gate = gate
        self._live = live
        self._view = live.events if live else None
        self._seen = 0
        self.pipeline = Pipeline(topics, placer)
        self._bootstrap = bootstrap_servers
        self._topics = topics
        self._publisher = publisher
        self._client_id = client_id
        # the static member name: the client id is derived from the instance name (settings.instance,
        # `TRAFFIC_HUB_INSTANCE`), stable across restarts and unique per process by contract
        self._instance_id: str | None = client_id
        self.processed = 0
        self.dead_lettered = 0

    def to_records(self, batch: Sequence[KafkaRecord]) -> list[Record]:
        """The records to write for a batch (CPU work: placement on the network; runs in a thread)."""
        items = [(r.key.decode(errors="replace") if r.key else "", r.value or b"") for r in batch]
        return self.pipeline.process_many(items)  # a batch's closures are placed together

    async def _sync_index(self) -> None:
        """Bring the conflation index up to date with the event view (our own writes are already in it).

        What changed is taken on the event loop; decoding and indexing it runs in a worker thread
        (the whole view after a restart: seconds at 100,000 events). Nothing else touches the index
        meanwhile: batches are handled one after the other.
        """
        if self._view is None:
            return
        seq = self._view.seq
        changes = self._view.changes_since(self._seen)
        if changes is None:
            await asyncio.to_thread(_index_all, self.pipeline.index, self._view.records())
        elif changes:
            await asyncio.to_thread(_index_changes, self.pipeline.index, changes)
        self._seen = seq

    async def _publish(self, records: list[Record]) -> None:
        delay = 0.2
        while True:
            try:
                await self._publisher.send_many(records)
                return
            except WriteRejected as exc:  # never retried as is: dead-lettered (capped), or dropped if refused too
                records = self._without_refused(records, exc)
            except Unavailable:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _without_refused(self, records: list[Record], exc: WriteRejected) -> list[Record]:
        out = list(records)
        for index in sorted(exc.indexes, reverse=True):
            record = out[index]
            if record.topic == self._topics.deadletter:
                log.error("dead letter dropped, Kafka refused it too: %s", exc.detail)
                del out[index]
                continue
            reason = f"record for {record.topic} refused by Kafka: {exc.detail}"
            log.error("%s (key %r); dead-lettered", reason, record.key[:200])
            out[index] = dead_letter(
                self._topics, stage="normaliser", source="normaliser", reason=reason, raw=record.value or b"",
                key=record.key.decode("utf-8", "replace"),
            )
        return out

    async def _handle(self, consumer: AIOKafkaConsumer, batches: dict[TopicPartition, list[KafkaRecord]]) -> None:
        for tp, records in batches.items():
            await self._sync_index()
            out = await asyncio.to_thread(self.to_records, records)
            await self._publish(out)
            await consumer.commit({tp: records[-1].offset + 1})
            self.processed += len(records)
            self.dead_lettered += sum(1 for r in out if r.topic == self._topics.deadletter)

    def _consumer(self) -> AIOKafkaConsumer:
        """The group member. Static membership (`group_instance_id`) opens two corners, both closed:

        - A static member does not leave the group when it stops (aiokafka skips LeaveGroup), so on
          a clean stop that is not followed by a restart (scaling down) the others would wait a whole
          session for its partitions. `_leave_and_stop` sends the LeaveGroup all the same: a clean
          stop hands over at once, a crash is healed by the restart under the same name.
        - Two live processes with the same instance name would fence each other every heartbeat.
          `_Fencing` notices, and this process carries on as a dynamic member (logged as an error).
        """
        return AIOKafkaConsumer(
            self._topics.reports,
            bootstrap_servers=self._bootstrap,
            client_id=self._client_id,
            group_id=self._topics.normaliser_group,
            group_instance_id=self._instance_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=50,
            session_timeout_ms=SESSION_TIMEOUT_MS,
            heartbeat_interval_ms=1000,
            request_timeout_ms=15000,
        )

    async def _consume(self) -> None:
        consumer = self._consumer()
        fencing = _Fencing()
        try:
            async with asyncio.timeout(15):
                await consumer.start()
            while True:
                batches = await consumer.getmany(timeout_ms=200, max_records=500)
                if self._instance_id is not None:
                    fencing.check(consumer)
                if batches:
                    await self._handle(consumer, batches)
        finally:
            await _leave_and_stop(consumer)

    async def run(self) -> None:
        if self._gate is not None:
            await self._gate.wait()
        if self._live is not None:
            await self._live.wait_ready()  # conflation needs every current event
            await self._sync_index()  # now, not when the first report arrives and would wait for it
        delay = 0.2
        while True:
            try:
                await self._consume()
            except SharedInstanceName:
                log.error(
                    "normaliser: another live process uses the instance name %r (TRAFFIC_HUB_INSTANCE must be "
                    "unique per process); carrying on as a dynamic group member, without fast restarts",
                    self._instance_id,
                )
                self._instance_id = None
            except (KafkaError, OSError, TimeoutError) as exc:
                log.warning("normaliser: %r; restarting in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    def expired(self, now: datetime) -> list[Record]:
        """Tombstones for events ended or cancelled longer than the retention ago (keeps the topic small)."""
        if self._view is None:
            return []
        gone = expired_records(self._view.records(), now, self._retention)
        return [Record(self._topics.events, event_id.encode(), None) for event_id in gone]

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(self._sweep_every_s)
            tombstones = self.expired(datetime.now(UTC))
            if tombstones:
                with contextlib.suppress(Unavailable):
                    await self._publisher.send_many(tombstones)
                    log.info("removed %d events finished before the retention window", len(tombstones))

    def tasks(self) -> dict[str, Coroutine[Any, Any, None]]:
        return {"normaliser": self.run(), "normaliser-sweep": self._sweep()}


def _member_id(consumer: AIOKafkaConsumer) -> str | None:
    """The group member id aiokafka holds on its (private) coordinator; None when not known."""
    member = getattr(getattr(consumer, "_coordinator", None), "member_id", None)
    return member if isinstance(member, str) else None


async def _leave_and_stop(consumer: AIOKafkaConsumer) -> None:
    """Stop the consumer, leaving the group even as a static member (see `Normaliser._consumer`).

    aiokafka sends LeaveGroup on stop only for dynamic members; forgetting the instance id on its
    coordinator just before stopping makes it send one (LeaveGroup by member id, which Kafka 4.4
    honours for a static member: checked, the partitions move in under a second instead of 10 s).
    """
    coordinator = getattr(consumer, "_coordinator", None)
    if coordinator is not None and hasattr(coordinator, "_group_instance_id"):
        coordinator._group_instance_id = None
    with contextlib.suppress(KafkaError, OSError, TimeoutError):
        async with asyncio.timeout(5):
            await consumer.stop()


def _index_all(index: EventIndex, records: list[Stored]) -> None:
    """Every event of the view into the index (after a restart, or when it fell behind the history)."""
    for stored in records:
        if not index.share(stored):
            index.keep(stored, stored.decode())


def _index_changes(index: EventIndex, changes: list[Change]) -> None:
    """The view's changes into the index, unless the index has a newer version (our own write)."""
    for change in changes:
        stored = change.stored
        if stored is None:
            index.put(change.event_id, None)
            continue
        mine = index.version(change.event_id)
        if (mine is None or stored.version >= mine) and not index.share(stored):
            index.keep(stored, change.decoded.get(stored))


def finished_at(event: Event) -> datetime:
    """When the event stopped being current: its end time, or its last change (cancelled, ended by sources)."""
    ends = event.validity.ends_at
    return ends if ends is not None and event.lifecycle is Lifecycle.OPEN else event.updated_at


def expired(events: Iterable[Event], now: datetime, retention: timedelta) -> list[str]:
    """Ids of the events that stopped being current more than `retention` ago."""
    limit = now - retention
    return [e.id for e in events if not e.is_current(now) and finished_at(e) < limit]


def expired_records(records: Iterable[Stored], now: datetime, retention: timedelta) -> list[str]:
    """`expired`, read from the view's records: nothing is decoded."""
    moment, limit = micros(now), micros(now - retention)
    return [r.id for r in records if not r.is_current(moment) and r.finished_at() < limit]
