"""WZDx 4.2 feed: validity against the vendored JSON schemas, directions, occurrences, the gate."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from traffic_hub.feeds.base import FeedContext, Renderer
from traffic_hub.feeds.validation import wzdx_errors, wzdx_validator
from traffic_hub.feeds.wzdx import WzdxWorkZones, check_wzdx, compass
from traffic_hub.model import Direction, Event, EventType, Schedule

from . import events as ev

RENDERER: Renderer = WzdxWorkZones()
NOW = ev.WINTER_NOW  # Thursday 2026-01-15 10:30 in Lille
UTC_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
SENTENCE = re.compile(r"^[A-Za-z][^\n]* [^\n]*[a-z0-9)]$")


def feed(events: Sequence[Event], now: datetime = NOW) -> tuple[dict[str, Any], list[Event]]:
    ctx = FeedContext(now=now)
    kept = [event for event in events if event.is_current(now) and not RENDERER.check(event, ctx)]
    document = RENDERER.render(kept, ctx)
    assert wzdx_errors(document) == []
    return orjson.loads(document), kept


def features_by_id(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {feature["id"]: feature for feature in document["features"]}


def test_the_lille_feed_validates_and_carries_only_current_work_zones() -> None:
    document, kept = feed(ev.partner_scenarios(NOW))

    assert {event.id for event in kept} == {
        "cl-LILLE-2026-0042",
        "cl-LILLE-2026-0051",
        "cl-LILLE-2026-0077",
        "cl-LILLE-2026-0100",
        "cl-LILLE-2026-0120",
        "cl-LILLE-2026-0133",
    }
    for feature in document["features"]:
        assert any(feature["id"].startswith(event.id) for event in kept)
        properties = feature["properties"]
        assert properties["core_details"]["event_type"] == "work-zone"
        for key in ("start_date", "end_date"):
            assert UTC_TIME.match(properties[key])
        assert [
            properties[f"is_{k}_verified"] for k in ("start_date", "end_date", "start_position", "end_position")
        ] == [False] * 4
    assert document["feed_info"]["version"] == "4.2"
    assert UTC_TIME.match(document["feed_info"]["update_date"])
    assert "license" not in document["feed_info"]


def test_a_one_way_lane_closure_has_a_compass_direction_and_every_lane() -> None:
    document, _ = feed([ev.lane_closure(NOW)])
    feature = features_by_id(document)["cl-LILLE-2026-0077"]
    properties = feature["properties"]

    assert properties["core_details"]["direction"] == "eastbound"  # Boulevard de la Liberté, north-west to south-east
    assert properties["core_details"]["road_names"] == ["Boulevard de la Liberté"]
    assert properties["vehicle_impact"] == "some-lanes-closed"
    assert properties["lanes"] == [
        {"order": 1, "status": "open", "type": "general"},
        {"order": 2, "status": "closed", "type": "general"},
    ]
    assert feature["geometry"]["coordinates"][0] == [3.05181, 50.637217]


def test_a_closure_in_both_directions_is_two_related_road_events() -> None:
    event = ev.braderie_closure(NOW)
    document, _ = feed([event])
    forward, backward = (features_by_id(document)[f"{event.id}-{n}"] for n in (1, 2))

    assert [
        forward["properties"]["core_details"]["direction"],
        backward["properties"]["core_details"]["direction"],
    ] == [
        "eastbound",
        "westbound",
    ]
    assert backward["geometry"]["coordinates"] == forward["geometry"]["coordinates"][::-1]
    assert forward["properties"]["core_details"]["related_road_events"] == [
        {"type": "related-work-zone", "id": f"{event.id}-2"}
    ]
    assert forward["properties"]["vehicle_impact"] == "all-lanes-closed"


def test_an_unknown_direction_stays_one_road_event() -> None:
    event = ev.roadworks_beside_road(NOW).model_copy(update={"direction": Direction.UNKNOWN})
    document, _ = feed([event])

    assert list(features_by_id(document)) == [event.id]
    assert document["features"][0]["properties"]["core_details"]["direction"] == "unknown"
    assert document["features"][0]["properties"]["vehicle_impact"] == "unknown"


def test_compass_directions() -> None:
    origin = (3.05, 50.63)
    assert compass([origin, (3.05, 50.64)]) == "northbound"
    assert compass([origin, (3.06, 50.63)]) == "eastbound"
    assert compass([origin, (3.05, 50.62)]) == "southbound"
    assert compass([origin, (3.04, 50.631)]) == "westbound"
    assert compass([origin, (3.06, 50.64), origin]) in {"northbound", "eastbound"}  # a loop: towards its far end


def test_a_schedule_publishes_the_current_or_next_window_in_utc() -> None:
    day, night = ev.scheduled_closure(NOW), ev.nightly_closure(NOW)
    document, _ = feed([day, night])
    found = features_by_id(document)

    # Thursday 08:00-12:00 and 20:00-23:30 in Lille (+01:00)
    assert (found[f"{day.id}-1"]["properties"]["start_date"], found[f"{day.id}-1"]["properties"]["end_date"]) == (
        "2026-01-15T07:00:00Z",
        "2026-01-15T11:00:00Z",
    )
    assert (found[f"{night.id}-2"]["properties"]["start_date"], found[f"{night.id}-2"]["properties"]["end_date"]) == (
        "2026-01-15T19:00:00Z",
        "2026-01-15T22:30:00Z",
    )
    # Thursday 12:30: the morning window is over, the afternoon one is next
    later, _ = feed([day], NOW + timedelta(hours=1, minutes=30))
    assert later["features"][0]["properties"]["start_date"] == "2026-01-15T12:30:00Z"


def test_a_schedule_with_no_window_left_is_withheld() -> None:
    event = ev.scheduled_closure(NOW)
    only_sunday = event.validity.model_copy(
        update={"schedule": Schedule(sunday=["08:00-12:00"]), "ends_at": NOW + timedelta(days=2)}
    )
    reasons = check_wzdx(event.model_copy(update={"validity": only_sunday}), FeedContext(now=NOW))

    assert reasons == ["no scheduled window is left before the end of the event"]


def test_data_sources_are_listed_once_per_origin() -> None:
    connector = ev.roadworks_beside_road(NOW)
    report = connector.sources[0].model_copy(update={"source": ev.DATEX2_CONNECTOR, "kind": "datex2-record"})
    relayed = connector.model_copy(update={"id": "dx-DIRN-WORKS-1", "sources": [report]})
    document, _ = feed([ev.scheduled_closure(NOW), ev.lane_closure(NOW), relayed])

    sources = [source["data_source_id"] for source in document["feed_info"]["data_sources"]]
    assert sources == ["mel-roadworks", ev.DATEX2_CONNECTOR]
    used = {feature["properties"]["core_details"]["data_source_id"] for feature in document["features"]}
    assert used == set(sources)
    assert features_by_id(document)["dx-DIRN-WORKS-1-1"]["properties"]["core_details"]["data_source_id"] == (
        ev.DATEX2_CONNECTOR
    )


def test_bad_items_are_withheld_with_reasons_and_the_feed_stays_valid() -> None:
    ctx = FeedContext(now=NOW)
    open_ended = ev.roadworks_beside_road(NOW).model_copy(
        update={
            "id": "cl-open",
            "validity": ev.roadworks_beside_road(NOW).validity.model_copy(update={"ends_at": None}),
        }
    )
    point = ev.waze_accident(NOW).model_copy(update={"type": EventType.ROADWORKS, "id": "wz-works"})
    bad = [
        ev.lane_closure_without_counts(NOW),
        ev.degenerate_closure(NOW),
        open_ended,
        point,
        ev.conflated_accident(NOW),
    ]

    assert [check_wzdx(event, ctx) for event in bad] == [
        ["the lane counts are inconsistent: 3 closed of 2"],
        ["the line has fewer than 2 distinct points"],
        ["WZDx needs an end date and the event has none"],
        ["WZDx needs a line and the event has only a point", "WZDx needs an end date and the event has none"],
        ["not a work zone"],
    ]
    reasons = [reason for event in bad for reason in check_wzdx(event, ctx)]
    assert all(SENTENCE.match(reason) for reason in reasons), reasons
    _, kept = feed([*ev.partner_scenarios(NOW), *bad])
    assert not {event.id for event in bad} & {event.id for event in kept}
    assert len(kept) == 6


def test_the_validator_is_real() -> None:
    document, _ = feed([ev.lane_closure(NOW)])
    document["features"][0]["properties"]["core_details"]["direction"] = "both"
    document["feed_info"]["update_date"] = "15/01/2026"

    errors = wzdx_errors(document)
    assert errors[0] == "feed_info/update_date: '15/01/2026' is not a 'date-time'"
    assert errors[1].startswith("features/0/properties/core_details/direction: 'both' is not one of")
    assert wzdx_validator() is wzdx_validator()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ev.mel_varied_events(NOW), min_size=1, max_size=6, unique_by=lambda event: event.id))
def test_random_valid_events_always_make_a_valid_feed(events: list[Event]) -> None:
    document, kept = feed(events)  # validates

    ids = [feature["id"] for feature in document["features"]]
    assert len(ids) == len(set(ids))
    assert all(any(feature_id.startswith(event.id) for event in kept) for feature_id in ids)
    assert all(event.type in {EventType.CLOSURE, EventType.LANE_CLOSURE, EventType.ROADWORKS} for event in kept)
