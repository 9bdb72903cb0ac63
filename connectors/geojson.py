"""Open-data GeoJSON (RFC 7946, or a legacy `crs` member) with a per-connector field mapping.

`ParseContext.options` (all optional):
  id_field ("id": the feature id, else this property), type_field ("type"), type_map (source value →
  EventType value, merged over TYPE_WORDS), default_type ("roadworks"), subtype_field,
  description_field ("description"), street_field ("street"), city_field ("city"),
  start_field ("starts_at"), end_field ("ends_at"), direction_field ("direction"),
  crs (overrides the document's; default EPSG:4326), timezone ("Europe/Paris", for times without
  offset), snapshot (True: the file lists everything current).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from connectors.base import ParseContext, Parsed, PayloadError
from connectors.coords import LonLat, crs_code, geometry, to_lonlat
from connectors.items import collect, finite_only, json_raw
from connectors.json_safety import parse_json
from connectors.values import ItemError, as_dict, as_list, number, optional_time, small, text
from traffic_hub.model import Cause, Direction, EventType, IncidentReport, Validity
from traffic_hub.model.geometry import LineString, MultiLineString, Point

KIND = "geojson"
# Common French and English open-data words for what happens (lower-cased).
TYPE_WORDS: dict[str, str] = {
    "travaux": "roadworks",
    "chantier": "roadworks",
    "roadworks": "roadworks",
    "fermeture": "closure",
    "route barrée": "closure",
    "closure": "closure",
    "restriction de voie": "lane_closure",
    "lane_closure": "lane_closure",
    "accident": "accident",
    "danger": "hazard",
    "hazard": "hazard",
    "bouchon": "jam",
    "jam": "jam",
    "météo": "weather",
    "weather": "weather",
    "événement": "other",
    "manifestation": "other",
}
CAUSES = {
    EventType.ROADWORKS: Cause.ROADWORKS,
    EventType.ACCIDENT: Cause.ACCIDENT,
    EventType.HAZARD: Cause.HAZARD,
    EventType.WEATHER: Cause.HAZARD,
}
_DIRECTIONS = {"ONE_DIRECTION": Direction.ONE_DIRECTION, "BOTH_DIRECTIONS": Direction.BOTH_DIRECTIONS}


@dataclass(frozen=True, slots=True)
class FieldMapping:
    id_field: str = "id"
    type_field: str = "type"
    type_map: dict[str, EventType] = field(default_factory=dict)
    default_type: EventType = EventType.ROADWORKS
    subtype_field: str | None = None
    description_field: str = "description"
    street_field: str = "street"
    city_field: str = "city"
    start_field: str = "starts_at"
    end_field: str = "ends_at"
    direction_field: str = "direction"
    crs: str | None = None
    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("Europe/Paris"))
    snapshot: bool = True


def mapping_from(options: Mapping[str, Any]) -> FieldMapping:
    """The field mapping of a connector's options; `PayloadError` for an unusable option."""
    try:
        words = {**TYPE_WORDS, **{str(k).lower(): str(v) for k, v in dict(options.get("type_map", {})).items()}}
        strings = {
            name: str(options[name])
            for name in FieldMapping.__dataclass_fields__
            if name.endswith("_field") and options.get(name) is not None
        }
        return FieldMapping(
            **strings,
            type_map={word: EventType(value) for word, value in words.items()},
            default_type=EventType(options.get("default_type", "roadworks")),
            crs=text(options.get("crs")),
            timezone=ZoneInfo(str(options.get("timezone", "Europe/Paris"))),
            snapshot=bool(options.get("snapshot", True)),
        )
    except (ValueError, TypeError, ZoneInfoNotFoundError) as exc:
        raise PayloadError(f"invalid geojson connector options: {str(exc)[:200]}") from None


