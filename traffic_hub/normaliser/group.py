"""One stage of the normaliser as a consumer-group member: static, handing work over cleanly, one batch at a time.

Both stages (placement over the reports topic, decision over the placed topic, see `service`) are
members of a consumer group and share this machinery:

- Membership is static (KIP-345, `group_instance_id` = the instance's stable name): a process killed
  with SIGKILL and restarted under the same `TRAFFIC_HUB_INSTANCE` within its session takes its
  partitions back at once, instead of waiting in "(Re-)joining group" until the dead member's session
  expires (with the 10 s session of a broker that refuses the fast one, see below). Two corners this
  opens are closed: a clean stop still leaves at once (`leave_and_stop`), and two live processes sharing
  a name fall back to dynamic membership (`Fencing`).
- A killed member's partitions move to the survivors within a short session (1.5 s, heartbeats every
  100 ms), so the others are hot standbys: the decision partition, which stops every decision while
  it idles, and the placement partitions of the dead process are taken over long before a supervisor
  has restarted it (about 5 s). The broker must allow such a session (`group.min.session.timeout.ms`,
  6 s by default; 1 s on the local cluster and in compose.yaml). A stage reads that setting before it
  joins (`session_for`) and takes the 10 s session on a broker that would refuse the fast one, saying
  which and why in one INFO line, so the hub runs on any broker, only with slower take-overs. Where the
  setting cannot be read it tries the fast session, and a refused join falls back to 10 s (a WARNING).
- Offsets are committed in the background: a stage waits for its commit at most `COMMIT_WAIT_S`, then
  goes on with the next batch while the commit completes (one at a time, the latest offsets coalesced).
  Why: a commit needs the group coordinator, and when the broker holding it is lost, the coordinator
  moves only with the fence and the group's reload (2-4 s measured under load); waiting for it stopped
  placement and decisions meanwhile although the data path was back. A commit not done when a
  partition is revoked, or when the stage stops, is waited for (bounded). A commit that fails is
  logged; the next one covers it, and what it would have covered is at worst handled again, which
  changes nothing (docs/scaling.md, "Deciding again changes nothing").
- A batch is handled whole before its partition is given up: `on_partitions_revoked` waits for the
  batch in hand (written, acknowledged and committed), and Kafka runs every member's revocation before
  any member's assignment. So when a partition moves between live members, everything the old owner
  wrote is acknowledged before the new owner is assigned it. Records of a partition revoked between
  a poll and its handling are left to the new owner (it reads them again from the committed offset).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import TypeAlias

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
from aiokafka.coordinator.assignors.sticky.sticky_assignor import StickyPartitionAssignor
from aiokafka.errors import InvalidSessionTimeoutError, KafkaError

from traffic_hub.kafka.membership import (
    Fencing,
    Heartbeats,
    SharedInstanceName,
    leave_and_stop,
    min_session_timeout_ms,
)
from traffic_hub.kafka.starting import start_whole

log = logging.getLogger(__name__)

KafkaRecord: TypeAlias = ConsumerRecord[bytes, bytes]
Batches: TypeAlias = dict[TopicPartition, list[KafkaRecord]]

# A dead member is dropped after this long, and the survivors take its partitions: this bounds how long
# the decisions stop when the decision owner is killed (the restart of a killed process takes ~5 s on
# a quiet machine, so static membership alone left the decision partition idle that long). Measured on
# the shared 2-core machine (load 15-20): heartbeats every 250 ms kept every member of a chaos run in its
# group (no spurious rebalance). Needs the broker's `group.min.session.timeout.ms` at 1.5 s or less.
# Heartbeats every 100 ms (250 ms until 7 December): the survivors learn that a rebalance has begun from a
# heartbeat's answer, so a dead member's partitions are reassigned up to 150 ms sooner, and a member now
# misses 15 heartbeats, not 6, before a stall drops it (10 small requests a second per member and group).
# The session stays 1.5 s: 1 s would save 0.5 s on every take-over, but a 1 s stall of the event loop
# (placement threads on a loaded 2-core host) would then drop a live member and move its partitions.
FAST_SESSION_TIMEOUT_MS = 1500
FAST_HEARTBEAT_INTERVAL_MS = 100
# A member is sure to be in its group when its last acknowledged heartbeat is younger than the session less
# this margin (at least two heartbeats): what it decides after that is held back (`current`).
CURRENT_MARGIN_MS = 500
# The session when the broker refuses the fast one (Kafka's default minimum is 6 s): 10 s leaves room
# for an event loop slowed by placement threads on a loaded machine.
SESSION_TIMEOUT_MS = 10000
HEARTBEAT_INTERVAL_MS = 1000
COMMIT_WAIT_S = 0.5  # a batch's commit is waited for this long, then left to complete in the background
COMMIT_SETTLE_S = 10.0  # the most a revocation or a stop waits for the commit in flight


def session_for(broker_min_ms: int | None) -> tuple[int, str]:
    """The session a stage asks for, given the brokers' `group.min.session.timeout.ms` (None: unknown), and why."""
    if broker_min_ms is None:
        return FAST_SESSION_TIMEOUT_MS, (
            f"the brokers' group.min.session.timeout.ms could not be read; trying it (a broker that refuses it "
            f"gets {SESSION_TIMEOUT_MS} ms)"
        )
    if broker_min_ms <= FAST_SESSION_TIMEOUT_MS:
        return FAST_SESSION_TIMEOUT_MS, f"the brokers' group.min.session.timeout.ms is {broker_min_ms} ms"
    return max(SESSION_TIMEOUT_MS, broker_min_ms), (
        f"the brokers' group.min.session.timeout.ms is {broker_min_ms} ms, above the fast {FAST_SESSION_TIMEOUT_MS} "
        "ms: a killed process's partitions move to the others only after this session"
    )


