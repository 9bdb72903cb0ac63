"""Open data: every current event as GeoJSON (RFC 7946) and as CSV (RFC 4180), public, no key.

Served at `/feeds/geojson/events.geojson` (`OpenDataGeoJson`) and, with the same items, as CSV
(`OpenDataCsv`, suggested path `/feeds/geojson/events.csv`). Both publish under the key "geojson".

Licence: **ODbL 1.0** for the whole dataset. Street-described closures are resolved on a road
network built from OpenStreetMap and events are snapped to it, so the published geometries are a
Derivative Database of OSM, which ODbL's share-alike requires to stay under ODbL; MEL's own data
(Licence Ouverte 2.0 is compatible one way: LO-licensed data may be re-released under ODbL) can
join it. Attribution: the publisher and "© OpenStreetMap contributors".

What is public, and what is not:
- Events whose only sources are Waze are withheld ("Waze terms forbid redistribution": the Waze
  for Cities data-sharing terms forbid passing Waze data to third parties). For events that also
  have another source, Waze is left out of `sources`. What sources said (`said`) is never published.
- `sources` names origins, not principals: road-works teams are "roadworks" (their principal names
  stay internal), connectors appear under their connector name. No keys, no partner metadata.

Properties (flat, the same columns in the CSV):
`id`, `type` (closure, lane_closure, roadworks, accident, hazard, jam, weather, police, other),
`cause`, `status` (active, planned), `description`, `street`, `commune` (INSEE code),
`direction` (ONE_DIRECTION follows the geometry's point order, BOTH_DIRECTIONS, UNKNOWN),
`starts_at`, `ends_at` (RFC 3339, Europe/Paris offset; `ends_at` empty when unknown),
`schedule` (weekly windows in local time, "mon 08:00-12:00,13:30-17:00; wed 08:00-12:00"),
`lanes_closed`, `lanes_total`, `lanes_side` (LEFT, MIDDLE, RIGHT), `sources`, `verified`
(an operator confirmed it), `version` (raised on every change), `created_at`, `updated_at`;
and for a traffic measure (issue 18; empty for an incident): `measure` (road_closed, lane_closed,
alternate_traffic, no_overtaking, speed_limit, vehicle_restriction, detour), `speed_kmh`,
`max_weight_t`, `max_axle_load_t`, `max_height_m`, `max_width_m`, `max_length_m` (the vehicles banned
exceed one of these), `vehicle_kinds`, `critair`, `vehicles_except` (comma-separated words of
docs/measures.md), `detour_of` (the id of the measure a detour goes around). The schedule text adds
its exceptions ("except weekends, public holidays").
The CSV adds `lon`, `lat` (the first point) and `wkt` (the geometry in WKT, lon lat order).

The CSV is opened in spreadsheets, and its text comes from road-works teams and external sources: a
text cell starting with `=`, `+`, `-`, `@`, a tab or a carriage return would run as a formula (OWASP
"CSV injection"). Such cells get a leading `'`, which spreadsheets show as text and keep the rest of;
numbers (`lanes_*`, `version`, `lon`, `lat`, even negative) are written as numbers.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from traffic_hub.feeds.base import FeatureCollectionShell, FeedContext, Item, Shell, status_reasons
from traffic_hub.feeds.validation import geometry_reasons, line_parts
from traffic_hub.feeds.waze_incident import clean_text, local_time
from traffic_hub.model import Event, Schedule, SourceReport
from traffic_hub.model.geometry import LineString, MultiLineString, Point
from traffic_hub.model.validity import WEEKDAYS

__all__ = ["OpenDataCsv", "OpenDataGeoJson", "check_opendata", "properties_of", "render_csv", "render_geojson"]

PUBLICATION_KEY = "geojson"
LICENSE = "ODbL-1.0"
LICENSE_URL = "https://opendatacommons.org/licenses/odbl/1-0/"
OSM_ATTRIBUTION = "© OpenStreetMap contributors"
WAZE_REASON = "Waze terms forbid redistribution"
COLUMNS = (
    "id",
    "type",
    "cause",
    "status",
    "description",
    "street",
    "commune",
    "direction",
    "starts_at",
    "ends_at",
    "schedule",
    "lanes_closed",
    "lanes_total",
    "lanes_side",
    "sources",
    "verified",
    "version",
    "created_at",
    "updated_at",
    "measure",
    "speed_kmh",
    "max_weight_t",
    "max_axle_load_t",
    "max_height_m",
    "max_width_m",
    "max_length_m",
    "vehicle_kinds",
    "critair",
    "vehicles_except",
    "detour_of",
)
LIMITS = ("max_weight_t", "max_axle_load_t", "max_height_m", "max_width_m", "max_length_m")
CSV_COLUMNS = (*COLUMNS, "lon", "lat", "wkt")


# --- the gate ---------------------------------------------------------------------------------


def is_waze(report: SourceReport) -> bool:
    return report.kind.startswith("waze") or report.source.startswith("waze")


def check_opendata(event: Event, ctx: FeedContext) -> list[str]:
    """Reasons `event` cannot enter the open-data feeds at `ctx.now` (empty: it can)."""
    return status_reasons(event, ctx) or _rule_reasons(event)


def _rule_reasons(event: Event) -> list[str]:
    reasons: list[str] = []
    if all(is_waze(report) for report in event.sources):
        reasons.append(WAZE_REASON)
    if not clean_text(event.id):
        reasons.append("the event id is empty")
    reasons.extend(geometry_reasons(event.geometry))
    return reasons


# --- properties -------------------------------------------------------------------------------


def public_sources(event: Event) -> str:
    """Origins anyone may see: "roadworks" for road-works teams, connector names, no Waze."""
    labels = (
        "roadworks" if report.source.startswith("roadworks:") else clean_text(report.source)
        for report in event.sources
        if not is_waze(report)
    )
    return ", ".join(sorted({label for label in labels if label}))


def schedule_text(schedule: Schedule | None) -> str:
    if schedule is None:
        return ""
    text = "; ".join(f"{day[:3]} {','.join(schedule.windows(day))}" for day in WEEKDAYS if schedule.windows(day))
    excepted = schedule.except_
    if excepted is None:
        return text
    days = [*(["weekends"] if excepted.weekends else []), *(["public holidays"] if excepted.public_holidays else []),
            *(day.isoformat() for day in excepted.dates)]
    return f"{text}; except {', '.join(days)}" if days else text


def measure_properties(event: Event) -> dict[str, Any]:
    """The measure's type and values, flat (all None for an incident)."""
    measure = event.measure
    vehicles = measure.vehicles if measure is not None else None
    out: dict[str, Any] = {
        "measure": measure.type.value if measure is not None else None,
        "speed_kmh": measure.speed_kmh if measure is not None else None,
    }
    out.update({name: getattr(vehicles, name) if vehicles is not None else None for name in LIMITS})
    out["vehicle_kinds"] = ", ".join(vehicles.kinds) if vehicles is not None and vehicles.kinds else None
    out["critair"] = ", ".join(vehicles.critair) if vehicles is not None and vehicles.critair else None
    out["vehicles_except"] = ", ".join(vehicles.except_) if vehicles is not None and vehicles.except_ else None
    out["detour_of"] = measure.detour_of if measure is not None else None
    return out


