"""The 95 communes of the Métropole Européenne de Lille: lookup and geometric scope checks.

Polygons are held twice: in lon/lat (for point lookup and the bounding box) and in CC50 metres,
where the scope checks run with a tolerance of :data:`TOLERANCE_M` metres (the bundled tracings
are simplified to ~1 m vertices and a closure drawn along a border may stray a few metres).
Everything costly (union, buffer, prepared geometry, spatial index) is built once at load;
unions of a principal's communes are built on first use and cached.

Scope is decided in one place, :meth:`Communes.in_scope`, for creating, reading, listing, changing
and deleting alike: a geometry is in the scope of a set of communes when it lies within their
union grown by the tolerance *and* its own communes (:meth:`Communes.scope`, computed with the
same tolerance) include one of them. So a line straying a few metres over a border stays its
commune's, a line wholly inside the neighbour (however close to the border) is the neighbour's,
and a line in no commune (outside MEL) has no commune at all and is nobody's.

GEOS prepared geometries build internal indexes lazily and are not thread-safe (GEOS issue #825),
so every predicate on a prepared geometry runs under one lock; such a call costs microseconds.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import numpy.typing as npt
import shapely

from geo.crs import Reprojector

TOLERANCE_M: float = 25.0
"""How far (metres) a geometry may stray outside a commune and still count as inside it."""

_DATA_FILE = "communes_mel.geojson"
_CACHE_SIZE = 512
_BBox = tuple[float, float, float, float]


@dataclass(frozen=True, slots=True)
class Commune:
    """One member commune: INSEE code (e.g. ``"59350"``), official name, total population."""

    insee: str
    name: str
    population: int


@dataclass(frozen=True, slots=True)
class Assessment:
    """Where a geometry lies: its :meth:`Communes.scope`, :meth:`Communes.in_mel`, and
    :meth:`Communes.in_scope` of the codes asked about (None when none were)."""

    scope: list[str]
    in_mel: bool
    in_scope: bool | None


class Communes:
    """The communes with their polygons, a spatial index and precomputed tolerance zones."""

    bbox: _BBox
    """Bounding box (min_lon, min_lat, max_lon, max_lat) of MEL, e.g. for ``looks_swapped``."""

    def __init__(
        self,
        communes: list[Commune],
        polygons: list[shapely.Polygon | shapely.MultiPolygon],
        *,
        reprojector: Reprojector | None = None,
        tolerance_m: float = TOLERANCE_M,
    ) -> None:
        if len(communes) != len(polygons):
            raise ValueError("one polygon per commune is needed")
        self._reprojector = reprojector or Reprojector()
        self._tolerance_m = tolerance_m
        self._communes = communes
        self._index = {commune.insee: i for i, commune in enumerate(communes)}
        self._shapes = list(polygons)
        self._polygons = np.array(polygons, dtype=object)
        self._metric = np.array([self._reprojector.geometry_to_metric(p) for p in polygons], dtype=object)
        self._tree = shapely.STRtree(self._polygons)
        self._metric_tree = shapely.STRtree(self._metric)
        # each commune shrunk by the tolerance: a geometry reaching into it is in the commune for sure
        self._cores = shapely.STRtree(shapely.buffer(self._metric, -tolerance_m, quad_segs=4))
        self._lock = threading.Lock()
        self._zones: dict[frozenset[str], shapely.Geometry] = {}
        self._mel_zone = self._zone(frozenset(self._index))
        self.bbox = _bounds(self._polygons)

    @classmethod
    def load(cls, path: Path | None = None, *, reprojector: Reprojector | None = None) -> Communes:
        """Load a FeatureCollection of commune polygons with properties ``insee``, ``name`` and
        ``population`` (default: the bundled MEL file, see ``geo/data/SOURCES.md``)."""
        if path is None:
            text = resources.files("geo").joinpath("data", _DATA_FILE).read_text(encoding="utf-8")
        else:
            text = path.read_text(encoding="utf-8")
        features = json.loads(text)["features"]
        communes = [_commune(feature["properties"]) for feature in features]
        polygons = [_polygon(feature["geometry"]) for feature in features]
        return cls(communes, polygons, reprojector=reprojector)

    def __len__(self) -> int:
        return len(self._communes)

    def __iter__(self) -> Iterator[Commune]:
        return iter(self._communes)

    def __contains__(self, insee: object) -> bool:
        return insee in self._index

    def get(self, insee: str) -> Commune | None:
        index = self._index.get(insee)
        return None if index is None else self._communes[index]

    def polygon(self, insee: str) -> shapely.Polygon | shapely.MultiPolygon | None:
        """The commune's lon/lat polygon, or None for an unknown code."""
        index = self._index.get(insee)
        return None if index is None else self._shapes[index]

    def locate(self, lon: float, lat: float) -> Commune | None:
        """The commune containing the point; failing that, the nearest one within the tolerance."""
        found = self.locate_many(np.array([[lon, lat]], dtype=np.float64))[0]
        return None if found is None else self.get(found)

    def locate_many(self, points_lonlat: npt.ArrayLike) -> list[str | None]:
        """Vectorised :meth:`locate` for an ``(N, 2)`` lon/lat array: an INSEE code or None each."""
        lonlat = np.asarray(points_lonlat, dtype=np.float64).reshape(-1, 2)
        result: list[str | None] = [None] * len(lonlat)
        points = shapely.points(lonlat)
        point_index, poly_index = self._tree.query(points, predicate="intersects")
        for p, c in zip(point_index.tolist(), poly_index.tolist(), strict=True):
            if result[p] is None:  # a point on a border: the first match wins
                result[p] = self._communes[c].insee
        missing = [i for i, code in enumerate(result) if code is None]
        if missing:
            metric = shapely.points(self._reprojector.to_metric(lonlat[missing]))
            near_point, near_poly = self._metric_tree.query_nearest(
                metric, max_distance=self._tolerance_m, all_matches=False
            )
            for p, c in zip(near_point.tolist(), near_poly.tolist(), strict=True):
                result[missing[p]] = self._communes[c].insee
        return result

    def shares(self, geom: shapely.Geometry) -> list[tuple[str, float]]:
        """``(insee, share)`` of each commune the lon/lat geometry overlaps, largest share first.

        The share is metres of line, square metres of area, or number of points inside the
        commune, depending on the geometry's dimension. A commune merely touched (share 0) is left
        out, unless the geometry only touches communes: then they all come, with share 0.
        """
        return self._shares(self._reprojector.geometry_to_metric(geom))

    def _shares(self, metric: shapely.Geometry) -> list[tuple[str, float]]:
        candidates = self._metric_tree.query(metric, predicate="intersects")
        if len(candidates) == 0:
            return []
        parts = shapely.intersection(metric, self._metric[candidates])
        measures = _measure(parts, int(shapely.get_dimensions(metric)))
        found = [(self._communes[int(c)].insee, float(m)) for c, m in zip(candidates, measures, strict=True) if m > 0]
        if not found:  # only touching, or too small to measure: every commune touched, share 0
            found = [(self._communes[int(c)].insee, 0.0) for c in candidates]
        return sorted(found, key=lambda item: (-item[1], item[0]))

    def covering(self, geom: shapely.Geometry) -> list[str]:
        """INSEE codes of the communes the lon/lat geometry lies in, largest share first."""
        return [insee for insee, _ in self.shares(geom)]

    def scope(self, geom: shapely.Geometry) -> list[str]:
        """The communes the lon/lat geometry lies in, computed with the tolerance, largest share first.

        Those it reaches more than the tolerance into; when it reaches that far into none (a short
        line along a border), those it overlaps at all. Empty only when it lies in no commune
        (outside MEL)."""
        return self._scope(self._reprojector.geometry_to_metric(geom))

    def _scope(self, metric: shapely.Geometry) -> list[str]:
        shares = self._shares(metric)
        if not shares:
            return []
        deep = {self._communes[int(c)].insee for c in self._cores.query(metric, predicate="intersects")}
        inside = [insee for insee, _ in shares if insee in deep]
        return inside or [insee for insee, _ in shares]

    def in_scope(self, geom: shapely.Geometry, insee_codes: Collection[str]) -> bool:
        """The one scope rule: the geometry lies within those communes (within the tolerance) and
        is not wholly in other communes (one of its :meth:`scope` communes is theirs); stated once, in
        :meth:`assess`."""
        return bool(self.assess(geom, insee_codes).in_scope)

    def assess(self, geom: shapely.Geometry, insee_codes: Collection[str] | None = None) -> Assessment:
        """:meth:`scope`, :meth:`in_mel` and (with `insee_codes`) :meth:`in_scope` of one lon/lat geometry,
        with the same answers, projecting it to metres once and computing its scope once.

        Why: a closure POST asked the three questions apart, projecting the line five times and computing
        its scope twice (15 % of the write path in the profile of issue 17)."""
        if shapely.is_empty(geom):
            return Assessment(self.scope(geom), False, False if insee_codes is not None else None)
        metric = self._reprojector.geometry_to_metric(geom)
        scope = self._scope(metric)
        in_mel = self._covers_metric(self._mel_zone, metric)
        if insee_codes is None:
            return Assessment(scope, in_mel, None)
        codes = set(insee_codes)
        in_scope = bool(codes & set(scope)) and self._within_metric(metric, codes)
        return Assessment(scope, in_mel, in_scope)

    def names(self, insee_codes: Collection[str]) -> str:
        """Codes with their names, e.g. "Roubaix (59512), Lille (59350)", for messages people read."""
        return ", ".join(f"{c.name} ({code})" if (c := self.get(code)) else code for code in insee_codes)

    def in_mel(self, geom: shapely.Geometry) -> bool:
        """True when the lon/lat geometry lies inside MEL (within the tolerance)."""
        return self._covers(self._mel_zone, geom)

    def within(self, geom: shapely.Geometry, insee_codes: Collection[str]) -> bool:
        """True when the lon/lat geometry lies wholly inside the union of those communes (within
        the tolerance). Unknown codes are ignored; with no known code the answer is False."""
        if shapely.is_empty(geom):
            return False
        return self._within_metric(self._reprojector.geometry_to_metric(geom), insee_codes)

    def _within_metric(self, metric: shapely.Geometry, insee_codes: Collection[str]) -> bool:
        known = frozenset(code for code in insee_codes if code in self._index)
        if not known:
            return False
        zone = self._mel_zone if len(known) == len(self._index) else self._zone(known)
        return self._covers_metric(zone, metric)

    def _covers(self, zone: shapely.Geometry, geom: shapely.Geometry) -> bool:
        if shapely.is_empty(geom):
            return False
        return self._covers_metric(zone, self._reprojector.geometry_to_metric(geom))

    def _covers_metric(self, zone: shapely.Geometry, metric: shapely.Geometry) -> bool:
        with self._lock:
            return bool(shapely.covers(zone, metric))

    def _zone(self, codes: frozenset[str]) -> shapely.Geometry:
        """The union of those communes grown by the tolerance, prepared (cached)."""
        with self._lock:
            zone = self._zones.get(codes)
        if zone is not None:
            return zone
        members = self._metric[[self._index[code] for code in sorted(codes)]]
        zone = shapely.buffer(shapely.union_all(members), self._tolerance_m, quad_segs=4)
        shapely.prepare(zone)
        with self._lock:
            if len(self._zones) >= _CACHE_SIZE:
                self._zones.pop(next(iter(self._zones)))
            self._zones[codes] = zone
        return zone


