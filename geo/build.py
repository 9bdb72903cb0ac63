"""Build a road network file from any OSM extract (streaming, two pyosmium passes).

Pass 1 reads only the drivable ways and counts how often each node is referenced: a node used
twice or more is a junction. Pass 2 reads the node locations (libosmium's own index, not Python
objects) and the drivable ways again, splits each way at junctions and at its ends, and emits
one directed edge per travel direction allowed. No pass keeps the PBF in Python objects.

Edge id (stable across rebuilds of the same OSM data, independent of row order):
``"{way_id}:{u}:{v}"`` where ``u``/``v`` are the OSM node ids where the edge starts and ends *in
its travel direction* (so the reverse carriageway of a two-way piece is ``"{way_id}:{v}:{u}"``).
When a way yields the same triple twice (a closed way with a single junction, or a way that
meets the same two junctions twice), ``":{n}"`` is appended, ``n`` being the OSM id of the
second node along the edge in travel direction.

Run as ``python -m geo.build SRC.osm.pbf -o OUT.network.arrow``.
"""

from __future__ import annotations

import argparse
import itertools
import time
from array import array
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import osmium
import pyarrow as pa
import pyarrow.feather as feather
from tqdm import tqdm

from geo.arrays import FloatArray, IntArray
from geo.communes import Communes
from geo.crs import Reprojector
from geo.network import FORMAT, SCHEMA

DRIVABLE = frozenset(
    {
        "motorway",
        "trunk",
        "primary",
        "secondary",
        "tertiary",
        "unclassified",
        "residential",
        "living_street",
        "road",
        "service",
        "motorway_link",
        "trunk_link",
        "primary_link",
        "secondary_link",
        "tertiary_link",
    }
)
EXCLUDED_SERVICE = frozenset({"parking_aisle", "driveway", "drive-through", "emergency_access"})
NO_ACCESS = frozenset({"no", "private", "agricultural", "forestry", "delivery"})
ONEWAY_BY_DEFAULT = frozenset({"motorway", "motorway_link"})

CommuneLookup = Callable[[np.ndarray], list[str | None]]
"""(N, 2) lon/lat → INSEE code of the commune of each point (None outside)."""

WayFilter = Callable[[FloatArray, FloatArray], bool]
"""lon, lat of a drivable way's nodes → keep the way (whole) in the network; e.g. a clip to MEL."""


@dataclass(frozen=True)
class BuildStats:
    """What a build produced."""

    out: Path
    ways: int
    edges: int
    junctions: int
    length_km: float
    seconds: float


def is_drivable(tags: osmium.osm.TagList) -> bool:
    """True for a way that a car may use."""
    highway = tags.get("highway")
    if highway not in DRIVABLE:
        return False
    if highway == "service" and tags.get("service") in EXCLUDED_SERVICE:
        return False
    if tags.get("area") == "yes":
        return False
    motor = tags.get("motor_vehicle", tags.get("motorcar"))
    if motor is not None:
        return motor not in NO_ACCESS
    return tags.get("access") not in NO_ACCESS


def oneway_of(tags: osmium.osm.TagList) -> int:
    """1: only along the way, -1: only against it, 0: both directions."""
    value = tags.get("oneway")
    if value in ("yes", "true", "1"):
        return 1
    if value in ("-1", "reverse"):
        return -1
    if value in ("no", "false", "0"):
        return 0
    roundabout = tags.get("junction") in ("roundabout", "circular")
    return 1 if roundabout or tags.get("highway") in ONEWAY_BY_DEFAULT else 0


def _ways(src: Path, *, locations: bool, road_nodes: IntArray | None = None) -> Iterator[osmium.osm.Way]:
    """The drivable ways, with their node locations if asked. Given ``road_nodes`` (the ids of their
    nodes, from pass 1) the location index holds only those: a regional extract has many times more
    nodes (buildings, land use) than its roads, and an index of them all costs gigabytes."""
    handlers: list[object] = []
    entities = osmium.osm.WAY
    if locations:
        index = osmium.NodeLocationsForWays(osmium.index.create_map("flex_mem"))
        index.ignore_errors()
        handlers, entities = [index], osmium.osm.NODE | osmium.osm.WAY
    if locations and road_nodes is not None:
        only_road_nodes = osmium.filter.IdFilter(road_nodes)
        only_road_nodes.enable_for(osmium.osm.NODE)
        handlers.insert(0, only_road_nodes)
    filters = [osmium.filter.EntityFilter(osmium.osm.WAY), osmium.filter.KeyFilter("highway")]
    with osmium.io.Reader(str(src), entities) as reader:
        for obj in osmium.OsmFileIterator(reader, *handlers, *filters):
            if isinstance(obj, osmium.osm.Way) and is_drivable(obj.tags):
                yield obj


def find_junctions(src: Path, *, progress: bool) -> np.ndarray:
    """Sorted OSM ids of nodes referenced twice or more by drivable ways (pass 1)."""
    return find_road_nodes(src, progress=progress)[1]


