"""Conflation gives the same events whatever the order in which the reports arrive.

Why: a road-works closure and a Waze `ROAD_CLOSED` alert on the same stretch (Waze's echo of our
closure, or a driver who reported the works first) reach the normaliser in either order, from
different partitions. When the alert came first, the closure used to open an event of its own beside
the alert's: two events for one closed street, in about 2 runs of 5.

The recorded scenario is the Lille sample sources (Waze partner feed, CIFS, DATEX II, WZDx, each
polled twice) plus a closure on the same stretch of Rue Nationale (two versions). Kafka keeps the
order of one key's reports, so the property permutes the interleaving of keys, never one key's own
sequence; the pipeline's clock is fixed to the moment the samples describe, so their dates are fine.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.base import ParseContext
from connectors.registry import parser_for
from geo.network import RoadNetwork
from tests.connectors.sources import LILLE, RECEIVED
from traffic_hub.model import (
    ClosureState,
    Event,
    EventType,
    IncidentReport,
    Lifecycle,
    Normalised,
    Point,
    Report,
    ReportKind,
    Validity,
)
from traffic_hub.model.geometry import LineString
from traffic_hub.normaliser.conflation import EventIndex, same_incident
from traffic_hub.normaliser.pipeline import Pipeline
from traffic_hub.normaliser.placement import NetworkPlacer, Placement
from traffic_hub.topics import Topics
from traffic_hub.view import encode

WAZE = "waze-mel"
TEAM = "voirie-lille"
# The stretch of Rue Nationale that every Lille sample describes as closed for works.
NATIONALE = [[3.049439, 50.63148], [3.050084, 50.631747], [3.050912, 50.63209], [3.051022, 50.632131],
             [3.051115, 50.632167], [3.051288, 50.63225], [3.051779, 50.632461], [3.051991, 50.632546],
             [3.05202, 50.63256], [3.052176, 50.632626]]  # fmt: skip
# Rue Léon Gambetta (OSM way 37546107), the street of the report in issue 12.
GAMBETTA = [[3.0566387, 50.6302652], [3.0568084, 50.6303304], [3.057961, 50.6307998], [3.0588986, 50.6311825]]
GAMBETTA_WAZE_POINT = (3.0574, 50.63059)  # a driver's report, a few metres off the middle of the line

SAMPLES = {
    "waze-partner-feed": (WAZE, "lille_waze-partner-feed.json"),
    "cifs": ("cifs-mel", "lille_cifs.xml"),
    "datex2": ("datex-mel", "lille_datex2-v3_situations.xml"),
    "wzdx": ("wzdx-mel", "lille_wzdx-4.2_workzones.geojson"),
}
# The DATEX II sample has two records of one situation on Rue Nationale (works, and the closure
# they cause). One source, two ids on one incident: the "one source never reports an incident twice"
# rule keeps the second apart, and which of the two joins the others depends on order by nature.
LEFT_OUT = {"LILLE_REC_NATIONALE_WORKS"}


@cache
def _network() -> RoadNetwork:
    return RoadNetwork.default().warm()


class _CachedPlacer(NetworkPlacer):
    """Placement is a pure function of the report: computed once per report for every permutation."""

    def __init__(self) -> None:
        super().__init__(_network())
        self._incidents: dict[str, Placement] = {}
        self._closures: dict[str, Placement] = {}

    def place_incident(self, report: IncidentReport) -> Placement:
        key = report.model_dump_json()
        if key not in self._incidents:
            self._incidents[key] = super().place_incident(report)
        return self._incidents[key]

    def place_closure(self, closure: ClosureState) -> Placement:
        key = closure.model_dump_json()
        if key not in self._closures:
            self._closures[key] = super().place_closure(closure)
        return self._closures[key]

    def place_closures(self, closures: Sequence[ClosureState]) -> list[Placement]:
        return [self.place_closure(closure) for closure in closures]


PLACER = _CachedPlacer()


def closure(
    coordinates: list[list[float]], starts_at: datetime, ends_at: datetime, *, version: int = 1, **changes: Any
) -> ClosureState:
    body: dict[str, Any] = {
        "description": "Travaux de voirie : chaussée fermée",
        "geometry": {"type": "LineString", "coordinates": coordinates},
        "starts_at": starts_at,
        "ends_at": ends_at,
        "id": "3f1c9a52-7d0e-4c61-9a8b-lille-0042",
        "reference": "LILLE-2026-0042",
        "owner": TEAM,
        "owner_communes": ["Lille"],
        "communes": ["Lille"],
        "version": version,
        "created_at": starts_at - timedelta(days=3),
        "updated_at": starts_at - timedelta(days=3) + timedelta(minutes=version),
    }
    return ClosureState.model_validate({**body, **changes})


def closure_item(state: ClosureState, received_at: datetime) -> tuple[str, bytes]:
    report = Report(key=state.id, kind=ReportKind.CLOSURE, source=f"roadworks:{TEAM}", received_at=received_at,
                    closure=state)  # fmt: skip
    return state.id, report.model_dump_json().encode()


def incident_item(incident: IncidentReport, received_at: datetime) -> tuple[str, bytes]:
    key = f"{incident.source}:{incident.source_id}"
    report = Report(key=key, kind=ReportKind.INCIDENT, source=incident.source, received_at=received_at,
                    incident=incident)  # fmt: skip
    return key, report.model_dump_json().encode()


def waze_road_closed(point: tuple[float, float], published: datetime, street: str) -> IncidentReport:
    return IncidentReport(
        source=WAZE,
        kind="waze-alert",
        source_id="b1c2d3e4-0000-4000-8000-00000000c105",
        type=EventType.CLOSURE,
        subtype="ROAD_CLOSED_CONSTRUCTION",
        description=f"road closed construction on {street}",
        geometry=Point(type="Point", coordinates=list(point)),
        street=street,
        validity=Validity(starts_at=published),
        observed_at=published,
    )


def _polls() -> list[list[tuple[str, bytes]]]:
    """Each key's reports in the order its source sent them: two polls of every sample, two closure versions."""
    per_key: dict[str, list[tuple[str, bytes]]] = {}
    for poll in (0, 1):
        received = RECEIVED + timedelta(minutes=2 * poll)
        for kind, (source, name) in SAMPLES.items():
            parsed = parser_for(kind).parse((LILLE / name).read_bytes(), ParseContext(source, received))
            for incident in parsed.incidents:
                if incident.source_id not in LEFT_OUT:
                    key, raw = incident_item(incident, received)
                    per_key.setdefault(key, []).append((key, raw))
    starts, ends = datetime(2026, 11, 23, 6, tzinfo=UTC), datetime(2027, 1, 29, 17, tzinfo=UTC)
    first = closure(NATIONALE, starts, ends, street="Rue Nationale")
    second = closure(NATIONALE, starts, ends + timedelta(days=7), version=2, street="Rue Nationale",
                     description="Travaux de voirie prolongés : chaussée fermée")  # fmt: skip
    per_key[first.id] = [closure_item(first, RECEIVED - timedelta(minutes=1)), closure_item(second, RECEIVED)]
    return list(per_key.values())