class GeoJsonParser:
    kind = KIND

    def parse(self, payload: bytes, ctx: ParseContext) -> Parsed:
        mapping = mapping_from(ctx.options)
        document = parse_json(payload, non_finite=True)
        if not isinstance(document, dict) or document.get("type") != "FeatureCollection":
            raise PayloadError("not a GeoJSON FeatureCollection")
        features = document.get("features")
        if not isinstance(features, list):
            raise PayloadError("features is not a list")
        try:
            code = crs_code(mapping.crs or _document_crs(document))
        except ItemError as exc:
            raise PayloadError(str(exc)) from None
        build = finite_only(partial(_feature, ctx=ctx, mapping=mapping, code=code))
        ident = partial(_feature_id, mapping=mapping)
        incidents, rejects = collect(features, build, json_raw, ident, label="feature")
        return Parsed(incidents=incidents, rejects=rejects, snapshot=mapping.snapshot)


def _document_crs(document: dict[str, Any]) -> str | None:
    crs = document.get("crs")
    if isinstance(crs, dict) and isinstance(crs.get("properties"), dict):
        return text(crs["properties"].get("name"))
    return None


def _feature_id(item: Any, mapping: FieldMapping) -> str:
    if not isinstance(item, dict):
        return ""
    found = item.get("properties")
    properties: dict[str, Any] = found if isinstance(found, dict) else {}
    return text(item.get("id")) or text(properties.get(mapping.id_field)) or ""


def _feature(item: Any, ctx: ParseContext, mapping: FieldMapping, code: int) -> IncidentReport:
    feature = as_dict(item, "feature")
    properties = as_dict(feature.get("properties") or {}, "properties")
    feature_id = _feature_id(feature, mapping)
    if not feature_id:
        raise ItemError(f"feature without id (nor property {mapping.id_field!r})")
    word = text(properties.get(mapping.type_field))
    event_type = mapping.type_map.get((word or "").lower(), mapping.default_type)
    starts = _time(properties, mapping.start_field, mapping) or ctx.received_at
    ends = _time(properties, mapping.end_field, mapping)
    street = text(properties.get(mapping.street_field), 200)
    return IncidentReport(
        source=ctx.source,
        kind=KIND,
        source_id=feature_id[:200],
        type=event_type,
        subtype=text(properties.get(mapping.subtype_field), 100) if mapping.subtype_field else word,
        cause=CAUSES.get(event_type, Cause.OTHER),
        description=text(properties.get(mapping.description_field)) or _label(word or event_type.value, street),
        geometry=_shape(as_dict(feature.get("geometry"), "geometry"), code),
        crs=f"EPSG:{code}",
        direction=_DIRECTIONS.get(text(properties.get(mapping.direction_field)) or "", Direction.UNKNOWN),
        street=street,
        city=text(properties.get(mapping.city_field), 200),
        validity=Validity(starts_at=starts, ends_at=ends),
        ended=ends is not None and ends <= ctx.received_at,
        said=small({key: _scalar(value) for key, value in list(properties.items())[:20]}),
    )


def _time(properties: dict[str, Any], name: str, mapping: FieldMapping) -> datetime | None:
    return optional_time(properties.get(name), name, mapping.timezone)


def _shape(shape: dict[str, Any], code: int) -> Point | LineString | MultiLineString:
    shape_type = shape.get("type")
    coordinates = shape.get("coordinates")
    if shape_type == "Point":
        return geometry(_positions([coordinates], code))
    if shape_type in ("LineString", "MultiPoint"):
        return geometry(_positions(as_list(coordinates, "coordinates"), code))
    if shape_type == "MultiLineString":
        parts = [geometry(_positions(as_list(part, "part"), code)) for part in as_list(coordinates, "coordinates")]
        lines = [part.coordinates for part in parts if isinstance(part, LineString)]
        if not lines:
            raise ItemError("a MultiLineString without any line of two distinct points")
        return MultiLineString(type="MultiLineString", coordinates=lines)
    raise ItemError(f"geometry type {str(shape_type)[:30]!r} is not supported (points and lines only)")


def _positions(values: list[Any], code: int) -> list[LonLat]:
    pairs: list[LonLat] = []
    for value in values:
        position = as_list(value, "position")
        x, y = (number(position[0]), number(position[1])) if len(position) >= 2 else (None, None)
        if x is None or y is None:
            raise ItemError("a position that is not two numbers")
        pairs.append((x, y))
    return to_lonlat(pairs, code)


def _scalar(value: Any) -> Any:
    return value if isinstance(value, int | float | bool) else text(value, 300)


def _label(word: str, street: str | None) -> str:
    return f"{word} on {street}" if street else word
