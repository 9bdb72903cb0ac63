"""On a three-broker cluster, losing any one broker loses no acknowledged write and stops writes only briefly.

The hub's topics get replication factor 3 and min.insync.replicas 2, so an acks=all write is on two
machines before the API answers 201. These tests SIGKILL the partition leader, then the active
controller, and check that: every write acknowledged before the kill is still readable; writes through the
hub's Publisher succeed again with the two remaining brokers (the window without writes is measured and
printed); the node rejoins when restarted. With dedicated controllers (the default), losing the active
controller loses no broker: the new controller fences none and every ISR stays whole. Deadlines are
generous (a loaded 2-core box); the figures are reported, not asserted.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from tests.cluster.conftest import Cluster
from tests.integration.hubs import running_hub, wait_until, write_principals
from tests.kafkarun import run_name
from traffic_hub.errors import Unavailable
from traffic_hub.kafka import BrokerProbe, Publisher, Record, ensure_topics
from traffic_hub.kafka.admin import Replication, read_replication
from traffic_hub.settings import Settings
from traffic_hub.topics import Topics

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

DEADLINE_S = 60.0  # far above the goal (5 s): a loaded box must not fail the test, the figure tells the truth


async def partition_state(bootstrap: str, topic: str, partition: int = 0) -> tuple[int, list[int]]:
    """(leader, ISR) of one partition, from the cluster's metadata."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    (state,) = [p for p in described["partitions"] if p["partition"] == partition]
    return int(state["leader"]), sorted(int(n) for n in state["isr"])


async def wait_for_state(
    bootstrap: str, topic: str, good: str, check: Callable[[int, list[int]], bool]
) -> tuple[int, list[int]]:
    """Poll the partition state until `check(leader, isr)` holds (fails after DEADLINE_S)."""
    started = time.monotonic()
    while True:
        try:
            leader, isr = await partition_state(bootstrap, topic)
            if check(leader, isr):
                return leader, isr
        except (OSError, ValueError):
            pass
        assert time.monotonic() - started < DEADLINE_S, f"partition never became {good}"
        await asyncio.sleep(0.2)


async def write_until_acknowledged(publisher: Publisher, record: Record, since: float) -> float:
    """Retry one keyed write (a retry is harmless) until acknowledged; seconds from `since` to the ack."""
    while True:
        try:
            await publisher.send(record)
            return time.monotonic() - since
        except Unavailable:
            assert time.monotonic() - since < DEADLINE_S, "no write acknowledged after the broker loss"
            await asyncio.sleep(0.05)


async def keys_in(bootstrap: str, topic: str) -> set[bytes]:
    """Every key in partition 0 of `topic`, read from the beginning to its end."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        end = (await consumer.end_offsets([tp]))[tp]
        keys: set[bytes] = set()
        async with asyncio.timeout(DEADLINE_S):
            while await consumer.position(tp) < end:
                for records in (await consumer.getmany(tp, timeout_ms=500)).values():
                    keys.update(r.key for r in records if r.key is not None)
        return keys
    finally:
        await consumer.stop()


class Writer:
    """The hub's own Publisher (idempotent, acks=all, bounded sends) on the cluster."""

    def __init__(self, cluster: Cluster, topic: str) -> None:
        self.cluster, self.topic = cluster, topic
        self.acknowledged: set[bytes] = set()

    async def write(self, publisher: Publisher, label: str, count: int) -> None:
        """Write `count` keyed records, each retried until acknowledged (a fresh topic's leaders may still move)."""
        for i in range(count):
            key = f"{label}-{i}".encode()
            await write_until_acknowledged(publisher, Record(self.topic, key, b'{"n": %d}' % i), time.monotonic())
            self.acknowledged.add(key)


async def new_controller(cluster: Cluster, old: str, since: float) -> tuple[str, float]:
    """Wait until another node leads the controller quorum; (its id, seconds since `since`)."""
    while (elected := await asyncio.to_thread(cluster.controller_if_elected)) in (old, None):
        assert time.monotonic() - since < DEADLINE_S, "no new controller elected"
        await asyncio.sleep(0.1)
    assert elected is not None
    return elected, time.monotonic() - since


@pytest.fixture
async def publisher(cluster: Cluster) -> AsyncIterator[Publisher]:
    async with (
        BrokerProbe(cluster.bootstrap, 0.5) as probe,
        Publisher(cluster.bootstrap, probe, 1.5, run_name("cluster-writer")) as publisher,
    ):
        started = time.monotonic()
        while not publisher.ready:
            assert time.monotonic() - started < DEADLINE_S, "the publisher never started"
            await asyncio.sleep(0.05)
        yield publisher