POLLS = _polls()


def pipeline() -> Pipeline:
    return Pipeline(Topics("t"), PLACER, clock=lambda: RECEIVED + timedelta(minutes=5))


def final_events(pipeline: Pipeline, batches: Sequence[Sequence[tuple[str, bytes]]]) -> dict[str, Event]:
    """The events topic once compacted: each event's last version."""
    out: dict[str, Event] = {}
    for batch in batches:
        for record in pipeline.process_many(list(batch)):
            if record.topic == "t.events" and record.value is not None:
                event = Event.model_validate_json(record.value)
                out[event.id] = event
    return out


def comparable(events: dict[str, Event]) -> list[str]:
    """The events as partners and operators see them, minus what counts changes or names the first
    report (ids of incident events, versions, times of writing): one line each, sorted.

    Sources are compared as a set. A closure's sources keep their reason (each is measured against
    the closure); an incident event's do not, since the first report of it has none, the others one."""
    lines = []
    for event in events.values():
        if event.merged_into is not None:
            continue  # its sources are listed where it was merged (checked apart)
        reason = event.closure is not None
        sources = sorted(
            (s.source, s.source_id, s.kind, s.active, s.received_at.isoformat(), s.match_reason if reason else None)
            for s in event.sources
        )
        left_out = {"version", "created_at", "updated_at", "sources"} | (set() if reason else {"id"})
        body = event.model_dump(mode="json", exclude=left_out)
        lines.append(f"{body} {sources}")
    return sorted(lines)


def interleave(sequences: list[list[tuple[str, bytes]]], order: list[int]) -> list[tuple[str, bytes]]:
    """One report after another as `order` names their keys (the k-th time a key comes, its k-th report)."""
    taken = [0] * len(sequences)
    out = []
    for key in order:
        out.append(sequences[key][taken[key]])
        taken[key] += 1
    return out


