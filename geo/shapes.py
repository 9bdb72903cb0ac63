"""Validation of posted line geometries (GeoJSON coordinate lists) and their geodesic length.

Everything here works on WGS84 lon/lat. Each rejection is a :class:`GeoError` with a stable code:

=================== =========================================================================
``not-a-list``      the coordinates are not a JSON array
``too-many-points`` more than :data:`MAX_POINTS` positions
``bad-position``    a position is not an array of 2 or 3 numbers (bools and strings are refused)
``not-finite``      a number is NaN, ±Infinity or too large for a float
``out-of-range``    longitude outside [-180, 180] or latitude outside [-90, 90]
``too-few-points``  fewer than 2 distinct positions
``self-crossing``   the line crosses or touches itself, or ends where it starts (a closed ring)
``degenerate``      the line is shorter than :data:`MIN_LENGTH_M`
=================== =========================================================================
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from functools import cache
from typing import TypeGuard, cast

import numpy as np
import pyproj
import shapely

from geo.arrays import FloatArray
from geo.errors import GeoError

MAX_POINTS: int = 2000
"""Most positions accepted in one line (a closure is a few km at most; 2000 vertices is plenty)."""

MIN_LENGTH_M: float = 1.0
"""Shortest line accepted, in metres."""

BBox = tuple[float, float, float, float]


def parse_positions(coords: object, *, min_count: int = 1, max_count: int = MAX_POINTS) -> FloatArray:
    """Strictly parse a GeoJSON position list into an ``(N, 2)`` float array (elevation dropped).

    Accepts any non-string sequence of positions, each a sequence of exactly 2 or 3 real numbers
    (``int`` or ``float``, never ``bool``); all numbers must be finite. Nothing is range-checked,
    so this serves projected coordinates too.
    """
    return np.asarray(_pairs(coords, min_count, max_count), dtype=np.float64).reshape(-1, 2)


def _pairs(coords: object, min_count: int, max_count: int) -> list[tuple[float, float]]:
    """:func:`parse_positions` as a list of ``(x, y)`` tuples: lines are short, and plain Python
    beats numpy on a handful of points (this runs for every closure the normaliser places)."""
    if not _is_array(coords):
        raise GeoError("not-a-list", "coordinates must be an array of [x, y] positions")
    if len(coords) > max_count:
        raise GeoError("too-many-points", f"{len(coords)} positions: at most {max_count} are accepted")
    if len(coords) < min_count:
        raise GeoError("too-few-points", f"{len(coords)} position(s): at least {min_count} are needed")
    return [_parse_position(position, index) for index, position in enumerate(coords)]


def line_from_coords(coords: object) -> shapely.LineString:
    """Validate a GeoJSON LineString coordinate list in lon/lat and return it as a LineString.

    Repeated consecutive positions are collapsed (they carry no shape); the elevation is dropped.
    Raises :class:`GeoError` with one of the codes listed in the module docstring.
    """
    line = lines_from_coords([coords])[0]
    if isinstance(line, GeoError):
        raise line
    return line


def swapped_error() -> GeoError:
    return GeoError("swapped-coordinates", "positions look like [lat, lon]; GeoJSON order is [lon, lat]")


Checked = shapely.LineString | GeoError


def lines_from_coords(lines: Sequence[object], swapped_in: BBox | None = None) -> list[Checked]:
    """:func:`line_from_coords` of many lines, each line or its :class:`GeoError`, in order.

    With ``swapped_in``, a line given as ``[lat, lon]`` (see :func:`looks_swapped`) is refused first
    with ``swapped-coordinates``. Why a batch: the normaliser checks the closures of a Kafka poll
    together, with one shapely call for all of them instead of a few per line."""
    out: list[Checked | None] = [None] * len(lines)
    points: dict[int, list[tuple[float, float]]] = {}
    for i, coords in enumerate(lines):
        try:
            points[i] = _distinct_points(coords, swapped_in)
        except GeoError as exc:
            out[i] = exc
    if points:
        _check_shapes(points, out)
    return cast(list[Checked], out)  # every entry is set by now


def _check_shapes(points: dict[int, list[tuple[float, float]]], out: list[Checked | None]) -> None:
    """Build every line of ``points`` at once and check it is simple and long enough, into ``out``."""
    counts = [len(p) for p in points.values()]
    flat = np.asarray([xy for p in points.values() for xy in p], dtype=np.float64)
    geoms: list[shapely.LineString] = np.asarray(
        shapely.linestrings(flat, indices=np.repeat(np.arange(len(counts)), counts))
    ).tolist()
    closed: list[bool] = np.asarray(shapely.is_closed(geoms)).tolist()
    simple: list[bool] = np.asarray(shapely.is_simple(geoms)).tolist()
    for line, is_closed, is_simple, (i, pts) in zip(geoms, closed, simple, points.items(), strict=True):
        try:
            _check_simple_flags(is_closed, is_simple)
            _check_length(line, pts)
        except GeoError as exc:
            out[i] = exc
            continue
        out[i] = line


def _distinct_points(coords: object, swapped_in: BBox | None) -> list[tuple[float, float]]:
    """Parsed, range-checked positions without consecutive repeats (at least 2); parsed once."""
    try:
        points = _pairs(coords, 1, MAX_POINTS)
    except GeoError:
        points = []
    if swapped_in is not None and points and _swapped(points, swapped_in):
        raise swapped_error()
    if len(points) < 2:
        points = _pairs(coords, 2, MAX_POINTS)  # raises the error a single line check would
    _check_range(points)
    points = _drop_repeats(points)
    if len(points) < 2:
        raise GeoError("too-few-points", "a line needs at least 2 distinct points; all positions are equal")
    return points


def _check_length(line: shapely.LineString, points: list[tuple[float, float]]) -> None:
    if _rough_length_m(points) < _ROUGH_SURE_M:
        length = length_m(line)
        if length < MIN_LENGTH_M:
            raise GeoError("degenerate", f"the line is {length:.2f} m long: at least {MIN_LENGTH_M:g} m is needed")


_EARTH_M = 6_371_008.8
_ROUGH_SURE_M = MIN_LENGTH_M * 1.01
"""A spherical length above this is surely ≥ MIN_LENGTH_M on the ellipsoid (they differ < 0.6 %)."""


def _rough_length_m(points: list[tuple[float, float]]) -> float:
    """Haversine length: enough to tell most lines are long enough without the geodesic."""
    total = 0.0
    for (lon0, lat0), (lon1, lat1) in itertools.pairwise(points):
        p0, p1 = math.radians(lat0), math.radians(lat1)
        h = math.sin((p1 - p0) / 2) ** 2 + math.cos(p0) * math.cos(p1) * math.sin(math.radians(lon1 - lon0) / 2) ** 2
        total += 2 * _EARTH_M * math.asin(min(1.0, math.sqrt(h)))
    return total


def looks_swapped(coords: object, bbox: BBox) -> bool:
    """True when the positions were given as ``[lat, lon]``: none of them lies in ``bbox``
    (min_lon, min_lat, max_lon, max_lat) while every swapped one does. Unparseable input → False.
    """
    try:
        points = _points(coords)
    except GeoError:
        return False
    return len(points) > 0 and _swapped(points, bbox)


def _swapped(points: list[tuple[float, float]], bbox: BBox) -> bool:
    min_x, min_y, max_x, max_y = bbox
    given_inside = any(min_x <= x <= max_x and min_y <= y <= max_y for x, y in points)
    swapped_inside = all(min_x <= y <= max_x and min_y <= x <= max_y for x, y in points)
    return not given_inside and swapped_inside


def length_m(line_lonlat: shapely.LineString) -> float:
    """Geodesic length in metres of a lon/lat line on the GRS80 ellipsoid (exact to the mm)."""
    return float(_geod().geometry_length(line_lonlat))


@cache
def _geod() -> pyproj.Geod:
    # Geod is stateless once built; building it lazily keeps imports free of side effects.
    return pyproj.Geod(ellps="GRS80")


def _points(coords: object) -> list[tuple[float, float]]:
    if isinstance(coords, shapely.Geometry):
        return [(x, y) for x, y in shapely.get_coordinates(coords).tolist()]
    return _pairs(coords, 1, MAX_POINTS)


def _is_array(value: object) -> TypeGuard[Sequence[object]]:
    return isinstance(value, Sequence) and not isinstance(value, str | bytes | bytearray)


def _parse_position(position: object, index: int) -> tuple[float, float]:
    if isinstance(position, list | tuple) and len(position) == 2:
        x: object = position[0]
        y: object = position[1]
        if type(x) is float and type(y) is float and math.isfinite(x) and math.isfinite(y):
            return x, y  # the common case, checked in one go
    if not _is_array(position):
        raise GeoError("bad-position", f"position {index} is not an array of 2 or 3 numbers", position=index)
    if len(position) not in (2, 3):
        raise GeoError(
            "bad-position",
            f"position {index} has {len(position)} values: expected [x, y] or [x, y, elevation]",
            position=index,
        )
    numbers = [_parse_number(value, index) for value in position]
    return numbers[0], numbers[1]


def _parse_number(value: object, index: int) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise GeoError("bad-position", f"position {index} holds {type(value).__name__}, not a number", position=index)
    try:
        number = float(value)
    except OverflowError:  # an int beyond the float range
        number = math.inf
    if not math.isfinite(number):
        raise GeoError("not-finite", f"position {index} holds a non-finite number ({value!r})", position=index)
    return number


def _check_range(points: list[tuple[float, float]]) -> None:
    for index, (lon, _) in enumerate(points):
        if abs(lon) > 180.0:
            raise GeoError(
                "out-of-range", f"position {index}: longitude {lon:g} is outside [-180, 180]", position=index
            )
    for index, (_, lat) in enumerate(points):
        if abs(lat) > 90.0:
            raise GeoError("out-of-range", f"position {index}: latitude {lat:g} is outside [-90, 90]", position=index)


def _drop_repeats(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    return [p for i, p in enumerate(points) if i == 0 or p != points[i - 1]]


def _check_simple_flags(closed: bool, simple: bool) -> None:
    if closed:
        raise GeoError("self-crossing", "the line ends where it starts (a closed ring): give it as an open line")
    if not simple:
        raise GeoError("self-crossing", "the line crosses or touches itself: split it into simple lines")
