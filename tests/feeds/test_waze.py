"""Waze CIFS feeds: XSD validity (vendored cifsv2.xsd), Waze's own rules, the gate, XML = JSON."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
import xmlschema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from traffic_hub.feeds.base import FeedContext, Renderer
from traffic_hub.feeds.waze import CifsJson, CifsXml, check_waze
from traffic_hub.feeds.waze_incident import DESCRIPTION_MAX, local_time
from traffic_hub.feeds.waze_types import waze_kind
from traffic_hub.model import Cause, Event, EventType, LineString, Segment

from . import events as ev

REPO = Path(__file__).resolve().parents[2]
XSD = REPO / "traffic_hub" / "feeds" / "schemas" / "cifsv2.xsd"
FIXTURES = REPO / "tests" / "fixtures" / "waze"
PARIS = ZoneInfo("Europe/Paris")


def xml_renderer() -> Renderer:
    return CifsXml()


def json_renderer() -> Renderer:
    return CifsJson()


_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}$")
_POLYLINE = re.compile(r"^-?\d{1,3}\.\d{6}( -?\d{1,3}\.\d{6})+$")
_TIME_ELEMENTS = ("creationtime", "updatetime", "starttime", "endtime")


@pytest.fixture(scope="session")
def cifs_schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(XSD))


def ctx_at(now: datetime) -> FeedContext:
    return FeedContext(now=now)


def publishable(events: Sequence[Event], ctx: FeedContext) -> list[Event]:
    """What the feed engine does before rendering: keep what the gate lets through."""
    return [event for event in events if not check_waze(event, ctx)]


def render_tree(events: Sequence[Event], ctx: FeedContext) -> etree._Element:
    return etree.fromstring(xml_renderer().render(events, ctx))


def incidents_by_id(root: etree._Element) -> dict[str, etree._Element]:
    return {node.get("id", ""): node for node in root.iter("incident")}


def text(node: etree._Element, path: str) -> str | None:
    found = node.find(path)
    return None if found is None else found.text


# --- an independent checker of Waze's rules on rendered XML -----------------------------------


def waze_rule_problems(root: etree._Element, event_ids: set[str]) -> list[str]:
    """What Waze would object to in a rendered document (empty: nothing)."""
    problems = _time_problems("timestamp", root.get("timestamp"))
    for node in root.iter("incident"):
        problems.extend(f"{node.get('id')}: {problem}" for problem in _incident_problems(node, event_ids))
    return problems


def _incident_problems(node: etree._Element, event_ids: set[str]) -> list[str]:
    problems: list[str] = []
    incident_id = node.get("id", "")
    if not any(incident_id.startswith(event_id) for event_id in event_ids) or len(incident_id) < 3:
        problems.append("id does not start with an event id")
    problems.extend(_polyline_problems(text(node, "polyline") or ""))
    for name in _TIME_ELEMENTS:
        if node.find(name) is not None:
            problems.extend(_time_problems(name, text(node, name)))
    start, end = text(node, "starttime"), text(node, "endtime")
    if start and end and datetime.fromisoformat(end) <= datetime.fromisoformat(start):
        problems.append("endtime not after starttime")
    waze_type, subtype = text(node, "type") or "", text(node, "subtype")
    if waze_type == "ROAD_CLOSED" and end is None:
        problems.append("closure without endtime")
    if subtype and not subtype.startswith(waze_type + "_"):
        problems.append(f"subtype {subtype} does not belong to {waze_type}")
    street = text(node, "street") or ""
    if len(street) < 2 or re.search(r",|\(|\d{5}", street):
        problems.append(f"street {street!r} is not a bare street name")
    if not (text(node, "description") or "").strip():
        problems.append("empty description")
    return problems


def _polyline_problems(polyline: str) -> list[str]:
    if not _POLYLINE.match(polyline):
        return [f"polyline {polyline!r} is not 'lat lon' pairs with 6 decimals"]
    numbers = [float(value) for value in polyline.split()]
    if len(numbers) % 2:
        return ["polyline has an odd count of numbers"]
    lonlat = [(numbers[i + 1], numbers[i]) for i in range(0, len(numbers), 2)]
    problems = []
    if any(not (ev.MEL_WEST <= lon <= ev.MEL_EAST and ev.MEL_SOUTH <= lat <= ev.MEL_NORTH) for lon, lat in lonlat):
        problems.append("a point lies outside MEL (or lat/lon swapped)")
    if len(set(lonlat)) < 2:
        problems.append("fewer than 2 distinct points")
    length = ev.geodesic_length(lonlat)
    if not 35.0 <= length <= 10_000.0:
        problems.append(f"length {length:.1f} m outside 35 m-10 km")
    return problems


def _time_problems(name: str, value: str | None) -> list[str]:
    if value is None or not _TIME.match(value):
        return [f"{name} {value!r} is not yyyy-MM-ddTHH:mm:ss+HH:MM"]
    moment = datetime.fromisoformat(value)
    if moment.utcoffset() != moment.astimezone(PARIS).utcoffset():
        return [f"{name} {value} is not in Europe/Paris local time"]
    return []


def xml_items(root: etree._Element) -> list[dict[str, Any]]:
    """Incidents as dicts: element name → text, or → {child: text} for nested groups."""
    items = []
    for node in root.iter("incident"):
        item: dict[str, Any] = {"id": node.get("id")}
        for child in node:
            if child.tag == "parent_event":
                item["parent_event"] = {"id": child.get("id")}
            elif len(child):
                item[str(child.tag)] = {str(leaf.tag): leaf.text for leaf in child}
            else:
                item[str(child.tag)] = child.text
        items.append(item)
    return items


def json_items(document: dict[str, Any]) -> list[dict[str, Any]]:
    def stringified(value: Any) -> Any:
        return {k: str(v) for k, v in value.items()} if isinstance(value, dict) else value

    return [{k: stringified(v) for k, v in entry["incident"].items()} for entry in document["incidents"]]


# --- samples ------------------------------------------------------------------------------------


def test_dialog_sample_validates(cifs_schema: xmlschema.XMLSchema) -> None:
    """Sanity: the real French DiaLog feed (accepted by Waze) passes our validator."""
    cifs_schema.validate(str(FIXTURES / "dialog-fr_cifs-feed_test-fixture.xml"))


def test_legacy_icone_sample_fails(cifs_schema: xmlschema.XMLSchema) -> None:
    """Sanity the other way: a real legacy-layout feed (comma polylines, no street) is rejected."""
    errors = list(cifs_schema.iter_errors(str(FIXTURES / "icone-colorado_legacy-waze-incident-feed_2024-11-07.xml")))
    assert errors


# --- the Lille feed -------------------------------------------------------------------------------


@pytest.mark.parametrize(("now", "offset"), [(ev.WINTER_NOW, "+01:00"), (ev.SUMMER_NOW, "+02:00")])
def test_lille_feed_is_valid_and_follows_waze_rules(
    cifs_schema: xmlschema.XMLSchema, now: datetime, offset: str
) -> None:
    ctx = ctx_at(now)
    scenarios = ev.lille_scenarios(now)
    body = xml_renderer().render(publishable(scenarios, ctx), ctx)
    cifs_schema.validate(body.decode())
    root = etree.fromstring(body)
    assert waze_rule_problems(root, {event.id for event in scenarios}) == []
    assert sorted(incidents_by_id(root)) == [
        "cl-LILLE-2026-0042",
        "cl-LILLE-2026-0051",
        "cl-LILLE-2026-0077",
        "cl-LILLE-2026-0100-1",
        "cl-LILLE-2026-0100-2",
        "cl-LILLE-2026-0100-3",
        "cl-LILLE-2026-0120",
    ]  # the Waze-reported accident is not sent back to Waze
    assert body.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    assert root.get("timestamp") == now.astimezone(PARIS).isoformat()
    assert root.get("timestamp", "").endswith(offset)
    assert all((node.text or "").endswith(offset) for node in root.iter("starttime", "endtime"))


def test_ended_and_cancelled_are_withheld_quietly_upcoming_is_published() -> None:
    ctx = ctx_at(ev.WINTER_NOW)
    assert check_waze(ev.ended_closure(ev.WINTER_NOW), ctx) == ["ended"]
    assert check_waze(ev.cancelled_closure(ev.WINTER_NOW), ctx) == ["cancelled"]
    upcoming = ev.upcoming_closure(ev.WINTER_NOW)
    assert check_waze(upcoming, ctx) == []
    start = text(incidents_by_id(render_tree([upcoming], ctx))[upcoming.id], "starttime")
    assert start == "2026-01-22T10:30:00+01:00"


def test_scheduled_closure() -> None:
    ctx = ctx_at(ev.SUMMER_NOW)
    event = ev.scheduled_closure(ev.SUMMER_NOW)
    node = incidents_by_id(render_tree([event], ctx))[event.id]
    assert text(node, "type") == "ROAD_CLOSED"
    assert text(node, "subtype") == "ROAD_CLOSED_CONSTRUCTION"
    assert text(node, "street") == "Rue Nationale"
    assert text(node, "direction") == "BOTH_DIRECTIONS"
    assert node.find("parent_event") is None
    assert text(node, "polyline") == (
        "50.632626 3.052176 50.632652 3.052242 50.632658 3.052258 50.632711 3.052384 "
        "50.632725 3.052416 50.632964 3.052967 50.633092 3.053269 50.633345 3.053887"
    )
    assert text(node, "starttime") == "2026-07-13T11:30:00+02:00"
    assert text(node, "endtime") == "2026-07-27T11:30:00+02:00"
    schedule = node.find("schedule")
    assert schedule is not None
    assert [(child.tag, child.text) for child in schedule] == [
        ("monday", "08:00-12:00,13:30-17:00"),
        ("tuesday", "08:00-12:00,13:30-17:00"),
        ("wednesday", "08:00-12:00"),
        ("thursday", "08:00-12:00,13:30-17:00"),
        ("friday", "08:00-12:00,13:30-17:00"),
    ]
    source = node.find("source")
    assert source is not None
    assert [(child.tag, child.text) for child in source] == [
        ("reference", "roadworks:voirie-lille"),
        ("name", "Métropole Européenne de Lille"),
        ("url", "http://127.0.0.1:8000"),
    ]


def test_same_windows_every_day_become_everyday() -> None:
    ctx = ctx_at(ev.WINTER_NOW)
    event = ev.nightly_closure(ev.WINTER_NOW)
    schedule = incidents_by_id(render_tree([event], ctx))[event.id].find("schedule")
    assert schedule is not None
    assert [(child.tag, child.text) for child in schedule] == [("everyday", "20:00-23:30")]


def test_lane_closure_is_a_hazard_with_lane_impact() -> None:
    ctx = ctx_at(ev.WINTER_NOW)
    event = ev.lane_closure(ev.WINTER_NOW)
    node = incidents_by_id(render_tree([event], ctx))[event.id]
    assert text(node, "type") == "HAZARD"
    assert text(node, "subtype") == "HAZARD_ON_ROAD_LANE_CLOSED"
    assert text(node, "lane_impact/total_closed_lanes") == "1"
    assert text(node, "lane_impact/roadside") == "RIGHT"
    assert text(node, "direction") == "ONE_DIRECTION"
    assert (text(node, "polyline") or "").startswith("50.637217 3.051810 ")  # travel order kept


def test_multi_segment_closure_gives_one_incident_per_run_with_parent_event() -> None:
    ctx = ctx_at(ev.WINTER_NOW)
    event = ev.braderie_closure(ev.WINTER_NOW)
    nodes = list(render_tree([event], ctx).iter("incident"))
    assert [node.get("id") for node in nodes] == [f"{event.id}-1", f"{event.id}-2", f"{event.id}-3"]
    assert [node.xpath("string(parent_event/@id)") for node in nodes] == [event.id] * 3
    assert {text(node, "subtype") for node in nodes} == {"ROAD_CLOSED_EVENT"}
    polylines = [(text(node, "polyline") or "").split() for node in nodes]
    assert polylines[0][-2:] == polylines[1][:2]  # the runs meet at junctions
    assert polylines[1][-2:] == polylines[2][:2]


def test_events_only_waze_reported_are_not_sent_back_to_waze() -> None:
    ctx = ctx_at(ev.WINTER_NOW)
    assert check_waze(ev.waze_accident(ev.WINTER_NOW), ctx) == ["reported by Waze itself: not sent back to Waze"]


def test_waze_accident_on_a_two_point_run() -> None:
    ctx = ctx_at(ev.WINTER_NOW)
    event = ev.waze_accident(ev.WINTER_NOW)
    node = incidents_by_id(render_tree([event], ctx))[event.id]
    assert text(node, "type") == "ACCIDENT"
    assert text(node, "subtype") == "ACCIDENT_MINOR"
    assert text(node, "direction") == "BOTH_DIRECTIONS"  # UNKNOWN
    assert text(node, "polyline") == "50.635047 3.049390 50.635796 3.050160"
    assert node.find("endtime") is None  # open-ended, not a closure
    assert text(node, "source/reference") == "waze-mel"


def test_json_carries_the_same_incidents_in_googles_wrapper() -> None:
    ctx = ctx_at(ev.SUMMER_NOW)
    events = publishable(ev.lille_scenarios(ev.SUMMER_NOW), ctx)
    document = orjson.loads(json_renderer().render(events, ctx))
    assert set(document) == {"incidents", "timestamp"}
    assert document["timestamp"] == "2026-07-15T11:30:00+02:00"
    assert all(set(entry) == {"incident"} for entry in document["incidents"])
    assert json_items(document) == xml_items(render_tree(events, ctx))
    lane = next(entry["incident"] for entry in document["incidents"] if entry["incident"]["id"] == "cl-LILLE-2026-0077")
    assert lane["lane_impact"] == {"total_closed_lanes": 1, "roadside": "RIGHT"}
    assert isinstance(lane["polyline"], str)


def test_renderers_share_one_publication_key() -> None:
    xml, json = xml_renderer(), json_renderer()
    assert (xml.name, json.name) == ("waze", "waze")
    assert (xml.media_type, json.media_type) == ("application/xml", "application/json")
    event = ev.lane_closure(NOW)
    assert xml.check(event, ctx_at(NOW)) == json.check(event, ctx_at(NOW)) == []
    stale = ev.ended_closure(NOW)
    assert xml.check(stale, ctx_at(NOW)) == json.check(stale, ctx_at(NOW)) == ["ended"]


def test_rerendering_is_order_free_and_sees_changed_events() -> None:
    renderer = CifsXml()
    ctx = ctx_at(NOW)
    events = publishable(ev.lille_scenarios(NOW), ctx)
    first = renderer.render(events, ctx)
    assert renderer.render(list(reversed(events)), ctx) == first
    changed = events[0].model_copy(update={"description": "Chaussée rouverte partiellement"})
    body = renderer.render([changed, *events[1:]], ctx)
    assert body != first
    assert text(incidents_by_id(etree.fromstring(body))[changed.id], "description") == "Chaussée rouverte partiellement"
    other_publisher = FeedContext(now=NOW, publisher="MEL - Direction des mobilités")
    node = incidents_by_id(etree.fromstring(renderer.render(events, other_publisher)))[events[0].id]
    assert text(node, "source/name") == "MEL - Direction des mobilités"


def test_feed_timestamp_is_when_the_content_changed() -> None:
    changed = datetime(2026, 1, 15, 8, 0, 5, tzinfo=UTC)
    ctx = FeedContext(now=NOW, published_at=changed)
    events = [ev.lane_closure(NOW)]
    assert render_tree(events, ctx).get("timestamp") == "2026-01-15T09:00:05+01:00"
    assert orjson.loads(json_renderer().render(events, ctx))["timestamp"] == "2026-01-15T09:00:05+01:00"
    later = FeedContext(now=NOW + timedelta(minutes=3), published_at=changed)
    assert xml_renderer().render(events, later) == xml_renderer().render(events, ctx)


def test_empty_feed_is_valid(cifs_schema: xmlschema.XMLSchema) -> None:
    ctx = ctx_at(ev.WINTER_NOW)
    cifs_schema.validate(xml_renderer().render([], ctx).decode())
    assert orjson.loads(json_renderer().render([], ctx)) == {"incidents": [], "timestamp": "2026-01-15T10:30:00+01:00"}


def test_long_dirty_description_is_cleaned_and_cut(cifs_schema: xmlschema.XMLSchema) -> None:
    ctx = ctx_at(ev.WINTER_NOW)
    words = " ".join(["déviation"] * 300)
    event = ev.make_event(
        "cl-LILLE-2026-0200",
        ev.WINTER_NOW,
        segments=[ev.segment(ev.RUE_DE_PARIS)],
        description=f"Travaux\x00\x07 urgents\n\t{words}",
    )
    assert check_waze(event, ctx) == []
    body = xml_renderer().render([event], ctx)
    cifs_schema.validate(body.decode())
    description = str(etree.fromstring(body).xpath("string(incident/description)"))
    assert description.startswith("Travaux urgents déviation ")
    assert description.endswith("déviation…")
    assert len(description) <= DESCRIPTION_MAX


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime(2026, 3, 29, 0, 59, 59, 999_999, tzinfo=UTC), "2026-03-29T01:59:59+01:00"),
        (datetime(2026, 3, 29, 1, 0, tzinfo=UTC), "2026-03-29T03:00:00+02:00"),
        (datetime(2026, 3, 29, 2, 30, tzinfo=PARIS), "2026-03-29T03:30:00+02:00"),  # wall clock that never was
        (datetime(2026, 10, 25, 0, 30, tzinfo=UTC), "2026-10-25T02:30:00+02:00"),
        (datetime(2026, 10, 25, 1, 30, tzinfo=UTC), "2026-10-25T02:30:00+01:00"),
    ],
)
def test_local_time_follows_paris_offsets(moment: datetime, expected: str) -> None:
    assert local_time(moment, PARIS) == expected


# --- type mapping -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event_type", "cause", "subtype", "expected"),
    [
        (EventType.CLOSURE, Cause.ROADWORKS, None, ("ROAD_CLOSED", "ROAD_CLOSED_CONSTRUCTION")),
        (EventType.CLOSURE, Cause.EVENT, None, ("ROAD_CLOSED", "ROAD_CLOSED_EVENT")),
        (EventType.CLOSURE, Cause.HAZARD, None, ("ROAD_CLOSED", "ROAD_CLOSED_HAZARD")),
        (EventType.CLOSURE, Cause.OTHER, None, ("ROAD_CLOSED", None)),
        (EventType.CLOSURE, Cause.OTHER, "ROAD_CLOSED_EVENT", ("ROAD_CLOSED", "ROAD_CLOSED_EVENT")),
        (EventType.CLOSURE, Cause.ROADWORKS, "JAM_HEAVY_TRAFFIC", ("ROAD_CLOSED", "ROAD_CLOSED_CONSTRUCTION")),
        (EventType.LANE_CLOSURE, Cause.ROADWORKS, "HAZARD_ON_ROAD", ("HAZARD", "HAZARD_ON_ROAD_LANE_CLOSED")),
        (EventType.ROADWORKS, Cause.ROADWORKS, "HAZARD_ON_ROAD_CONSTRUCTION", ("CONSTRUCTION", None)),
        (EventType.ACCIDENT, Cause.ACCIDENT, "ACCIDENT_MAJOR", ("ACCIDENT", "ACCIDENT_MAJOR")),
        (EventType.ACCIDENT, Cause.ACCIDENT, "", ("ACCIDENT", None)),
        (EventType.HAZARD, Cause.HAZARD, "HAZARD_ON_ROAD_OBJECT", ("HAZARD", "HAZARD_ON_ROAD_OBJECT")),
        (EventType.HAZARD, Cause.HAZARD, "ROAD_CLOSED_EVENT", ("HAZARD", "HAZARD_ON_ROAD")),
        (EventType.WEATHER, Cause.HAZARD, None, ("HAZARD", "HAZARD_WEATHER")),
        (EventType.WEATHER, Cause.HAZARD, "HAZARD_WEATHER_FOG", ("HAZARD", "HAZARD_WEATHER_FOG")),
        (EventType.JAM, Cause.OTHER, "JAM_STAND_STILL_TRAFFIC", ("JAM", "JAM_STAND_STILL_TRAFFIC")),
        (EventType.JAM, Cause.OTHER, None, ("JAM", None)),
        (EventType.POLICE, Cause.OTHER, "POLICE_HIDING", ("POLICE", "POLICE_HIDING")),
    ],
)
def test_type_mapping(
    event_type: EventType, cause: Cause, subtype: str | None, expected: tuple[str, str | None]
) -> None:
    event = ev.make_event(
        "ev-type",
        ev.WINTER_NOW,
        segments=[ev.segment(ev.RUE_DE_PARIS)],
        event_type=event_type,
        cause=cause,
        subtype=subtype,
    )
    kind = waze_kind(event)
    assert kind is not None
    assert (kind.type, kind.subtype) == expected


# --- the gate -----------------------------------------------------------------------------------

NOW = ev.WINTER_NOW


def _with_segments(*segments: Segment, **kwargs: Any) -> Event:
    return ev.make_event("cl-LILLE-2026-0300", NOW, segments=list(segments), **kwargs)


def _line(*points: tuple[float, float]) -> Segment:
    return Segment(street="Rue de Paris", coordinates=list(points), length_m=0.0)


_REAL_LINE = LineString(type="LineString", coordinates=[[3.0682955, 50.6318493], [3.0686837, 50.6303459]])

BAD_EVENTS: dict[str, tuple[Callable[[], Event], str]] = {
    "other type": (
        lambda: _with_segments(ev.segment(ev.RUE_DE_PARIS), event_type=EventType.OTHER),
        "no Waze type for events of type other",
    ),
    "unmatched": (lambda: _with_segments(), "not matched to a single street"),
    "open closure": (
        lambda: _with_segments(ev.segment(ev.RUE_DE_PARIS), open_ended=True),
        "a closure needs an end time for Waze",
    ),
    "short id": (
        lambda: ev.make_event("ab", NOW, segments=[ev.segment(ev.RUE_DE_PARIS)]),
        "id 'ab' is shorter than 3 characters",
    ),
    "control char in id": (
        lambda: ev.make_event("cl-\x01-0300", NOW, segments=[ev.segment(ev.RUE_DE_PARIS)]),
        "id has characters XML cannot carry or stray whitespace",
    ),
    "blank description": (
        lambda: _with_segments(ev.segment(ev.RUE_DE_PARIS), description=" \x07\n "),
        "description is empty",
    ),
    "same second": (
        lambda: _with_segments(
            ev.segment(ev.RUE_DE_PARIS),
            starts_at=NOW.replace(microsecond=100_000),
            ends_at=NOW.replace(microsecond=900_000),
        ),
        "end time is not after start time (to the second)",
    ),
    "no street": (lambda: _with_segments(ev.segment(ev.RUE_DE_PARIS, street=None)), "segment 1 has no street name"),
    "one-letter street": (
        lambda: _with_segments(ev.segment(ev.RUE_DE_PARIS, street="R")),
        "segment 1 has no street name",
    ),
    "two streets": (
        lambda: _with_segments(ev.segment(ev.RUE_DE_PARIS, street="Rue de Paris;Rue Pierre Mauroy")),
        "segment 1 names several streets ('Rue de Paris;Rue Pierre Mauroy'); Waze needs one",
    ),
    "postcode suffix": (
        lambda: _with_segments(ev.segment(ev.RUE_DE_PARIS, street="Rue de Paris, 59800 Lille")),
        "street 'Rue de Paris, 59800 Lille' carries a commune or postcode; Waze needs the bare street name",
    ),
    "DiaLog street with commune": (
        lambda: _with_segments(
            ev.segment(ev.RUE_DE_PARIS, street="ROUTE 147 (NOYELLES-LÈS-SECLIN) DU PR7 +779 AU PR8 +413")
        ),
        "carries a commune or postcode",
    ),
    "one point": (
        lambda: _with_segments(ev.segment(ev.RUE_DE_PARIS, 0, 1)),
        "segment 1 has fewer than 2 distinct points; Waze needs 2",
    ),
    "same point after rounding": (
        lambda: _with_segments(_line((3.0682955, 50.6318493), (3.06829551, 50.63184931)), geometry=_REAL_LINE),
        "segment 1 has fewer than 2 distinct points; Waze needs 2",
    ),
    "not numbers": (
        lambda: _with_segments(_line((math.nan, 50.63), (3.06, 50.64)), geometry=_REAL_LINE),
        "segment 1 has coordinates that are not numbers",
    ),
    "latitude out of range": (
        lambda: _with_segments(_line((3.05, 95.0), (3.06, 95.1))),
        "segment 1 has coordinates outside latitude/longitude ranges",
    ),
    "swapped": (
        lambda: _with_segments(_line(*[(lat, lon) for lon, lat in ev.RUE_DE_PARIS.coordinates]), geometry=_REAL_LINE),
        "segment 1 lies away from the event's geometry (latitude and longitude swapped?)",
    ),
    "too short": (
        lambda: _with_segments(ev.segment(ev.RUE_DE_PARIS, 2, 5), ev.segment(ev.RUE_DE_PARIS, 0, 2)),
        "segment 2 is 3.5 m long; Waze needs 35 m to 10 km",
    ),
    "too long": (
        lambda: _with_segments(_line((3.00, 50.60), (3.09, 50.60), (3.18, 50.60))),
        "segment 1 is 12.74 km long; Waze needs 35 m to 10 km",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_EVENTS))
def test_gate_rejects_with_a_readable_reason(case: str) -> None:
    build, expected = BAD_EVENTS[case]
    reasons = check_waze(build(), ctx_at(NOW))
    assert len(reasons) == 1
    assert expected in reasons[0]


def test_renderers_check_like_check_waze_every_time() -> None:
    ctx = ctx_at(NOW)
    events = [build() for build, _ in BAD_EVENTS.values()] + ev.lille_scenarios(NOW)
    for renderer in (xml_renderer(), json_renderer()):
        first = [renderer.check(event, ctx) for event in events]
        first[0].append("mutated by a caller")
        assert [renderer.check(event, ctx) for event in events] == [check_waze(event, ctx) for event in events]
    later = ctx_at(NOW + timedelta(days=30))  # the scenarios' periods are over by then
    renderer, scenarios = xml_renderer(), ev.lille_scenarios(NOW)[:2]
    assert [renderer.check(event, ctx) for event in scenarios] == [[], []]
    assert [renderer.check(event, later) for event in scenarios] == [["ended"], ["ended"]]


def test_gate_accepts_every_current_lille_scenario() -> None:
    ctx = ctx_at(NOW)
    current = [event for event in ev.lille_scenarios(NOW) if event.is_current(NOW)]
    assert len(current) == 6
    expected: dict[str, list[str]] = {event.id: [] for event in current}
    expected[ev.waze_accident(NOW).id] = ["reported by Waze itself: not sent back to Waze"]
    assert {event.id: check_waze(event, ctx) for event in current} == expected


def test_mixed_feed_keeps_the_good_and_stays_valid(cifs_schema: xmlschema.XMLSchema) -> None:
    ctx = ctx_at(NOW)
    bad = [build() for build, _ in BAD_EVENTS.values()]
    good = [e for e in ev.lille_scenarios(NOW) if e.is_current(NOW) and e.id != ev.waze_accident(NOW).id]
    feed = publishable([*bad, *good], ctx)
    assert {event.id for event in feed} == {event.id for event in good}
    body = xml_renderer().render(feed, ctx)
    cifs_schema.validate(body.decode())
    assert waze_rule_problems(etree.fromstring(body), {event.id for event in good}) == []


# --- properties -----------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    now=st.sampled_from([ev.WINTER_NOW, ev.SUMMER_NOW, datetime(2026, 3, 29, 1, 30, tzinfo=PARIS)]),
    data=st.data(),
)
def test_random_mel_events_render_valid_feeds(
    cifs_schema: xmlschema.XMLSchema, now: datetime, data: st.DataObject
) -> None:
    ctx = ctx_at(now)
    events = list(
        {event.id: event for event in data.draw(st.lists(ev.mel_events(now), min_size=1, max_size=4))}.values()
    )
    waze_reason = ["reported by Waze itself: not sent back to Waze"]
    expected = {e.id: waze_reason if e.sources[0].kind.startswith("waze") else [] for e in events}
    assert {event.id: check_waze(event, ctx) for event in events} == expected
    body = xml_renderer().render(events, ctx)  # the renderer itself renders whatever it is given
    cifs_schema.validate(body.decode())
    root = etree.fromstring(body)
    event_ids = {event.id for event in events}
    assert waze_rule_problems(root, event_ids) == []
    ids = [node.get("id", "") for node in root.iter("incident")]
    assert len(ids) == sum(len(event.segments) for event in events)
    assert all(any(incident_id.startswith(event_id) for event_id in event_ids) for incident_id in ids)
    document = orjson.loads(json_renderer().render(events, ctx))
    assert json_items(document) == xml_items(root)


@given(st.floats(-180, 180))
def test_gate_rounding_matches_polyline_formatting(value: float) -> None:
    """The gate counts points after `round(x, 6)`; the polyline prints `x:.6f`: same digits."""
    assert f"{round(value, 6):.6f}" == f"{value:.6f}"
