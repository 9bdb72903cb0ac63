"""Issue 3: the map-matching benchmark (`loadtests.bench_matching`), at a size that fits `make bench`."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pyarrow.feather as feather

from geo.network import RoadNetwork
from loadtests.bench_matching import Row, bench, grid_network, load_timed


def run(traces: int = 100, closures: int = 400, grid_side: int = 250) -> list[Row]:
    """Lille centre, then the synthetic grid of 4*side*(side-1) directed edges (249,000 for 250)."""
    lille, lille_s = load_timed(Path(RoadNetwork.default().source))
    rows = [bench("Lille centre (OSM 2017)", lille, lille_s, traces, closures)]
    with tempfile.TemporaryDirectory(prefix="loadtests-grid-") as tmp:
        path = Path(tmp) / "grid.network.arrow"
        feather.write_feather(grid_network(grid_side), str(path), compression="zstd")
        grid, grid_s = load_timed(path)
    rows.append(bench(f"synthetic grid {grid_side}x{grid_side}", grid, grid_s, traces // 2, closures // 2))
    return rows
