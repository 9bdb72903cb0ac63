"""Issue 3 and 17: the map-matching benchmark (`loadtests.bench_matching`), at a size that fits `make bench`.

Three networks: the bundled Lille centre and the synthetic 249k-edge grid, each beside fastmm on the
same network and traces (`loadtests.fastmm_ref`); then the largest network built here (issue 17's
"MEL-size row"): a synthetic grid of ``mel_side``² junctions, ~2.5 × the 249k-edge grid, with its
build time and memory, without fastmm (to keep `make bench` within its time: its UBODT takes ≈ 3.4 s
and 245 MiB on the 249k-edge grid at δ = 300 m, and grows with the network).
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow.feather as feather

from geo.network import RoadNetwork
from loadtests.bench_matching import Row, bench, grid_network, load_timed
from loadtests.fastmm_ref import rss_mib

MEL_SIDE = 400
"""Junctions per side of the MEL-size grid: 4·400·399 = 638,400 directed edges, 160,000 junctions
(40 × 40 km at 100 m blocks). The real 95-commune network is expected smaller (see README)."""


@dataclass(frozen=True)
class Sized:
    """A benchmark row and what building and holding its network cost."""

    row: Row
    build_s: float  # generating the edge table and writing the network file (CPU s)
    base_mib: float  # this process's RSS before loading the network
    loaded_mib: float  # right after loading it and building every index


def _grid_row(side: int, traces: int, closures: int, *, reference: bool) -> Sized:
    with tempfile.TemporaryDirectory(prefix="loadtests-grid-") as tmp:
        path = Path(tmp) / "grid.network.arrow"
        started = time.process_time()
        feather.write_feather(grid_network(side), str(path), compression="zstd")
        build_s = time.process_time() - started
        base = rss_mib()
        grid, grid_s = load_timed(path)
        loaded = rss_mib()
    row = bench(f"synthetic grid {side}x{side}", grid, grid_s, traces, closures, reference=reference)
    return Sized(row, build_s, base, loaded)


def run(traces: int = 100, closures: int = 400, grid_side: int = 250, mel_side: int = MEL_SIDE) -> list[Sized]:
    """Lille centre, the grid of 4*side*(side-1) directed edges (249,000 for 250), then the MEL-size grid."""
    base = rss_mib()
    lille, lille_s = load_timed(Path(RoadNetwork.default().source))
    loaded = rss_mib()
    out = [Sized(bench("Lille centre (OSM 2017)", lille, lille_s, traces, closures), 0.0, base, loaded)]
    out.append(_grid_row(grid_side, traces // 2, closures // 2, reference=True))
    if mel_side:
        out.append(_grid_row(mel_side, traces // 2, closures // 4, reference=False))
    return out