def properties_of(event: Event, ctx: FeedContext, tz: ZoneInfo) -> dict[str, Any]:
    """The flat public properties of `event` (keys in `COLUMNS` order)."""
    validity = event.validity
    lanes = event.lanes or {}
    return {
        "id": event.id,
        "type": event.type.value,
        "cause": event.cause.value,
        "status": event.status_at(ctx.now).value,
        "description": clean_text(event.description),
        "street": clean_text(event.street) or None,
        "commune": event.commune,
        "direction": event.direction.value,
        "starts_at": local_time(validity.starts_at, tz),
        "ends_at": local_time(validity.ends_at, tz) if validity.ends_at is not None else None,
        "schedule": schedule_text(validity.schedule) or None,
        "lanes_closed": _int_or_none(lanes.get("closed")),
        "lanes_total": _int_or_none(lanes.get("total")),
        "lanes_side": lanes.get("side") if lanes.get("side") in ("LEFT", "MIDDLE", "RIGHT") else None,
        "sources": public_sources(event),
        "verified": event.verification == "confirmed",
        "version": event.version,
        "created_at": local_time(event.created_at, tz),
        "updated_at": local_time(event.updated_at, tz),
        **measure_properties(event),
    }


def _int_or_none(value: Any) -> int | None:
    return value if type(value) is int else None


