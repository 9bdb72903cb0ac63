"""Issue 16's bench rows on the three-node cluster (`python -m loadtests --only cluster`).

Why these three figures: they are what a capacity plan for a cluster needs and what changes from one broker.
- Normalised reports/s with 1, 2 and 3 `traffic-hub normaliser` processes (reports topic of 3 partitions,
  replication factor 3): a backlog of Waze incident reports on streets of Lille (the connector's own
  parser makes them) is written first, then the normalisers are started and timed until every report's
  item is in an event of the events topic. CPU seconds of each normaliser are read from /proc: on a
  2-core machine two busy normalisers already take every core, so the third cannot add throughput here.
- POST → closure in every feed, one at a time, with a whole hub (`traffic-hub run`) on the cluster and on
  the single broker: what replication adds to the 2 s promise.
- The hub's own Publisher (acks=all, idempotent) writing one record at a time to a topic of replication
  factor 3 / min ISR 2, and to one of replication factor 1, on the same cluster: the cost of a second copy
  before the acknowledgement.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import statistics
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from connectors.base import ParseContext
from connectors.fetch import FetchResult, Validators
from connectors.registry import parser_for
from connectors.runner import CHUNK, Memory, plan_cycle
from geo.network import RoadNetwork
from loadtests import closures_load
from loadtests.broker import bootstrap as single_bootstrap
from loadtests.chaos import delete_topics
from loadtests.cluster import Cluster
from loadtests.eventgen import streets
from loadtests.feedwatch import feed_paths
from loadtests.hubproc import Hub, principals_toml
from loadtests.report import Row
from loadtests.roles import Deployment, RoleProcess
from traffic_hub.kafka import BrokerProbe, Publisher, Record, ensure_topics
from traffic_hub.topics import Topics

SOURCE_ID = re.compile(rb'"source_id":"(nb-[0-9a-z-]+)"')
DEADLINE_S = 600.0


@dataclass(frozen=True, slots=True)
class Throughput:
    normalisers: int
    reports: int
    seconds: float
    cpu_s: list[float]  # per normaliser, during the timed window

    @property
    def per_s(self) -> float:
        return self.reports / self.seconds


@dataclass(frozen=True, slots=True)
class Latency:
    samples: int
    p50_ms: float
    p99_ms: float


def latency(values_ms: list[float]) -> Latency:
    ordered = sorted(values_ms)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return Latency(len(ordered), statistics.median(ordered), p99)


def waze_backlog(count: int, tag: str) -> bytes:
    """A Waze partner feed of `count` hazards, one per street of Lille (distinct places: few merges)."""
    pool = [s for s in streets(RoadNetwork.default()) if s.commune == "59350"]
    now_ms = int(time.time() * 1000)
    alerts = []
    for i in range(count):
        street = pool[(i * 7) % len(pool)]
        lon, lat = street.coordinates[len(street.coordinates) // 2]
        alerts.append({
            "uuid": f"nb-{tag}-{i}", "type": "HAZARD", "subtype": "HAZARD_ON_ROAD_POT_HOLE", "street": street.name,
            "city": "Lille", "country": "FR", "location": {"x": lon, "y": lat}, "pubMillis": now_ms - 60_000,
            "reliability": 6, "confidence": 1, "reportRating": 0, "magvar": 0, "roadType": 2,
        })
    return orjson.dumps({"alerts": alerts, "jams": [], "startTimeMillis": now_ms - 60_000, "endTimeMillis": now_ms})


async def publisher_ready(publisher: Publisher, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not publisher.ready:
        if time.monotonic() > deadline:
            raise TimeoutError("the publisher did not start")
        await asyncio.sleep(0.05)  # the Publisher exposes no event to wait on


async def write_backlog(bootstrap: str, topics: Topics, count: int, tag: str) -> int:
    """The incident reports of one connector cycle over `count` hazards, written to the reports topic."""
    body = waze_backlog(count, tag)
    result = FetchResult(200, body, Validators(etag=f'"{tag}"'), "application/json", 0.0)
    ctx = ParseContext(source="bench-waze", received_at=datetime.now(UTC))
    plan = await asyncio.to_thread(plan_cycle, parser_for("waze-partner-feed"), result, ctx, Memory(), topics,
                                   "https://example.invalid/waze")
    async with BrokerProbe(bootstrap, 0.5) as probe, Publisher(bootstrap, probe, 30.0, f"{tag}-backlog") as publisher:
        await publisher_ready(publisher)
        for at in range(0, len(plan.records), CHUNK):
            await publisher.send_many(plan.records[at : at + CHUNK])
    return plan.incidents


async def group_members(bootstrap: str, prefix: str) -> int:
    """Members of the smallest consumer group of this deployment (0 while none is formed)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="bench-groups")
    try:
        async with asyncio.timeout(30):
            await admin.start()
            names = [g[0] for g in await admin.list_consumer_groups() if str(g[0]).startswith(f"{prefix}.")]
            if not names:
                return 0
            described = await admin.describe_consumer_groups(names)
        counts = [len(group[5]) if group[2] == "Stable" else 0 for response in described for group in response.groups]
        return min(counts, default=0)
    except (KafkaError, OSError, TimeoutError):
        return 0
    finally:
        with contextlib.suppress(KafkaError, OSError, TimeoutError):
            async with asyncio.timeout(5):
                await admin.close()


