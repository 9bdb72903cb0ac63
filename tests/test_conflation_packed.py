"""The take-in's shortcuts: distances computed many at once are the one-at-a-time distances, bit for bit;
the cells of absorbable events hold exactly those of every event that are absorbable, after any edits."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.feeds import events as ev
from traffic_hub.model import Event, EventType, IncidentReport, Normalised, SourceReport
from traffic_hub.model.geometry import lonlat_pairs
from traffic_hub.normaliser.conflation import EventIndex, _Metres, _packed

_LON = st.floats(2.95, 3.25, allow_nan=False)
_LAT = st.floats(50.55, 50.75, allow_nan=False)
_POINTS = st.lists(st.tuples(_LON, _LAT), min_size=1, max_size=6)


@settings(max_examples=200, deadline=None)
@given(_POINTS, st.lists(_POINTS, min_size=1, max_size=12))
def test_packed_distances_equal_one_at_a_time(
    origin: list[tuple[float, float]], others: list[list[tuple[float, float]]]
) -> None:
    metres = _Metres(origin)
    assert metres.to_packed([_packed(points) for points in others]) == [metres.to(points) for points in others]


def _incident_source(event: Event) -> SourceReport:
    report = IncidentReport(source="waze-mel", kind="waze-alert", source_id=f"w-{event.id}", type=EventType.HAZARD,
                            description="report", geometry=event.geometry, validity=event.validity)
    return SourceReport(source="waze-mel", source_id=report.source_id, kind="waze-alert",
                        received_at=ev.WINTER_NOW, incident=report)


@st.composite
def _edits(draw: st.DrawFn) -> list[tuple[str, Event | None]]:
    """Puts and forgets of a few ids, some events merged into another (no longer absorbable) later on."""
    out: list[tuple[str, Event | None]] = []
    for _ in range(draw(st.integers(1, 12))):
        event_id = draw(st.sampled_from(["a", "b", "c", "d"]))
        event = draw(st.none() | ev.mel_varied_events(ev.WINTER_NOW))
        if event is not None:
            update: dict[str, object] = {"id": event_id, "merged_into": draw(st.sampled_from([None, "x"]))}
            if draw(st.booleans()):  # an incident event, placed, with its report: absorbable unless merged
                update |= {"closure": None, "normalised": Normalised(matched=True, confidence=1.0),
                           "sources": [_incident_source(event)]}
            event = event.model_copy(update=update)
        out.append((event_id, event))
    return out


@settings(max_examples=60, deadline=None)
@given(_edits())
def test_the_take_in_cells_hold_exactly_the_absorbable_events(edits: list[tuple[str, Event | None]]) -> None:
    index = EventIndex()
    for event_id, event in edits:
        index.put(event_id, event)
    for event in (e for _, e in edits if e is not None):
        points = lonlat_pairs(event.geometry)
        every = [i for i in index._near(points) if index._entries[i].absorbable]
        assert index._near(points, absorbable=True) == every
