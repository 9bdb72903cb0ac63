"""The normaliser service: reports in, canonical events out, in two stages, each a consumer group.

Stage 1, *placement*, shares the reports topic's partitions among every normaliser process: it parses
each report, dead-letters what cannot be used, places closures and incidents on the road network (nearly
all of the CPU) and writes each report with its placement to the placed topic (`placed`). Stage 2,
*decision*, is one consumer group over the placed topic, which has one partition: whichever process
holds it makes every merge decision of the hub, one batch after the other (conflation, closures
taking incidents in, operator actions, ends and reopenings), and writes the events. Two reports of one
incident that come in on different partitions are thus never decided concurrently: no event is
created twice, no merge is lost (docs/scaling.md, "Several normalisers: one owner per merge").

Each stage commits its offsets only after what it wrote is acknowledged, so a killed process loses
nothing: its partitions are read again by another from the last commit, and deciding a report again
changes nothing (`pipeline`). When the decision partition comes to a process, it first reads the
events topic up to its end offsets of that moment (everything the previous owner wrote is below them:
it was acknowledged before the previous owner committed or gave the partition up) and only then decides.
Every process follows the events topic all the time (its view), so that catch-up is a look at offsets:
the others are hot standbys, and a killed owner's partition moves to one of them when its 1.5 s session
expires (`group`), not when it has been restarted. An owner that the group has not acknowledged for
almost a session (it stalled: it may have been replaced) does not write what it decided (`_hold_back`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from traffic_hub.errors import Unavailable, WriteRejected
from traffic_hub.kafka.membership import SharedInstanceName
from traffic_hub.kafka.publisher import Publisher
from traffic_hub.lifecycle import Service
from traffic_hub.model import Event, Lifecycle
from traffic_hub.normaliser.conflation import EventIndex
from traffic_hub.normaliser.group import SESSION_TIMEOUT_MS, Batches, GroupStage, KafkaRecord
from traffic_hub.normaliser.pipeline import Pipeline
from traffic_hub.normaliser.placed import decode_placed
from traffic_hub.normaliser.placement import Placer
from traffic_hub.publishing import Record, dead_letter
from traffic_hub.topics import Topics
from traffic_hub.view import Change, LiveView, Stored, micros

__all__ = ["SESSION_TIMEOUT_MS", "Normaliser", "SharedInstanceName", "expired", "expired_records", "finished_at"]

log = logging.getLogger(__name__)

HANDOVER_LOG_EVERY_S = 10.0  # a decision owner waiting for its view says so this often
NOT_CURRENT_PAUSE_S = 0.05  # a decision owner the group has not acknowledged lately looks again after this


class _Writer:
    """Writes a stage's records until the broker acknowledges them; records Kafka refuses are dead-lettered."""

    def __init__(self, topics: Topics, publisher: Publisher) -> None:
        self._topics = topics
        self._publisher = publisher

    async def send_once(self, records: list[Record]) -> None:
        """One attempt (raises `Unavailable`, `WriteRejected`): for what is written again later anyway."""
        await self._publisher.send_many(records)

    async def publish(self, records: list[Record]) -> None:
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


class Placing(GroupStage):
    """Stage 1: reports → placed reports (and dead letters), over the reports topic's partitions."""

    def __init__(
        self,
        bootstrap_servers: str,
        topics: Topics,
        pipeline: Pipeline,
        writer: _Writer,
        client_id: str,
        max_bytes: int | None,
    ) -> None:
        super().__init__("normaliser placement", bootstrap_servers, topics.reports, topics.normaliser_group, client_id)
        self._topics = topics
        self._pipeline = pipeline
        self._writer = writer
        self._max_bytes = max_bytes
        self.processed = 0
        self.dead_lettered = 0

    def to_records(self, batch: list[KafkaRecord]) -> list[Record]:
        """The placed records of a batch (CPU work: placement on the network; runs in a thread)."""
        items = [(_key(r), r.value or b"") for r in batch]
        return self._pipeline.place_many(items, self._max_bytes)  # a batch's closures are placed together

    async def handle(self, consumer: AIOKafkaConsumer, batches: Batches) -> None:
        for tp, records in batches.items():
            out = await asyncio.to_thread(self.to_records, records)
            await self._writer.publish(out)
            await self.commit(consumer, {tp: records[-1].offset + 1})
            self.processed += len(records)
            self.dead_lettered += sum(1 for r in out if r.topic == self._topics.deadletter)