def find_road_nodes(src: Path, *, progress: bool) -> tuple[IntArray, IntArray]:
    """Sorted OSM ids of the nodes of drivable ways, and of those referenced twice or more: the
    junctions (pass 1)."""
    chunks: list[np.ndarray] = []
    buf = array("q")
    for way in tqdm(_ways(src, locations=False), desc="pass 1/2 ways", unit=" ways", disable=not progress):
        buf.extend(n.ref for n in way.nodes)
        if len(buf) > 1_000_000:
            chunks.append(np.frombuffer(buf, dtype=np.int64).copy())
            buf = array("q")
    chunks.append(np.frombuffer(buf, dtype=np.int64).copy())
    ids, counts = np.unique(np.concatenate(chunks), return_counts=True)
    return ids, ids[counts >= 2]


@dataclass
class _Columns:
    """Growing columns of the edge table (pass 2)."""

    edge_id: list[str] = field(default_factory=list)
    way_id: array = field(default_factory=lambda: array("q"))  # type: ignore[type-arg]
    u: array = field(default_factory=lambda: array("q"))  # type: ignore[type-arg]
    v: array = field(default_factory=lambda: array("q"))  # type: ignore[type-arg]
    name: list[str] = field(default_factory=list)
    ref: list[str] = field(default_factory=list)
    highway: list[str] = field(default_factory=list)
    oneway: list[bool] = field(default_factory=list)
    roundabout: list[bool] = field(default_factory=list)
    twin: array = field(default_factory=lambda: array("q"))  # type: ignore[type-arg]
    offsets: array = field(default_factory=lambda: array("q", [0]))  # type: ignore[type-arg]
    lon: array = field(default_factory=lambda: array("d"))  # type: ignore[type-arg]
    lat: array = field(default_factory=lambda: array("d"))  # type: ignore[type-arg]
    seen: set[str] = field(default_factory=set)

    def add(self, way: osmium.osm.Way, piece: list[tuple[int, float, float]], oneway: int) -> None:
        """Add the directed edge(s) of one junction-to-junction piece of a way."""
        first = len(self.edge_id)
        if oneway >= 0:
            self._add_one(way, piece)
        if oneway <= 0:
            self._add_one(way, piece[::-1])
        if oneway == 0:
            self.twin[first], self.twin[first + 1] = first + 1, first

    def _add_one(self, way: osmium.osm.Way, nodes: list[tuple[int, float, float]]) -> None:
        tags = way.tags
        eid = f"{way.id}:{nodes[0][0]}:{nodes[-1][0]}"
        if eid in self.seen:
            eid = f"{eid}:{nodes[1][0]}"
        self.seen.add(eid)
        self.edge_id.append(eid)
        self.way_id.append(way.id)
        self.u.append(nodes[0][0])
        self.v.append(nodes[-1][0])
        self.name.append(tags.get("name") or "")
        self.ref.append(tags.get("ref") or "")
        self.highway.append(tags.get("highway") or "")
        self.oneway.append(oneway_of(tags) != 0)
        self.roundabout.append(tags.get("junction") in ("roundabout", "circular"))
        self.twin.append(-1)
        self.lon.extend(n[1] for n in nodes)
        self.lat.extend(n[2] for n in nodes)
        self.offsets.append(len(self.lon))


def split_way(nodes: list[tuple[int, float, float]], junctions: np.ndarray) -> list[list[tuple[int, float, float]]]:
    """Cut a way's node list at junction nodes (ends always cut)."""
    ids = np.fromiter((n[0] for n in nodes), dtype=np.int64, count=len(nodes))
    pos = np.searchsorted(junctions, ids)
    pos[pos >= len(junctions)] = 0
    is_junction = junctions[pos] == ids if len(junctions) else np.zeros(len(ids), dtype=bool)
    cuts = [0, *np.flatnonzero(is_junction[1:-1]) + 1, len(nodes) - 1]
    pieces = [nodes[a : b + 1] for a, b in itertools.pairwise(cuts) if b > a]
    return [p for p in pieces if len({(n[1], n[2]) for n in p}) >= 2]


def collect_edges(
    src: Path,
    junctions: np.ndarray,
    *,
    progress: bool,
    keep_way: WayFilter | None = None,
    road_nodes: IntArray | None = None,
) -> tuple[_Columns, int]:
    """Pass 2: split every drivable way (that ``keep_way`` keeps) and collect its directed edges.
    ``road_nodes``: the node ids of the drivable ways (pass 1), so that only their locations are
    indexed; without them every node of the extract is."""
    cols = _Columns()
    ways = 0
    located = _ways(src, locations=True, road_nodes=road_nodes)
    for way in tqdm(located, desc="pass 2/2 ways", unit=" ways", disable=not progress):
        nodes = [(n.ref, n.lon, n.lat) for n in way.nodes if n.location.valid()]
        if len(nodes) < 2 or (keep_way is not None and not _kept(keep_way, nodes)):
            continue
        ways += 1
        oneway = oneway_of(way.tags)
        for piece in split_way(nodes, junctions):
            cols.add(way, piece, oneway)
    return cols, ways


