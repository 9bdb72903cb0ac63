"""Source coordinates to canonical GeoJSON geometry (WGS84, lon/lat order)."""

from __future__ import annotations

import math
import re
from functools import lru_cache

import pyproj

from connectors.trusted import build
from connectors.values import ItemError
from traffic_hub.model import LineString, Point

MAX_POINTS = 5000
_SEPARATORS = re.compile(r"[\s,]+")
_WGS84_NAMES = frozenset(
    {
        "",
        "wgs 84",
        "wgs84",
        "epsg:4326",
        "4326",
        "urn:ogc:def:crs:epsg::4326",
        "http://www.opengis.net/def/crs/epsg/0/4326",
    }
)
_EPSG_CODE = re.compile(r"(?:epsg\D*|crs/epsg/0/|^)(\d{4,5})$")

LonLat = tuple[float, float]


def numbers(text: str) -> list[float]:
    """Blank- or comma-separated numbers (DATEX II posList, CIFS polyline)."""
    parts = [part for part in _SEPARATORS.split(text.strip()) if part]
    try:
        values = [float(part) for part in parts]
    except ValueError:
        raise ItemError("coordinates contain something that is not a number") from None
    if len(values) % 2:
        raise ItemError("an odd count of coordinate numbers")
    return values


def latlon_text(text: str) -> list[LonLat]:
    """`"lat lon lat lon …"` (CIFS polyline, GML posList in EPSG:4326) as (lon, lat) pairs."""
    values = numbers(text)
    return [(values[i + 1], values[i]) for i in range(0, len(values), 2)]


def geometry(points: list[LonLat]) -> Point | LineString:
    """A Point for one distinct position, else a LineString (consecutive repeats dropped).

    Every position is checked here (finite, in WGS84 range, at most `MAX_POINTS`), so the shape is
    built without validating it again (`connectors.trusted`)."""
    cleaned: list[LonLat] = []
    for lon, lat in points:
        # in range (NaN and infinities are not): the common case, without a call per position
        checked = (float(lon), float(lat)) if -180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0 else _checked(lon, lat)
        if not cleaned or cleaned[-1] != checked:
            cleaned.append(checked)
    if not cleaned:
        raise ItemError("no coordinates")
    if len(cleaned) > MAX_POINTS:
        raise ItemError(f"more than {MAX_POINTS} points")
    if len(set(cleaned)) == 1:
        return build(Point, {"type": "Point", "coordinates": list(cleaned[0])})
    return build(LineString, {"type": "LineString", "coordinates": [list(p) for p in cleaned]})


def _checked(lon: float, lat: float) -> LonLat:
    if not (math.isfinite(lon) and math.isfinite(lat)):
        raise ItemError("a coordinate is not finite")
    if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
        raise ItemError(f"position ({lon}, {lat}) is outside WGS84 lon/lat ranges")
    return (float(lon), float(lat))


def crs_code(name: str | None) -> int:
    """The EPSG code a CRS name stands for (4326 for WGS84 names and when none is given)."""
    lowered = (name or "").strip().lower()
    if lowered in _WGS84_NAMES:
        return 4326
    match = _EPSG_CODE.search(lowered)
    if match is None:
        raise ItemError(f"unknown coordinate reference system {name!r}")
    return int(match[1])


def to_lonlat(xy: list[LonLat], code: int) -> list[LonLat]:
    """Projected (x = easting, y = northing) positions in EPSG:`code` as (lon, lat)."""
    if code == 4326:
        return xy
    transformer = _transformer(code)
    out: list[LonLat] = []
    for x, y in xy:
        lon, lat = transformer.transform(x, y)
        out.append((float(lon), float(lat)))
    return out


@lru_cache(maxsize=16)
def _transformer(code: int) -> pyproj.Transformer:
    try:
        return pyproj.Transformer.from_crs(f"EPSG:{code}", "EPSG:4326", always_xy=True)
    except pyproj.exceptions.CRSError:
        raise ItemError(f"unknown coordinate reference system EPSG:{code}") from None
