"""A poll batch's closures are placed together: the records are those of one-by-one processing."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from geo.errors import GeoError
from geo.matching import MatchResult
from geo.network import RoadNetwork
from loadtests.bench_matching import closure_states, make_closures
from traffic_hub.model import ClosureState, Direction, Report, ReportKind
from traffic_hub.model.geometry import LineString
from traffic_hub.normaliser.pipeline import Pipeline
from traffic_hub.normaliser.placement import NetworkPlacer, Placement
from traffic_hub.publishing import Record
from traffic_hub.topics import Topics

RECEIVED = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def network() -> RoadNetwork:
    return RoadNetwork.default().warm()


def _closures(net: RoadNetwork) -> list[ClosureState]:
    closures = closure_states(make_closures(net, 24, seed=3))
    closures = [
        c.model_copy(update={"direction": Direction.ONE_DIRECTION}) if i % 3 == 0 else c for i, c in enumerate(closures)
    ]
    swapped = _redrawn(closures[1], "swapped", [[50.63, 3.05], [50.631, 3.051]])  # [lat, lon]: a GeoError
    off = _redrawn(closures[2], "off", [[3.0, 50.60], [3.001, 50.60]])  # on no road of the network
    return [*closures, swapped, off]


def _redrawn(closure: ClosureState, cid: str, coordinates: list[list[float]]) -> ClosureState:
    return closure.model_copy(update={"id": cid, "geometry": LineString(type="LineString", coordinates=coordinates)})


def _items(closures: list[ClosureState]) -> list[tuple[str, bytes]]:
    items = [
        (
            c.id,
            Report(key=c.id, kind=ReportKind.CLOSURE, source="bench", received_at=RECEIVED, closure=c)
            .model_dump_json()
            .encode(),
        )
        for c in closures
    ]
    items.insert(3, ("junk", b"not a report"))
    items.insert(
        7,
        ("fetch", Report(key="f", kind=ReportKind.FETCH, source="x", received_at=RECEIVED).model_dump_json().encode()),
    )
    items.append(items[0])  # the same closure report again, in the same batch: decided again, it writes nothing
    return items


def _comparable(records: list[Record]) -> list[tuple[str, bytes | None, object]]:
    """Records with a dead letter's time of writing left out (it is the wall clock)."""
    out: list[tuple[str, bytes | None, object]] = []
    for r in records:
        value: object = r.value
        if r.topic == "t.deadletter" and r.value is not None:
            value = {k: v for k, v in json.loads(r.value).items() if k != "at"}
        out.append((r.topic, r.key, value))
    return out


def _one_by_one(net: RoadNetwork, items: list[tuple[str, bytes]]) -> list[Record]:
    pipeline = Pipeline(Topics("t"), NetworkPlacer(net))
    return [record for key, raw in items for record in pipeline.process(key, raw)]


def test_a_batch_gives_the_records_of_one_by_one_processing(network: RoadNetwork) -> None:
    items = _items(_closures(network))
    expected = _one_by_one(network, items)
    got = Pipeline(Topics("t"), NetworkPlacer(network)).process_many(items)
    assert _comparable(got) == _comparable(expected)
    assert sum(1 for r in got if r.topic == "t.events") == len(items) - 3  # junk, fetch, the report again


class _BrokenBatch(NetworkPlacer):
    def place_closures(self, closures: Sequence[ClosureState]) -> list[Placement]:
        raise RuntimeError("batch placement broke")


def test_a_failing_batch_placement_falls_back_to_one_by_one(network: RoadNetwork) -> None:
    items = _items(_closures(network))
    got = Pipeline(Topics("t"), _BrokenBatch(network)).process_many(items)
    assert _comparable(got) == _comparable(_one_by_one(network, items))


class _FlakyOnce(NetworkPlacer):
    """Fails once while building the placement of one closure (as in the batch), then works."""

    def __init__(self, network: RoadNetwork, failing: str) -> None:
        super().__init__(network)
        self.failing: str | None = failing

    def place_closure(self, closure: ClosureState) -> Placement:
        self.failing = None
        return super().place_closure(closure)

    def _placed(self, closure: ClosureState, match: MatchResult | GeoError) -> Placement:
        if closure.id == self.failing:
            raise ValueError("transient")
        return super()._placed(closure, match)


def test_a_closure_failing_in_the_batch_is_placed_alone_and_the_others_kept(network: RoadNetwork) -> None:
    closures = _closures(network)
    placer = NetworkPlacer(network)
    expected = [placer.place_closure(c) for c in closures]
    flaky = _FlakyOnce(network, closures[5].id)
    assert flaky.place_closures(closures) == expected
    assert flaky.failing is None  # it was placed alone


class _Poison(NetworkPlacer):
    """Breaks on one closure, in the batch and alone: a report nobody foresaw."""

    def __init__(self, network: RoadNetwork, poison: str) -> None:
        super().__init__(network)
        self.poison = poison

    def _placed(self, closure: ClosureState, match: MatchResult | GeoError) -> Placement:
        if closure.id == self.poison:
            raise ZeroDivisionError("a bug")
        return super()._placed(closure, match)


@pytest.mark.parametrize("batched", [True, False])
def test_a_report_that_breaks_the_normaliser_is_dead_lettered_and_the_others_kept(
    network: RoadNetwork, batched: bool
) -> None:
    closures = _closures(network)
    items = _items(closures)
    poison = closures[4].id
    pipeline = Pipeline(Topics("t"), _Poison(network, poison))
    got = pipeline.process_many(items) if batched else [r for k, raw in items for r in pipeline.process(k, raw)]
    expected = [r for r in _one_by_one(network, items) if r.key != poison.encode()]
    assert _comparable([r for r in got if r.key != poison.encode()]) == _comparable(expected)
    dead = [json.loads(r.value or b"{}") for r in got if r.topic == "t.deadletter" and r.key == poison.encode()]
    assert len(dead) == 1
    assert "ZeroDivisionError('a bug')" in dead[0]["reason"]
    assert dead[0]["stage"] == "normaliser"
    assert not any(r.topic == "t.events" and r.key == poison.encode() for r in got)