class Deciding(GroupStage):
    """Stage 2: placed reports → events, by the one holder of the placed topic's partition."""

    def __init__(
        self,
        bootstrap_servers: str,
        topics: Topics,
        pipeline: Pipeline,
        writer: _Writer,
        client_id: str,
        live: LiveView | None,
        retention: timedelta,
        sweep_every_s: float,
    ) -> None:
        super().__init__("normaliser decision", bootstrap_servers, topics.placed, topics.decision_group, client_id)
        self._topics = topics
        self.pipeline = pipeline
        self._writer = writer
        self._live = live
        self._view = live.events if live else None
        self._seen = 0
        self._retention = retention
        self._sweep_every_s = sweep_every_s
        self._swept = time.monotonic()
        self._handover = False  # the partition just came to us: catch up with the events topic first
        self.decided = 0
        self.dead_lettered = 0
        self.handovers = 0
        self.held_back = 0  # batches decided but not written: the group had not acknowledged us lately

    def assigned(self, partitions: set[TopicPartition]) -> None:
        self._handover = True

    def to_records(self, batch: list[KafkaRecord]) -> list[Record]:
        """The event records of a batch (CPU work: decisions, and the re-placements they need; in a thread)."""
        items = [(_key(r), *decode_placed(r.value or b"")) for r in batch]
        return self.pipeline.decide_many(items)

    async def start_index(self) -> None:
        """The conflation index from the whole view, before the first decision (and before joining the group)."""
        if self._live is not None:
            await self._live.wait_ready()  # conflation needs every current event
            await self._sync_index()

    async def handle(self, consumer: AIOKafkaConsumer, batches: Batches) -> None:
        if not self.owned:
            # A hot standby keeps its conflation index as current as its view: a take-over then indexes the
            # last few changes, not the whole view (which it would once the view's change history has moved on:
            # seconds at 100,000 events, while nothing is decided).
            if self._view is not None and self._view.seq != self._seen:
                await self._sync_index()
            return
        if self._handover:
            await self._catch_up(consumer)
            self._handover = False
            self.handovers += 1
        for tp, records in batches.items():
            if not self.current():  # e.g. the group coordinator's broker was lost: wait for a heartbeat
                consumer.seek(tp, records[0].offset)
                await asyncio.sleep(NOT_CURRENT_PAUSE_S)
                return
            await self._sync_index()
            out = await self._decided(records)
            if not self.current():
                self.pipeline.index.undo()
                self._hold_back(consumer, tp, records)
                return
            self.pipeline.index.settle()
            await self._writer.publish(out)
            await self.commit(consumer, {tp: records[-1].offset + 1})
            self.decided += len(records)
            self.dead_lettered += sum(1 for r in out if r.topic == self._topics.deadletter)
        if time.monotonic() - self._swept >= self._sweep_every_s:
            await self._sweep()

    async def _decided(self, records: list[KafkaRecord]) -> list[Record]:
        """The batch's event records, its changes to the index remembered until settled or undone (a
        decision that fails half-way leaves no half of it in the index). A cancellation undoes nothing: the
        worker thread may still be deciding, and a cancelled stage stops (its successor indexes the view)."""
        self.pipeline.index.begin()
        try:
            return await asyncio.to_thread(self.to_records, records)
        except Exception:
            self.pipeline.index.undo()
            raise

    def _hold_back(self, consumer: AIOKafkaConsumer, tp: TopicPartition, records: list[KafkaRecord]) -> None:
        """Decisions made, but the group has not acknowledged us for almost a session: do not write them.

        Why: with the 1.5 s session, a process that stalled that long (a loaded host, a VM pause) may have
        been dropped from the group, and another owner may be deciding already; two owners writing is what
        the single decision partition exists to prevent. The batch is read again from its first offset,
        by us if we are still the owner (after the usual catch-up), or by the new owner. The index has
        forgotten the decisions just made and not written (`EventIndex.undo`, by the caller)."""
        log.warning(
            "normaliser decision: no heartbeat acknowledged for %.1fs; %d decisions not written, read again",
            self.heartbeats.age(), len(records),
        )  # fmt: skip
        consumer.seek(tp, records[0].offset)
        self._handover = True
        self.held_back += 1

    async def _catch_up(self, consumer: AIOKafkaConsumer) -> None:
        """Wait until the view holds every event written before now, then index them.

        Why: the previous owner's last decisions were acknowledged before it committed them or gave the
        partition up, hence are below the events topic's end offsets read now; deciding before the view
        has them would decide against an older state (an event created twice, a merge lost)."""
        if self._live is None:
            return
        cluster = await consumer._client.fetch_all_metadata()  # aiokafka only knows subscribed topics
        partitions = cluster.partitions_for_topic(self._topics.events) or set()
        ends: dict[TopicPartition, int] = await consumer.end_offsets(
            [TopicPartition(self._topics.events, p) for p in sorted(partitions)]
        )
        started = said = time.monotonic()
        while not all(self._live.position(tp.partition) >= end for tp, end in ends.items()):
            await asyncio.sleep(0.01)
            if time.monotonic() - said >= HANDOVER_LOG_EVERY_S:
                said = time.monotonic()
                log.warning("normaliser decision: waiting for the event view to reach %s before deciding", ends)
        await self._sync_index()
        log.info("normaliser decision: owner of %s, view caught up in %.2fs", self._topics.placed,
                 time.monotonic() - started)  # fmt: skip

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

    def expired(self, now: datetime) -> list[Record]:
        """Tombstones for events ended or cancelled longer than the retention ago (keeps the topic small)."""
        gone = expired_records(self.pipeline.index.records(), now, self._retention)
        return [Record(self._topics.events, event_id.encode(), None) for event_id in gone]

    async def _sweep(self) -> None:
        """The expired events' tombstones, written by the decision owner between two batches.

        Why here: a tombstone written beside a decision could erase the event a report just reopened.
        The owner decides and sweeps one after the other, from the same index."""
        self._swept = time.monotonic()
        await self._sync_index()
        tombstones = self.expired(datetime.now(UTC))
        if not tombstones:
            return
        with contextlib.suppress(Unavailable):
            await self._writer.send_once(tombstones)
            for record in tombstones:
                self.pipeline.index.put(record.key.decode(), None)
            log.info("removed %d events finished before the retention window", len(tombstones))


