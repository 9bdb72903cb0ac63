"""Coordinate reference systems: input CRSs to WGS84, and WGS84 to/from the metric CRS (CC50).

Metres are computed in RGF93 / CC50 (EPSG:3950): its scale factor at Lille is 0.999975 (−25 ppm),
where Lambert-93's is 1.0017 (+1.7 m per km). All transformers use ``always_xy=True`` (x = lon or
easting first) and work on numpy arrays; pyproj (≥ 3.1) Transformers are thread-safe.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import numpy as np
import numpy.typing as npt
import pyproj
import shapely

from geo.arrays import FloatArray
from geo.errors import GeoError
from geo.shapes import parse_positions

WGS84 = "EPSG:4326"
LAMBERT93 = "EPSG:2154"
CC50 = "EPSG:3950"
METRIC_CRS = CC50

SUPPORTED_CRS: frozenset[str] = frozenset({WGS84, LAMBERT93, CC50})

_ALIASES: dict[str, str] = {
    "epsg:4326": WGS84,
    "urn:ogc:def:crs:epsg::4326": WGS84,
    "urn:ogc:def:crs:ogc:1.3:crs84": WGS84,
    "urn:ogc:def:crs:ogc::crs84": WGS84,
    "crs84": WGS84,
    "ogc:crs84": WGS84,
    "epsg:2154": LAMBERT93,
    "urn:ogc:def:crs:epsg::2154": LAMBERT93,
    "epsg:3950": CC50,
    "urn:ogc:def:crs:epsg::3950": CC50,
}

# Any real projected coordinate in mainland France is far beyond these magnitudes (Lambert-93
# eastings are > 50 km, CC50 northings ~ 9,000 km), and any degree value is within them.
_DEGREE_LIMIT = 180.0
_METRE_FLOOR = 1000.0
_ROUND_TRIP_M = 0.01

GeometryT = TypeVar("GeometryT", bound=shapely.Geometry)


def normalise_crs(name: object) -> str:
    """Map a CRS name (``EPSG:2154``, ``epsg:2154``, ``urn:ogc:def:crs:EPSG::2154``, ``CRS84``…) to
    its canonical ``EPSG:nnnn`` form; raise ``GeoError("unsupported-crs")`` for anything else."""
    if isinstance(name, str):
        canonical = _ALIASES.get(name.strip().lower())
        if canonical is not None:
            return canonical
    accepted = ", ".join(sorted(SUPPORTED_CRS))
    raise GeoError("unsupported-crs", f"crs {name!r} is not supported: use one of {accepted}")


class Reprojector:
    """Holds the pyproj transformers; build one at start-up and share it."""

    def __init__(self) -> None:
        self._to_wgs84 = {
            crs: pyproj.Transformer.from_crs(crs, WGS84, always_xy=True) for crs in SUPPORTED_CRS - {WGS84}
        }
        self._from_wgs84 = {
            crs: pyproj.Transformer.from_crs(WGS84, crs, always_xy=True) for crs in SUPPORTED_CRS - {WGS84}
        }

    def to_wgs84(self, coords: Sequence[Sequence[float]], crs: str) -> list[tuple[float, float]]:
        """Positions given in ``crs`` (GeoJSON-style, x first) as WGS84 ``(lon, lat)`` tuples.

        Positions are parsed strictly (see :func:`geo.shapes.parse_positions`, elevation dropped);
        WGS84 input is returned unchanged, to be range-checked by ``line_from_coords``. Raises
        ``unsupported-crs``, ``wrong-crs`` (metres labelled as degrees or the reverse) or
        ``out-of-range`` (not projectable) besides the parsing codes.
        """
        name = normalise_crs(crs)
        xy = parse_positions(coords)
        _check_units(xy, name)
        if name == WGS84:
            lonlat = xy
        else:
            lonlat = _apply(self._to_wgs84[name], xy)
            _check_projected(xy, lonlat, _apply(self._from_wgs84[name], lonlat), name)
        return list(zip(lonlat[:, 0].tolist(), lonlat[:, 1].tolist(), strict=True))

    def from_wgs84(self, coords_lonlat: npt.ArrayLike, crs: str) -> FloatArray:
        """``(N, 2)`` lon/lat → ``(N, 2)`` coordinates in ``crs`` (for output and tests)."""
        name = normalise_crs(crs)
        xy = _as_xy(coords_lonlat)
        return xy.copy() if name == WGS84 else _apply(self._from_wgs84[name], xy)

    def to_metric(self, coords_lonlat: npt.ArrayLike) -> FloatArray:
        """``(N, 2)`` lon/lat → ``(N, 2)`` CC50 (EPSG:3950) metres."""
        return _apply(self._from_wgs84[METRIC_CRS], _as_xy(coords_lonlat))

    def from_metric(self, coords_xy: npt.ArrayLike) -> FloatArray:
        """``(N, 2)`` CC50 (EPSG:3950) metres → ``(N, 2)`` lon/lat."""
        return _apply(self._to_wgs84[METRIC_CRS], _as_xy(coords_xy))

    def geometry_to_metric(self, geom: GeometryT) -> GeometryT:
        """A lon/lat shapely geometry (any type) re-expressed in CC50 metres."""
        return shapely.transform(geom, self.to_metric)

    def geometry_from_metric(self, geom: GeometryT) -> GeometryT:
        """A CC50 shapely geometry (any type) re-expressed in lon/lat."""
        return shapely.transform(geom, self.from_metric)


def _as_xy(coords: npt.ArrayLike) -> FloatArray:
    xy = np.asarray(coords, dtype=np.float64)
    if xy.ndim != 2 or xy.shape[1] < 2:
        raise ValueError(f"expected an (N, 2) coordinate array, got shape {xy.shape}")
    return xy[:, :2]


def _apply(transformer: pyproj.Transformer, xy: FloatArray) -> FloatArray:
    x, y = transformer.transform(xy[:, 0], xy[:, 1])
    return np.column_stack([np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)])


def _check_units(xy: FloatArray, crs: str) -> None:
    magnitude = np.abs(xy)
    if crs == WGS84 and bool(np.all(magnitude.max(axis=1) > _METRE_FLOOR)):
        raise GeoError(
            "wrong-crs",
            "coordinates look like projected metres, not degrees: set crs to EPSG:2154 (Lambert-93) "
            "or EPSG:3950 (CC50)",
        )
    if crs != WGS84 and bool(np.all(magnitude.max(axis=1) <= _DEGREE_LIMIT)):
        raise GeoError("wrong-crs", f"coordinates look like degrees, not {crs} metres: set crs to EPSG:4326")


def _check_projected(xy: FloatArray, lonlat: FloatArray, back: FloatArray, crs: str) -> None:
    """A position is outside the projection's domain when its inverse does not project back onto it
    (PROJ clamps such positions to the pole or returns infinity)."""
    with np.errstate(invalid="ignore"):
        drift = np.hypot(back[:, 0] - xy[:, 0], back[:, 1] - xy[:, 1])
        ok = np.isfinite(lonlat).all(axis=1) & (drift <= _ROUND_TRIP_M)
    bad = np.flatnonzero(~ok)
    if bad.size:
        index = int(bad[0])
        raise GeoError("out-of-range", f"position {index} is outside the domain of {crs}", position=index)
