"""1 normaliser or 3, or 3 of which one is killed halfway: the same events (issue 16).

The same report stream (`equivalence_stream`: the recorded Lille samples, and a generated stream
dense in near-duplicates, each incident reported by four sources on four partitions of the reports
topic, with closures taking incidents in, ends and reopenings) goes through real `traffic-hub
normaliser` processes on run-scoped topics: one; three; three of which the one deciding is killed
with SIGKILL halfway through the densest phase (the others take over after its session expires).
Every run gives the same events, ids and times of writing aside, and those of the pipeline in
this process.

The concurrency is forced: every process has joined both consumer groups before a phase is written,
and the four reports of one incident sit on partitions that different processes hold, written at once.
With the single-stage design (each process deciding the reports of its own partitions) the three-process
run gives incidents twice and loses merges (checked when the two stages were written: see
docs/scaling.md). Phases end when both groups have committed every record and the events topic stopped
growing, with a deadline; never after a fixed sleep.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from tests.faults.equivalence_stream import PARTITIONS, SITES, SOURCES, Phase, canonical, last_values, phases
from tests.faults.hubprocess import ROOT
from tests.kafkarun import run_name
from tests.test_conflation_order import PLACER, _network
from traffic_hub.kafka import ensure_topics
from traffic_hub.model import Event
from traffic_hub.normaliser.pipeline import Pipeline
from traffic_hub.topics import Topics

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

QUIET_S = 180.0  # a phase's deadline: takes in a dead member's 10 s session and a loaded machine
START_S = 300.0  # every process joined both groups (starting is seconds of CPU each, minutes on a machine at load 30)


@dataclass
class Normaliser:
    name: str
    log: Path
    process: subprocess.Popen[bytes]

    def kill(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(10)


@contextmanager
def normalisers(bootstrap: str, prefix: str, count: int, directory: Path) -> Iterator[list[Normaliser]]:
    started = []
    env = {
        **os.environ,
        "TRAFFIC_HUB_TOPIC_PREFIX": prefix,
        "TRAFFIC_HUB_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
        "TRAFFIC_HUB_KAFKA__PARTITIONS": str(PARTITIONS),
        "TRAFFIC_HUB_DEMO": "false",
    }
    try:
        for i in range(count):
            name = f"{prefix}-n{i}"
            log = directory / f"{name}.log"
            with log.open("ab") as out:
                process = subprocess.Popen(
                    [sys.executable, "-m", "traffic_hub", "normaliser"],
                    env={**env, "TRAFFIC_HUB_INSTANCE": name},
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    cwd=ROOT,
                )
            started.append(Normaliser(name, log, process))
        yield started
    finally:
        alive = [n.process for n in started if n.process.poll() is None]
        for process in alive:  # all at once: each leaving would make the others rebalance
            process.terminate()
        for process in alive:
            process.wait(30)


class Broker:
    """What the test reads of Kafka: groups, lags, the events topic; and the reports it writes."""

    def __init__(self, bootstrap: str, topics: Topics) -> None:
        self.topics = topics
        self._bootstrap = bootstrap
        self._admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        self._consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        self._producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)

    async def __aenter__(self) -> Broker:
        async with asyncio.timeout(60):
            await ensure_topics(self._bootstrap, self.topics, PARTITIONS, 1)
            await self._admin.start()
            await self._consumer.start()
            await self._producer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._producer.stop()
        await self._consumer.stop()
        await self._admin.close()

    async def write(self, items: Phase) -> None:
        sent = [await self._producer.send(self.topics.reports, i.raw, key=i.key.encode(), partition=i.partition)
                for i in items]  # fmt: skip
        await asyncio.gather(*sent)

    async def members(self, group: str) -> int:
        """Members of a stable group (0 while it rebalances)."""
        (response,) = await self._admin.describe_consumer_groups([group])
        (described,) = response.to_object()["groups"]
        return len(described["members"]) if described["state"] == "Stable" else 0

    async def _ends(self, topic: str) -> dict[TopicPartition, int]:
        cluster = await self._consumer._client.fetch_all_metadata()
        partitions = cluster.partitions_for_topic(topic) or set()
        ends: dict[TopicPartition, int] = await self._consumer.end_offsets(
            [TopicPartition(topic, p) for p in partitions]
        )
        return ends

    async def lag(self, group: str, topic: str) -> int:
        committed = await self._admin.list_consumer_group_offsets(group)
        ends = await self._ends(topic)
        return sum(end - (committed[tp].offset if tp in committed else 0) for tp, end in ends.items())

    async def deciding(self) -> str | None:
        """The client id of the member holding the placed topic's partition (None while there is none)."""
        (response,) = await self._admin.describe_consumer_groups([self.topics.decision_group])
        (described,) = response.to_object()["groups"]
        placed = self.topics.placed.encode()
        holders = [m["client_id"] for m in described["members"] if placed in m["member_assignment"]]
        return holders[0] if described["state"] == "Stable" and len(holders) == 1 else None

    async def decided(self) -> int:
        committed = await self._admin.list_consumer_group_offsets(self.topics.decision_group)
        return sum(meta.offset for meta in committed.values())

    async def quiet(self) -> None:
        """Every report placed and decided, and the events topic no longer growing (deadline QUIET_S)."""
        deadline = time.monotonic() + QUIET_S
        before: dict[TopicPartition, int] | None = None
        while time.monotonic() < deadline:
            placing = await self.lag(self.topics.normaliser_group, self.topics.reports)
            deciding = await self.lag(self.topics.decision_group, self.topics.placed)
            events = await self._ends(self.topics.events)
            if placing == 0 and deciding == 0 and events == before:
                return
            before = events if placing == 0 and deciding == 0 else None
            await asyncio.sleep(0.2)
        raise AssertionError(f"not quiet within {QUIET_S}s")

    async def events(self) -> dict[str, Event]:
        ends = await self._ends(self.topics.events)
        reader = AIOKafkaConsumer(bootstrap_servers=self._bootstrap, enable_auto_commit=False)
        await reader.start()
        try:
            reader.assign(list(ends))
            await reader.seek_to_beginning(*ends)
            records: list[tuple[bytes, bytes | None]] = []
            while [tp for tp, end in ends.items() if await reader.position(tp) < end]:
                for batch in (await reader.getmany(timeout_ms=500)).values():
                    records.extend((r.key or b"", r.value) for r in batch)
        finally:
            await reader.stop()
        return last_values(iter(records))