async def until_all_normalised(bootstrap: str, topic: str, wanted: int, deadline_s: float) -> None:
    """Read the events topic until `wanted` distinct bench items are in its events."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, client_id="bench-events")
    async with asyncio.timeout(60):
        await consumer.start()
    seen: set[bytes] = set()
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or {0, 1, 2})]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        async with asyncio.timeout(deadline_s):
            while len(seen) < wanted:
                for records in (await consumer.getmany(*partitions, timeout_ms=200)).values():
                    for record in records:
                        seen.update(SOURCE_ID.findall(record.value or b""))
    finally:
        async with asyncio.timeout(10):
            await consumer.stop()


async def normaliser_throughput(cluster: Cluster, workdir: Path, count: int, normalisers: int) -> Throughput:
    """`normalisers` processes working off a backlog of `count` incident reports on the cluster."""
    prefix = f"bench-norm{normalisers}-{int(time.time())}-{os.getpid()}"
    topics = Topics(prefix)
    auth = workdir / "principals.toml"
    auth.write_text(principals_toml(), encoding="utf-8")
    deployment = Deployment(cluster.bootstrap, prefix, auth, workdir, "http://127.0.0.1:8000")
    async with asyncio.timeout(120):
        await ensure_topics(cluster.bootstrap, topics, 3, 3, 2)
    processes = [RoleProcess(deployment, "normaliser", f"norm{normalisers}-{i + 1}") for i in range(normalisers)]
    try:
        # a warm-up item first: the normalisers have joined, loaded the network and placed a report
        await write_backlog(cluster.bootstrap, topics, 3, f"{prefix}-warm")
        for process in processes:
            process.start()
        deadline = time.monotonic() + DEADLINE_S
        while await group_members(cluster.bootstrap, prefix) < normalisers:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{normalisers} normalisers never formed a stable group")
            for process in processes:
                await asyncio.to_thread(process.ready)  # raises if one died
            await asyncio.sleep(0.5)
        await until_all_normalised(cluster.bootstrap, topics.events, 3, DEADLINE_S)
        cpu_before = [p.cpu_s() for p in processes]
        started = time.monotonic()
        written = await write_backlog(cluster.bootstrap, topics, count, prefix)
        await until_all_normalised(cluster.bootstrap, topics.events, 3 + written, DEADLINE_S)
        seconds = time.monotonic() - started
        cpu = [p.cpu_s() - before for p, before in zip(processes, cpu_before, strict=True)]
        return Throughput(normalisers, written, seconds, cpu)
    finally:
        for process in processes:
            process.stop()
        await delete_topics(cluster.bootstrap, topics)


def hub_latency(bootstrap: str, replication: int, workdir: Path, samples: int) -> Latency:
    """POST → closure in every feed, one at a time, on a whole hub (`traffic-hub run`) on `bootstrap`."""
    prefix = f"bench-visible-rf{replication}-{int(time.time())}-{os.getpid()}"
    auth = workdir / f"principals-rf{replication}.toml"
    auth.write_text(principals_toml(), encoding="utf-8")
    deployment = Deployment(bootstrap, prefix, auth, workdir, "http://127.0.0.1:8000", replication=replication)
    process = RoleProcess(deployment, "run", f"hub-rf{replication}")
    process.start()
    try:
        deadline = time.monotonic() + DEADLINE_S
        while not process.ready():
            if time.monotonic() > deadline:
                raise TimeoutError(f"the hub on {bootstrap} was not ready")
            time.sleep(0.3)  # synchronous code: polling a process's readiness, with a deadline
        assert process.process is not None
        hub = Hub(process.process, prefix, process.port, process.log)
        seen = closures_load.visible(hub, feed_paths(), samples)
        return Latency(seen.samples, seen.p50_ms, seen.p99_ms)
    finally:
        process.stop()
        asyncio.run(delete_topics(bootstrap, Topics(prefix)))


async def _write_latency(bootstrap: str, replication: int, samples: int) -> Latency:
    topic = f"bench-rf{replication}-{int(time.time())}-{os.getpid()}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="bench-rf")
    async with asyncio.timeout(60):
        await admin.start()
        configs = {"min.insync.replicas": str(min(2, replication))}
        await admin.create_topics([NewTopic(topic, 1, replication, topic_configs=configs)])
    out: list[float] = []
    try:
        async with BrokerProbe(bootstrap, 0.5) as probe, Publisher(bootstrap, probe, 30.0, topic) as publisher:
            await publisher_ready(publisher)
            for _ in range(5):  # metadata and connections first
                await publisher.send(Record(topic, b"warm", b"{}"))
            for i in range(samples):
                started = time.perf_counter()
                await publisher.send(Record(topic, str(i).encode(), b'{"bench": true}'))
                out.append((time.perf_counter() - started) * 1000)
    finally:
        with contextlib.suppress(KafkaError, OSError, TimeoutError):
            async with asyncio.timeout(30):
                await admin.delete_topics([topic])
                await admin.close()
    return latency(out)


def write_latency(bootstrap: str, replication: int, samples: int = 300) -> Latency:
    """One acks=all write at a time through the hub's Publisher to a topic of `replication` replicas."""
    return asyncio.run(_write_latency(bootstrap, replication, samples))


