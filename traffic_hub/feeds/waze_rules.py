"""The Waze gate: what an event needs before it may enter the CIFS feeds.

`cifsv2.xsd` checks the envelope only (a polyline is any non-empty string). These rules encode
what Waze told publishers it rejects or sends to manual "map problem" review (see the research
note on Waze): at least 2 distinct coordinates, 35 m to 10 km per closure, one street per
incident without a commune or postcode suffix, a description, start before end, ids of 3+
characters; plus what would make our own output wrong (latitude/longitude out of range or
swapped, a closure without an end).

Reasons are short sentences for people reading `publication`; "ended" and "cancelled" are the
quiet reasons for events that simply left the feed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from functools import cache, lru_cache
from zoneinfo import ZoneInfo

from pyproj import Geod

from traffic_hub.feeds.base import FeedContext, status_reasons
from traffic_hub.feeds.waze_incident import clean_text, description_of, local_time, rounded_points
from traffic_hub.feeds.waze_types import waze_kind
from traffic_hub.feeds.waze_withhold import national_base_reasons
from traffic_hub.model import Event, Measure, MeasureType, Segment, Vehicles
from traffic_hub.model.geometry import lonlat_pairs

MIN_LENGTH_M = 35.0
MAX_LENGTH_M = 10_000.0
MIN_ID_LENGTH = 3
AREA_MARGIN_DEG = 0.05  # how far (≈ 3.5-5.5 km here) a segment may stray from the event's own geometry
_SUFFIX = re.compile(r",|\(|\b\d{5}\b")  # "Rue du Taur, 31000 Toulouse", "ROUTE 147 (NOYELLES-LÈS-SECLIN)"
_SEVERAL = re.compile(r";|\|")  # OSM-style "Rue A;Rue B"


@cache
def _geod() -> Geod:
    return Geod(ellps="WGS84")


def length_m(points: list[tuple[float, float]]) -> float:
    """Geodesic length on WGS84 of (lon, lat) points."""
    if len(points) < 2:
        return 0.0
    return _length_m(tuple(points))


@lru_cache(maxsize=8192)
def _length_m(points: tuple[tuple[float, float], ...]) -> float:
    """Remembered: an event's segments are checked by each Waze feed's gate at every change and every
    `publication` answer, and pyproj's call was 11 % of rendering a change (py-spy, issue 17)."""
    lons, lats = zip(*points, strict=True)
    return float(_geod().line_length(lons, lats))


def check_waze(event: Event, ctx: FeedContext) -> list[str]:
    """Reasons `event` cannot enter the Waze feeds at `ctx.now` (empty: it can)."""
    return status_reasons(event, ctx) or rule_reasons(event, ctx)


def from_waze_only(event: Event) -> bool:
    """Every source still reporting the event is a Waze feed (operators' actions aside)."""
    reporting = [s for s in event.sources if s.active and s.kind != "operator"]
    return bool(reporting) and all(s.kind.startswith("waze") for s in reporting)


def rule_reasons(event: Event, ctx: FeedContext) -> list[str]:
    """What Waze would reject in the event itself; independent of `ctx.now`, so memoisable."""
    cannot = measure_reason(event.measure)
    if cannot is not None:
        return [cannot]
    if national := national_base_reasons(event, enabled=ctx.waze_withhold_national_base):
        return national  # never two copies in Waze (traffic_hub.feeds.waze_withhold)
    kind = waze_kind(event)
    if kind is None:
        return [f"no Waze type for events of type {event.type.value}"]
    if from_waze_only(event):
        return ["reported by Waze itself: not sent back to Waze"]
    reasons = list(_event_reasons(event, kind.type, ctx))
    if not event.segments:
        reasons.extend(event.segments_withheld or ["not matched to a single street"])
    area = _area(event)
    for number, segment in enumerate(event.segments, start=1):
        reasons.extend(_segment_reasons(number, segment, area))
    return reasons