def geometry_of(geometry: Point | LineString | MultiLineString) -> dict[str, Any]:
    """RFC 7946 geometry, coordinates rounded to 6 decimals (about 10 cm)."""
    parts = [[[round(lon, 6), round(lat, 6)] for lon, lat in part] for part in line_parts(geometry)]
    if isinstance(geometry, Point):
        return {"type": "Point", "coordinates": parts[0][0]}
    if isinstance(geometry, LineString):
        return {"type": "LineString", "coordinates": parts[0]}
    return {"type": "MultiLineString", "coordinates": parts}


def wkt_of(geometry: Point | LineString | MultiLineString) -> str:
    """The geometry as WKT (lon lat order, 6 decimals)."""
    parts = [", ".join(f"{lon:.6f} {lat:.6f}" for lon, lat in part) for part in line_parts(geometry)]
    if isinstance(geometry, Point):
        return f"POINT ({parts[0]})"
    if isinstance(geometry, LineString):
        return f"LINESTRING ({parts[0]})"
    return "MULTILINESTRING (" + ", ".join(f"({part})" for part in parts) + ")"


# --- documents --------------------------------------------------------------------------------


def render_geojson(events: Sequence[Event], ctx: FeedContext) -> bytes:
    """The FeatureCollection for `events` (already passed through the gate), sorted by event id."""
    return OpenDataGeoJson().render(events, ctx)


def _csv_line(cells: Sequence[str]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(cells)
    return buffer.getvalue().encode()


def render_csv(events: Sequence[Event], ctx: FeedContext) -> bytes:
    """One row per event (sorted by id), the columns of `CSV_COLUMNS`, RFC 4180 quoting, CRLF."""
    return OpenDataCsv().render(events, ctx)


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> str:
    """A CSV cell: numbers as they are, text neutralised against formula injection (see the module doc)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return text_cell(str(value))


def text_cell(text: str) -> str:
    """`text`, with a leading `'` when a spreadsheet would read it as a formula (OWASP CSV injection)."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


# --- the renderers ----------------------------------------------------------------------------


class OpenDataGeoJson(FeatureCollectionShell):
    """Open-data GeoJSON FeatureCollection (RFC 7946) with licence and attribution members."""

    name: str = PUBLICATION_KEY
    gate = staticmethod(check_opendata)

    def item(self, event: Event, ctx: FeedContext) -> Item:
        feature = {
            "type": "Feature",
            "id": event.id,
            "geometry": geometry_of(event.geometry),
            "properties": properties_of(event, ctx, ZoneInfo(ctx.timezone)),
        }
        return Item(orjson.dumps(feature))

    def members(self, ctx: FeedContext, sources: Sequence[str]) -> dict[str, Any]:
        return {
            "type": "FeatureCollection",
            "name": "traffic-events",
            "publisher": ctx.publisher,
            "license": LICENSE,
            "license_url": LICENSE_URL,
            "attribution": f"{ctx.publisher} ; {OSM_ATTRIBUTION}",
            "generated_at": local_time(ctx.timestamp, ZoneInfo(ctx.timezone)),
            "features": [],
        }


class OpenDataCsv(Shell):
    """The same items as CSV: RFC 4180, UTF-8, header row, CRLF line ends."""

    name: str = PUBLICATION_KEY
    media_type: str = "text/csv; charset=utf-8; header=present"
    gate = staticmethod(check_opendata)

    def item(self, event: Event, ctx: FeedContext) -> Item:
        properties = properties_of(event, ctx, ZoneInfo(ctx.timezone))
        first = line_parts(event.geometry)[0][0]
        cells = [_cell(properties[column]) for column in COLUMNS]
        cells.extend((f"{first[0]:.6f}", f"{first[1]:.6f}", wkt_of(event.geometry)))
        return Item(_csv_line(cells))

    def head(self, ctx: FeedContext, sources: Sequence[str]) -> bytes:
        return _csv_line(CSV_COLUMNS)

    def tail(self, ctx: FeedContext) -> bytes:
        return b""