def rows(cluster: Cluster, workdir: Path, reports: int = 1500, samples: int = 30) -> list[Row]:
    """The cluster rows of `make bench`, appended as each is measured (a failure keeps the earlier ones)."""
    out: list[Row] = []
    one: Throughput | None = None
    for n in (1, 2, 3):
        t = asyncio.run(normaliser_throughput(cluster, workdir, reports, n))
        one = one or t
        load = os.getloadavg()[0]
        cpu = ", ".join(f"{c:.1f}" for c in t.cpu_s)
        out.append(Row(
            "16",
            f"normalised reports/s, {n} normaliser{'s' if n > 1 else ''} on the cluster (RF 3; backlog of "
            f"{t.reports:,} Waze incident reports, 3 partitions)",
            f"{t.per_s:,.0f} reports/s in {t.seconds:.1f} s; CPU s per normaliser: {cpu} "
            f"(sum {sum(t.cpu_s):.1f} of {t.seconds * (os.cpu_count() or 1):.0f} core-s); load {load:.1f}",
            f"1 normaliser: {one.per_s:,.0f}/s → {t.per_s / one.per_s:.2f}x",
            f"≤ {os.cpu_count()} cores: the machine caps the sum of CPU",
        ))
    single = hub_latency(single_bootstrap(), 1, workdir, samples)
    replicated = hub_latency(cluster.bootstrap, 3, workdir, samples)
    out.append(Row(
        "16",
        f"POST → closure in every feed, one at a time, whole hub on the cluster (RF 3, min ISR 2) "
        f"(n={replicated.samples})",
        f"p50 {replicated.p50_ms:.0f} ms, p99 {replicated.p99_ms:.0f} ms; load {os.getloadavg()[0]:.1f}",
        f"single broker (RF 1): p50 {single.p50_ms:.0f} ms, p99 {single.p99_ms:.0f} ms → "
        f"p99 {replicated.p99_ms / single.p99_ms:.2f}x",
        f"p99 < {closures_load.GOAL_VISIBLE_P99_MS:.0f} ms",
        "ok" if replicated.p99_ms < closures_load.GOAL_VISIBLE_P99_MS else "MISSED",
    ))
    rf1 = write_latency(cluster.bootstrap, 1)
    rf3 = write_latency(cluster.bootstrap, 3)
    out.append(Row(
        "16",
        f"one acks=all write through the hub's Publisher, RF 3 / min ISR 2 on the cluster (n={rf3.samples})",
        f"p50 {rf3.p50_ms:.1f} ms, p99 {rf3.p99_ms:.1f} ms; load {os.getloadavg()[0]:.1f}",
        f"RF 1 on the same cluster: p50 {rf1.p50_ms:.1f} ms, p99 {rf1.p99_ms:.1f} ms → "
        f"p50 {rf3.p50_ms / rf1.p50_ms:.2f}x, p99 {rf3.p99_ms / rf1.p99_ms:.2f}x",
    ))
    return out
