"""WZDx WorkZoneFeed 4.x (GeoJSON FeatureCollection of road events): a snapshot of current work zones."""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Any

from connectors.base import ParseContext, Parsed, PayloadError
from connectors.coords import LonLat, geometry
from connectors.items import collect, finite_only, json_id, json_raw
from connectors.json_safety import parse_json
from connectors.values import ItemError, as_dict, as_list, boolean, number, optional_time, parse_time, small, text
from traffic_hub.model import Cause, Direction, EventType, IncidentReport, Validity

KIND = "wzdx"
# vehicle_impact → what the road event does to traffic.
IMPACTS: dict[str, EventType] = {
    "all-lanes-closed": EventType.CLOSURE,
    "some-lanes-closed": EventType.LANE_CLOSURE,
    "some-lanes-closed-merge-left": EventType.LANE_CLOSURE,
    "some-lanes-closed-merge-right": EventType.LANE_CLOSURE,
    "some-lanes-closed-split": EventType.LANE_CLOSURE,
    "alternating-one-way": EventType.LANE_CLOSURE,
    "flagging": EventType.LANE_CLOSURE,
    "temporary-traffic-signal": EventType.LANE_CLOSURE,
}
_TRAVEL_DIRECTIONS = frozenset({"northbound", "eastbound", "southbound", "westbound", "inner-loop", "outer-loop"})
_FINISHED = frozenset({"completed", "cancelled"})


class WzdxParser:
    kind = KIND

    def parse(self, payload: bytes, ctx: ParseContext) -> Parsed:
        document = parse_json(payload, non_finite=True)
        if not isinstance(document, dict) or document.get("type") != "FeatureCollection":
            raise PayloadError("not a WZDx feed: no GeoJSON FeatureCollection")
        info = document.get("feed_info", document.get("road_event_feed_info"))
        if not isinstance(info, dict):
            raise PayloadError("not a WZDx feed: no feed_info")
        version = text(info.get("version")) or ""
        if not version.startswith("4."):
            raise PayloadError(f"WZDx version {version[:20]!r} is not supported (4.x only)")
        features = document.get("features")
        if not isinstance(features, list):
            raise PayloadError("features is not a list")
        build = finite_only(partial(_feature, ctx=ctx, version=version))
        incidents, rejects = collect(features, build, json_raw, json_id("id"), label="feature")
        return Parsed(incidents=incidents, rejects=rejects, snapshot=True)


def _feature(item: Any, ctx: ParseContext, version: str) -> IncidentReport:
    feature = as_dict(item, "feature")
    feature_id = text(feature.get("id"), limit=200)
    if feature_id is None:
        raise ItemError("feature without id")
    properties = as_dict(feature.get("properties"), "properties")
    core = as_dict(properties.get("core_details"), "core_details")
    event_type = text(core.get("event_type"))
    if event_type is None:
        raise ItemError("a field device or a feature without core_details.event_type, not a road event")
    road_names = [name for name in (text(n, 200) for n in as_list(core.get("road_names"), "road_names")) if name]
    starts = parse_time(properties.get("start_date"), "start_date")
    ends = optional_time(properties.get("end_date"), "end_date")
    impact = text(properties.get("vehicle_impact"))
    kind, subtype = _classify(event_type, impact)
    status = text(properties.get("event_status"))
    wzdx_direction = text(core.get("direction"))
    return IncidentReport(
        source=ctx.source,
        kind="wzdx-feature",
        source_id=feature_id,
        source_version=text(core.get("update_date")),
        type=kind,
        subtype=subtype,
        cause=Cause.ROADWORKS,
        description=text(core.get("description")) or text(core.get("name")) or _label(event_type, road_names),
        geometry=geometry(_positions(as_dict(feature.get("geometry"), "geometry"))),
        direction=Direction.ONE_DIRECTION if wzdx_direction in _TRAVEL_DIRECTIONS else Direction.UNKNOWN,
        street=road_names[0] if road_names else None,
        validity=Validity(starts_at=starts, ends_at=ends),
        lanes=_lanes(properties.get("lanes")),
        ended=status in _FINISHED or _past(ends, ctx.received_at),
        observed_at=optional_time(core.get("update_date"), "update_date"),
        said=small(
            {
                "wzdx": version,
                "event_type": event_type,
                "road_names": road_names,
                "direction": wzdx_direction,
                "vehicle_impact": impact,
                "data_source_id": text(core.get("data_source_id")),
                "work_zone_type": text(properties.get("work_zone_type")),
                "event_status": status,
                "reduced_speed_limit_kph": number(properties.get("reduced_speed_limit_kph")),
                "beginning_cross_street": text(properties.get("beginning_cross_street")),
                "ending_cross_street": text(properties.get("ending_cross_street")),
                "is_start_date_verified": boolean(properties.get("is_start_date_verified")),
                "is_end_date_verified": boolean(properties.get("is_end_date_verified")),
                "geometry_type": text(as_dict(feature.get("geometry"), "geometry").get("type")),
            }
        ),
    )


def _classify(event_type: str, impact: str | None) -> tuple[EventType, str]:
    if event_type != "work-zone":
        return EventType.OTHER, event_type
    return IMPACTS.get(impact or "", EventType.ROADWORKS), impact or "work-zone"


def _positions(shape: dict[str, Any]) -> list[LonLat]:
    """LineString (preferred) or MultiPoint (start and end points only) as lon/lat positions."""
    shape_type = shape.get("type")
    coordinates = as_list(shape.get("coordinates"), "coordinates")
    if shape_type not in ("LineString", "MultiPoint"):
        raise ItemError(f"geometry type {str(shape_type)[:30]!r} is not LineString or MultiPoint")
    return [_position(position) for position in coordinates]


def _position(value: Any) -> LonLat:
    position = as_list(value, "position")
    if len(position) < 2:
        raise ItemError("a position with fewer than two numbers")
    lon, lat = number(position[0]), number(position[1])
    if lon is None or lat is None:
        raise ItemError("a position that is not numeric")
    return (lon, lat)


def _lanes(value: Any) -> dict[str, int] | None:
    lanes = [lane for lane in as_list(value, "lanes") if isinstance(lane, dict)]
    if not lanes:
        return None
    closed = sum(1 for lane in lanes if lane.get("status") == "closed")
    return {"closed": closed, "total": len(lanes)}


def _past(ends: datetime | None, now: datetime) -> bool:
    return ends is not None and ends <= now


def _label(event_type: str, road_names: list[str]) -> str:
    return f"{event_type} on {', '.join(road_names)}" if road_names else event_type
