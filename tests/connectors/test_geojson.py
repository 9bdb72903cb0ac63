"""The open-data GeoJSON parser with a configurable field mapping."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from connectors.base import PayloadError
from connectors.geojson import GeoJsonParser
from tests.connectors.sources import LILLE, context
from traffic_hub.model import Cause, Direction, EventType, Point

PARSER = GeoJsonParser()
LILLE_OPTIONS = {
    "id_field": "identifiant",
    "type_field": "nature",
    "description_field": "libelle",
    "street_field": "voie",
    "city_field": "commune",
    "start_field": "date_debut",
    "end_field": "date_fin",
    "direction_field": "sens",
}


def test_lille_open_data_with_a_mapping() -> None:
    parsed = PARSER.parse((LILLE / "lille_opendata_chantiers.geojson").read_bytes(), context(LILLE_OPTIONS))
    works, closure, hazard = parsed.incidents
    assert (works.source_id, works.type, works.cause, works.street, works.city) == (
        "CH-2026-0412",
        EventType.ROADWORKS,
        Cause.ROADWORKS,
        "Rue Nationale",
        "Lille",
    )
    assert works.validity.starts_at == datetime(2026, 11, 23, 6, 0, tzinfo=UTC)  # naive → Europe/Paris
    assert works.direction is Direction.BOTH_DIRECTIONS
    assert works.description == "Renouvellement de canalisations"
    assert (closure.type, closure.geometry.type) == (EventType.CLOSURE, "MultiLineString")
    assert (hazard.type, hazard.geometry) == (EventType.HAZARD, Point(type="Point", coordinates=[3.063007, 50.632295]))
    assert hazard.validity.ends_at is None
    [polygon] = parsed.rejects
    assert (polygon.source_id, "Polygon" in polygon.reason) == ("CH-2026-0415", True)
    assert parsed.snapshot is True


def test_defaults_and_lambert93() -> None:
    document = {
        "type": "FeatureCollection",
        "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::2154"}},
        "features": [
            {
                "type": "Feature",
                "id": 7,
                "properties": {"type": "accident", "starts_at": "2026-11-29T08:00:00+01:00"},
                "geometry": {"type": "Point", "coordinates": [704000.0, 7059000.0]},
            }
        ],
    }
    [incident] = PARSER.parse(orjson.dumps(document), context()).incidents
    assert (incident.source_id, incident.type, incident.crs) == ("7", EventType.ACCIDENT, "EPSG:2154")
    lon, lat = incident.geometry.coordinates
    assert lon == pytest.approx(3.06, abs=0.02)
    assert lat == pytest.approx(50.63, abs=0.02)


def test_type_map_option_and_unknown_words() -> None:
    document = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "id": "a", "properties": {"type": "Neige"}, "geometry": None},
            {
                "type": "Feature",
                "id": "b",
                "properties": {"type": "Neige"},
                "geometry": {"type": "Point", "coordinates": [3.0, 50.6]},
            },
            {
                "type": "Feature",
                "id": "c",
                "properties": {"type": "inconnu"},
                "geometry": {"type": "Point", "coordinates": [3.0, 50.6]},
            },
        ],
    }
    parsed = PARSER.parse(orjson.dumps(document), context({"type_map": {"neige": "weather"}, "default_type": "other"}))
    assert [(i.source_id, i.type) for i in parsed.incidents] == [("b", EventType.WEATHER), ("c", EventType.OTHER)]
    assert [r.source_id for r in parsed.rejects] == ["a"]


@pytest.mark.parametrize(
    ("options", "payload", "reason"),
    [
        (
            {"default_type": "volcano"},
            b'{"type":"FeatureCollection","features":[]}',
            "invalid geojson connector options",
        ),
        (
            {"timezone": "Mars/Olympus"},
            b'{"type":"FeatureCollection","features":[]}',
            "invalid geojson connector options",
        ),
        ({}, b'{"type":"Feature"}', "not a GeoJSON FeatureCollection"),
        ({"crs": "EPSG:nope"}, b'{"type":"FeatureCollection","features":[]}', "unknown coordinate reference system"),
    ],
)
def test_payload_errors(options: dict[str, str], payload: bytes, reason: str) -> None:
    with pytest.raises(PayloadError, match=reason):
        PARSER.parse(payload, context(options))
