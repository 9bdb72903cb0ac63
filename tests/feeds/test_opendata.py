"""Open-data feeds: RFC 7946 GeoJSON with licence metadata, the same rows as RFC 4180 CSV, Waze excluded."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely.geometry import shape

from traffic_hub.feeds.base import FeedContext, Renderer
from traffic_hub.feeds.opendata import (
    COLUMNS,
    CSV_COLUMNS,
    WAZE_REASON,
    OpenDataCsv,
    OpenDataGeoJson,
    check_opendata,
)
from traffic_hub.model import Event

from . import events as ev

GEOJSON: Renderer = OpenDataGeoJson()
CSV: Renderer = OpenDataCsv()
NOW = ev.WINTER_NOW


def publishable(events: Sequence[Event], now: datetime = NOW) -> tuple[FeedContext, list[Event]]:
    ctx = FeedContext(now=now)
    return ctx, [event for event in events if event.is_current(now) and not GEOJSON.check(event, ctx)]


def geojson(events: Sequence[Event]) -> dict[str, Any]:
    ctx, kept = publishable(events)
    document: dict[str, Any] = orjson.loads(GEOJSON.render(kept, ctx))
    return document


def csv_rows(events: Sequence[Event]) -> tuple[bytes, list[dict[str, str]]]:
    ctx, kept = publishable(events)
    body = CSV.render(kept, ctx)
    reader = csv.DictReader(io.StringIO(body.decode("utf-8"), newline=""))
    assert tuple(reader.fieldnames or ()) == CSV_COLUMNS
    return body, list(reader)


def test_the_feed_is_a_licensed_feature_collection_of_current_public_events() -> None:
    document = geojson(ev.partner_scenarios(NOW))

    assert document["type"] == "FeatureCollection"
    assert document["license"] == "ODbL-1.0"
    assert "© OpenStreetMap contributors" in document["attribution"]
    assert document["generated_at"] == "2026-01-15T10:30:00+01:00"
    assert "crs" not in document  # RFC 7946: WGS 84 only, no crs member
    ids = [feature["id"] for feature in document["features"]]
    assert ids == sorted(ids)
    assert set(ids) == {
        "cl-LILLE-2026-0042",
        "cl-LILLE-2026-0051",
        "cl-LILLE-2026-0077",
        "cl-LILLE-2026-0100",
        "cl-LILLE-2026-0120",
        "cl-LILLE-2026-0133",
        "ev-acc-2026-0315",
        "dx-DIRN-SIT-88500",
    }  # Waze-only accident and jam, ended and cancelled closures left out
    for feature in document["features"]:
        assert tuple(feature["properties"]) == COLUMNS
        geometry = shape(feature["geometry"])
        assert geometry.is_valid
        west, south, east, north = geometry.bounds
        assert ev.MEL_WEST <= west <= east <= ev.MEL_EAST
        assert ev.MEL_SOUTH <= south <= north <= ev.MEL_NORTH


def test_nothing_internal_or_from_waze_is_published() -> None:
    ctx, kept = publishable(ev.partner_scenarios(NOW))
    body = GEOJSON.render(kept, ctx)
    accident = next(f for f in orjson.loads(body)["features"] if f["id"] == "ev-acc-2026-0315")

    assert b"voirie-lille" not in body  # principal names stay internal
    assert b"waze" not in body.lower()
    assert b"said" not in body
    assert b"collision" not in body
    assert accident["properties"]["sources"] == ev.DATEX2_CONNECTOR
    assert accident["properties"]["verified"] is True


def test_properties_of_a_lane_closure() -> None:
    document = geojson([ev.lane_closure(NOW)])
    properties = document["features"][0]["properties"]

    assert {key: properties[key] for key in ("type", "status", "direction", "street", "commune", "sources")} == {
        "type": "lane_closure",
        "status": "active",
        "direction": "ONE_DIRECTION",
        "street": "Boulevard de la Liberté",
        "commune": "59350",
        "sources": "roadworks",
    }
    assert (properties["lanes_closed"], properties["lanes_total"], properties["lanes_side"]) == (1, 2, "RIGHT")
    assert (properties["starts_at"], properties["ends_at"]) == (
        "2026-01-15T09:30:00+01:00",
        "2026-01-18T09:30:00+01:00",
    )
    assert document["features"][0]["geometry"]["coordinates"][0] == [3.05181, 50.637217]  # lon, lat


def test_the_schedule_is_readable_text() -> None:
    document = geojson([ev.scheduled_closure(NOW)])

    assert document["features"][0]["properties"]["schedule"] == (
        "mon 08:00-12:00,13:30-17:00; tue 08:00-12:00,13:30-17:00; wed 08:00-12:00; "
        "thu 08:00-12:00,13:30-17:00; fri 08:00-12:00,13:30-17:00"
    )


def test_waze_only_and_bad_items_are_withheld_with_reasons() -> None:
    ctx = FeedContext(now=NOW)

    assert check_opendata(ev.waze_accident(NOW), ctx) == [WAZE_REASON]
    assert check_opendata(ev.waze_jam(NOW), ctx) == ["Waze terms forbid redistribution"]
    assert check_opendata(ev.degenerate_closure(NOW), ctx) == ["the line has fewer than 2 distinct points"]
    assert check_opendata(ev.ended_closure(NOW), ctx) == ["ended"]
    assert check_opendata(ev.conflated_accident(NOW), ctx) == []
    assert WAZE_REASON[0].isupper()
    assert " " in WAZE_REASON
    assert "cl-LILLE-2026-0150" not in {
        f["id"] for f in geojson([*ev.partner_scenarios(NOW), ev.degenerate_closure(NOW)])["features"]
    }


def test_the_csv_has_the_same_rows_as_the_geojson() -> None:
    events = ev.partner_scenarios(NOW)
    body, rows = csv_rows(events)
    features = geojson(events)["features"]

    assert body.count(b"\r\n") == len(rows) + 1  # CRLF after the header and each record
    assert [row["id"] for row in rows] == [feature["id"] for feature in features]
    for row, feature in zip(rows, features, strict=True):
        assert shapely.from_wkt(row["wkt"]).equals(shape(feature["geometry"]))
        first = shape(feature["geometry"]).coords[0] if feature["geometry"]["type"] != "MultiLineString" else None
        if first is not None:
            assert (float(row["lon"]), float(row["lat"])) == first
        assert row["description"] == feature["properties"]["description"]
        assert row["verified"] in {"true", "false"}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ev.mel_varied_events(NOW), min_size=1, max_size=6, unique_by=lambda event: event.id))
def test_random_events_round_trip_through_geojson_and_csv(events: list[Event]) -> None:
    document = geojson(events)
    _, rows = csv_rows(events)

    assert [row["id"] for row in rows] == [feature["id"] for feature in document["features"]]
    for row, feature in zip(rows, document["features"], strict=True):
        assert row["description"] == feature["properties"]["description"]  # commas, quotes survive
        assert shape(feature["geometry"]).equals(shapely.from_wkt(row["wkt"]))
    published = {feature["id"] for feature in document["features"]}
    assert all(any(not s.source.startswith("waze") for s in e.sources) for e in events if e.id in published)
