"""WZDx 4.2 WorkZoneFeed (served at `/feeds/wzdx/v4.2/workzones.geojson`), valid against its JSON schemas.

Only closures, lane closures, roadworks and traffic-regulation measures are road events; other
events are withheld ("not a work zone"). A measure is a work zone with what WZDx can say of it:

| measure | work zone |
|---|---|
| road_closed / lane_closed | `vehicle_impact` all / some lanes closed, `lanes` when the closed side is known |
| alternate_traffic | `vehicle_impact` `alternating-one-way`; with lanes, the open ones `alternating-flow` |
| no_overtaking | restriction `no-passing` |
| speed_limit | `reduced_speed_limit_kph` |
| vehicle_restriction | `restrictions` (below) |
| detour | a `DetourRoadEvent`, `related_road_events` → the measure it goes around (`related-detour`) |

A vehicle restriction's `restrictions`: `gross-weight-limit` and `axle-load-limit` (kg),
`reduced-height`, `reduced-width`, `reduced-length` (cm), `no-trucks` (lorries),
`permitted-oversize-loads-prohibited`, `towing-prohibited`, and `local-access-only` when residents
or local access are exempted.

WZDx has no word for Crit'Air classes, hazardous goods or buses: a restriction of those only is
withheld with that reason; with other limits, they are left out (the description says them).

Directions. WZDx wants one road event per direction of travel, with a compass direction
(`northbound`, …). A one-direction closure gets the compass direction of its line's overall bearing
(first point to last: the travel order). A closure in both directions is split into two features,
the second with the line reversed, each with its own compass direction, linked to each other by
`related_road_events` (`related-work-zone`). An event whose direction nobody knows stays one feature
with `unknown` (the spec's value for "not known"; `undefined` means a road without a direction).

Ids. A feature's id is the event id when the event makes one feature, else `{event id}-{n}` (n from
1: line parts in order, each forward then reversed), so every id starts with the event id.

Times. A weekly schedule cannot be said in WZDx 4.2 except as one road event per occurrence
(scenario 5 of the official examples). We publish the current or next occurrence only, with its
own `start_date`/`end_date`; the feed engine re-renders at window boundaries, so the feed moves to
the next occurrence by itself. Dates are UTC RFC 3339 (`2026-01-15T09:30:00Z`). The four
`is_*_verified` flags are false: dates and positions come from plans, not from devices on site.

Data sources: `data_source_id` is `mel-roadworks` for closures posted by road-works teams
(`roadworks:*` sources), else the origin connector's name; `feed_info.data_sources` lists each id
used once (always at least `mel-roadworks`, the schema needs one). No `license`: WZDx only allows
CC0 there, and the partner feeds are not released under CC0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from traffic_hub.feeds.base import FeatureCollectionShell, FeedContext, Item, status_reasons
from traffic_hub.feeds.validation import geometry_reasons, lane_counts, lane_reasons, line_parts
from traffic_hub.feeds.waze_incident import clean_text
from traffic_hub.model import Direction, Event, EventType, Measure, MeasureType, Validity, Vehicles
from traffic_hub.model.geometry import Point
from traffic_hub.model.validity import WEEKDAYS

__all__ = ["WzdxWorkZones", "check_wzdx", "render_wzdx", "work_zones_of"]

PUBLICATION_KEY = "wzdx"
VERSION = "4.2"
ROADWORKS_SOURCE_ID = "mel-roadworks"
WORK_ZONE_TYPES = frozenset({EventType.CLOSURE, EventType.LANE_CLOSURE, EventType.ROADWORKS})
HORIZON_DAYS = 8  # a weekly schedule has a window within any 8 days, if it has one at all
_COMPASS = ("northbound", "eastbound", "southbound", "westbound")
# measures that close no lane: traffic passes, under a rule
_OPEN_MEASURES = frozenset({MeasureType.NO_OVERTAKING, MeasureType.SPEED_LIMIT, MeasureType.VEHICLE_RESTRICTION})


# --- the gate ---------------------------------------------------------------------------------


def check_wzdx(event: Event, ctx: FeedContext) -> list[str]:
    """Reasons `event` cannot enter the WZDx feed at `ctx.now` (empty: it can)."""
    return status_reasons(event, ctx) or _rule_reasons(event, ctx)


def _rule_reasons(event: Event, ctx: FeedContext) -> list[str]:
    if event.type not in WORK_ZONE_TYPES and event.measure is None:
        return ["not a work zone"]
    reasons: list[str] = []
    measure = event.measure
    if measure is not None and measure.type is MeasureType.VEHICLE_RESTRICTION and not restrictions_of(measure):
        reasons.append("WZDx cannot say this restriction (Crit'Air classes, hazardous goods or buses only)")
    if isinstance(event.geometry, Point):
        reasons.append("WZDx needs a line and the event has only a point")
    else:
        reasons.extend(geometry_reasons(event.geometry))
    if not clean_text(event.id):
        reasons.append("the event id is empty")
    if not road_names(event):
        reasons.append("no street name is known and WZDx needs a road name")
    if event.validity.ends_at is None:
        reasons.append("WZDx needs an end date and the event has none")
    elif occurrence(event.validity, ctx.now, ZoneInfo(ctx.timezone)) is None:
        reasons.append("no scheduled window is left before the end of the event")
    reasons.extend(lane_reasons(event))
    return reasons


def road_names(event: Event) -> list[str]:
    """The event's street, else the distinct streets of its segments."""
    names = [clean_text(event.street)] if event.street else [clean_text(part.street) for part in event.segments]
    return list(dict.fromkeys(name for name in names if name))


