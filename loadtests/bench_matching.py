"""Map-matching benchmark: ``python -m loadtests.bench_matching`` (part of ``make bench``).

Same protocol as the research anchors (Valhalla Meili 16–19k points/s, OSRM 6.5–7.6k on this
machine class): routes of ≥ 800 m between random junctions of the network, resampled every
40 m, Gaussian noise σ = 8 m per coordinate; one process, one thread. Reports points/s (first
pass with emptied routing caches: *cold*; a small network's distance table is not a cache but
an index built with the network, like fastmm's UBODT, and counted in *load s*; then *warm*: a
warm process matching traces it has never matched before, the median of a few passes each on its
own fresh traces, as a service meets new reports; *again*: re-matching the same traces, where
caches of the same answers help), the share of matched points within 5 m of the true route,
closures normalised per second (a 2–5 vertex closure through ``NetworkPlacer.place_closure``:
validate and match its line, split it into Waze-ready runs, build the placement; cold, then warm
on fresh closures like points; then warm through ``NetworkPlacer.place_closures`` in batches of
``--closure-batch``, fresh closures again, as the normaliser places the closures of one Kafka
poll), and the same on a synthetic jittered grid of ~250k directed edges (metro scale).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.feather as feather
import shapely

from geo import hmm
from geo.crs import Reprojector
from geo.matching import match_trace, match_traces
from geo.network import FORMAT, SCHEMA, RoadNetwork
from loadtests import fastmm_ref
from traffic_hub.model import ClosureState
from traffic_hub.normaliser.placement import NetworkPlacer

FloatArray = npt.NDArray[np.float64]
GOAL_POINTS = 20_000
GOAL_ACCURACY = 0.98
GOAL_CLOSURES = 2_000
CLOSURE_BATCH = 100
"""Closures per ``place_closures`` call in the batched figure (a Kafka poll brings up to 500 reports,
of every kind: 100 closures in one is a busy moment, not the best case)."""
WARM_PASSES = 3
"""Warm figures are the median of this many passes: one pass is a fraction of a CPU second, and on a
shared machine a single pass swings by ±30 %."""


@dataclass(frozen=True)
class Row:
    network: str
    edges: int
    load_s: float
    points: int
    cold_pps: float
    warm_pps: float  # a warm process on traces it has not matched before
    batch_pps: float
    within_5m: float
    matched: float
    closures_ps: float  # warm (second pass), like warm_pps
    closures_cold_ps: float = 0.0
    closures_batch_ps: float = 0.0  # warm, through place_closures, closure_batch at a time
    closure_batch: int = 0
    again_pps: float = 0.0  # re-matching the same traces (caches of the same answers help)
    rss_mib: float = 0.0  # this process after all of the above: network + every cache, before fastmm
    paired_pps: float = 0.0  # ours, on the traces fastmm matched right after (median of the pairs)
    fmm: fastmm_ref.FmmResult | None = None  # fastmm on the same network and traces, same run
    load: str = ""  # load average when the pairs were measured

    @property
    def ratio(self) -> float:
        """Our points/s over fastmm's, on the same traces, measured in alternation."""
        return self.paired_pps / self.fmm.pps if self.fmm else 0.0


def _route(net: RoadNetwork, rng: np.random.Generator, min_m: float, max_m: float) -> FloatArray:
    layer = net.directed
    while True:
        a, b = (int(x) for x in rng.integers(0, net.n_nodes, 2))
        states = layer.state_path(a, b, max_m)
        if not states:
            continue
        xy = np.vstack([hmm.state_xy(net, layer, s) for s in states])
        xy = xy[np.r_[True, np.any(np.abs(np.diff(xy, axis=0)) > 1e-9, axis=1)]]
        if min_m <= shapely.length(shapely.LineString(xy)) <= max_m:
            return xy


