"""The road network: directed junction-to-junction edges as numpy columns, a spatial index in metres.

A network file (built by :mod:`geo.build`) is one Arrow IPC (Feather v2) table, one row per
directed edge (see :data:`SCHEMA`). Geometry is stored twice, lon/lat and CC50 (EPSG:3950)
metres, in travel order, so loading needs no reprojection. :class:`RoadNetwork` is immutable
after :meth:`RoadNetwork.load`; its only mutable parts are the routing caches inside its
:class:`geo.routing.Layer` objects, which are lock-protected, so it is safe to share between
threads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.feather as feather
import shapely

from geo.arrays import BoolArray, FloatArray, IntArray
from geo.crs import Reprojector
from geo.edgeshapes import EdgeShapes
from geo.errors import GeoError
from geo.names import core, normalise
from geo.nearby import SegmentGrid
from geo.routing import Layer

FORMAT = "traffic-hub-network/1"
DEFAULT_FILE = "lille_centre.network.arrow"
DECIMALS = 7
"""Decimals of published lon/lat (1 cm; Waze wants at least 6)."""
COVERAGE_MARGIN_M = 50.0
"""How far beyond the outermost road of the network a place still counts as covered by it."""

_float_list = pa.list_(pa.float64())
SCHEMA = pa.schema(
    [
        ("edge_id", pa.string()),
        ("way_id", pa.int64()),
        ("u", pa.int64()),
        ("v", pa.int64()),
        ("name", pa.string()),
        ("ref", pa.string()),
        ("highway", pa.dictionary(pa.int32(), pa.string())),
        ("oneway", pa.bool_()),
        ("roundabout", pa.bool_()),
        ("twin", pa.int32()),
        ("length_m", pa.float64()),
        ("commune", pa.dictionary(pa.int32(), pa.string())),
        ("lon", _float_list),
        ("lat", _float_list),
        ("x", _float_list),
        ("y", _float_list),
    ]
)

ObjArray = npt.NDArray[np.object_]


def _strings(table: pa.Table, column: str) -> ObjArray:
    values = table.column(column).combine_chunks()
    if pa.types.is_dictionary(values.type):
        values = values.cast(pa.string())
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype=object)


def _per_name(names: ObjArray, key: Callable[[str], str]) -> ObjArray:
    """``key`` of every name, computed once per distinct name."""
    uniq, inverse = np.unique(names.astype(str), return_inverse=True)
    keys = np.asarray([key(n) if n else "" for n in uniq.tolist()], dtype=object)
    return np.asarray(keys[inverse], dtype=object)


def _coords(table: pa.Table, column: str) -> tuple[FloatArray, IntArray]:
    values = table.column(column).combine_chunks()
    offsets = np.asarray(values.offsets.to_numpy(), dtype=np.int64)
    return np.asarray(values.values.to_numpy(), dtype=np.float64), offsets


@dataclass(frozen=True)
class EdgeLists:
    """Per-edge columns as Python lists: one result touches a few dozen edges, where indexing a
    list is far cheaper than a numpy call or a numpy scalar."""

    edge_ids: list[str]
    name: list[str]
    commune: list[str]
    length: list[float]
    twin: list[int]
    u: list[int]
    v: list[int]
    offsets: list[int]  # vertex rows of edge i: offsets[i] … offsets[i + 1] - 1


@dataclass(frozen=True, eq=False)
class RoadNetwork:
    """Directed edges of a road network (row ``i`` = edge ``i``) and their indexes."""

    edge_ids: ObjArray
    way_id: IntArray
    osm_u: IntArray
    osm_v: IntArray
    u: IntArray
    v: IntArray
    name: ObjArray
    ref: ObjArray
    highway: ObjArray
    oneway: BoolArray
    roundabout: BoolArray
    twin: IntArray
    length: FloatArray
    commune: ObjArray
    offsets: IntArray
    lonlat: FloatArray
    xy: FloatArray
    node_xy: FloatArray
    source: str
    reprojector: Reprojector = field(repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # ---------------------------------------------------------------- loading
    @classmethod
    def load(cls, path: Path | str) -> RoadNetwork:
        """Read a network file written by :func:`geo.build.build_network`."""
        table = feather.read_table(str(path), memory_map=True)
        meta = table.schema.metadata or {}
        if meta.get(b"format") != FORMAT.encode():
            raise GeoError("bad-network", f"{path} is not a {FORMAT} network file")
        return cls.from_table(table, source=str(path))

    @classmethod
    def default(cls) -> RoadNetwork:
        """The bundled central-Lille network (OSM 2017, ODbL)."""
        return cls.load(Path(str(resources.files("geo") / "data" / DEFAULT_FILE)))

    @classmethod
    def from_table(cls, table: pa.Table, *, source: str = "<memory>") -> RoadNetwork:
        """Build the in-memory network from an edge table with :data:`SCHEMA`."""
        osm_u = table.column("u").to_numpy().astype(np.int64)
        osm_v = table.column("v").to_numpy().astype(np.int64)
        nodes, inverse = np.unique(np.concatenate([osm_u, osm_v]), return_inverse=True)
        x, offsets = _coords(table, "x")
        y, _ = _coords(table, "y")
        lon, _ = _coords(table, "lon")
        lat, _ = _coords(table, "lat")
        n = len(osm_u)
        node_xy = np.zeros((len(nodes), 2))
        node_xy[inverse[n:]] = np.column_stack([x[offsets[1:] - 1], y[offsets[1:] - 1]])
        node_xy[inverse[:n]] = np.column_stack([x[offsets[:-1]], y[offsets[:-1]]])
        return cls(
            edge_ids=_strings(table, "edge_id"),
            way_id=table.column("way_id").to_numpy().astype(np.int64),
            osm_u=osm_u,
            osm_v=osm_v,
            u=inverse[:n].astype(np.int64),
            v=inverse[n:].astype(np.int64),
            name=_strings(table, "name"),
            ref=_strings(table, "ref"),
            highway=_strings(table, "highway"),
            oneway=table.column("oneway").to_numpy().astype(bool),
            roundabout=table.column("roundabout").to_numpy().astype(bool),
            twin=table.column("twin").to_numpy().astype(np.int64),
            length=table.column("length_m").to_numpy().astype(np.float64),
            commune=_strings(table, "commune"),
            offsets=offsets,
            lonlat=np.column_stack([lon, lat]),
            xy=np.column_stack([x, y]),
            node_xy=node_xy,
            source=source,
            reprojector=Reprojector(),
        )

    # ---------------------------------------------------------------- sizes and lookups
    @property
    def n_edges(self) -> int:
        """Number of directed edges."""
        return len(self.edge_ids)

    @property
    def n_nodes(self) -> int:
        """Number of graph nodes (junctions and dead ends)."""
        return len(self.node_xy)

    @cached_property
    def index(self) -> dict[str, int]:
        """Edge id → row."""
        return {eid: i for i, eid in enumerate(self.edge_ids.tolist())}

    def edge(self, edge_id: str) -> int:
        """Row of ``edge_id``; ``GeoError("unknown-edge")`` if absent."""
        try:
            return self.index[edge_id]
        except KeyError:
            raise GeoError("unknown-edge", f"edge {edge_id!r} is not in the network") from None

    def edge_xy(self, i: int) -> FloatArray:
        """Metric coordinates of edge ``i`` in travel order."""
        return self.xy[self.offsets[i] : self.offsets[i + 1]]

    def edge_lonlat(self, i: int) -> FloatArray:
        """Lon/lat coordinates of edge ``i`` in travel order."""
        return self.lonlat[self.offsets[i] : self.offsets[i + 1]]

    @cached_property
    def lists(self) -> EdgeLists:
        """The columns result building reads, as Python lists (see :class:`EdgeLists`)."""
        return EdgeLists(
            edge_ids=self.edge_ids.tolist(),
            name=self.name.tolist(),
            commune=self.commune.tolist(),
            length=self.length.tolist(),
            twin=self.twin.tolist(),
            u=self.u.tolist(),
            v=self.v.tolist(),
            offsets=self.offsets.tolist(),
        )

    @cached_property
    def lonlat_rounded(self) -> FloatArray:
        """:attr:`lonlat` rounded to :data:`DECIMALS` (1 cm): the published form of road geometry."""
        return np.round(self.lonlat, DECIMALS)

    @cached_property
    def shapes(self) -> EdgeShapes:
        """Each edge's geometry as Python lists, built on first use (see :mod:`geo.edgeshapes`)."""
        return EdgeShapes(self.xy, self.lonlat_rounded, self.lists.offsets)

    @cached_property
    def geoms(self) -> npt.NDArray[np.object_]:
        """Metric LineStrings, one per edge."""
        counts = np.diff(self.offsets)
        return np.asarray(shapely.linestrings(self.xy, indices=np.repeat(np.arange(self.n_edges), counts)))

    @cached_property
    def segments(self) -> IntArray:
        """One edge per physical carriageway piece (twins collapsed): what the spatial index holds."""
        keep = (self.twin < 0) | (np.arange(self.n_edges) < self.twin)
        return np.flatnonzero(keep).astype(np.int64)

    @cached_property
    def tree(self) -> shapely.STRtree:
        """STRtree over :attr:`segments` geometries (query results are positions in ``segments``).

        Not built by :meth:`warm`: matching uses :attr:`grid`; this serves ad-hoc geometric queries."""
        return shapely.STRtree(self.geoms[self.segments])

    @cached_property
    def grid(self) -> SegmentGrid:
        """Grid over the segments of :attr:`segments` edges: bulk candidate search (see :mod:`geo.nearby`)."""
        return SegmentGrid.build(self.xy, self.offsets, self.segments)

    @cached_property
    def bbox_lonlat(self) -> tuple[float, float, float, float]:
        """(min_lon, min_lat, max_lon, max_lat) of the network."""
        lo = self.lonlat.min(axis=0)
        hi = self.lonlat.max(axis=0)
        return float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])

    @cached_property
    def coverage(self) -> shapely.Geometry:
        """Where the network has roads at all (metric): the convex hull of its vertices grown by
        :data:`COVERAGE_MARGIN_M`. Outside it, "no road nearby" means "this network stops before
        here", not "there is no road here" (e.g. a Roubaix closure on the central-Lille network)."""
        return shapely.MultiPoint(self.xy).convex_hull.buffer(COVERAGE_MARGIN_M, quad_segs=4)

    @cached_property
    def communes_covered(self) -> frozenset[str]:
        """INSEE codes of the communes the network has at least one edge in (some only in part)."""
        return frozenset(str(code) for code in np.unique(self.commune.astype(str)).tolist() if code)

    def covers(self, xy: npt.ArrayLike) -> bool:
        """Whether the metric points (N, 2) all lie where the network has roads (see :attr:`coverage`)."""
        points = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        return bool(np.all(shapely.covers(self.coverage, shapely.points(points))))

    @cached_property
    def name_keys(self) -> ObjArray:
        """Normalised name of every edge ('' for unnamed)."""
        return _per_name(self.name, normalise)

    @cached_property
    def core_keys(self) -> ObjArray:
        """Normalised name of every edge without its type word ("rue", "avenue" …)."""
        return _per_name(self.name, core)

    # ---------------------------------------------------------------- routing layers
    @cached_property
    def directed(self) -> Layer:
        """Routing layer honouring one-way streets."""
        return Layer.directed(self.u, self.v, self.length, self.n_nodes, self.node_xy)

    @cached_property
    def both_ways(self) -> Layer:
        """Routing layer where one-way edges may also be used backwards (virtual reversed states)."""
        return Layer.both_ways(self.u, self.v, self.length, self.twin, self.n_nodes, self.node_xy)

    def warm(self) -> RoadNetwork:
        """Build every lazy index now (call once at start-up, before sharing between threads)."""
        with self._lock:
            _ = (self.index, self.grid, self.name_keys, self.core_keys, self.lists)
            _ = (self.directed, self.both_ways, self.bbox_lonlat, self.lonlat_rounded, self.shapes)
            _ = (self.coverage, self.communes_covered)
        return self