def occurrence(validity: Validity, now: datetime, tz: ZoneInfo) -> tuple[datetime, datetime] | None:
    """The current or next period the event applies: the whole validity, or one schedule window.

    None when the validity has no end or no window is left before it ends.
    """
    if validity.ends_at is None:
        return None
    if validity.schedule is None:
        return validity.starts_at, validity.ends_at
    anchor = max(now, validity.starts_at).astimezone(tz).date()
    for offset in range(-1, HORIZON_DAYS):
        day = anchor + timedelta(days=offset)
        for window in validity.schedule.windows(WEEKDAYS[day.weekday()]):
            start, end = (_at(day, hhmm, tz) for hhmm in window.split("-"))
            start, end = max(start, validity.starts_at), min(end, validity.ends_at)
            if end > start and end > now:
                return start, end
    return None


def _at(day: Any, hhmm: str, tz: ZoneInfo) -> datetime:
    hours, minutes = (int(part) for part in hhmm.split(":"))
    return datetime.combine(day, time(0), tz) + timedelta(hours=hours, minutes=minutes)


# --- features ---------------------------------------------------------------------------------


def utc(moment: datetime) -> str:
    """RFC 3339 in UTC with a Z, to the second."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


def data_source_id(event: Event) -> str:
    """`mel-roadworks` when a road-works team posted it, else the name of its first source."""
    sources = [report.source for report in event.sources]
    if any(source.startswith("roadworks:") for source in sources):
        return ROADWORKS_SOURCE_ID
    return clean_text(sources[0]) or "unknown"


def compass(points: list[tuple[float, float]]) -> str:
    """northbound/eastbound/southbound/westbound from the overall bearing (first to last point)."""
    (lon1, lat1), (lon2, lat2) = points[0], points[-1]
    if (lon1, lat1) == (lon2, lat2):  # a loop: use the farthest vertex instead of the end
        lon2, lat2 = max(points, key=lambda p: (p[0] - lon1) ** 2 + (p[1] - lat1) ** 2)
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    delta = math.radians(lon2 - lon1)
    x = math.sin(delta) * math.cos(phi2)
    y = math.cos(phi1) * math.sin(phi2) - math.sin(phi1) * math.cos(phi2) * math.cos(delta)
    bearing = math.degrees(math.atan2(x, y)) % 360.0
    return _COMPASS[int(((bearing + 45.0) % 360.0) // 90.0)]


def work_zones_of(event: Event, ctx: FeedContext) -> list[dict[str, Any]]:
    """The WZDx road-event features of `event` (one per line part and direction)."""
    period = occurrence(event.validity, ctx.now, ZoneInfo(ctx.timezone))
    if period is None or isinstance(event.geometry, Point):
        return []
    runs: list[tuple[list[tuple[float, float]], str]] = []
    for part in line_parts(event.geometry):
        points = _rounded(part)
        if event.direction is Direction.UNKNOWN:
            runs.append((points, "unknown"))
            continue
        runs.append((points, compass(points)))
        if event.direction is Direction.BOTH_DIRECTIONS:
            back = points[::-1]
            runs.append((back, compass(back)))
    ids = [event.id] if len(runs) == 1 else [f"{event.id}-{n}" for n in range(1, len(runs) + 1)]
    alternating = event.measure is not None and event.measure.type is MeasureType.ALTERNATE_TRAFFIC
    lanes = _lanes(event) if event.direction is Direction.ONE_DIRECTION or alternating else None
    base = _properties(event, period, lanes)
    detour_of = event.measure.detour_of if event.measure is not None else None
    features = []
    for feature_id, (points, direction) in zip(ids, runs, strict=True):
        core = {**base["core_details"], "direction": direction}
        related = [{"type": "related-work-zone", "id": other} for other in ids if other != feature_id]
        if detour_of:
            related.append({"type": "related-detour", "id": detour_of})
        if related:
            core["related_road_events"] = related
        features.append(
            {
                "id": feature_id,
                "type": "Feature",
                "properties": {**base, "core_details": core},
                "geometry": {"type": "LineString", "coordinates": [list(point) for point in points]},
            }
        )
    return features


def _rounded(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for lon, lat in points:
        point = (round(lon, 6), round(lat, 6))
        if not out or out[-1] != point:
            out.append(point)
    return out


def _properties(event: Event, period: tuple[datetime, datetime], lanes: list[dict[str, Any]] | None) -> dict[str, Any]:
    measure = event.measure
    detour = measure is not None and measure.type is MeasureType.DETOUR
    core: dict[str, Any] = {
        "event_type": "detour" if detour else "work-zone",
        "data_source_id": data_source_id(event),
        "road_names": road_names(event),
        "direction": "unknown",
        "name": event.id,
        "creation_date": utc(event.created_at),
        "update_date": utc(event.updated_at),
    }
    description = clean_text(event.description)
    if description:
        core["description"] = description
    properties: dict[str, Any] = {
        "core_details": core,
        "start_date": utc(period[0]),
        "end_date": utc(period[1]),
        "is_start_date_verified": False,
        "is_end_date_verified": False,
    }
    if detour:
        return properties
    properties.update(
        {
            "is_start_position_verified": False,
            "is_end_position_verified": False,
            "location_method": "other",
            "vehicle_impact": vehicle_impact(event),
            "work_zone_type": "static",
        }
    )
    if lanes:
        properties["lanes"] = lanes
    if measure is not None and measure.type is MeasureType.SPEED_LIMIT and measure.speed_kmh is not None:
        properties["reduced_speed_limit_kph"] = measure.speed_kmh
    restrictions = restrictions_of(measure) if measure is not None else []
    if restrictions:
        properties["restrictions"] = restrictions
    return properties


# WZDx words for our vehicle kinds (the others have none)
_KIND_RESTRICTIONS = {
    "heavy_goods_vehicle": "no-trucks",
    "abnormal_load": "permitted-oversize-loads-prohibited",
    "vehicle_with_trailer": "towing-prohibited",
}
_LIMIT_RESTRICTIONS = (  # model field, WZDx type, factor, unit
    ("max_weight_t", "gross-weight-limit", 1000.0, "kilograms"),
    ("max_axle_load_t", "axle-load-limit", 1000.0, "kilograms"),
    ("max_height_m", "reduced-height", 100.0, "centimeters"),
    ("max_width_m", "reduced-width", 100.0, "centimeters"),
    ("max_length_m", "reduced-length", 100.0, "centimeters"),
)


def restrictions_of(measure: Measure) -> list[dict[str, Any]]:
    """The WZDx restrictions of a measure: no passing, or a vehicle restriction's limits and kinds."""
    if measure.type is MeasureType.NO_OVERTAKING:
        return [{"type": "no-passing"}]
    if measure.type is not MeasureType.VEHICLE_RESTRICTION or measure.vehicles is None:
        return []
    return _vehicle_restrictions(measure.vehicles)