@functools.cache
def bundled_names() -> dict[str, str]:
    """INSEE code → name of the bundled MEL communes (properties only, no geometry work)."""
    text = resources.files("geo").joinpath("data", _DATA_FILE).read_text(encoding="utf-8")
    return {c.insee: c.name for c in (_commune(f["properties"]) for f in json.loads(text)["features"])}


def _commune(properties: dict[str, object]) -> Commune:
    insee, name, population = properties["insee"], properties["name"], properties["population"]
    if not isinstance(insee, str) or not isinstance(name, str) or not isinstance(population, int):
        raise ValueError(f"bad commune properties: {properties!r}")
    return Commune(insee=insee, name=name, population=population)


def _polygon(geometry: dict[str, object]) -> shapely.Polygon | shapely.MultiPolygon:
    shape = shapely.from_geojson(json.dumps(geometry))
    if not isinstance(shape, shapely.Polygon | shapely.MultiPolygon):
        raise ValueError(f"a commune must be a (multi)polygon, not {shape.geom_type}")
    return shape


def _bounds(polygons: npt.NDArray[np.object_]) -> _BBox:
    min_x, min_y, max_x, max_y = shapely.total_bounds(polygons).tolist()
    return (min_x, min_y, max_x, max_y)


def _measure(parts: npt.NDArray[np.object_], dimension: int) -> npt.NDArray[np.float64]:
    if dimension >= 2:
        return np.asarray(shapely.area(parts), dtype=np.float64)
    if dimension == 1:
        return np.asarray(shapely.length(parts), dtype=np.float64)
    return np.asarray(shapely.get_num_coordinates(parts), dtype=np.float64)
