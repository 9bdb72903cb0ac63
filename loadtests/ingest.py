"""Issue 4: connector reports/s into Kafka, beside Kafka's own ProducerPerformance.

The NYC Waze partner feed (a real 1.7 MB payload) goes through what a connector cycle does:
`plan_cycle` (parse, FETCH report with the raw payload, one report per item) and the writes of
`ConnectorRunner._write` (chunks of `CHUNK` records through `Publisher.send_many`, acks=all,
idempotent). Both sides are measured at steady state: the connector path for enough cycles to
write at least `STEADY_RECORDS` records (the first cycle, which also fetches metadata, is left out),
and ProducerPerformance sending as many records (at least `STEADY_RECORDS`) of the same mean size: with
the sample's own count (3,537), the JVM's start-up and the producer's first requests dominated it and
made the connector look 1.5x faster than Kafka's own tool, while at 100,000 records it was 0.23-0.26x.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from connectors.base import ParseContext
from connectors.fetch import FetchResult, Validators
from connectors.registry import parser_for
from connectors.runner import CHUNK, Memory, Plan, plan_cycle
from loadtests.broker import PerfResult, bench_prefix, bench_topics, bootstrap, producer_performance
from traffic_hub.kafka import BrokerProbe, Publisher, Record
from traffic_hub.topics import Topics

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "tests" / "fixtures" / "sources" / "waze-partner-feed" / "nyc_partner-feed_2019-03-22T2138Z.json"
GOAL = 0.5
STEADY_RECORDS = 100_000
"""Records each side writes for a steady-state figure (ProducerPerformance reaches its plateau after a
few thousand records; 100,000 is well past it and takes a few seconds)."""


@dataclass(frozen=True, slots=True)
class IngestResult:
    items: int  # incident reports the parser produced
    records: int  # records written per cycle (FETCH report + incidents + dead letters)
    mean_record_bytes: int
    parse_s: float  # plan_cycle, CPU-bound
    publish_rps: float  # records/s through Publisher alone (median of the rounds)
    cycle_rps: float  # records/s of parse + publish (median of the rounds)
    reference: PerfResult
    cycles: int = 0  # connector cycles measured (after one warm-up cycle)
    load: str = ""  # load average at the end of the measurement

    @property
    def ratio(self) -> float:
        return self.cycle_rps / self.reference.records_per_s


def plan_sample(topics: Topics) -> tuple[Plan, float]:
    """One connector cycle's records for the sample payload, and the seconds it took to plan them."""
    body = SAMPLE.read_bytes()
    result = FetchResult(200, body, Validators(etag='"nyc"'), "application/json", 0.0)
    ctx = ParseContext(source="waze-nyc", received_at=datetime.now(UTC))
    started = time.perf_counter()
    plan = plan_cycle(parser_for("waze-partner-feed"), result, ctx, Memory(), topics, "https://example.invalid/feed")
    return plan, time.perf_counter() - started


async def _publish(publisher: Publisher, records: list[Record]) -> float:
    started = time.perf_counter()
    for at in range(0, len(records), CHUNK):
        await publisher.send_many(records[at : at + CHUNK])
    return time.perf_counter() - started


async def _until_ready(publisher: Publisher, timeout_s: float = 30.0) -> None:
    """The publisher starts its producer in the background; poll (bounded) until it has."""
    deadline = time.monotonic() + timeout_s
    while not publisher.ready:
        if time.monotonic() > deadline:
            raise TimeoutError("the publisher did not start")
        await asyncio.sleep(0.05)  # the Publisher exposes no event to wait on


async def _measure(cycles: int) -> tuple[Plan, float, float, float]:
    """Run `cycles` connector cycles back to back; (plan, parse s, publish s, cycle s) summed over all
    cycles but the first."""
    async with (
        bench_topics(bench_prefix("ingest")) as topics,
        BrokerProbe(bootstrap(), 0.5) as probe,
        Publisher(bootstrap(), probe, 30.0, "loadtests-ingest") as publisher,
    ):
        await _until_ready(publisher)
        parse_total = publish_total = cycle_total = 0.0
        for cycle in range(cycles + 1):
            started = time.perf_counter()
            plan, parse_s = await asyncio.to_thread(plan_sample, topics)
            sent = await _publish(publisher, plan.records)
            if cycle:
                parse_total += parse_s
                publish_total += sent
                cycle_total += time.perf_counter() - started
    return plan, parse_total, publish_total, cycle_total


def run(rounds: int = 3) -> IngestResult:
    """The connector path at steady state, then ProducerPerformance (`rounds` runs, the median) with as
    many records of the same mean size."""
    per_cycle = len(plan_sample(Topics("bench-size"))[0].records)
    cycles = max(rounds, -(-STEADY_RECORDS // per_cycle))
    plan, parse_s, publish_s, cycle_s = asyncio.run(_measure(cycles))
    records = plan.records
    sizes = [len(r.value or b"") + len(r.key) for r in records]
    mean = round(statistics.mean(sizes))
    total = cycles * len(records)
    perf = [producer_performance(total, mean) for _ in range(rounds)]
    reference = sorted(perf, key=lambda p: p.records_per_s)[len(perf) // 2]
    return IngestResult(
        items=plan.incidents,
        records=len(records),
        mean_record_bytes=mean,
        parse_s=parse_s / cycles,
        publish_rps=total / publish_s,
        cycle_rps=total / cycle_s,
        reference=reference,
        cycles=cycles,
        load=" ".join(f"{x:.2f}" for x in os.getloadavg()),
    )
