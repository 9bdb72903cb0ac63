"""The DATEX II parser on real v2.2/2.3/3.x publications and the Lille variants."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from connectors.base import PayloadError
from connectors.datex2 import Datex2Parser
from tests.connectors.sources import LILLE, context, read
from traffic_hub.model import Cause, Direction, EventType, LineString, Point

PARSER = Datex2Parser()


def test_bison_fute_v22_vehicle_obstruction() -> None:
    parsed = PARSER.parse(read("datex2/fr-bisonfute-tipi/events.xml"), context())
    [record] = parsed.incidents
    assert parsed.rejects == []
    assert parsed.snapshot is False
    assert (record.source_id, record.source_version) == ("260724-000456-1", "1")
    assert (record.type, record.subtype, record.cause) == (EventType.HAZARD, "brokenDownVehicle", Cause.HAZARD)
    assert record.geometry == Point(type="Point", coordinates=[2.3988867, 48.821583])
    assert record.street == "A0004"
    assert record.direction is Direction.ONE_DIRECTION
    assert record.description.startswith("Sur 500 m")
    assert record.said["situation_id"] == "260724-000456"
    assert record.said["datex2"] == "2"
    assert record.lanes == {"total": 5}
    assert record.validity.ends_at is None
    assert record.ended is False


def test_ndw_v3_message_container() -> None:
    parsed = PARSER.parse(read("datex2/nl-ndw/situations.xml"), context())
    assert len(parsed.incidents) == 10
    [reject] = parsed.rejects
    assert reject.source_id == "RWS01_M1168188_JUNCTION_CLOSURE_1_D2_WWA"
    assert "no coordinates" in reject.reason
    assert reject.raw.startswith(b"<")
    lanes = {i.source_id: i for i in parsed.incidents}["RWS01_M1162215_CLOSED_LANES_D2_WWA"]
    assert (lanes.type, lanes.cause, lanes.lanes) == (
        EventType.LANE_CLOSURE,
        Cause.ROADWORKS,
        {"closed": 1, "total": 2},
    )
    assert isinstance(lanes.geometry, LineString)
    assert lanes.geometry.coordinates[0] == [6.207613, 52.693642]  # posList "52.693642 6.207613 …" is lat lon
    assert lanes.validity.ends_at == datetime(2026, 12, 1, 11, 0, tzinfo=UTC)


def test_ndw_srti_point() -> None:
    [record] = PARSER.parse(read("datex2/nl-ndw/srti.xml"), context()).incidents
    assert record.geometry == Point(type="Point", coordinates=[4.0216646, 51.46491])
    assert record.description == "Botsabsorber"
    assert record.validity.starts_at == datetime(2026, 7, 24, 20, 5, 0, 43328, tzinfo=UTC)  # nanoseconds cut


def test_norway_v31_projected_gml_is_reprojected() -> None:
    parsed = PARSER.parse(read("datex2/no-svv/GetSituations_Datex3.xml"), context())
    assert len(parsed.incidents) == 3
    assert parsed.rejects == []
    works = parsed.incidents[0]
    assert works.street == "Tyinvegen"
    assert isinstance(works.geometry, LineString)
    lon, lat = works.geometry.coordinates[0]  # EPSG:25833 → near coordinatesForDisplay 8.7109, 61.1455
    assert lon == pytest.approx(8.705, abs=0.01)
    assert lat == pytest.approx(61.146, abs=0.01)
    assert works.ended is True  # overallEndTime 2022-08-20 is before the reception time


def test_fintraffic_alert_c_only_records_are_rejected() -> None:
    parsed = PARSER.parse(read("datex2/fi-fintraffic/roadworks.xml"), context())
    assert parsed.incidents == []
    assert [r.source_id for r in parsed.rejects] == ["GUID5047012301", "GUID5047012302", "GUID5047012303"]


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("datex2/fr-bisonfute-tipi/speeds.xml", "MeasuredDataPublication"),
        ("cifs/dialog-fr_cifs-feed_test-fixture.xml", "not a DATEX II document"),
    ],
)
def test_other_publications_are_payload_errors(path: str, reason: str) -> None:
    with pytest.raises(PayloadError, match=reason):
        PARSER.parse(read(path), context())


def test_lille_v3() -> None:
    parsed = PARSER.parse((LILLE / "lille_datex2-v3_situations.xml").read_bytes(), context())
    by_id = {i.source_id: i for i in parsed.incidents}
    assert parsed.rejects == []
    assert set(by_id) == {
        "LILLE_REC_NATIONALE_WORKS",
        "LILLE_REC_NATIONALE_CLOSED",
        "LILLE_REC_LIBERTE_ACCIDENT",
        "LILLE_REC_SOLFERINO_LANE",
    }
    closed = by_id["LILLE_REC_NATIONALE_CLOSED"]
    assert (closed.type, closed.cause, closed.street) == (EventType.CLOSURE, Cause.ROADWORKS, "Rue Nationale")
    assert closed.geometry.coordinates[0] == [3.049439, 50.63148]
    assert closed.said["situation_id"] == "LILLE_SIT_RUE_NATIONALE"
    assert by_id["LILLE_REC_NATIONALE_WORKS"].source_version == "2"
    accident = by_id["LILLE_REC_LIBERTE_ACCIDENT"]
    assert (accident.type, accident.reliability, accident.lanes) == (EventType.ACCIDENT, 0.7, {"closed": 1})
    assert by_id["LILLE_REC_SOLFERINO_LANE"].ended is True  # validityStatus suspended
    assert not closed.ended


def test_lille_v23_newest_version_wins() -> None:
    parsed = PARSER.parse((LILLE / "lille_datex2-v2.3_situations.xml").read_bytes(), context())
    by_id = {i.source_id: i for i in parsed.incidents}
    assert len(parsed.incidents) == 2
    works = by_id["LILLE_V2_REC_LIBERTE"]
    assert works.source_version == "2"
    assert works.validity.ends_at == datetime(2026, 12, 23, 16, 0, tzinfo=UTC)
    assert works.geometry == LineString(type="LineString", coordinates=[[3.056671, 50.634531], [3.059296, 50.633081]])
    assert works.subtype == "resurfacingWork"
    broken = by_id["LILLE_V2_REC_MOLINEL"]
    assert broken.geometry == Point(type="Point", coordinates=[3.063007, 50.632295])


def test_end_in_the_past_relative_to_reception_ends_the_record() -> None:
    payload = (LILLE / "lille_datex2-v3_situations.xml").read_bytes()
    later = PARSER.parse(payload, context(received_at=datetime(2027, 2, 1, tzinfo=UTC)))
    ended = {i.source_id for i in later.incidents if i.ended}
    assert ended == {"LILLE_REC_NATIONALE_WORKS", "LILLE_REC_NATIONALE_CLOSED", "LILLE_REC_SOLFERINO_LANE"}