async def joined(broker: Broker, count: int) -> None:
    """Every process is a member of both groups (so that the reports of one incident go to several)."""
    deadline = time.monotonic() + START_S
    topics = broker.topics
    while time.monotonic() < deadline:
        if (await broker.members(topics.normaliser_group), await broker.members(topics.decision_group)) == (
            count,
            count,
        ):
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"{count} normalisers not in both groups within {START_S}s")


async def run_stream(
    bootstrap: str, stream: list[Phase], count: int, directory: Path, kill: bool = False
) -> dict[str, Event]:
    topics = Topics(run_name("equivalence"))
    async with Broker(bootstrap, topics) as broker:
        with normalisers(bootstrap, topics.prefix, count, directory) as running:
            await joined(broker, count)
            for number, phase in enumerate(stream):
                if kill and number == 0:
                    await write_and_kill(broker, phase, running)
                else:
                    await broker.write(phase)
                await broker.quiet()
            return await broker.events()


async def write_and_kill(broker: Broker, phase: Phase, running: list[Normaliser]) -> None:
    """Half the phase, decided; then the rest in small pieces, the deciding process killed with SIGKILL
    as soon as some of the second half is decided (so: some reports decided, not all)."""
    half = len(phase) // 2
    await broker.write(phase[:half])
    await broker.quiet()
    mark = await broker.decided()
    holder = await broker.deciding()
    (owner,) = [n for n in running if holder and holder.startswith(n.name)] or running[:1]
    rest = phase[half:]
    pieces = [rest[i : i + 6] for i in range(0, len(rest), 6)]
    for number, piece in enumerate(pieces):
        await broker.write(piece)
        if owner.process.poll() is None and (await broker.decided() > mark or number == len(pieces) - 2):
            owner.kill()  # mid-stream: later pieces are written after the kill
    assert owner.process.poll() is not None


def in_process(stream: list[Phase]) -> dict[str, Event]:
    """The events of the one pipeline in this process, phase after phase."""
    pipeline = Pipeline(Topics("t"), PLACER)
    written = [
        (record.key, record.value)
        for phase in stream
        for record in pipeline.process_many([(i.key, i.raw) for i in phase])
        if record.topic == "t.events"
    ]
    return last_values(iter(written))


def check_sound(name: str, events: dict[str, Event]) -> None:
    """Each report is held by one live event, each generated incident is one event with its four sources,
    the road works went into their closures (and the comparison is not vacuous)."""
    holders = Counter(item for e in events.values() if e.merged_into is None for item in _items(e))
    twice = sorted(item for item, n in holders.items() if n > 1)
    assert not twice, f"{name}: {len(twice)} reports in two events (an incident created twice), e.g. {twice[:3]}"
    for site in range(SITES):
        ids = {(source, f"EQ-{site}-{source}") for source, _ in SOURCES}
        live = [e for e in events.values() if e.merged_into is None and ids & _items(e)]
        assert len(live) == 1, f"{name}: incident {site} is {len(live)} events: {[sorted(_items(e)) for e in live]}"
        assert ids <= _items(live[0]), f"{name}: incident {site} lost a merge: {sorted(ids - _items(live[0]))}"
        assert (live[0].closure is not None) == (site % 3 == 0)


def _items(event: Event) -> set[tuple[str, str]]:
    return {(s.source, s.source_id) for s in event.sources}


def test_one_normaliser_three_and_three_with_a_kill_give_the_same_events(kafka_bootstrap: str, tmp_path: Path) -> None:
    stream = phases(_network(), datetime.now(UTC))
    expected = canonical(in_process(stream))
    # the three runs at once, each on its own topics, in its own thread and event loop: starting seven
    # processes together takes about as long as starting three (each mostly waits for the network)
    runs = {"one": (1, False), "three": (3, False), "three, one killed": (3, True)}
    with ThreadPoolExecutor(len(runs)) as pool:
        futures = {
            name: pool.submit(asyncio.run, run_stream(kafka_bootstrap, stream, count, tmp_path, kill))
            for name, (count, kill) in runs.items()
        }
        results = {name: future.result() for name, future in futures.items()}
    for name, events in results.items():
        check_sound(name, events)
        assert canonical(events) == expected, difference(name, canonical(events), expected)


def difference(name: str, got: list[str], expected: list[str]) -> str:
    extra, missing = Counter(got) - Counter(expected), Counter(expected) - Counter(got)
    first = next(iter(extra), "")[:600]
    counts = f"{extra.total()} unexpected, {missing.total()} missing"
    return f"{name}: {len(got)} events for {len(expected)}, {counts}: {first}"
