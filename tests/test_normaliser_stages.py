"""The normaliser's two stages give the events of one: placement (stage 1), then decision (stage 2).

Why: stage 1 runs in any number of processes and stage 2 in one, with the placed reports between them
on a topic (`traffic_hub.normaliser.placed`). The events must be byte for byte those of the single
pipeline, and a report decided again (a crash before a commit, a new decision owner, a report placed
twice) must write nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

from tests.connectors.sources import RECEIVED
from tests.test_conflation_order import PLACER, POLLS
from traffic_hub.model import IncidentReport, Normalised, Report
from traffic_hub.normaliser.pipeline import Pipeline
from traffic_hub.normaliser.placed import decode_placed, encode_placed
from traffic_hub.normaliser.placement import Placement
from traffic_hub.publishing import Record
from traffic_hub.topics import Topics

TOPICS = Topics("t")
STREAM = [item for sequence in POLLS for item in sequence]


def pipeline() -> Pipeline:
    return Pipeline(TOPICS, PLACER, clock=lambda: RECEIVED + timedelta(minutes=5))


def two_stages(decider: Pipeline, items: list[tuple[str, bytes]]) -> list[Record]:
    placed = pipeline().place_many(items)
    assert {r.topic for r in placed} <= {TOPICS.placed, TOPICS.deadletter}
    decisions = [(r.key.decode(), *decode_placed(r.value or b"")) for r in placed if r.topic == TOPICS.placed]
    return decider.decide_many(decisions)


def test_placement_then_decision_writes_the_records_of_the_single_pipeline() -> None:
    expected = pipeline().process_many(STREAM)
    got = two_stages(pipeline(), STREAM)
    assert [(r.topic, r.key, r.value) for r in got] == [(r.topic, r.key, r.value) for r in expected]
    assert sum(1 for r in got if r.topic == TOPICS.events) > 20


def test_the_stream_decided_again_writes_nothing() -> None:
    decider = pipeline()
    first = two_stages(decider, STREAM)
    assert first
    assert two_stages(decider, STREAM) == []


def test_an_earlier_report_of_an_item_after_a_later_one_writes_nothing() -> None:
    """A placement stage that crashed before committing places its last reports again, behind later ones."""
    decider = pipeline()
    two_stages(decider, STREAM)
    first_poll = [sequence[0] for sequence in POLLS if len(sequence) > 1]
    assert two_stages(decider, first_poll) == []


def test_a_placement_survives_its_record() -> None:
    raw = b'{"key": "k",\n "kind": "incident"}'  # a report's own newlines stay its own
    placement = PLACER.place_incident(next(_incidents()))
    assert decode_placed(encode_placed(raw, placement)) == (raw, placement)
    assert decode_placed(encode_placed(raw, None)) == (raw, None)


def test_a_header_this_version_cannot_read_leaves_the_placement_to_stage_2() -> None:
    raw = b'{"key": "k"}'
    assert decode_placed(b'{"v":2,"placement":{"new":"shape"}}\n' + raw) == (raw, None)
    assert decode_placed(b'{"v":1,"placement":{"normalised":1}}\n' + raw) == (raw, None)
    assert decode_placed(raw) == (raw, None)  # no header at all


def test_a_placed_record_over_the_limit_goes_without_its_placement() -> None:
    items = STREAM[:5]
    whole = pipeline().place_many(items)
    small = pipeline().place_many(items, max_bytes=min(r.size for r in whole) - 1)
    for before, after in zip(whole, small, strict=True):
        raw, placement = decode_placed(after.value or b"")
        assert placement is None
        assert raw == decode_placed(before.value or b"")[0]


def test_a_placement_is_equal_after_the_trip() -> None:
    bare = Placement(Normalised(matched=False, confidence=0.0, reason="no geometry"), [], ["no geometry"])
    assert decode_placed(encode_placed(b"{}", bare))[1] == bare


def _incidents() -> Iterator[IncidentReport]:
    for _, raw in STREAM:
        report = Report.model_validate_json(raw)
        if report.incident is not None:
            yield report.incident
