"""The conflation index keeps bytes and a little geometry per event: its answers are those of the events."""

from __future__ import annotations

from datetime import datetime, timedelta

from aiokafka import ConsumerRecord
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.feeds import events as ev
from traffic_hub.model import Event, EventType, IncidentReport, Lifecycle, Normalised, Validity
from traffic_hub.model.geometry import LineString, Point, lonlat_pairs
from traffic_hub.normaliser.conflation import EventIndex, Match, _same_incident
from traffic_hub.normaliser.service import _index_changes
from traffic_hub.view import EventView, encode

NOW = ev.WINTER_NOW


def _reference(index: EventIndex, report: IncidentReport, placement: Normalised, now: datetime) -> Match | None:
    """`EventIndex.find` as it was: every event of the nearby cells, decoded, through `_same_incident`."""
    points = lonlat_pairs(report.geometry)
    best: tuple[float, Match] | None = None
    for event in index.near(points):
        reason = _same_incident(event, report, placement, points, now)
        if reason is not None and (best is None or reason[0] < best[0]):
            best = (reason[0], Match(event, reason[1]))
    return best[1] if best else None


@st.composite
def _indexed_events(draw: st.DrawFn) -> Event:
    event = draw(ev.mel_varied_events(NOW))
    return event.model_copy(update={"lifecycle": draw(st.sampled_from(Lifecycle))})


@st.composite
def _reports_near(draw: st.DrawFn, events: list[Event]) -> tuple[IncidentReport, Normalised]:
    """A report on or a few metres off one of `events`' vertices, of any type and period."""
    target = draw(st.sampled_from(events))
    lon, lat = draw(st.sampled_from(lonlat_pairs(target.geometry)))
    dx, dy = draw(st.floats(-0.0012, 0.0012)), draw(st.floats(-0.0008, 0.0008))
    geometry: Point | LineString = Point(type="Point", coordinates=[lon + dx, lat + dy])
    if draw(st.booleans()):
        geometry = LineString(type="LineString", coordinates=[[lon + dx, lat + dy], [lon + 2 * dx + 1e-4, lat]])
    start = NOW + timedelta(hours=draw(st.integers(-24 * 40, 24 * 40)))
    end = draw(st.none() | st.integers(1, 24 * 60).map(lambda h: start + timedelta(hours=h)))
    report = IncidentReport(
        source=draw(st.sampled_from([ev.WAZE_SOURCE, ev.DATEX2_CONNECTOR, "bison-fute"])),
        kind=draw(st.sampled_from(["waze-alert", "datex2-record"])),
        source_id="r-1",
        type=draw(st.sampled_from(EventType)),
        description="report",
        geometry=geometry,
        street=draw(st.none() | st.sampled_from(ev.STREET_NAMES)),
        validity=Validity(starts_at=start, ends_at=end),
    )
    edges = draw(st.lists(st.sampled_from(["e1", "e2"]), max_size=2))
    placement = Normalised(matched=True, street=report.street, edge_ids=edges, confidence=1.0)
    return report, placement


def _assert_find_agrees(data: st.DataObject, events: list[Event]) -> None:
    """`find` over an index of `events` answers as the decode-everything reference, for reports nearby."""
    index = EventIndex()
    for event in events:
        index.put(event.id, event)
    for _ in range(5):
        report, placement = data.draw(_reports_near(events))
        assert index.find(report, placement, NOW) == _reference(index, report, placement, NOW)


@settings(max_examples=60, deadline=None)
@given(st.data(), st.lists(_indexed_events(), min_size=1, max_size=8, unique_by=lambda e: e.id))
def test_find_answers_as_every_nearby_event_would(data: st.DataObject, events: list[Event]) -> None:
    _assert_find_agrees(data, events)


@st.composite
def _crowd(draw: st.DrawFn) -> list[Event]:
    """Events piled on one street, some on the very same line (equal distances), of close types."""
    base = draw(ev.mel_events(NOW))
    out = []
    for i in range(draw(st.integers(2, 8))):
        dx, dy = draw(st.sampled_from([(0.0, 0.0), (0.0002, 0.0), (0.0, 0.0003), (0.0004, 0.0004), (0.0006, 0.0)]))
        line = [[lon + dx, lat + dy] for lon, lat in lonlat_pairs(base.geometry)]
        source = base.sources[0].model_copy(update={"source": draw(st.sampled_from(["team", ev.WAZE_SOURCE]))})
        update = {
            "id": f"{draw(st.sampled_from('abc'))}{i}",
            "geometry": LineString(type="LineString", coordinates=line),
            "type": draw(st.sampled_from([EventType.CLOSURE, EventType.ROADWORKS, EventType.ACCIDENT])),
            "lifecycle": draw(st.sampled_from([Lifecycle.OPEN, Lifecycle.OPEN, Lifecycle.ENDED])),
            "sources": [source],
        }
        out.append(base.model_copy(update=update))
    return out


@settings(max_examples=60, deadline=None)
@given(st.data(), _crowd())
def test_find_chooses_the_nearest_and_breaks_ties_by_id(data: st.DataObject, events: list[Event]) -> None:
    _assert_find_agrees(data, events)


def test_a_report_on_a_current_event_matches_it() -> None:
    index = EventIndex()
    accident = ev.waze_accident(NOW)
    index.put(accident.id, accident)
    report = IncidentReport(
        source="bison-fute",
        kind="datex2-record",
        source_id="x",
        type=EventType.ACCIDENT,
        description="accident",
        geometry=accident.geometry,
        street=accident.street,
        validity=Validity(starts_at=NOW - timedelta(minutes=5)),
    )
    match = index.find(report, Normalised(matched=True, street=accident.street, confidence=1.0), NOW)
    assert match is not None
    assert match.event == accident
    assert match.reason.startswith("0 m apart")


def test_get_by_source_and_forgetting() -> None:
    index = EventIndex()
    scenarios = ev.lille_scenarios(NOW)
    for event in scenarios:
        index.put(event.id, event)
    first = scenarios[0]
    source = first.sources[0]
    assert index.get(first.id) == first
    assert index.version(first.id) == first.version
    assert index.by_source(source.source, source.source_id) == first
    points = lonlat_pairs(first.geometry)
    assert first in index.near(points)
    for event in scenarios:
        index.put(event.id, None)
    assert len(index) == 0
    assert index.near(points) == []
    assert index.get(first.id) is None
    assert index.by_source(source.source, source.source_id) is None


def _record(event: Event) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord("events", 0, 0, 0, 0, event.id.encode(), encode(event), None, 0, 0, ())


async def test_the_view_s_changes_replace_ours_unless_ours_are_newer() -> None:
    view, index = EventView(), EventIndex()
    closure, other = ev.lille_scenarios(NOW)[:2]
    newer = closure.model_copy(update={"version": closure.version + 1, "description": "ours, newer"})
    index.put(newer.id, newer)  # our own write, not read back yet
    await view.apply([_record(closure), _record(other)])
    _index_changes(index, view.changes_since(0) or [])
    assert index.get(closure.id) == newer
    assert index.get(other.id) == other
    raw = encode(newer)
    await view.apply([ConsumerRecord("events", 0, 2, 0, 0, newer.id.encode(), raw, None, 0, 0, ())])
    _index_changes(index, view.changes_since(2) or [])
    assert index.get(closure.id) == newer  # same bytes: the index now holds the view's copy
    await view.apply([ConsumerRecord("events", 0, 3, 0, 0, other.id.encode(), None, None, 0, 0, ())])
    _index_changes(index, view.changes_since(3) or [])
    assert index.get(other.id) is None
    assert len(index) == 1
