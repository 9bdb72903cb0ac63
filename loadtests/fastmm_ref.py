"""fastmm 0.3.2 (FMM, Yang & Gidófalvi 2018) as the same-run reference of the matching benchmark.

Why: a published figure measured on another machine, another network and other traces says little
about our matcher; FMM run in the same process, on the same network and the same traces, does. FMM
is the fastest open HMM matcher we could install here (research note ``shared/notes/geo.md`` §2:
≈ 180k points/s on the Lille centre, a precomputed upper-bounded origin–destination table, UBODT,
makes every transition a hash lookup).

fastmm is a *bench-only* dependency (the ``bench`` extra of pyproject.toml, installed by ``make
install``); the hub never imports it. Its API, read from the 0.3.2 wheel's ``fastmm.pyi``:
``Network.add_edge(id, source, target, geom)`` + ``finalize()``; ``FastMapMatch(network,
TransitionMode.SHORTEST, max_distance_between_candidates=δ, cache_dir=...)`` builds (or loads) the
UBODT; ``match(Trajectory.from_xy_tuples(...), max_candidates, candidate_search_radius, gps_error)``
returns sub-trajectories whose segments carry the snapped candidate of each point (``p0``/``p1``,
``trajectory_index``, ``x``/``y``).

Parameters are those of the research anchor (k = 8, r = 50 m, GPS error 10 m) but with the UBODT
bound δ = 300 m instead of 1 km: measured here on the bench traces (40 m spacing), δ = 300 m gives
fastmm the same accuracy (Lille 98.2 % vs 98.1 %, grid 98.9 % both) at the same or a higher speed, and
its table builds in 3.4 s / +245 MiB on the 249k-edge grid instead of 22.7 s / +1,086 MiB: the
strongest reference we found, and a bench that fits on the machine.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import fastmm
import numpy as np
import numpy.typing as npt
import shapely

from geo.network import RoadNetwork

FloatArray = npt.NDArray[np.float64]
Traces = list[tuple[shapely.LineString, FloatArray]]
K = 8
RADIUS_M = 50.0
GPS_ERROR_M = 10.0
UBODT_DELTA_M = 300.0


def rss_mib(field: str = "VmRSS") -> float:
    """This process's resident memory (``VmRSS``, or ``VmHWM`` for the peak), MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


@dataclass(frozen=True)
class FmmResult:
    build_s: float  # network + UBODT (CPU seconds)
    build_mib: float  # RSS growth of building them
    pps: float  # points/s per core, median of the passes
    within_5m: float  # share of matched points within 5 m of the true route
    matched: float  # share of input points matched


class Reference:
    """fastmm on one of our networks: every directed edge, same ids (rows), same metric geometry."""

    def __init__(self, net: RoadNetwork) -> None:
        before = rss_mib()
        start = time.process_time()
        self._network = fastmm.Network()
        u, v, offsets, xy = net.u.tolist(), net.v.tolist(), net.offsets.tolist(), net.xy.tolist()
        for i in range(net.n_edges):
            geom = [(x, y) for x, y in xy[offsets[i] : offsets[i + 1]]]
            self._network.add_edge(i, source=u[i], target=v[i], geom=geom)
        self._network.finalize()
        self._cache = tempfile.TemporaryDirectory(prefix="loadtests-fastmm-")
        self._matcher = fastmm.FastMapMatch(
            self._network,
            fastmm.TransitionMode.SHORTEST,
            max_distance_between_candidates=UBODT_DELTA_M,
            cache_dir=self._cache.name,
        )
        self.build_s = time.process_time() - start
        self.build_mib = rss_mib() - before

    def close(self) -> None:
        """Remove the UBODT cache directory."""
        self._cache.cleanup()

    def match(self, pts: FloatArray) -> fastmm.SplitMatchResult:
        """One trace, as a service would call fastmm (tuples in, result objects out)."""
        return self._matcher.match(
            fastmm.Trajectory.from_xy_tuples(list(map(tuple, pts.tolist()))),
            max_candidates=K,
            candidate_search_radius=RADIUS_M,
            gps_error=GPS_ERROR_M,
        )

    def pps(self, traces: Traces) -> float:
        """Points/s per core over ``traces`` (CPU time of this thread)."""
        points = sum(len(p) for _, p in traces)
        start = time.process_time()
        for _, pts in traces:
            self.match(pts)
        return points / (time.process_time() - start)

    def accuracy(self, traces: Traces) -> tuple[float, float]:
        """(share of matched points within 5 m of the true route, share of points matched)."""
        good = matched = total = 0
        for truth, pts in traces:
            snapped = snapped_points(self.match(pts))
            total += len(pts)
            matched += len(snapped)
            if snapped:
                xy = np.asarray(list(snapped.values()))
                good += int(np.sum(shapely.distance(truth, shapely.points(xy)) <= 5.0))
        return good / max(matched, 1), matched / max(total, 1)


def snapped_points(result: fastmm.SplitMatchResult) -> dict[int, tuple[float, float]]:
    """Where fastmm placed each matched input point (by its index in the trace)."""
    out: dict[int, tuple[float, float]] = {}
    for sub in result.subtrajectories:
        if sub.error_code != fastmm.SUCCESS:
            continue
        for seg in sub.segments:
            for c in (seg.p0, seg.p1):
                out[c.trajectory_index] = (c.x, c.y)
    return out
