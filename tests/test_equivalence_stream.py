"""The premise of the normaliser equivalence test: within a phase, the order of arrival changes no event.

`tests/faults/test_normaliser_equivalence.py` compares 1 and 3 normalisers; the partitions of the
reports topic interleave differently in each run, so its stream must give the same events, ids aside,
whatever the interleaving of keys within a phase (one key's own reports keep their order, as Kafka
keeps them). Checked here in-process, over random interleavings and batch cuts.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from tests.faults.equivalence_stream import Item, Phase, canonical, last_values, phases
from tests.test_conflation_order import PLACER, _network
from traffic_hub.model import Event
from traffic_hub.normaliser.pipeline import Pipeline
from traffic_hub.topics import Topics

NOW = datetime.now(UTC)
STREAM = phases(_network(), NOW)


def interleaved(phase: Phase, rng: random.Random) -> list[Item]:
    by_key: dict[str, list[Item]] = {}
    for item in phase:
        by_key.setdefault(item.key, []).append(item)
    order = [key for key, items in by_key.items() for _ in items]
    rng.shuffle(order)
    return [by_key[key].pop(0) for key in order]


def run(seed: int | None) -> dict[str, Event]:
    rng = random.Random(seed)
    pipeline = Pipeline(Topics("t"), PLACER, clock=lambda: NOW)
    written = []
    for phase in STREAM:
        items = phase if seed is None else interleaved(phase, rng)
        cut = rng.randrange(1, len(items)) if len(items) > 1 else 1
        for batch in (items[:cut], items[cut:]):
            for record in pipeline.process_many([(i.key, i.raw) for i in batch]):
                if record.topic == "t.events":
                    written.append((record.key, record.value))
    return last_values(iter(written))


REFERENCE = canonical(run(None))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_stream_gives_the_same_events_in_any_interleaving_of_its_keys(seed: int) -> None:
    assert canonical(run(seed)) == REFERENCE


def test_the_stream_is_dense_in_near_duplicates() -> None:
    """24 incidents of four sources each: 8 taken in by closures, the others one event each (and the
    Lille samples' works on Rue Nationale, five sources in the team's closure)."""
    events = run(None)
    live = [e for e in events.values() if e.merged_into is None]
    merged = [e for e in events.values() if e.merged_into is not None]
    assert sum(1 for e in live if e.closure is not None and len(e.sources) == 5) == 8 + 1
    assert sum(1 for e in live if e.closure is None and len(e.sources) == 4) == 16
    assert len(merged) >= 8
    assert {e.lifecycle.value for e in live} == {"open", "ended"}
