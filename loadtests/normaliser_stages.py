"""The normaliser's two stages measured apart: placements/s of stage 1, decisions/s of stage 2, per CPU.

Why: every merge decision of a hub is made by one process (docs/scaling.md, "Several normalisers:
one owner per merge"), while placement scales out. This says how much of the normaliser's CPU the
decisions are, and the ceiling of one decision owner (one thread of one core; the GIL keeps a
process's decisions on one core anyway).

Workloads: the recorded Lille samples (tests/fixtures/sources/lille, polled twice, with the team's
closure in two versions) and the equivalence test's generated stream (24 places, each incident told
by four sources, closures taking the works in, ends, reopenings), each repeated `--rounds` times
under fresh source ids, so that each round adds new events beside the earlier ones (the index grows
as it does in a day). CPU time (`time.process_time`) of `Pipeline.place_many` (stage 1) and of
decoding the placed records and `Pipeline.decide_many` (stage 2), in batches of a Kafka poll (500).

    .venv/bin/python -m loadtests.normaliser_stages [--rounds 20]
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from geo.network import RoadNetwork
from tests.connectors.sources import RECEIVED
from tests.faults.equivalence_stream import phases
from tests.test_conflation_order import POLLS
from traffic_hub.normaliser.pipeline import Pipeline
from traffic_hub.normaliser.placed import decode_placed
from traffic_hub.normaliser.placement import NetworkPlacer
from traffic_hub.topics import Topics

BATCH = 500
TOPICS = Topics("bench")


def renamed(raw: bytes, suffix: str) -> tuple[str, bytes]:
    """The report under fresh ids (its key, source id, closure id and reference end with `suffix`)."""
    report: dict[str, Any] = json.loads(raw)
    report["key"] = f"{report['key']}{suffix}"
    if report.get("incident"):
        report["incident"]["source_id"] = f"{report['incident']['source_id']}{suffix}"
    if report.get("closure"):
        report["closure"]["id"] = f"{report['closure']['id']}{suffix}"
        report["closure"]["reference"] = f"{report['closure']['reference']}{suffix}"[:64]
    return report["key"], json.dumps(report).encode()


def rounds(items: list[tuple[str, bytes]], count: int) -> list[tuple[str, bytes]]:
    return [renamed(raw, f"-r{n}") for n in range(count) for _, raw in items]


def batches(items: list[tuple[str, bytes]]) -> Iterator[list[tuple[str, bytes]]]:
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, BATCH)):
        yield batch


def measure(network: RoadNetwork, items: list[tuple[str, bytes]], now: datetime) -> dict[str, float]:
    placer = NetworkPlacer(network)
    placing, deciding = Pipeline(TOPICS, placer), Pipeline(TOPICS, placer, clock=lambda: now)
    place_s = decide_s = 0.0
    decided = events = 0
    for batch in batches(items):
        started = time.process_time()
        placed = placing.place_many(batch)
        place_s += time.process_time() - started
        started = time.process_time()
        decisions = [(r.key.decode(), *decode_placed(r.value or b"")) for r in placed if r.topic == TOPICS.placed]
        written = deciding.decide_many(decisions)
        decide_s += time.process_time() - started
        decided += len(decisions)
        events += sum(1 for r in written if r.topic == TOPICS.events)
    return {
        "reports": len(items),
        "events written": events,
        "events in the index": len(deciding.index),
        "stage 1 placements/s": len(items) / place_s,
        "stage 2 decisions/s": decided / decide_s,
        "stage 2 share of CPU %": 100 * decide_s / (place_s + decide_s),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    network = RoadNetwork.default().warm()
    lille = [item for sequence in POLLS for item in sequence]
    now = datetime.now(UTC)
    generated = [(i.key, i.raw) for phase in phases(network, now) for i in phase]
    # the samples are written around RECEIVED: decided as of five minutes later, as the order test does
    workloads = (("Lille samples", lille, RECEIVED + timedelta(minutes=5)), ("generated stream", generated, now))
    for name, items, moment in workloads:
        figures = measure(network, rounds(items, args.rounds), moment)
        print(f"{name} × {args.rounds}: " + ", ".join(f"{k} {v:,.0f}" for k, v in figures.items()))


if __name__ == "__main__":
    main()
