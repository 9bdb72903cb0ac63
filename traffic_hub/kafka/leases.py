"""Several connector runners share the sources: each source is polled by exactly one live runner.

The design: a consumer group, `{prefix}.connectors`, over a small topic, `{prefix}.connector-sources`,
whose partitions stand for sources (a source is on partition `sha256(name) mod P`; nothing is ever
written to the topic). Owning a partition is the lease on its sources; the rebalance listener is the
hand-over: on revoke the runner stops polling those sources and waits for their in-flight cycles to
end (or cancels them after a grace) *before* the revoke returns, and only then does the group hand
the partitions to anyone (Kafka's eager rebalance protocol: a member's revoke completes before the
next generation's assignment exists). So two live runners never poll one source at once.

Why a consumer group rather than leases in a compacted topic with heartbeats and fencing epochs:
the group coordinator already is that lease service, tested far beyond what we would write here —
liveness (a member that stops heartbeating is dropped after the session timeout), fencing (a member
of an old generation cannot keep its assignment: its next heartbeat is refused and it must revoke
and rejoin), and agreement (one leader computes one assignment per generation). Hand-written leases
would repeat all three with our own clock arithmetic and our own bugs. The cost is that every
rebalance revokes every source of every runner for a moment (aiokafka has no cooperative protocol);
that is cheap because a source's memory moves with it (`connectors/handover.py`) and a source
handed back is not polled before it is due.

The assignment (`source_assignor`) balances *sources*, not partitions: the group leader knows every
configured source (all runners read the same connectors file), weighs each partition by the number
of sources on it and gives the heaviest first to the least loaded member. Partitions without a
source are spread too (they cost nothing). A runner handed a source it does not know (connectors
files that differ during a rolling change) logs it and leaves it idle until the next rebalance.

Membership is static (`traffic_hub/kafka/membership.py`, as the normaliser's): a runner killed and
restarted under the same `TRAFFIC_HUB_INSTANCE` takes its sources back at once; a clean stop leaves the
group at once (its sources move in about a second); a runner killed and not restarted loses its
sources after `SESSION_TIMEOUT_MS`, which bounds the take-over time: 6 s is the broker's minimum
(`group.min.session.timeout.ms`), and there is no reason to wait longer for a runner (a process
frozen longer than that by a loaded machine simply rejoins and the sources come back).

Also here: `SavedStateReader`, the reader of the compacted `{prefix}.connector-state` topic where each
runner writes its sources' memory, so a new owner reads what the last one knew.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import logging
from collections import Counter
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import NewTopic
from aiokafka.cluster import ClusterMetadata
from aiokafka.coordinator.assignors.abstract import AbstractPartitionAssignor
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment, ConsumerProtocolMemberMetadata
from aiokafka.errors import KafkaError

from traffic_hub.errors import Unavailable
from traffic_hub.kafka.admin import MIN_ISR, _create
from traffic_hub.kafka.membership import Fencing, SharedInstanceName, leave_and_stop
from traffic_hub.kafka.starting import start_whole, started_admin, stop_quietly
from traffic_hub.lifecycle import Service

log = logging.getLogger(__name__)

SOURCE_PARTITIONS = 64  # fixed when the topic is created; more sources than this share partitions (still balanced)
SESSION_TIMEOUT_MS = 6000  # the broker's minimum: a dead runner's sources move after this (see the module doc)
HEARTBEAT_INTERVAL_MS = 1000
REBALANCE_TIMEOUT_MS = 30000  # members have this long to revoke (a revoke takes at most the runner's grace)


@dataclass(frozen=True, slots=True)
class LeaseTopics:
    """The names the shared connector runners use (beside `traffic_hub.topics.Topics`, same prefix)."""

    prefix: str = "traffic"

    @property
    def sources(self) -> str:
        """Empty; its partitions stand for the sources, the group's assignment of them is the lease."""
        return f"{self.prefix}.connector-sources"

    @property
    def state(self) -> str:
        """Compacted, keyed by source: each source's memory (`connectors/handover.py`)."""
        return f"{self.prefix}.connector-state"

    @property
    def group(self) -> str:
        return f"{self.prefix}.connectors"