def _vehicle_restrictions(vehicles: Vehicles) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for field, kind, factor, unit in _LIMIT_RESTRICTIONS:
        value = getattr(vehicles, field)
        if value is not None:
            out.append({"type": kind, "value": round(value * factor, 1), "unit": unit})
    kinds = [_KIND_RESTRICTIONS[kind.value] for kind in vehicles.kinds if kind.value in _KIND_RESTRICTIONS]
    out.extend({"type": kind} for kind in dict.fromkeys(kinds))
    if out and {e.value for e in vehicles.except_} & {"residents", "local_access"}:
        out.append({"type": "local-access-only"})
    return out


def vehicle_impact(event: Event) -> str:
    measure = event.measure
    if measure is not None and measure.type is MeasureType.ALTERNATE_TRAFFIC:
        return "alternating-one-way"
    if measure is not None and measure.type in _OPEN_MEASURES:
        return "all-lanes-open"
    if event.type is EventType.CLOSURE:
        return "all-lanes-closed"
    if event.type is EventType.LANE_CLOSURE:
        counts = lane_counts(event)
        return "all-lanes-closed" if counts is not None and counts[0] == counts[1] else "some-lanes-closed"
    return "unknown"


def _lanes(event: Event) -> list[dict[str, Any]] | None:
    """Every lane (order 1 = left-most), the closed ones on the given side; None if unknown.

    Under alternating traffic the lanes left open carry both directions in turn: `alternating-flow`."""
    counts = lane_counts(event)
    side = (event.lanes or {}).get("side")
    if event.type is not EventType.LANE_CLOSURE or counts is None or side not in ("LEFT", "MIDDLE", "RIGHT"):
        return None
    closed, total = counts
    first = {"LEFT": 1, "RIGHT": total - closed + 1, "MIDDLE": (total - closed) // 2 + 1}[str(side)]
    alternating = event.measure is not None and event.measure.type is MeasureType.ALTERNATE_TRAFFIC
    passing = "alternating-flow" if alternating else "open"
    return [
        {"order": order, "status": "closed" if first <= order < first + closed else passing, "type": "general"}
        for order in range(1, total + 1)
    ]


# --- the feed ---------------------------------------------------------------------------------


def render_wzdx(events: Sequence[Event], ctx: FeedContext) -> bytes:
    """The WorkZoneFeed for `events` (already passed through the gate), sorted by event id."""
    return WzdxWorkZones().render(events, ctx)


def _data_source(source_id: str, ctx: FeedContext) -> dict[str, str]:
    if source_id == ROADWORKS_SOURCE_ID:
        return {"data_source_id": source_id, "organization_name": ctx.publisher}
    return {"data_source_id": source_id, "organization_name": f"{source_id} (relayed by {ctx.publisher})"}


# --- the renderer -----------------------------------------------------------------------------


class WzdxWorkZones(FeatureCollectionShell):
    """WZDx 4.2 WorkZoneFeed (GeoJSON FeatureCollection of work-zone road events)."""

    name: str = PUBLICATION_KEY
    gate = staticmethod(check_wzdx)

    def item(self, event: Event, ctx: FeedContext) -> Item:
        """The event's features, and the data sources they name."""
        zones = work_zones_of(event, ctx)
        ids = tuple(dict.fromkeys(zone["properties"]["core_details"]["data_source_id"] for zone in zones))
        return Item(b",".join(orjson.dumps(zone) for zone in zones), ids)

    def members(self, ctx: FeedContext, sources: Sequence[str]) -> dict[str, Any]:
        source_ids = list(dict.fromkeys([ROADWORKS_SOURCE_ID, *sources]))
        return {
            "feed_info": {
                "publisher": ctx.publisher,
                "version": VERSION,
                "update_date": utc(ctx.timestamp),
                "data_sources": [_data_source(source_id, ctx) for source_id in source_ids],
            },
            "type": "FeatureCollection",
            "features": [],
        }
