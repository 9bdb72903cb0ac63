"""The local Kafka broker: its address, bench topics (created and deleted), and Kafka's own producer benchmark."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import subprocess
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from traffic_hub.kafka import ensure_topics
from traffic_hub.settings import bootstrap_servers
from traffic_hub.topics import Topics

ROOT = Path(__file__).resolve().parents[1]
KAFKA_LOCAL = ROOT / "ops" / "kafka" / "kafka-local.sh"
PERF_SUMMARY = re.compile(
    r"(?P<n>\d+) records sent, (?P<rps>[\d.]+) records/sec \((?P<mbps>[\d.]+) MB/sec\), "
    r"(?P<avg>[\d.]+) ms avg latency, (?P<max>[\d.]+) ms max latency, (?P<p50>\d+) ms 50th, "
    r"(?P<p95>\d+) ms 95th, (?P<p99>\d+) ms 99th"
)


def bootstrap() -> str:
    """The broker the benchmarks use (the hub's own setting, loopback by default)."""
    return bootstrap_servers()


def bench_prefix(name: str) -> str:
    """A fresh topic prefix, so that every run starts from empty topics."""
    return f"bench-{name}-{int(time.time())}-{os.getpid()}"


@contextlib.asynccontextmanager
async def bench_topics(prefix: str, partitions: int = 3) -> AsyncIterator[Topics]:
    """The hub's topics under `prefix`, created now and deleted on exit."""
    topics = Topics(prefix)
    async with asyncio.timeout(30):
        await ensure_topics(bootstrap(), topics, partitions, 1)
    try:
        yield topics
    finally:
        await delete_topics([topics.reports, topics.events, topics.deadletter])


@contextlib.contextmanager
def fresh_topics(name: str, partitions: int = 3) -> Iterator[Topics]:
    """`bench_topics` for synchronous callers (each step runs its own event loop)."""
    topics = Topics(bench_prefix(name))
    asyncio.run(asyncio.wait_for(ensure_topics(bootstrap(), topics, partitions, 1), 30))
    try:
        yield topics
    finally:
        asyncio.run(delete_topics([topics.reports, topics.events, topics.deadletter]))


async def delete_topics(names: list[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap(), client_id="loadtests-admin")
    try:
        async with asyncio.timeout(20):
            await admin.start()
            await admin.delete_topics(names)
    except (KafkaError, OSError, TimeoutError):
        pass  # a leftover bench topic is harmless; the broker's own retention removes it
    finally:
        with contextlib.suppress(KafkaError, OSError, TimeoutError):
            async with asyncio.timeout(5):
                await admin.close()


async def produce(topic: str, records: Iterable[tuple[bytes, bytes]]) -> int:
    """Write keyed records fast (acks=1: seeding, not measured); returns how many were written."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap(),
        client_id="loadtests-seed",
        acks=1,
        linger_ms=20,
        max_batch_size=512 * 1024,
        max_request_size=4 * 1024 * 1024,
    )
    async with asyncio.timeout(20):
        await producer.start()
    count = 0
    try:
        pending = []
        for key, value in records:
            pending.append(await producer.send(topic, value=value, key=key))
            count += 1
            if len(pending) >= 5000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        async with asyncio.timeout(10):
            await producer.stop()
    return count


@dataclass(frozen=True, slots=True)
class PerfResult:
    records: int
    records_per_s: float
    mb_per_s: float
    p50_ms: float
    p99_ms: float


def producer_performance(records: int, record_size: int, timeout_s: float = 180.0) -> PerfResult:
    """`kafka-local.sh perf N SIZE`: Kafka's ProducerPerformance, acks=all, idempotent, against the broker."""
    done = subprocess.run(
        ["bash", str(KAFKA_LOCAL), "perf", str(records), str(record_size)],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=True,
        cwd=ROOT,
    )
    match = PERF_SUMMARY.search(done.stdout)
    if match is None:
        raise RuntimeError(f"ProducerPerformance printed no summary: {done.stdout[-500:]!r} {done.stderr[-500:]!r}")
    return PerfResult(
        int(match["n"]), float(match["rps"]), float(match["mbps"]), float(match["p50"]), float(match["p99"])
    )