def make_traces(net: RoadNetwork, n: int, seed: int) -> list[tuple[shapely.LineString, FloatArray]]:
    """``n`` noisy traces (truth line, points in metres) from known routes."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        line = shapely.LineString(_route(net, rng, 800.0, 4000.0))
        pts = shapely.get_coordinates(shapely.line_interpolate_point(line, np.arange(0.0, line.length, 40.0)))
        out.append((line, pts + rng.normal(0.0, 8.0, pts.shape)))
    return out


def make_closures(net: RoadNetwork, n: int, seed: int) -> list[list[list[float]]]:
    """``n`` closure lines (lon/lat, 2–5 vertices on the road) from known routes of 100–1500 m."""
    rng = np.random.default_rng(seed)
    out: list[list[list[float]]] = []
    while len(out) < n:
        line = shapely.LineString(_route(net, rng, 100.0, 1500.0))
        at = np.linspace(0.0, line.length, int(rng.integers(2, 6)))
        xy = shapely.get_coordinates(shapely.line_interpolate_point(line, at))
        if shapely.is_simple(shapely.LineString(xy)):
            out.append(net.reprojector.from_metric(xy).tolist())
    return out


def _pps(net: RoadNetwork, traces: list[tuple[shapely.LineString, FloatArray]]) -> float:
    points = sum(len(p) for _, p in traces)
    start = time.process_time()
    for _, pts in traces:
        match_trace(net, pts)
    return points / (time.process_time() - start)


def _batch_pps(net: RoadNetwork, traces: list[tuple[shapely.LineString, FloatArray]]) -> float:
    points = sum(len(p) for _, p in traces)
    start = time.process_time()
    match_traces(net, [p for _, p in traces])
    return points / (time.process_time() - start)


def _accuracy(net: RoadNetwork, traces: list[tuple[shapely.LineString, FloatArray]]) -> tuple[float, float]:
    good = matched = total = 0
    for truth, pts in traces:
        steps = [s for part in hmm.match_steps(net, net.directed, pts, 40.0, 6) for s in part]
        snapped = hmm.snapped_xy(net, net.directed, steps)
        good += int(np.sum(shapely.distance(truth, shapely.points(snapped)) <= 5.0))
        matched += len(steps)
        total += len(pts)
    return good / max(matched, 1), matched / max(total, 1)


def closure_states(closures: list[list[list[float]]]) -> list[ClosureState]:
    """The closures as the normaliser receives them (validated by the API before the benchmark)."""
    now = datetime.now(UTC)
    return [
        ClosureState.model_validate(
            {
                "description": "bench closure",
                "geometry": {"type": "LineString", "coordinates": coords},
                "starts_at": now,
                "ends_at": now + timedelta(days=1),
                "id": f"bench-{i}",
                "reference": f"BENCH-{i}",
                "owner": "bench",
                "owner_communes": [],
                "communes": [],
                "version": 1,
                "created_at": now,
                "updated_at": now,
            }
        )
        for i, coords in enumerate(closures)
    ]


def _closures_ps(net: RoadNetwork, closures: list[ClosureState]) -> float:
    placer = NetworkPlacer(net)
    start = time.process_time()
    for closure in closures:
        placer.place_closure(closure)
    return len(closures) / (time.process_time() - start)


def _closures_batch_ps(net: RoadNetwork, closures: list[ClosureState], size: int) -> float:
    placer = NetworkPlacer(net)
    start = time.process_time()
    for lo in range(0, len(closures), size):
        placer.place_closures(closures[lo : lo + size])
    return len(closures) / (time.process_time() - start)


def bench(
    name: str,
    net: RoadNetwork,
    load_s: float,
    n_traces: int,
    n_closures: int,
    closure_batch: int = CLOSURE_BATCH,
    *,
    reference: bool = True,
) -> Row:
    """Run the whole protocol on one network."""
    traces = make_traces(net, n_traces, seed=1)
    fresh = [make_traces(net, n_traces, seed=100 + i) for i in range(WARM_PASSES + 1)]
    closures = closure_states(make_closures(net, n_closures, seed=2))
    fresh_closures = [closure_states(make_closures(net, n_closures, seed=200 + i)) for i in range(2 * WARM_PASSES)]
    for layer in (net.directed, net.both_ways):
        layer.forget()
    cold = _pps(net, traces)
    warm = statistics.median(_pps(net, unseen) for unseen in fresh[:WARM_PASSES])
    again = statistics.median(_pps(net, traces) for _ in range(WARM_PASSES))
    batch = _batch_pps(net, fresh[WARM_PASSES])
    within, matched = _accuracy(net, traces)
    points = sum(len(p) for _, p in traces)
    closures_cold = _closures_ps(net, closures)
    closures_warm = statistics.median(_closures_ps(net, c) for c in fresh_closures[:WARM_PASSES])
    closures_batch = statistics.median(_closures_batch_ps(net, c, closure_batch) for c in fresh_closures[WARM_PASSES:])
    rss = fastmm_ref.rss_mib()
    paired, fmm, load = _against_fastmm(net, n_traces, traces) if reference else (0.0, None, "")
    return Row(
        name,
        net.n_edges,
        load_s,
        points,
        cold,
        warm,
        batch,
        within,
        matched,
        closures_warm,
        closures_cold,
        closures_batch,
        closure_batch,
        again,
        rss,
        paired,
        fmm,
        load,
    )


def _against_fastmm(
    net: RoadNetwork, n_traces: int, traces: list[tuple[shapely.LineString, FloatArray]]
) -> tuple[float, fastmm_ref.FmmResult, str]:
    """Ours and fastmm on the same fresh traces, pass by pass in alternation (so that a burst of load
    from other processes hits both alike); fastmm's accuracy on the accuracy traces. Returns our
    median points/s over the pairs, fastmm's result, and the load average while they ran."""
    passes = [make_traces(net, n_traces, seed=400 + i) for i in range(WARM_PASSES)]
    ref = fastmm_ref.Reference(net)
    try:
        ours: list[float] = []
        theirs: list[float] = []
        for unseen in passes:
            ours.append(_pps(net, unseen))
            theirs.append(ref.pps(unseen))
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
        within, matched = ref.accuracy(traces)
    finally:
        ref.close()
    fmm = fastmm_ref.FmmResult(ref.build_s, ref.build_mib, statistics.median(theirs), within, matched)
    return statistics.median(ours), fmm, load