async def replicated_topics(cluster: Cluster, partitions: int) -> Topics:
    topics = Topics(run_name("cluster"))
    await asyncio.wait_for(ensure_topics(cluster.bootstrap, topics, partitions, 3, 2), DEADLINE_S)
    return topics


def test_a_hub_on_the_cluster_creates_its_topics_with_replication_3_and_min_isr_2(
    cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRAFFIC_HUB_KAFKA__BOOTSTRAP_SERVERS", cluster.bootstrap)
    monkeypatch.setenv("TRAFFIC_HUB_KAFKA__REPLICATION_FACTOR", "3")
    prefix = run_name("cluster-hub")
    settings = Settings(topic_prefix=prefix, instance=prefix, auth_file=write_principals(tmp_path))
    assert (settings.kafka.replication_factor, settings.kafka.min_insync_replicas) == (3, 2)
    with running_hub(settings) as client:
        wait_until(lambda: client.get("/readyz").json()["kafka.replication"] != "unknown", timeout=DEADLINE_S)
        detail = client.get("/readyz").json()["kafka.replication"]
    assert detail == "replication factor 3, min.insync.replicas 2"
    found = Replication()
    topics = Topics(prefix)
    asyncio.run(read_replication(cluster.bootstrap, [topics.reports, topics.events, topics.deadletter], found))
    assert (found.factor, found.min_insync) == (3, 2)


async def test_acks_all_writes_survive_a_kill_of_the_partition_leader(cluster: Cluster, publisher: Publisher) -> None:
    topics = await replicated_topics(cluster, partitions=1)
    writer = Writer(cluster, topics.reports)
    await writer.write(publisher, "before", 20)
    leader, isr = await partition_state(cluster.bootstrap, topics.reports)
    assert isr == [1, 2, 3]
    killed_at = time.monotonic()
    await asyncio.to_thread(cluster.kill, leader)  # a broker (with combined nodes, maybe the controller too)
    try:
        window = await write_until_acknowledged(publisher, Record(topics.reports, b"after-kill", b"{}"), killed_at)
        writer.acknowledged.add(b"after-kill")
        await writer.write(publisher, "two-nodes", 20)  # the two remaining nodes keep min ISR 2: writes go on
        new_leader, isr = await wait_for_state(
            cluster.bootstrap, topics.reports, "led without the killed node", lambda ld, isr: leader not in isr
        )
        assert new_leader != leader
        assert len(isr) == 2
        assert writer.acknowledged <= await keys_in(cluster.bootstrap, topics.reports)
    finally:
        rejoin = await asyncio.to_thread(cluster.start, leader)
    await wait_for_state(cluster.bootstrap, topics.reports, "fully in sync", lambda ld, isr: isr == [1, 2, 3])
    cluster.figures["partition leader killed: kill → first acknowledged write (hub Publisher, acks=all)"] = (
        f"{window:.2f} s"
    )
    cluster.figures["killed node restarted: make cluster-start → registered again"] = f"{rejoin:.1f} s"


async def test_the_cluster_keeps_serving_when_the_active_controller_is_killed(
    cluster: Cluster, publisher: Publisher
) -> None:
    topics = await replicated_topics(cluster, partitions=3)
    writer = Writer(cluster, topics.reports)
    await writer.write(publisher, "before", 10)
    controller = await asyncio.to_thread(cluster.controller)
    killed_at = time.monotonic()
    await asyncio.to_thread(cluster.kill, controller)
    try:
        window, (elected, election) = await asyncio.gather(
            write_until_acknowledged(publisher, Record(topics.reports, b"after-kill", b"{}"), killed_at),
            new_controller(cluster, controller, killed_at),
        )
        # Creating topics is a controller operation: the new controller serves it.
        await replicated_topics(cluster, partitions=1)
        await writer.write(publisher, "after-election", 10)
        if cluster.dedicated:
            # No broker was lost, so none is fenced: the new controller gave every broker a fresh session on
            # activation and each heartbeats it; every partition keeps its three in-sync replicas.
            assert await asyncio.to_thread(cluster.serving) == [1, 2, 3]
            for partition in range(3):
                _, isr = await partition_state(cluster.bootstrap, topics.reports, partition)
                assert isr == [1, 2, 3], f"partition {partition} lost an in-sync replica: {isr}"
        else:
            survivors = sorted({1, 2, 3} - {int(controller)})
            while await asyncio.to_thread(cluster.serving) != survivors:  # the killed node is fenced
                assert time.monotonic() - killed_at < DEADLINE_S, "the killed controller is still listed as a broker"
                await asyncio.sleep(0.2)
    finally:
        await asyncio.to_thread(cluster.start, controller)
    assert elected != controller
    cluster.figures["active controller killed: kill → first acknowledged write"] = f"{window:.2f} s"
    cluster.figures["active controller killed: kill → new controller seen"] = f"{election:.2f} s"