def batched(items: list[tuple[str, bytes]], cuts: list[int]) -> list[list[tuple[str, bytes]]]:
    bounds = [0, *sorted(set(cuts)), len(items)]
    return [items[a:b] for a, b in itertools.pairwise(bounds) if a < b]


REFERENCE = comparable(final_events(pipeline(), [[item for sequence in POLLS for item in sequence]]))


def check_merged(events: dict[str, Event]) -> None:
    """An event taken in by a closure is ended and every one of its reports is listed by the closure."""
    for event in events.values():
        if event.merged_into is not None:
            into = events[event.merged_into]
            assert event.lifecycle is Lifecycle.ENDED
            assert into.closure is not None
            listed = {(s.source, s.source_id) for s in into.sources}
            assert {(s.source, s.source_id) for s in event.sources} <= listed


@settings(max_examples=100, deadline=None)
@given(st.permutations([key for key, sequence in enumerate(POLLS) for _ in sequence]), st.lists(st.integers(0, 40)))
def test_the_events_are_the_same_in_any_order_of_arrival(order: list[int], cuts: list[int]) -> None:
    events = final_events(pipeline(), batched(interleave(POLLS, order), cuts))
    assert comparable(events) == REFERENCE
    check_merged(events)


def test_the_scenario_merges_the_works_on_rue_nationale_from_every_source() -> None:
    """What the property compares: one closure event listing the works as every sample tells them."""
    events = final_events(pipeline(), [[item for sequence in POLLS for item in sequence]])
    (works,) = [e for e in events.values() if e.closure is not None]
    assert {s.source for s in works.sources} == {f"roadworks:{TEAM}", WAZE, "cifs-mel", "datex-mel", "wzdx-mel"}
    assert works.description == "Travaux de voirie prolongés : chaussée fermée"
    assert all(s.match_reason for s in works.sources if s.kind != "closure")


def _gambetta(now: datetime) -> tuple[tuple[str, bytes], tuple[str, bytes]]:
    state = closure(GAMBETTA, now - timedelta(hours=2), now + timedelta(days=5), street="Rue Léon Gambetta")
    waze = waze_road_closed(GAMBETTA_WAZE_POINT, now - timedelta(minutes=30), "Rue Léon Gambetta")
    return closure_item(state, now - timedelta(minutes=1)), incident_item(waze, now)


def _run(now: datetime, items: list[tuple[str, bytes]]) -> dict[str, Event]:
    gambetta = Pipeline(Topics("t"), PLACER, clock=lambda: now)
    return final_events(gambetta, [[item] for item in items])


def test_a_waze_report_that_came_before_the_closure_is_taken_in_by_it() -> None:
    now = datetime.now(UTC)
    closure_report, waze_report = _gambetta(now)
    waze_first = _run(now, [waze_report, closure_report])
    closure_first = _run(now, [closure_report, waze_report])
    for events in (waze_first, closure_first):
        current = [e for e in events.values() if e.is_current(now)]
        assert len(current) == 1, [e.id for e in current]
        (works,) = current
        assert works.closure is not None
        waze = next(s for s in works.sources if s.source == WAZE)
        assert waze.match_reason is not None
        assert waze.match_reason.endswith("an echo of our own closure")
    assert comparable(waze_first) == comparable(closure_first)
    (alert,) = [e for e in waze_first.values() if e.closure is None]
    assert alert.merged_into == closure_report[0]
    assert alert.lifecycle is Lifecycle.ENDED


def test_the_next_poll_of_a_taken_in_report_goes_to_the_closure_also_after_a_restart() -> None:
    now = datetime.now(UTC)
    closure_report, waze_report = _gambetta(now)
    first = Pipeline(Topics("t"), PLACER, clock=lambda: now)
    events = final_events(first, [[waze_report], [closure_report]])
    # a restarted normaliser indexes the events as the view lists them: the merged alert last
    index = EventIndex()
    for event in sorted(events.values(), key=lambda e: e.merged_into is not None):
        index.put(event.id, event, encode(event))
    restarted = Pipeline(Topics("t"), PLACER, index=index, clock=lambda: now + timedelta(minutes=2))
    key, _ = waze_report
    (alert,) = [s.incident for s in events[closure_report[0]].sources if s.source == WAZE]
    assert alert is not None
    next_poll = incident_item(alert, now + timedelta(minutes=2))  # the same alert, received again
    assert next_poll[0] == key
    after = final_events(restarted, [[next_poll]])
    assert list(after) == [closure_report[0]]  # the closure's event, not the ended alert's
    assert after[closure_report[0]].version > events[closure_report[0]].version