class GroupStage:
    """A consumer-group member over `topic` that hands each poll's batches to `handle`, one poll at a time.

    Subclasses implement `handle` (called after every poll, with nothing when the poll brought nothing:
    idle work goes there) and may override `assigned` / `revoked`, which run under the batch lock.
    """

    def __init__(self, name: str, bootstrap_servers: str, topic: str, group: str, client_id: str) -> None:
        self.name = name
        self._bootstrap = bootstrap_servers
        self._topic = topic
        self._group = group
        self._client_id = client_id
        # the static member name: the client id is derived from the instance name (settings.instance,
        # `TRAFFIC_HUB_INSTANCE`), stable across restarts and unique per process by contract
        self._instance_id: str | None = client_id
        self._busy = asyncio.Lock()
        self.owned: set[TopicPartition] = set()
        self.session_timeout_ms = FAST_SESSION_TIMEOUT_MS  # SESSION_TIMEOUT_MS if the broker refuses it
        self._session_read = False  # the brokers' minimum session was read (else read again at a restart)
        self._session_said: str | None = None
        self.heartbeats = Heartbeats()
        self._to_commit: dict[TopicPartition, int] = {}
        self._committing: asyncio.Task[None] | None = None
        # aiokafka's sticky assignor keeps "my previous assignment" in class attributes: one class shared by
        # a process's two stages would offer the decision partition as the placement group's previous
        # assignment (measured: every placement partition still moved). One subclass per stage, same name.
        self._sticky: type[StickyPartitionAssignor] = type(f"Sticky{group}", (StickyPartitionAssignor,), {})

    @property
    def heartbeat_interval_ms(self) -> int:
        fast = self.session_timeout_ms == FAST_SESSION_TIMEOUT_MS
        return FAST_HEARTBEAT_INTERVAL_MS if fast else HEARTBEAT_INTERVAL_MS

    def current(self) -> bool:
        """Is this member surely still in its group? Its last acknowledged heartbeat was sent less than
        the session timeout less a margin ago (1 s with the fast session): a member that stalled longer
        may have been dropped, its partitions given to another member."""
        margin = max(CURRENT_MARGIN_MS, 2 * self.heartbeat_interval_ms)
        return self.heartbeats.age() < (self.session_timeout_ms - margin) / 1000

    async def handle(self, consumer: AIOKafkaConsumer, batches: Batches) -> None:
        raise NotImplementedError

    async def commit(self, consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int]) -> None:
        """Commit `offsets` (after what they cover is acknowledged); waits at most `COMMIT_WAIT_S`."""
        self._to_commit.update(offsets)
        if self._committing is None or self._committing.done():
            self._committing = asyncio.create_task(self._commit_all(consumer), name=f"{self.name} commit")
        await asyncio.wait({self._committing}, timeout=COMMIT_WAIT_S)

    async def _commit_all(self, consumer: AIOKafkaConsumer) -> None:
        while self._to_commit:
            offsets, self._to_commit = self._to_commit, {}
            try:
                await consumer.commit(offsets)
            except KafkaError as exc:  # e.g. the partition moved meanwhile: the next commit covers it
                log.warning("%s: commit of %s failed (%r); handled again at worst", self.name, offsets, exc)

    async def _settle_commits(self) -> None:
        """Wait (bounded) for the commit in flight: the offsets of a partition before it is given up."""
        if self._committing is not None and not self._committing.done():
            await asyncio.wait({self._committing}, timeout=COMMIT_SETTLE_S)

    def assigned(self, partitions: set[TopicPartition]) -> None:
        """These partitions are ours from now on (some may have been ours before the rebalance)."""

    def revoked(self, partitions: set[TopicPartition]) -> None:
        """These partitions are no longer ours; the batch in hand, if any, is finished."""

    async def _on_revoked(self, partitions: Iterable[TopicPartition]) -> None:
        async with self._busy:  # the batch in hand is written and committed before the group moves on
            await self._settle_commits()
            gone = set(partitions)
            self.owned -= gone
            self.revoked(gone)

    async def _on_assigned(self, partitions: Iterable[TopicPartition]) -> None:
        async with self._busy:
            mine = set(partitions)
            self.heartbeats.joined()
            self.owned |= mine
            self.assigned(mine)

    def _consumer(self) -> AIOKafkaConsumer:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            client_id=self._client_id,
            group_id=self._group,
            group_instance_id=self._instance_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=50,
            session_timeout_ms=self.session_timeout_ms,
            heartbeat_interval_ms=self.heartbeat_interval_ms,
            request_timeout_ms=15000,
            # Sticky first: when a member dies only its partitions move, the survivors keep theirs (round robin
            # reshuffled every partition, so each survivor re-read the backlog of a partition new to it), and the
            # decision partition stays with its new owner when the dead process comes back (round robin gave it
            # back to the first member by name: a second handover). Round robin stays listed, so members of an
            # older version, which offer only it, can still join during a rolling upgrade.
            partition_assignment_strategy=(self._sticky, RoundRobinPartitionAssignor),
        )
        consumer.subscribe([self._topic], listener=_Listener(self))
        return consumer

    async def _consume(self) -> None:
        consumer = self._consumer()
        fencing = Fencing()
        try:
            await start_whole(consumer.start(), 15)
            self.heartbeats.watch(consumer)
            while True:
                batches = await consumer.getmany(timeout_ms=200, max_records=500)
                if self._instance_id is not None:
                    fencing.check(consumer)
                async with self._busy:  # what was revoked since the poll is left to its new owner
                    await self.handle(consumer, {tp: rs for tp, rs in batches.items() if tp in self.owned})
        finally:
            async with self._busy:
                await self._settle_commits()
                self.revoked(set(self.owned))
                self.owned.clear()
            if self._committing is not None and not self._committing.done():
                self._committing.cancel()  # not done within the bound: the consumer goes
            self._to_commit.clear()
            await leave_and_stop(consumer)

    async def _choose_session(self) -> None:
        """The session from the brokers' minimum, read before joining; one INFO line when the choice changes."""
        broker_min = await min_session_timeout_ms(self._bootstrap, f"{self._client_id}-session")
        self._session_read = broker_min is not None
        self.session_timeout_ms, why = session_for(broker_min)
        if why != self._session_said:
            log.info("%s: group session %d ms: %s", self.name, self.session_timeout_ms, why)
            self._session_said = why

    async def run(self) -> None:
        delay = 0.2
        while True:
            try:
                if not self._session_read:
                    await self._choose_session()
                await self._consume()
            except SharedInstanceName:
                log.error(
                    "%s: another live process uses the instance name %r (TRAFFIC_HUB_INSTANCE must be "
                    "unique per process); carrying on as a dynamic group member, without fast restarts",
                    self.name,
                    self._instance_id,
                )
                self._instance_id = None
            except InvalidSessionTimeoutError:
                if self.session_timeout_ms == SESSION_TIMEOUT_MS:
                    raise
                log.warning(
                    "%s: the broker refuses a %d ms group session (its group.min.session.timeout.ms is higher); "
                    "using %d ms: a killed process's partitions move to the others only after that long",
                    self.name, self.session_timeout_ms, SESSION_TIMEOUT_MS,
                )  # fmt: skip
                self.session_timeout_ms = SESSION_TIMEOUT_MS
                self._session_read = True  # the refusal said it: not read again at the next start
            except (KafkaError, OSError, TimeoutError) as exc:
                log.warning("%s: %r; restarting in %.1fs", self.name, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, stage: GroupStage) -> None:
        self._stage = stage

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        await self._stage._on_revoked(revoked)

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        await self._stage._on_assigned(assigned)
