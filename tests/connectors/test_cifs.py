"""The CIFS parser: v2 XML (DiaLog), legacy iCone feeds, JSON shapes and the Lille variants."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from connectors.base import PayloadError
from connectors.cifs import CifsParser
from tests.connectors.sources import LILLE, context, read
from traffic_hub.model import Cause, Direction, EventType, LineString, Point

PARSER = CifsParser()


def test_dialog_v2_feed() -> None:
    parsed = PARSER.parse(read("cifs/dialog-fr_cifs-feed_test-fixture.xml"), context())
    assert (len(parsed.incidents), parsed.rejects, parsed.snapshot) == (7, [], True)
    first = parsed.incidents[0]
    assert first.source_id.startswith("F/CIFS/2023:06548f85")
    assert (first.type, first.street, first.direction) == (
        EventType.CLOSURE,
        "Rue Claude Monet",
        Direction.BOTH_DIRECTIONS,
    )
    assert first.geometry.coordinates[0] == [2.337514404, 48.910599408]  # polyline is lat lon
    assert first.validity.schedule is not None
    assert first.validity.schedule.monday == ["18:00-22:00"]
    assert first.ended is True  # ended in June 2023
    second = parsed.incidents[1]
    assert second.validity.schedule is not None
    assert second.validity.schedule.tuesday == ["12:00-14:00", "19:00-21:00"]
    assert second.validity.schedule.monday is None
    noyelles = [i for i in parsed.incidents if "NOYELLES" in (i.street or "")]
    assert len(noyelles) == 1


def test_icone_legacy_layouts() -> None:
    kentucky = PARSER.parse(read("cifs/icone-kentucky_legacy-waze-incident-feed_2020-08-21.xml"), context())
    assert [i.street for i in kentucky.incidents] == ["I-75 N", "I-75 S"]
    assert kentucky.incidents[0].geometry.coordinates[0] == [-84.112854, 37.157199]  # "lat,lon,…" commas
    assert kentucky.incidents[0].type is EventType.ROADWORKS
    colorado = PARSER.parse(read("cifs/icone-colorado_legacy-waze-incident-feed_2024-11-07.xml"), context())
    assert colorado.incidents[0].geometry == Point(type="Point", coordinates=[-104.9880685, 39.9740377])
    lane = colorado.incidents[1]
    assert (lane.type, lane.cause, lane.subtype) == (
        EventType.LANE_CLOSURE,
        Cause.ROADWORKS,
        "HAZARD_ON_ROAD_LANE_CLOSED",
    )
    assert lane.source_version == "2024-11-07T23:47:12+00:00"


def test_lille_xml() -> None:
    parsed = PARSER.parse((LILLE / "lille_cifs.xml").read_bytes(), context())
    by_id = {i.source_id: i for i in parsed.incidents}
    assert parsed.rejects == []
    closure = by_id["MEL-TEST-2026-0001"]
    assert (closure.type, closure.cause, closure.ended) == (EventType.CLOSURE, Cause.ROADWORKS, False)
    assert closure.said["parent_event"] == "MEL-TEST-EVT-NATIONALE"
    assert closure.validity.schedule is not None
    assert closure.validity.schedule.friday == ["07:00-18:00"]
    assert closure.validity.schedule.saturday is None
    lane = by_id["MEL-TEST-2026-0002"]
    assert (lane.type, lane.lanes, lane.direction) == (
        EventType.LANE_CLOSURE,
        {"closed": 1, "side": "RIGHT"},
        Direction.ONE_DIRECTION,
    )
    event = by_id["MEL-TEST-2026-0003"]
    assert (event.cause, event.ended) == (Cause.EVENT, True)
    assert event.validity.schedule is not None
    assert event.validity.schedule.monday == ["00:00-02:00", "20:00-24:00"]  # 20:00-02:00 split at midnight


def test_lille_json_both_shapes() -> None:
    parsed = PARSER.parse((LILLE / "lille_cifs.json").read_bytes(), context())
    first, second = parsed.incidents
    assert (first.source_id, first.type, first.street) == ("MEL-TEST-2026-0101", EventType.ROADWORKS, "Rue du Molinel")
    assert first.validity.ends_at == datetime(2026, 12, 11, 16, 0, tzinfo=UTC)
    assert (second.source_id, second.description, second.street) == (
        "MEL-TEST-2026-0102",
        "Accrochage",
        "Boulevard de la Liberté",
    )
    assert second.geometry == LineString(type="LineString", coordinates=[[3.058222, 50.633674], [3.058323, 50.633619]])


def test_bad_incidents_are_rejected_one_by_one() -> None:
    payload = b"""<incidents>
      <incident id="ok-1"><type>ACCIDENT</type><polyline>50.63 3.05</polyline><description>x</description></incident>
      <incident id="no-line"><type>ACCIDENT</type><description>x</description></incident>
      <incident id="swapped"><type>ACCIDENT</type><polyline>150.63 3.05</polyline></incident>
      <incident id="reversed"><type>ROAD_CLOSED</type><polyline>50.63 3.05 50.64 3.06</polyline>
        <starttime>2026-12-02T00:00:00+01:00</starttime><endtime>2026-12-01T00:00:00+01:00</endtime></incident>
      <incident id="bad-window"><type>ROAD_CLOSED</type><polyline>50.63 3.05 50.64 3.06</polyline>
        <schedule><monday>8h-10h</monday></schedule></incident>
      <incident><type>ACCIDENT</type><polyline>50.63 3.05</polyline></incident>
    </incidents>"""
    parsed = PARSER.parse(payload, context())
    assert [i.source_id for i in parsed.incidents] == ["ok-1"]
    reasons = {r.source_id: r.reason for r in parsed.rejects}
    assert "polyline is missing" in reasons["no-line"]
    assert "outside WGS84" in reasons["swapped"]
    assert "ends_at must be after starts_at" in reasons["reversed"]
    assert "schedule window" in reasons["bad-window"]
    assert "incident id is missing" in reasons[""]


@pytest.mark.parametrize(
    ("payload", "reason"),
    [(b"<feed/>", "root element is <feed>"), (b'{"items": []}', "no incidents list"), (b"\x00junk", "wide encoding")],
)
def test_payload_errors(payload: bytes, reason: str) -> None:
    with pytest.raises(PayloadError, match=reason):
        PARSER.parse(payload, context())
