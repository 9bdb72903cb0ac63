"""DATEX II v3 feed: validity against the vendored 3.7 schemas, the mapping, the gate."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from traffic_hub.feeds.base import FeedContext, Renderer
from traffic_hub.feeds.datex2 import Datex2Situations, check_datex2, schedule_groups
from traffic_hub.feeds.datex2_v2 import Datex2V2Situations
from traffic_hub.feeds.validation import datex2_errors, datex2_schema, datex2_v2_errors
from traffic_hub.model import Event, EventType, Schedule
from traffic_hub.model.geometry import MultiLineString
from traffic_hub.model.validity import WEEKDAYS

from . import events as ev

RENDERER: Renderer = Datex2Situations()
LEGACY: Renderer = Datex2V2Situations()
V2 = {"d2": "http://datex2.eu/schema/2/2_0"}
NOW = ev.WINTER_NOW
NS = {
    "d2": "http://datex2.eu/schema/3/d2Payload",
    "sit": "http://datex2.eu/schema/3/situation",
    "com": "http://datex2.eu/schema/3/common",
    "loc": "http://datex2.eu/schema/3/locationReferencing",
    "xsi": "http://www.w3.org/2001/XMLSchema-instance",
}
XSI_TYPE = f"{{{NS['xsi']}}}type"
SENTENCE = re.compile(r"^[A-Za-z][^\n]* [^\n]*[a-z0-9)]$")


def feed(events: Sequence[Event], now: datetime = NOW) -> tuple[bytes, list[Event]]:
    """What the engine does: keep current events the gate lets through, render them."""
    ctx = FeedContext(now=now)
    kept = [event for event in events if event.is_current(now) and not RENDERER.check(event, ctx)]
    return RENDERER.render(kept, ctx), kept


def situations(document: bytes) -> dict[str, etree._Element]:
    root = etree.fromstring(document)
    return {node.get("id", ""): node for node in root.iterfind("sit:situation", NS)}


def records(situation: etree._Element) -> dict[str, etree._Element]:
    return {node.get("id", ""): node for node in situation.iterfind("sit:situationRecord", NS)}


def test_the_lille_feed_validates_against_datex2_3_7() -> None:
    document, kept = feed(ev.partner_scenarios(NOW))

    assert datex2_errors(document) == []
    assert set(situations(document)) == {event.id for event in kept}
    assert {"cl-LILLE-2026-0003", "cl-LILLE-2026-0004"}.isdisjoint(situations(document))  # ended, cancelled
    assert len(kept) == 10


def test_the_document_uses_the_canonical_prefixes_and_the_publisher() -> None:
    document, _ = feed([ev.scheduled_closure(NOW)])
    root = etree.fromstring(document)

    assert {prefix: root.nsmap[prefix] for prefix in ("d2", "sit", "com", "loc")} == {
        k: NS[k] for k in NS if k != "xsi"
    }
    assert root.get(XSI_TYPE) == "sit:SituationPublication"
    assert root.findtext("com:publicationCreator/com:country", namespaces=NS) == "FR"
    assert root.findtext("com:publicationCreator/com:nationalIdentifier", namespaces=NS) == "MEL"
    assert root.findtext("com:publicationTime", namespaces=NS) == "2026-01-15T10:30:00+01:00"
    assert b'targetClass="sit:SituationRecord"' in document


def test_a_roadworks_closure_is_a_road_closed_record_managing_a_works_record() -> None:
    event = ev.scheduled_closure(NOW)
    document, _ = feed([event])
    found = records(situations(document)[event.id])

    closure, works = found[event.id], found[f"{event.id}-works"]
    assert closure.get(XSI_TYPE) == "sit:RoadOrCarriagewayOrLaneManagement"
    assert closure.findtext("sit:roadOrCarriagewayOrLaneManagementType", namespaces=NS) == "roadClosed"
    assert closure.findtext("sit:applicableForTrafficDirection", namespaces=NS) == "bothWays"
    reference = closure.find("sit:cause/sit:managedCause/sit:objectReference", NS)
    assert reference is not None
    assert reference.get("id") == f"{event.id}-works"
    assert works.get(XSI_TYPE) == "sit:MaintenanceWorks"
    assert works.findtext("sit:roadMaintenanceType", namespaces=NS) == "roadworks"


def test_the_weekly_schedule_becomes_valid_periods_in_local_time() -> None:
    event = ev.scheduled_closure(NOW)
    document, _ = feed([event])
    closure = records(situations(document)[event.id])[event.id]
    spec = closure.find("sit:validity/com:validityTimeSpecification", NS)
    assert spec is not None

    periods = [
        (
            [day.text for day in period.iterfind("com:recurringDayWeekMonthPeriod/com:applicableDay", NS)],
            [
                (
                    window.findtext("com:startTimeOfPeriod", namespaces=NS),
                    window.findtext("com:endTimeOfPeriod", namespaces=NS),
                )
                for window in period.iterfind("com:recurringTimePeriodOfDay", NS)
            ],
        )
        for period in spec.iterfind("com:validPeriod", NS)
    ]
    assert periods == [
        (["monday", "tuesday", "thursday", "friday"], [("08:00:00", "12:00:00"), ("13:30:00", "17:00:00")]),
        (["wednesday"], [("08:00:00", "12:00:00")]),
    ]
    assert spec.findtext("com:overallStartTime", namespaces=NS) == "2026-01-13T10:30:00+01:00"
    assert spec.findtext("com:overallEndTime", namespaces=NS) == "2026-01-27T10:30:00+01:00"


def test_schedule_groups_cover_every_day_once() -> None:
    schedule = ev.nightly_closure(NOW).validity.schedule
    assert schedule is not None
    assert schedule_groups(schedule) == [(list(WEEKDAYS), ["20:00-23:30"])]


def test_a_window_ending_at_midnight_is_24_00_and_valid_in_both_versions() -> None:
    event = ev.nightly_closure(NOW)
    late = event.validity.model_copy(update={"schedule": Schedule(friday=["20:00-24:00"])})
    document, kept = feed([event.model_copy(update={"validity": late})])

    assert b"<com:endTimeOfPeriod>24:00:00</com:endTimeOfPeriod>" in document
    assert datex2_errors(document) == []
    assert datex2_v2_errors(LEGACY.render(kept, FeedContext(now=NOW))) == []


def test_a_lane_closure_names_its_lanes() -> None:
    event = ev.lane_closure(NOW)
    document, _ = feed([event])
    closure = records(situations(document)[event.id])[event.id]

    assert closure.findtext("sit:roadOrCarriagewayOrLaneManagementType", namespaces=NS) == "laneClosures"
    assert closure.findtext("sit:impact/sit:numberOfLanesRestricted", namespaces=NS) == "1"
    assert closure.findtext("sit:impact/sit:numberOfOperationalLanes", namespaces=NS) == "1"
    assert closure.findtext("sit:applicableForTrafficDirection", namespaces=NS) == "aligned"
    description = closure.find("sit:locationReference/loc:supplementaryPositionalDescription", NS)
    assert description is not None
    assert description.findtext("loc:positionOnCarriageway", namespaces=NS) == "onTheRight"
    assert description.findtext("loc:carriageway/loc:originalNumberOfLanes", namespaces=NS) == "2"
    assert description.findtext("loc:carriageway/loc:lane/loc:laneUsage", namespaces=NS) == "rightLane"
    assert description.findtext("loc:roadInformation/loc:roadName", namespaces=NS) == "Boulevard de la Liberté"


def test_lines_are_gml_pos_lists_in_lat_lon_order() -> None:
    event = ev.lane_closure(NOW)
    document, _ = feed([event])
    closure = records(situations(document)[event.id])[event.id]
    location = closure.find("sit:locationReference", NS)
    assert location is not None
    assert location.get(XSI_TYPE) == "loc:LinearLocation"

    pos_list = location.findtext("loc:gmlLineString/loc:posList", namespaces=NS) or ""
    numbers = [float(value) for value in pos_list.split()]
    pairs = list(zip(numbers[::2], numbers[1::2], strict=True))
    expected = [(round(lat, 6), round(lon, 6)) for lon, lat in ev.BOULEVARD_DE_LA_LIBERTE.coordinates]
    assert pairs == expected


def test_a_conflated_accident_is_a_point_naming_every_source() -> None:
    event = ev.conflated_accident(NOW)
    document, _ = feed([event])
    record = records(situations(document)[event.id])[event.id]

    assert record.get(XSI_TYPE) == "sit:Accident"
    assert record.get("version") == "3"
    assert record.findtext("sit:accidentType", namespaces=NS) == "accident"
    assert record.findtext("sit:probabilityOfOccurrence", namespaces=NS) == "certain"  # confirmed by an operator
    assert record.findtext("sit:source/com:sourceIdentification", namespaces=NS) == "waze-mel, datex2-dir-nord"
    point = record.find("sit:locationReference/loc:pointByCoordinates/loc:pointCoordinates", NS)
    assert point is not None
    assert (point.findtext("loc:latitude", namespaces=NS), point.findtext("loc:longitude", namespaces=NS)) == (
        "50.635796",
        "3.050160",
    )


def test_each_event_type_gets_its_record_type() -> None:
    hazard = ev.waze_accident(NOW).model_copy(update={"type": EventType.HAZARD, "subtype": "HAZARD_ON_ROAD_OBJECT"})
    cases = [
        (ev.waze_jam(NOW), ("sit:AbnormalTraffic", "sit:abnormalTrafficType", "stationaryTraffic")),
        (ev.fog_warning(NOW), ("sit:PoorEnvironmentConditions", "sit:poorEnvironmentType", "fog")),
        (ev.roadworks_beside_road(NOW), ("sit:MaintenanceWorks", "sit:roadMaintenanceType", "roadworks")),
        (hazard, ("sit:GeneralObstruction", "sit:obstructionType", "objectOnTheRoad")),
    ]
    document, _ = feed([event for event, _ in cases])
    found = situations(document)

    assert datex2_errors(document) == []
    for event, (xsi_type, element, value) in cases:
        record = records(found[event.id])[event.id]
        assert (record.get(XSI_TYPE), record.findtext(element, namespaces=NS)) == (xsi_type, value)
        certainty = "probable" if event.sources[0].source == ev.WAZE_SOURCE else "certain"  # Waze users only
        assert record.findtext("sit:probabilityOfOccurrence", namespaces=NS) == certainty


def test_text_is_escaped_and_versions_follow_the_event() -> None:
    event = ev.roadworks_beside_road(NOW).model_copy(update={"version": 7})
    document, _ = feed([event])
    record = records(situations(document)[event.id])[event.id]

    assert datex2_errors(document) == []
    comment = record.findtext("sit:generalPublicComment/sit:comment/com:values/com:value", namespaces=NS)
    assert comment == "Réfection du trottoir & des bordures <côté pair>"
    assert record.get("version") == "7"


def test_a_multi_line_event_is_a_location_group() -> None:
    event = ev.braderie_closure(NOW)
    multi = MultiLineString(
        type="MultiLineString", coordinates=[[list(p) for p in part.coordinates] for part in event.segments]
    )
    document, _ = feed([event.model_copy(update={"geometry": multi})])
    record = records(situations(document)[event.id])[event.id]
    location = record.find("sit:locationReference", NS)

    assert datex2_errors(document) == []
    assert location is not None
    assert location.get(XSI_TYPE) == "loc:LocationGroupByList"
    assert len(location.findall("loc:locationContainedInGroup", NS)) == 3


def test_bad_items_are_withheld_with_reasons_and_the_feed_stays_valid() -> None:
    ctx = FeedContext(now=NOW)
    bad_lanes, degenerate = ev.lane_closure_without_counts(NOW), ev.degenerate_closure(NOW)
    police = ev.waze_accident(NOW).model_copy(update={"type": EventType.POLICE, "id": "wz-police-1"})

    assert check_datex2(bad_lanes, ctx) == ["the lane counts are inconsistent: 3 closed of 2"]
    assert check_datex2(degenerate, ctx) == ["the line has fewer than 2 distinct points"]
    assert check_datex2(police, ctx) == ["police sightings are not published in DATEX II"]
    document, kept = feed([*ev.partner_scenarios(NOW), bad_lanes, degenerate, police])
    assert datex2_errors(document) == []
    assert {bad_lanes.id, degenerate.id, police.id}.isdisjoint(situations(document))
    assert len(kept) == 10


def test_gate_reasons_are_sentences() -> None:
    ctx = FeedContext(now=NOW)
    later = NOW + timedelta(days=40)
    bad = [
        ev.lane_closure_without_counts(NOW),
        ev.degenerate_closure(NOW),
        ev.waze_accident(NOW).model_copy(update={"type": EventType.OTHER}),
        ev.cancelled_closure(NOW),
    ]
    reasons = [reason for event in bad for reason in check_datex2(event, ctx)]
    reasons += check_datex2(ev.scheduled_closure(NOW), FeedContext(now=later))

    assert len(reasons) == 5
    assert all(SENTENCE.match(reason) or reason in {"ended", "cancelled"} for reason in reasons), reasons


def test_the_schema_rejects_a_broken_document() -> None:
    """The validator is real: a record without its mandatory type element fails."""
    document, _ = feed([ev.waze_accident(NOW)])
    broken = document.replace(b"<sit:accidentType>accident</sit:accidentType>", b"")

    assert datex2_errors(broken) != []
    assert datex2_schema() is datex2_schema()  # compiled once


def v2_situations(document: bytes) -> dict[str, etree._Element]:
    root = etree.fromstring(document)
    return {node.get("id", ""): node for node in root.iterfind("d2:payloadPublication/d2:situation", V2)}


def test_the_legacy_v2_3_feed_carries_the_same_situations_and_validates() -> None:
    ctx = FeedContext(now=NOW)
    document, kept = feed(ev.partner_scenarios(NOW))
    legacy = LEGACY.render(kept, ctx)

    assert datex2_v2_errors(legacy) == []
    assert set(v2_situations(legacy)) == set(situations(document))
    assert LEGACY.name == RENDERER.name == "datex2"  # one gate, one publication entry


def test_the_legacy_feed_says_lines_as_tpeg_segments_and_keeps_lanes() -> None:
    event = ev.lane_closure(NOW)
    legacy = LEGACY.render([event], FeedContext(now=NOW))
    record = v2_situations(legacy)[event.id].find("d2:situationRecord", V2)
    assert record is not None

    linear = record.find("d2:groupOfLocations/d2:tpegLinearLocation", V2)
    assert linear is not None
    first, last = ev.BOULEVARD_DE_LA_LIBERTE.coordinates[0], ev.BOULEVARD_DE_LA_LIBERTE.coordinates[-1]
    assert linear.findtext("d2:from/d2:pointCoordinates/d2:latitude", namespaces=V2) == f"{first[1]:.6f}"
    assert linear.findtext("d2:to/d2:pointCoordinates/d2:longitude", namespaces=V2) == f"{last[0]:.6f}"
    assert linear.findtext("d2:tpegDirection", namespaces=V2) == "eastBound"
    assert record.findtext("d2:impact/d2:originalNumberOfLanes", namespaces=V2) == "2"
    lanes = "d2:groupOfLocations/d2:supplementaryPositionalDescription/d2:affectedCarriagewayAndLanes/d2:lane"
    assert record.findtext(lanes, namespaces=V2) == "rightLane"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ev.mel_varied_events(NOW), min_size=1, max_size=6, unique_by=lambda event: event.id))
def test_random_valid_events_always_make_valid_documents(events: list[Event]) -> None:
    document, kept = feed(events)
    legacy = LEGACY.render(kept, FeedContext(now=NOW))

    assert datex2_errors(document) == []
    assert datex2_v2_errors(legacy) == []
    assert set(situations(document)) == {event.id for event in kept} == set(v2_situations(legacy))
    assert all(event.type in (EventType.POLICE, EventType.OTHER) for event in events if event not in kept)
