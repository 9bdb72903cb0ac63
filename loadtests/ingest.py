"""Issue 4: connector reports/s into Kafka, beside Kafka's own ProducerPerformance.

The NYC Waze partner feed (a real 1.7 MB payload) goes through what a connector cycle does:
`plan_cycle` (parse, FETCH report with the raw payload, one report per item) and the writes of
`ConnectorRunner._write` (chunks of `CHUNK` records through `Publisher.send_many`, acks=all,
idempotent). ProducerPerformance then sends the same number of records of the same mean size.
"""

from __future__ import annotations

import asyncio
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
GOAL = 0.25


@dataclass(frozen=True, slots=True)
class IngestResult:
    items: int  # incident reports the parser produced
    records: int  # records written per cycle (FETCH report + incidents + dead letters)
    mean_record_bytes: int
    parse_s: float  # plan_cycle, CPU-bound
    publish_rps: float  # records/s through Publisher alone (median of the rounds)
    cycle_rps: float  # records/s of parse + publish (median of the rounds)
    reference: PerfResult

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


async def _measure(rounds: int) -> tuple[Plan, float, list[float], list[float]]:
    async with (
        bench_topics(bench_prefix("ingest")) as topics,
        BrokerProbe(bootstrap(), 0.5) as probe,
        Publisher(bootstrap(), probe, 30.0, "loadtests-ingest") as publisher,
    ):
        await _until_ready(publisher)
        publish_s: list[float] = []
        cycle_s: list[float] = []
        for _ in range(rounds):
            plan, parse_s = await asyncio.to_thread(plan_sample, topics)
            sent = await _publish(publisher, plan.records)
            publish_s.append(sent)
            cycle_s.append(parse_s + sent)
    return plan, parse_s, publish_s, cycle_s


def run(rounds: int = 3) -> IngestResult:
    """Measure the connector path `rounds` times, then ProducerPerformance with the same records."""
    plan, parse_s, publish_s, cycle_s = asyncio.run(_measure(rounds))
    records = plan.records
    sizes = [len(r.value or b"") + len(r.key) for r in records]
    mean = round(statistics.mean(sizes))
    perf = [producer_performance(len(records), mean) for _ in range(rounds)]
    reference = sorted(perf, key=lambda p: p.records_per_s)[len(perf) // 2]
    return IngestResult(
        items=plan.incidents,
        records=len(records),
        mean_record_bytes=mean,
        parse_s=parse_s,
        publish_rps=len(records) / statistics.median(publish_s),
        cycle_rps=len(records) / statistics.median(cycle_s),
        reference=reference,
    )