class _Broken(EventIndex):
    def absorbable(self, closure: Event, now: datetime) -> list[Event]:
        raise ZeroDivisionError("a bug")


def test_a_bug_in_taking_reports_in_does_not_cost_the_closure_its_event() -> None:
    now = datetime.now(UTC)
    closure_report, waze_report = _gambetta(now)
    broken = Pipeline(Topics("t"), PLACER, index=_Broken(), clock=lambda: now)
    events = final_events(broken, [[waze_report], [closure_report]])
    assert len(events) == 2
    assert events[closure_report[0]].closure is not None
    assert all(e.merged_into is None and e.lifecycle is Lifecycle.OPEN for e in events.values())


def test_a_closure_s_event_version_never_goes_back() -> None:
    """Reports folded into a closure count as versions: the team's next version must not undo them."""
    now = datetime.now(UTC)
    closure_report, waze_report = _gambetta(now)
    state = closure(GAMBETTA, now - timedelta(hours=2), now + timedelta(days=5), version=2, street="Rue Léon Gambetta")
    gambetta = Pipeline(Topics("t"), PLACER, clock=lambda: now)
    versions: list[int] = []
    for item in (closure_report, waze_report, waze_report, closure_item(state, now)):
        records = gambetta.process_many([item])
        versions += [Event.model_validate_json(r.value or b"").version for r in records if r.key == state.id.encode()]
    assert versions == sorted(set(versions)), versions


# --- times compared as instants -------------------------------------------------------------------

PARIS = ZoneInfo("Europe/Paris")
# 25 October 2026, 02:00-03:00 Europe/Paris happens twice: first in summer time (fold=0, +02:00),
# then in winter time (fold=1, +01:00).
SUMMER_0245 = datetime(2026, 10, 25, 2, 45, tzinfo=PARIS)  # 00:45 UTC
WINTER_0215 = datetime(2026, 10, 25, 2, 15, fold=1, tzinfo=PARIS)  # 01:15 UTC


def _pair(event_ends: datetime, report_starts: datetime) -> tuple[Event, IncidentReport, Normalised]:
    waze = waze_road_closed(GAMBETTA_WAZE_POINT, report_starts, "Rue Léon Gambetta")
    state = closure(GAMBETTA, event_ends - timedelta(hours=5), event_ends, street="Rue Léon Gambetta")
    event = Pipeline(Topics("t"), PLACER, clock=lambda: report_starts)._closure(state, report_starts)[0]
    return event, waze, PLACER.place_incident(waze).normalised


def test_an_event_ending_after_a_report_starts_matches_it_across_the_autumn_change() -> None:
    """The closure ends at 02:15 winter time, the report starts at 02:45 summer time, half an hour before."""
    event, waze, placement = _pair(WINTER_0215, SUMMER_0245)
    assert event.validity.ends_at is WINTER_0215  # kept as given: one zone, one tzinfo, as the trap needs
    assert same_incident(event, waze, placement, SUMMER_0245) is not None
    index = EventIndex()
    index.put(event.id, event)
    assert index.find(waze, placement, SUMMER_0245) is not None


def test_an_event_ended_before_a_report_starts_does_not_match_it_across_the_autumn_change() -> None:
    """The closure ends at 02:45 summer time; the report starts at 02:15 winter time, half an hour later."""
    event, waze, placement = _pair(SUMMER_0245, WINTER_0215)
    assert same_incident(event, waze, placement, SUMMER_0245 - timedelta(hours=1)) is None
    assert same_incident(event, waze, placement, WINTER_0215) is None  # and it is over by then


def test_the_line_of_gambetta_is_on_the_network() -> None:
    """The scenario's premise: the closure and the alert are placed on one street of the network."""
    waze = waze_road_closed(GAMBETTA_WAZE_POINT, RECEIVED, "Rue Léon Gambetta")
    placed = PLACER.place_incident(waze).normalised
    assert placed.street == "Rue Léon Gambetta"
    state = closure(GAMBETTA, RECEIVED, RECEIVED + timedelta(days=1))
    assert PLACER.place_closure(state).normalised.street == "Rue Léon Gambetta"
    assert isinstance(state.geometry, LineString)