class Holder(Protocol):
    """What the leases drive: the connector runner (`connectors.runner.ConnectorRunner`)."""

    async def acquire(self, names: Sequence[str]) -> None: ...

    async def release(self, names: Sequence[str]) -> None: ...


def partition_of(name: str, partitions: int) -> int:
    """The partition standing for source `name` (stable across processes and versions)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") % partitions


def balance(members: Sequence[str], partitions: Sequence[int], weights: Mapping[int, int]) -> dict[str, list[int]]:
    """Partitions per member: weighted ones heaviest first to the least loaded, then the empty ones evenly."""
    plan: dict[str, list[int]] = {member: [] for member in members}
    if not members:
        return plan
    load = dict.fromkeys(members, 0)
    order = {member: index for index, member in enumerate(members)}
    for partition in sorted((p for p in partitions if weights.get(p)), key=lambda p: (-weights[p], p)):
        member = min(members, key=lambda m: (load[m], len(plan[m]), order[m]))
        plan[member].append(partition)
        load[member] += weights[partition]
    for partition in sorted(p for p in partitions if not weights.get(p)):
        member = min(members, key=lambda m: (len(plan[m]), order[m]))
        plan[member].append(partition)
    return plan


class _SourceAssignor(AbstractPartitionAssignor):  # type: ignore[misc]
    """Balances sources over the members (see the module doc); `sources` is set per runner."""

    name = "traffic-hub-sources"
    version = 0
    sources: tuple[str, ...] = ()

    @classmethod
    def metadata(cls, topics: Iterable[str]) -> ConsumerProtocolMemberMetadata:
        return ConsumerProtocolMemberMetadata(cls.version, list(topics), b"")

    @classmethod
    def on_assignment(cls, assignment: ConsumerProtocolMemberAssignment) -> None:
        return None

    @classmethod
    def assign(
        cls, cluster: ClusterMetadata, members: Mapping[str, ConsumerProtocolMemberMetadata]
    ) -> dict[str, ConsumerProtocolMemberAssignment]:
        topics = sorted({topic for metadata in members.values() for topic in metadata.subscription})
        plans: dict[str, list[tuple[str, list[int]]]] = {member: [] for member in members}
        for topic in topics:
            partitions = sorted(cluster.partitions_for_topic(topic) or ())
            if not partitions:
                log.warning("connector leases: no partitions known for %s", topic)
                continue
            weights = Counter(partition_of(name, len(partitions)) for name in cls.sources)
            subscribed = sorted(m for m, metadata in members.items() if topic in metadata.subscription)
            for member, owned in balance(subscribed, partitions, weights).items():
                plans[member].append((topic, sorted(owned)))
        return {member: ConsumerProtocolMemberAssignment(cls.version, plan, b"") for member, plan in plans.items()}


def source_assignor(names: Sequence[str]) -> type[AbstractPartitionAssignor]:
    """The assignor class of a runner configured with `names` (aiokafka takes classes)."""
    return type("SourceAssignor", (_SourceAssignor,), {"sources": tuple(sorted(names))})


def lease_topic_specs(topics: LeaseTopics, replication: int, min_insync: int) -> list[NewTopic]:
    isr = {MIN_ISR: str(min_insync)}
    empty = {"cleanup.policy": "delete", "retention.ms": str(3600 * 1000)} | isr
    compact = {
        "cleanup.policy": "compact",
        "min.compaction.lag.ms": "60000",
        "segment.ms": str(3600 * 1000),  # old states are compacted away within hours, not a week
        "min.cleanable.dirty.ratio": "0.2",
    } | isr
    return [
        NewTopic(topics.sources, num_partitions=SOURCE_PARTITIONS, replication_factor=replication, topic_configs=empty),
        NewTopic(topics.state, num_partitions=1, replication_factor=replication, topic_configs=compact),
    ]


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, leases: SourceLeases) -> None:
        self._leases = leases

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        await self._leases.revoked(revoked)

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        await self._leases.assigned(assigned)


class SourceLeases(Service):
    """This runner's membership of the connectors' group; hands the sources it is assigned to `holder`."""

    def __init__(
        self,
        bootstrap_servers: str,
        topics: LeaseTopics,
        holder: Holder,
        names: Sequence[str],
        instance: str,
        *,
        replication: int = 1,
        min_insync: int = 1,
        topics_ready: asyncio.Event | None = None,
    ) -> None:
        super().__init__()
        self._bootstrap = bootstrap_servers
        self._topics = topics
        self._holder = holder
        self._names = sorted(names)
        self._instance_id: str | None = instance
        self._client_id = f"{instance}-connector-leases"
        self._replication = replication
        self._min_insync = min_insync
        self.topics_ready = topics_ready or asyncio.Event()
        self._partitions = SOURCE_PARTITIONS
        self.held: set[str] = set()
        self._leaving = False

    def names_of(self, partitions: Iterable[TopicPartition]) -> list[str]:
        """The configured sources standing on `partitions`."""
        numbers = {tp.partition for tp in partitions if tp.topic == self._topics.sources}
        return [name for name in self._names if partition_of(name, self._partitions) in numbers]

    async def revoked(self, partitions: Iterable[TopicPartition]) -> None:
        """Returns only once the runner polls none of these sources any more (the lease's safety)."""
        names = self.names_of(partitions)
        await self._holder.release(names)
        self.held.difference_update(names)

    async def assigned(self, partitions: Iterable[TopicPartition]) -> None:
        if self._leaving:  # a rejoin while the consumer stops (our LeaveGroup not sent yet): take nothing
            return
        names = self.names_of(partitions)
        self.held.update(names)
        await self._holder.acquire(names)
        log.info("connector leases: this runner holds %d source(s): %s", len(names), ", ".join(names) or "none")

    async def _release_all(self) -> None:
        held, self.held = sorted(self.held), set()
        if held:
            await self._holder.release(held)

    def _consumer(self) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            client_id=self._client_id,
            group_id=self._topics.group,
            group_instance_id=self._instance_id,
            enable_auto_commit=False,
            auto_offset_reset="latest",
            partition_assignment_strategy=(source_assignor(self._names),),
            session_timeout_ms=SESSION_TIMEOUT_MS,
            heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS,
            rebalance_timeout_ms=REBALANCE_TIMEOUT_MS,
            request_timeout_ms=15000,
        )

    async def _set_up_topics(self) -> None:
        delay = 0.2
        while True:
            try:
                await _create(self._bootstrap, lease_topic_specs(self._topics, self._replication, self._min_insync))
                break
            except (KafkaError, OSError) as exc:
                log.warning("connector leases: topic set-up failed (%s), retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        self.topics_ready.set()

    async def _consume(self) -> None:
        consumer = self._consumer()
        fencing = Fencing()
        try:
            await start_whole(consumer.start(), 15)
            found = await consumer._client.fetch_all_metadata()
            self._partitions = len(found.partitions_for_topic(self._topics.sources) or ()) or SOURCE_PARTITIONS
            consumer.subscribe([self._topics.sources], listener=_Listener(self))
            while True:  # nothing is written to the topic: this keeps the member polling (max.poll.interval)
                await consumer.getmany(timeout_ms=500)
                if self._instance_id is not None:
                    fencing.check(consumer)
        finally:
            self._leaving = True  # leave_and_stop may rejoin (a rebalance in flight) before it leaves
            await self._release_all()  # before leaving: nobody else gets them while we still poll
            await leave_and_stop(consumer)
            self._leaving = False

    async def run(self) -> None:
        await self._set_up_topics()
        delay = 0.2
        while True:
            try:
                await self._consume()
            except SharedInstanceName:
                log.error(
                    "connector leases: another live process uses the instance name %r (TRAFFIC_HUB_INSTANCE must "
                    "be unique per process); carrying on as a dynamic group member, without fast restarts",
                    self._instance_id,
                )
                self._instance_id = None
            except (KafkaError, OSError, TimeoutError) as exc:
                log.warning("connector leases: %r; rejoining in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    def tasks(self) -> dict[str, Coroutine[Any, Any, None]]:
        return {"connector-leases": self.run()}


class SavedStateReader(Service):
    """Follows the compacted state topic; `snapshot()` answers once it has read up to the end offset of
    the moment it was asked, so a new owner sees every state its predecessor had acknowledged."""

    def __init__(
        self,
        bootstrap_servers: str,
        topic: str,
        client_id: str,
        gate: asyncio.Event | None = None,
        wait_for_topic_s: float | None = None,
        keep: Callable[[str], bool] | None = None,
    ) -> None:
        super().__init__()
        self._bootstrap = bootstrap_servers
        self._topic = topic
        self._client_id = client_id
        self._gate = gate
        # an API replica reads the topic only once some runner made it (never creates it: most hubs run
        # no shared runner, and a broker's auto-creation would make it without compaction)
        self._wait_for_topic_s = wait_for_topic_s
        self._keep = keep  # the keys worth holding (an API replica keeps the statuses, not the memories)
        self._values: dict[str, bytes] = {}
        self._position = 0
        self._asked: list[asyncio.Future[None]] = []

    def values(self) -> Mapping[str, bytes]:
        """What was read so far (no waiting): for status pages."""
        return self._values

    async def snapshot(self) -> Mapping[str, bytes]:
        if not self.running:
            raise Unavailable("the connector state reader is not running", retry_after_s=1)
        answered: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._asked.append(answered)
        await answered
        return dict(self._values)

    def _consumer(self) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            client_id=self._client_id,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=50,
            max_partition_fetch_bytes=4 * 1024 * 1024,
            request_timeout_ms=10000,
        )

    async def _follow(self, consumer: AIOKafkaConsumer) -> None:
        tp = TopicPartition(self._topic, 0)
        consumer.assign([tp])
        consumer.seek(tp, self._position)
        waiting: list[tuple[int, asyncio.Future[None]]] = []
        while True:
            if self._asked:
                asked, self._asked = self._asked, []
                end = (await consumer.end_offsets([tp]))[tp]
                waiting += [(end, future) for future in asked]
            waiting = [(end, future) for end, future in waiting if not _answer(future, end, self._position)]
            batches = await consumer.getmany(tp, timeout_ms=100, max_records=5000)
            for record in batches.get(tp, []):
                key = record.key.decode("utf-8", "replace") if record.key else ""
                if self._keep is not None and not self._keep(key):
                    continue
                if record.value is None:
                    self._values.pop(key, None)
                else:
                    self._values[key] = record.value
            self._position = await consumer.position(tp)

    async def run(self) -> None:
        if self._gate is not None:
            await self._gate.wait()
        if self._wait_for_topic_s is not None:
            await self._topic_made(self._wait_for_topic_s)
        delay = 0.2
        while True:
            consumer = self._consumer()
            try:
                await start_whole(consumer.start(), 15)
                delay = 0.2
                await self._follow(consumer)
            except (KafkaError, OSError, TimeoutError) as exc:
                log.warning("%s reader: %r; reconnecting in %.1fs", self._topic, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            finally:
                await stop_quietly(consumer.stop(), 3)

    async def _topic_made(self, every_s: float) -> None:
        """Returns once the topic exists (checked every `every_s`)."""
        for _ in itertools.count():
            if await _exists(self._bootstrap, self._topic):
                return
            await asyncio.sleep(every_s)

    def tasks(self) -> dict[str, Coroutine[Any, Any, None]]:
        return {f"reader-{self._topic}": self.run()}


async def _exists(bootstrap_servers: str, topic: str) -> bool:
    try:
        async with asyncio.timeout(10), started_admin(bootstrap_servers, 5) as admin:
            return topic in set(await admin.list_topics())
    except (KafkaError, OSError, TimeoutError):
        return False


def _answer(future: asyncio.Future[None], end: int, position: int) -> bool:
    """Resolve `future` when the reader has reached `end`; True when it needs no more waiting."""
    if future.done():
        return True
    if position >= end:
        future.set_result(None)
        return True
    return False
