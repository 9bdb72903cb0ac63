"""The WZDx parser on the official 4.2 examples and the Lille variant."""

from __future__ import annotations

import pytest

from connectors.base import PayloadError
from connectors.wzdx import WzdxParser
from tests.connectors.sources import LILLE, context, read
from traffic_hub.model import Cause, Direction, EventType, LineString

PARSER = WzdxParser()
EXAMPLES = {
    "scenario1_simple_linestring_example.geojson": 5,
    "scenario1_simple_multipoint_example.geojson": 5,
    "scenario2_laneshift_linestring_example.geojson": 1,
    "scenario3_shoulder_bidirectional_linestring_example.geojson": 2,
    "scenario4_detour_linestring_example.geojson": 4,
    "scenario5_recurring_linestring_example.geojson": 4,
    "scenario6_multi_lane_closure_linestring_example.geojson": 1,
    "scenario7_mobileoperation_linestring_example.geojson": 2,
    "scenario8_local_access_only_bidirectional_linestring_example.geojson": 2,
}


@pytest.mark.parametrize(("name", "count"), sorted(EXAMPLES.items()))
def test_official_examples_parse_whole(name: str, count: int) -> None:
    parsed = PARSER.parse(read(f"wzdx/{name}"), context())
    assert (len(parsed.incidents), parsed.rejects, parsed.snapshot) == (count, [], True)
    assert all(i.cause is Cause.ROADWORKS and i.ended for i in parsed.incidents)  # all ended before 2026


def test_example_values() -> None:
    parsed = PARSER.parse(read("wzdx/scenario6_multi_lane_closure_linestring_example.geojson"), context())
    [zone] = parsed.incidents
    assert (zone.source_id, zone.type, zone.street) == (
        "8fed746d-8f4f-4e0c-8d9b-fa4db7c3c2d8",
        EventType.LANE_CLOSURE,
        "I-80",
    )
    assert zone.lanes == {"closed": 3, "total": 5}
    assert zone.direction is Direction.ONE_DIRECTION
    detour = PARSER.parse(read("wzdx/scenario4_detour_linestring_example.geojson"), context()).incidents[1]
    assert (detour.type, detour.subtype) == (EventType.OTHER, "detour")


def test_device_feed_features_are_rejected() -> None:
    parsed = PARSER.parse(read("wzdx/arrow_board_ok_example.geojson"), context())
    assert parsed.incidents == []
    assert [r.source_id for r in parsed.rejects] == ["280258a2-d131-4d8d-b5a7-2cef813b25a8"]


def test_lille_feed() -> None:
    parsed = PARSER.parse((LILLE / "lille_wzdx-4.2_workzones.geojson").read_bytes(), context())
    nationale, liberte, solferino = parsed.incidents
    assert (nationale.type, nationale.street, nationale.ended) == (EventType.CLOSURE, "Rue Nationale", False)
    assert nationale.said["ending_cross_street"] == "Rue de Solferino"
    assert nationale.source_version == "2026-11-28T15:00:00Z"
    assert liberte.geometry == LineString(type="LineString", coordinates=[[3.056671, 50.634531], [3.059296, 50.633081]])
    assert (liberte.type, liberte.lanes, liberte.said["geometry_type"]) == (
        EventType.LANE_CLOSURE,
        {"closed": 1, "total": 2},
        "MultiPoint",
    )
    assert (solferino.type, solferino.ended) == (EventType.ROADWORKS, True)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b'{"type": "FeatureCollection", "features": []}', "no feed_info"),
        (b'{"type": "FeatureCollection", "feed_info": {"version": "3.1"}, "features": []}', "not supported"),
        (b'{"type": "Feature"}', "not a WZDx feed"),
    ],
)
def test_payload_errors(payload: bytes, reason: str) -> None:
    with pytest.raises(PayloadError, match=reason):
        PARSER.parse(payload, context())