def _kept(keep_way: WayFilter, nodes: list[tuple[int, float, float]]) -> bool:
    coords = np.array(nodes, dtype=np.float64)
    return keep_way(coords[:, 1], coords[:, 2])


def _list_column(values: np.ndarray, offsets: np.ndarray) -> pa.ListArray:
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), pa.array(values, pa.float64()))


def to_table(cols: _Columns, communes: CommuneLookup | None) -> pa.Table:
    """Turn the collected columns into the network's Arrow table (adds metres, length, commune)."""
    offsets = np.frombuffer(cols.offsets, dtype=np.int64)
    lon = np.frombuffer(cols.lon, dtype=np.float64)
    lat = np.frombuffer(cols.lat, dtype=np.float64)
    xy = Reprojector().to_metric(np.column_stack([lon, lat])) if len(lon) else np.zeros((0, 2))
    seg = np.hypot(np.diff(xy[:, 0]), np.diff(xy[:, 1])) if len(xy) else np.zeros(0)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    length = cum[offsets[1:] - 1] - cum[offsets[:-1]]
    mid = offsets[:-1] + (offsets[1:] - offsets[:-1]) // 2
    found = communes(np.column_stack([lon[mid], lat[mid]])) if communes and len(mid) else [None] * len(mid)
    commune = [c or "" for c in found]
    data = {
        "edge_id": pa.array(cols.edge_id, pa.string()),
        "way_id": pa.array(np.frombuffer(cols.way_id, dtype=np.int64)),
        "u": pa.array(np.frombuffer(cols.u, dtype=np.int64)),
        "v": pa.array(np.frombuffer(cols.v, dtype=np.int64)),
        "name": pa.array(cols.name, pa.string()),
        "ref": pa.array(cols.ref, pa.string()),
        "highway": pa.array(cols.highway, pa.string()).dictionary_encode(),
        "oneway": pa.array(cols.oneway, pa.bool_()),
        "roundabout": pa.array(cols.roundabout, pa.bool_()),
        "twin": pa.array(np.frombuffer(cols.twin, dtype=np.int64).astype(np.int32)),
        "length_m": pa.array(length),
        "commune": pa.array(commune, pa.string()).dictionary_encode(),
        "lon": _list_column(lon, offsets),
        "lat": _list_column(lat, offsets),
        "x": _list_column(xy[:, 0], offsets),
        "y": _list_column(xy[:, 1], offsets),
    }
    return pa.table(data, schema=SCHEMA)


def _default_communes() -> CommuneLookup:
    return Communes.load().locate_many


def build_network(
    src: Path,
    out: Path,
    *,
    progress: bool,
    communes: CommuneLookup | None = None,
    keep_way: WayFilter | None = None,
    metadata: Mapping[str, str] | None = None,
) -> BuildStats:
    """Build ``out`` (Arrow IPC) from the OSM extract ``src``; communes default to MEL's.

    ``keep_way`` drops drivable ways it refuses (junctions are still found over the whole extract,
    so a kept way is split where it meets a dropped one); ``metadata`` is added to the file's schema
    metadata (e.g. where the extract was downloaded from and its checksum)."""
    start = time.perf_counter()
    road_nodes, junctions = find_road_nodes(src, progress=progress)
    cols, ways = collect_edges(src, junctions, progress=progress, keep_way=keep_way, road_nodes=road_nodes)
    table = to_table(cols, communes if communes is not None else _default_communes())
    meta = {
        **{key.encode(): value.encode() for key, value in (metadata or {}).items()},
        b"format": FORMAT.encode(),
        b"source": src.name.encode(),
        b"licence": b"ODbL 1.0, (c) OpenStreetMap contributors",
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    feather.write_feather(table.replace_schema_metadata(meta), str(out), compression="zstd")
    ends = np.concatenate([np.frombuffer(cols.u, dtype=np.int64), np.frombuffer(cols.v, dtype=np.int64)])
    return BuildStats(
        out=out,
        ways=ways,
        edges=table.num_rows,
        junctions=len(np.unique(ends)),
        length_km=float(np.sum(table.column("length_m").to_numpy())) / 1000.0,
        seconds=time.perf_counter() - start,
    )


def main(argv: list[str] | None = None) -> None:
    """``python -m geo.build SRC -o OUT``."""
    parser = argparse.ArgumentParser(prog="python -m geo.build", description=__doc__.splitlines()[0])
    parser.add_argument("src", type=Path, help="OSM extract (.osm.pbf, .osm, .osm.bz2)")
    parser.add_argument("-o", "--out", type=Path, required=True, help="network file to write")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    stats = build_network(args.src, args.out, progress=not args.no_progress)
    print(
        f"{stats.out}: {stats.edges} directed edges from {stats.ways} ways, "
        f"{stats.junctions} nodes, {stats.length_km:.1f} km, {stats.seconds:.2f} s"
    )


if __name__ == "__main__":
    main()