def measure_reason(measure: Measure | None) -> str | None:
    """Why Waze CIFS cannot carry a measure (None: it can). CIFS carries closures for all vehicles, in
    one or both directions (and lane closures as hazards); no vehicle classes, speeds or rules."""
    if measure is None or measure.type in (MeasureType.ROAD_CLOSED, MeasureType.LANE_CLOSED):
        return None
    what = {
        MeasureType.ALTERNATE_TRAFFIC: "alternating traffic",
        MeasureType.NO_OVERTAKING: "a no-overtaking rule",
        MeasureType.SPEED_LIMIT: f"a {measure.speed_kmh} km/h speed limit",
        MeasureType.DETOUR: "a detour (Waze routes drivers around the closure by itself)",
    }.get(measure.type) or restriction_text(measure.vehicles)
    return f"Waze CIFS cannot carry {what}: it takes closures for all vehicles only"


def restriction_text(vehicles: Vehicles | None) -> str:
    """A vehicle restriction in a few words: "a 3.5 t limit", "a ban on heavy_goods_vehicle"."""
    if vehicles is None:
        return "a vehicle restriction"
    units = {"max_weight_t": ("t", ""), "max_axle_load_t": ("t", " axle-load"), "max_height_m": ("m", " height"),
             "max_width_m": ("m", " width"), "max_length_m": ("m", " length")}
    parts = [f"a {value:g} {units[name][0]}{units[name][1]} limit" for name, value in vehicles.limits.items()]
    if vehicles.kinds:
        parts.append(f"a ban on {', '.join(vehicles.kinds)}")
    if vehicles.critair:
        parts.append(f"a Crit'Air ban ({', '.join(vehicles.critair)})")
    return " and ".join(parts) or "a vehicle restriction"


def _event_reasons(event: Event, waze_type: str, ctx: FeedContext) -> Iterator[str]:
    if len(event.id) < MIN_ID_LENGTH:
        yield f"id {event.id!r} is shorter than {MIN_ID_LENGTH} characters"
    if clean_text(event.id) != event.id:
        yield "id has characters XML cannot carry or stray whitespace"
    if not description_of(event):
        yield "description is empty"
    validity = event.validity
    if validity.ends_at is None:
        if waze_type == "ROAD_CLOSED":
            yield "a closure needs an end time for Waze"
        return
    tz = ZoneInfo(ctx.timezone)
    if local_time(validity.ends_at, tz) <= local_time(validity.starts_at, tz):
        yield "end time is not after start time (to the second)"


def _segment_reasons(number: int, segment: Segment, area: tuple[float, float, float, float]) -> Iterator[str]:
    yield from _street_reasons(number, segment.street)
    points = rounded_points(segment)
    if len(set(points)) < 2:
        yield f"segment {number} has fewer than 2 distinct points; Waze needs 2"
        return
    if not all(math.isfinite(lon) and math.isfinite(lat) for lon, lat in points):
        yield f"segment {number} has coordinates that are not numbers"
        return
    if not all(-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0 for lon, lat in points):
        yield f"segment {number} has coordinates outside latitude/longitude ranges"
        return
    west, south, east, north = area
    if not all(west <= lon <= east and south <= lat <= north for lon, lat in points):
        yield f"segment {number} lies away from the event's geometry (latitude and longitude swapped?)"
        return
    length = length_m(points)
    if not MIN_LENGTH_M <= length <= MAX_LENGTH_M:
        yield f"segment {number} is {_distance(length)} long; Waze needs 35 m to 10 km"


def _street_reasons(number: int, street: str | None) -> Iterator[str]:
    name = clean_text(street)
    if len(name) < 2:
        yield f"segment {number} has no street name"
    elif _SEVERAL.search(name):
        yield f"segment {number} names several streets ({name!r}); Waze needs one"
    elif _SUFFIX.search(name):
        yield f"street {name!r} carries a commune or postcode; Waze needs the bare street name"


def _area(event: Event) -> tuple[float, float, float, float]:
    """The event geometry's bounding box, widened by AREA_MARGIN_DEG: (west, south, east, north)."""
    pairs = lonlat_pairs(event.geometry)
    lons = [lon for lon, _ in pairs]
    lats = [lat for _, lat in pairs]
    margin = AREA_MARGIN_DEG
    return min(lons) - margin, min(lats) - margin, max(lons) + margin, max(lats) + margin


def _distance(metres: float) -> str:
    if metres >= 1000:
        return f"{metres / 1000:.2f} km"
    return f"{metres:.1f} m" if metres < 100 else f"{metres:.0f} m"