def grid_network(side: int, spacing_m: float = 100.0, seed: int = 7) -> pa.Table:
    """A jittered two-way grid of ``side × side`` junctions (4·side·(side−1) directed edges)."""
    rng = np.random.default_rng(seed)
    ii, jj = np.meshgrid(np.arange(side), np.arange(side), indexing="ij")
    nodes = np.column_stack([ii.ravel(), jj.ravel()]) * spacing_m + rng.normal(0.0, spacing_m * 0.1, (side * side, 2))
    nodes += np.array([1_690_000.0, 9_260_000.0])
    idx = np.arange(side * side).reshape(side, side)
    a = np.r_[idx[:, :-1].ravel(), idx[:-1, :].ravel()]
    b = np.r_[idx[:, 1:].ravel(), idx[1:, :].ravel()]
    horizontal = np.r_[np.ones(side * (side - 1), dtype=bool), np.zeros(side * (side - 1), dtype=bool)]
    u, v = np.r_[a, b], np.r_[b, a]
    n = len(a)
    twin = np.r_[np.arange(n) + n, np.arange(n)].astype(np.int32)
    row = np.r_[a // side, a // side]
    col = np.r_[a % side, a % side]
    names = np.where(np.r_[horizontal, horizontal], [f"Rue {r}" for r in row], [f"Avenue {c}" for c in col])
    xy = np.stack([nodes[u], nodes[v]], axis=1).reshape(-1, 2)
    lonlat = Reprojector().from_metric(xy)
    offsets = pa.array(np.arange(0, 2 * len(u) + 1, 2, dtype=np.int32))

    def coords(values: FloatArray) -> pa.ListArray:
        return pa.ListArray.from_arrays(offsets, pa.array(values))

    table = pa.table(
        {
            "edge_id": pa.array([f"grid:{x}:{y}" for x, y in zip(u.tolist(), v.tolist(), strict=True)]),
            "way_id": pa.array(np.r_[np.arange(n), np.arange(n)].astype(np.int64)),
            "u": pa.array(u.astype(np.int64)),
            "v": pa.array(v.astype(np.int64)),
            "name": pa.array(names.tolist()),
            "ref": pa.array([""] * len(u)),
            "highway": pa.array(["residential"] * len(u)).dictionary_encode(),
            "oneway": pa.array(np.zeros(len(u), dtype=bool)),
            "roundabout": pa.array(np.zeros(len(u), dtype=bool)),
            "twin": pa.array(twin),
            "length_m": pa.array(np.hypot(*(nodes[v] - nodes[u]).T)),
            "commune": pa.array([""] * len(u)).dictionary_encode(),
            "lon": coords(lonlat[:, 0]),
            "lat": coords(lonlat[:, 1]),
            "x": coords(xy[:, 0]),
            "y": coords(xy[:, 1]),
        },
        schema=SCHEMA,
    )
    return table.replace_schema_metadata({b"format": FORMAT.encode()})


def load_timed(path: Path) -> tuple[RoadNetwork, float]:
    """Load a network file and build every index, timed (CPU seconds)."""
    start = time.process_time()
    net = RoadNetwork.load(path).warm()
    return net, time.process_time() - start


def _table(rows: list[Row]) -> str:
    head = (
        f"{'network':<26}{'edges':>9}{'load s':>8}{'points':>8}{'pts/s cold':>12}{'pts/s warm':>12}{'again':>8}"
        f"{'pts/s batch':>13}"
        f"{'≤5 m':>8}{'matched':>9}{'closures/s':>12}{'cold':>8}{'batched':>9}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r.network:<26}{r.edges:>9,}{r.load_s:>8.2f}{r.points:>8,}{r.cold_pps:>12,.0f}{r.warm_pps:>12,.0f}"
            f"{r.again_pps:>8,.0f}"
            f"{r.batch_pps:>13,.0f}"
            f"{r.within_5m:>8.1%}{r.matched:>9.1%}{r.closures_ps:>12,.0f}{r.closures_cold_ps:>8,.0f}"
            f"{r.closures_batch_ps:>9,.0f}"
        )
    lines.append(
        "per core = CPU time of this single-threaded process; load = read file + build every index; "
        "cold = emptied routing caches; warm = a warm process on traces it has never matched, median of "
        f"{WARM_PASSES} passes on fresh traces; again = re-matching the same traces; batch = match_traces() "
        "on fresh traces; closures/s = NetworkPlacer.place_closure, warm on fresh closures (cold); "
        f"batched = NetworkPlacer.place_closures, fresh closures, "
        f"{rows[0].closure_batch if rows else CLOSURE_BATCH} per batch"
    )
    lines.append(
        f"goals: ≥ {GOAL_POINTS:,} points/s per core at ≥ {GOAL_ACCURACY:.0%} within 5 m; "
        f"≥ {GOAL_CLOSURES:,} closures/s per core. Anchors (same machine class): "
        "Valhalla Meili 16–19k pts/s, OSRM 6.5–7.6k pts/s, fastmm 180k pts/s."
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(prog="python -m loadtests.bench_matching")
    parser.add_argument("--traces", type=int, default=200)
    parser.add_argument("--closures", type=int, default=1000)
    parser.add_argument("--closure-batch", type=int, default=CLOSURE_BATCH, help="closures per place_closures call")
    parser.add_argument("--grid-side", type=int, default=250, help="synthetic grid side (250 → 249k edges)")
    args = parser.parse_args(argv)
    lille, lille_s = load_timed(Path(RoadNetwork.default().source))
    rows = [bench("Lille centre (OSM 2017)", lille, lille_s, args.traces, args.closures, args.closure_batch)]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "grid.network.arrow"
        feather.write_feather(grid_network(args.grid_side), str(path), compression="zstd")
        grid, grid_s = load_timed(path)
    name = f"synthetic grid {args.grid_side}x{args.grid_side}"
    rows.append(bench(name, grid, grid_s, args.traces // 2, args.closures // 2, args.closure_batch))
    print(_table(rows))


if __name__ == "__main__":
    main()