class Normaliser(Service):
    """Both stages of the normaliser in one process (`traffic-hub normaliser`, or within `traffic-hub run`)."""

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
        self._gate = gate
        self._writer = _Writer(topics, publisher)
        max_bytes = getattr(publisher, "max_record_bytes", None)
        self.placing = Placing(bootstrap_servers, topics, Pipeline(topics, placer), self._writer, client_id, max_bytes)
        self.deciding = Deciding(
            bootstrap_servers, topics, Pipeline(topics, placer), self._writer, f"{client_id}-decision", live,
            retention, sweep_every_s,
        )  # fmt: skip
        self.pipeline = self.deciding.pipeline

    @property
    def processed(self) -> int:
        """Reports placed by this process (each report of the hub is placed by one process)."""
        return self.placing.processed

    @property
    def decided(self) -> int:
        """Placed reports decided by this process (all of the hub's while it holds the decision partition)."""
        return self.deciding.decided

    @property
    def dead_lettered(self) -> int:
        return self.placing.dead_lettered + self.deciding.dead_lettered

    async def _publish(self, records: list[Record]) -> None:
        await self._writer.publish(records)

    def expired(self, now: datetime) -> list[Record]:
        return self.deciding.expired(now)

    async def _place(self) -> None:
        if self._gate is not None:
            await self._gate.wait()
        await self.placing.run()

    async def _decide(self) -> None:
        if self._gate is not None:
            await self._gate.wait()
        await self.deciding.start_index()  # now, not when the first report arrives and would wait for it
        await self.deciding.run()

    def tasks(self) -> dict[str, Coroutine[Any, Any, None]]:
        return {"normaliser-placement": self._place(), "normaliser-decision": self._decide()}


def _key(record: KafkaRecord) -> str:
    return record.key.decode(errors="replace") if record.key else ""


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
