"""The Waze partner feed parser on real snapshots (NYC 2019, Antofagasta 2024) and the Lille variant."""

from __future__ import annotations

import orjson
import pytest

from connectors.base import Parsed, PayloadError
from connectors.waze_partner import WazePartnerFeedParser
from tests.connectors.sources import LILLE, context, read
from traffic_hub.model import Cause, Direction, EventType, Point

PARSER = WazePartnerFeedParser()


@pytest.fixture(scope="module")
def nyc() -> Parsed:
    return PARSER.parse(read("waze-partner-feed/nyc_partner-feed_2019-03-22T2138Z.json"), context())


def test_nyc_snapshot_counts_and_values(nyc: Parsed) -> None:
    parsed = nyc
    kinds = [incident.kind for incident in parsed.incidents]
    assert parsed.snapshot is True
    assert parsed.rejects == []
    assert (kinds.count("waze-alert"), kinds.count("waze-jam"), kinds.count("waze-irregularity")) == (1364, 2117, 55)
    by_id = {incident.source_id: incident for incident in parsed.incidents}
    first = by_id["03769afc-d16d-376a-b5ed-628ade6beedf"]
    assert (first.type, first.subtype, first.cause) == (
        EventType.HAZARD,
        "HAZARD_ON_SHOULDER_CAR_STOPPED",
        Cause.HAZARD,
    )
    assert first.said["type"] == "WEATHERHAZARD"
    assert first.geometry == Point(type="Point", coordinates=[-74.183931, 40.605333])
    assert first.reliability == pytest.approx(0.6)
    assert first.validity.ends_at is None
    assert first.validity.starts_at.timestamp() == pytest.approx(1553289137.190)
    jam = by_id["jam-411005085"]
    assert jam.type is EventType.JAM
    assert jam.direction is Direction.ONE_DIRECTION
    assert jam.said == {
        "level": 3,
        "speedKMH": 12.65,
        "delay": 128,
        "length": 755,
        "type": "NONE",
        "roadType": 2,
        "endNode": "New Brunswick Ave",
        "country": "US",
    }
    assert jam.geometry.coordinates[0] == [-74.277641, 40.513274]
    irregularity = by_id["irregularity-76745544"]
    assert (irregularity.type, irregularity.subtype, irregularity.street) == (
        EventType.JAM,
        "irregularity",
        "Belt Pkwy W",
    )
    assert irregularity.said["delaySeconds"] == 697


def test_nyc_type_mapping(nyc: Parsed) -> None:
    parsed = nyc
    alerts = [incident for incident in parsed.incidents if incident.kind == "waze-alert"]
    closures = [a for a in alerts if a.type is EventType.CLOSURE]
    assert len(closures) == 97
    assert sum(1 for a in closures if a.cause is Cause.EVENT) == 87
    assert sum(1 for a in alerts if a.type is EventType.ACCIDENT) == 59
    assert sum(1 for a in alerts if a.type is EventType.WEATHER) == 5  # HAZARD_WEATHER, HAZARD_WEATHER_FLOOD
    assert sum(1 for a in alerts if a.type is EventType.ROADWORKS) == 24  # HAZARD_ON_ROAD_CONSTRUCTION
    blocked = [j for j in parsed.incidents if j.kind == "waze-jam" and j.said.get("level") == 5]
    assert len(blocked) == 93
    assert all("delay" not in j.said and j.said["blocked"] is True for j in blocked)


def test_antofagasta_2024_quirks() -> None:
    parsed = PARSER.parse(read("waze-partner-feed/antofagasta-cl_partner-feed_2024-08-23T1413Z.json"), context())
    kinds = [incident.kind for incident in parsed.incidents]
    assert (kinds.count("waze-alert"), kinds.count("waze-jam"), len(parsed.rejects)) == (8, 10, 0)
    first = parsed.incidents[0]
    assert first.said["reportByMunicipalityUser"] is False
    assert first.street == "Av. Grecia"
    hazards = [i for i in parsed.incidents if i.said.get("type") == "HAZARD"]
    assert len(hazards) == 2
    assert all(h.type in (EventType.HAZARD, EventType.WEATHER, EventType.ROADWORKS) for h in hazards)


def test_a_traffic_view_feed_is_not_a_partner_feed() -> None:
    with pytest.raises(PayloadError, match="not a Waze partner feed"):
        PARSER.parse(read("waze-partner-feed/antofagasta-cl_traffic-view-feed_2024-08-22.json"), context())


def test_lille_feed() -> None:
    parsed = PARSER.parse((LILLE / "lille_waze-partner-feed.json").read_bytes(), context())
    by_id = {incident.source_id: incident for incident in parsed.incidents}
    assert len(parsed.incidents) == 6
    closure = by_id["5b0c1f8e-3a55-4f61-9f1e-6c1d2a4e7b01"]
    assert (closure.type, closure.cause, closure.street, closure.city) == (
        EventType.CLOSURE,
        Cause.ROADWORKS,
        "Rue Nationale",
        "Lille",
    )
    assert "confidence" not in by_id["5b0c1f8e-3a55-4f61-9f1e-6c1d2a4e7b02"].said  # -1 = unknown
    assert by_id["5b0c1f8e-3a55-4f61-9f1e-6c1d2a4e7b03"].description == "Accrochage sans blessé"
    blocked = by_id["jam-1795001002"]
    assert blocked.said["blockingAlertUuid"] == "5b0c1f8e-3a55-4f61-9f1e-6c1d2a4e7b01"
    assert "delay" not in blocked.said
    assert by_id["irregularity-1795002001"].street == "Rue du Molinel"
    [reject] = parsed.rejects
    assert reject.source_id == "5b0c1f8e-3a55-4f61-9f1e-6c1d2a4e7b04"
    assert "x/y" in reject.reason
    assert orjson.loads(reject.raw)["location"]["x"] == "not-a-number"


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"[]", "not a Waze partner feed"),
        (b'{"alerts": {"uuid": "x"}}', "alerts is not a list"),
        (b"<xml/>", "not valid JSON"),
    ],
)
def test_payload_errors(payload: bytes, reason: str) -> None:
    with pytest.raises(PayloadError, match=reason):
        PARSER.parse(payload, context())


def test_bad_items_are_rejected_one_by_one() -> None:
    payload = orjson.dumps(
        {
            "alerts": [
                7,
                {"uuid": "a", "type": "ACCIDENT", "location": {"x": 3.05, "y": 50.63}},
                {"uuid": "b", "type": "ACCIDENT", "location": {"x": 200, "y": 50.63}, "pubMillis": 1},
                {"uuid": "c", "type": "POLICE", "location": {"x": 3.05, "y": 50.63}, "pubMillis": 1795939200000},
            ],
            "jams": [{"uuid": 1, "line": [{"x": 3.05, "y": 50.63}], "pubMillis": 1795939200000, "level": "2"}],
        }
    )
    parsed = PARSER.parse(payload, context())
    assert [r.source_id for r in parsed.rejects] == ["", "a", "b"]
    assert "pubMillis" in parsed.rejects[1].reason
    assert [(i.source_id, i.type) for i in parsed.incidents] == [("c", EventType.POLICE), ("jam-1", EventType.JAM)]
    assert parsed.incidents[1].geometry.type == "Point"  # a one-point jam line is kept as a point
