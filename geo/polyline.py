"""Road geometry of a matched path, in metres and in published lon/lat at once.

Why plain Python lists: a matched closure is a handful of edges and a few dozen vertices, where
each numpy call costs more than the arithmetic it saves; and taking the stored lon/lat of each
vertex (interpolating only the two cut ends) spares a reprojection of the whole path, which is
also more faithful to the network file than a round trip through metres.
"""

from __future__ import annotations

import bisect
import itertools
import math
from dataclasses import dataclass

from geo.hmm import Step
from geo.network import DECIMALS, RoadNetwork
from geo.routing import Layer

Vertex = list[float]  # x, y (CC50 metres), lon, lat


@dataclass(frozen=True)
class Polyline:
    """Vertices in travel order, as ``(x, y)`` metres and as published ``(lon, lat)`` (rounded to
    :data:`geo.network.DECIMALS`), and the length in metres."""

    xy: list[tuple[float, float]]
    lonlat: list[tuple[float, float]]
    length: float

    @classmethod
    def join(cls, lines: list[Polyline]) -> Polyline:
        """Parts one after the other (a gap between parts counts as a straight jump)."""
        gaps = math.fsum(math.dist(a.xy[-1], b.xy[0]) for a, b in itertools.pairwise(lines))
        return cls(
            [p for line in lines for p in line.xy],
            [p for line in lines for p in line.lonlat],
            math.fsum(line.length for line in lines) + gaps,
        )


def _vertices(net: RoadNetwork, layer: Layer, states: list[int]) -> tuple[list[Vertex], list[int]]:
    """Vertices of consecutive states in travel order (junctions repeated), and each state's count."""
    offsets, edge, reverse = net.lists.offsets, layer.lists.edge, layer.lists.reverse
    index: list[int] = []
    counts: list[int] = []
    for s in states:
        lo, hi = offsets[edge[s]], offsets[edge[s] + 1]
        index.extend(range(hi - 1, lo - 1, -1) if reverse[s] else range(lo, hi))
        counts.append(hi - lo)
    return net.vertices[index].tolist(), counts


def _cumlen(points: list[Vertex]) -> list[float]:
    cum = [0.0]
    for a, b in itertools.pairwise(points):
        cum.append(cum[-1] + math.hypot(b[0] - a[0], b[1] - a[1]))
    return cum


def _at(points: list[Vertex], cum: list[float], t: float) -> Vertex:
    """The point ``t`` metres along the polyline (``0 ≤ t ≤ cum[-1]``), lon/lat rounded."""
    i = bisect.bisect_left(cum, t)
    if i == 0:
        return points[0]
    if i >= len(cum):
        return points[-1]
    span = cum[i] - cum[i - 1]
    f = (t - cum[i - 1]) / span if span > 0 else 1.0
    a, b = points[i - 1], points[i]
    lon, lat = round(a[2] + f * (b[2] - a[2]), DECIMALS), round(a[3] + f * (b[3] - a[3]), DECIMALS)
    return [a[0] + f * (b[0] - a[0]), a[1] + f * (b[1] - a[1]), lon, lat]


def _cut(points: list[Vertex], cum: list[float], t0: float, t1: float, *, dedupe: bool = True) -> Polyline:
    """The piece between ``t0 ≤ t1`` metres from the start (consecutive repeats dropped if ``dedupe``)."""
    total = cum[-1]
    t0, t1 = min(max(t0, 0.0), total), min(max(t1, 0.0), total)
    inner = points[bisect.bisect_right(cum, t0) : bisect.bisect_left(cum, t1)]  # t0 < cum < t1 (cum never falls)
    kept = [_at(points, cum, t0), *inner, _at(points, cum, t1)]
    if dedupe:
        eps = 1e-9
        kept = [
            p
            for i, p in enumerate(kept)
            if i == 0 or abs(p[0] - kept[i - 1][0]) > eps or abs(p[1] - kept[i - 1][1]) > eps
        ]
    return Polyline([(p[0], p[1]) for p in kept], [(p[2], p[3]) for p in kept], max(t1 - t0, 0.0))


def part_line(net: RoadNetwork, layer: Layer, part: list[Step], states: list[int]) -> Polyline:
    """Road geometry of a matched part, from its first to its last matched point."""
    first, last = part[0], part[-1]
    points, counts = _vertices(net, layer, states)
    cum = _cumlen(points)
    if len(states) == 1:
        return _cut(points, cum, first.offset, max(first.offset, last.offset), dedupe=False)
    first_ends, last_starts = cum[counts[0] - 1], cum[len(points) - counts[-1]]
    end = last_starts + min(last.offset, cum[-1] - last_starts)
    return _cut(points, cum, min(first.offset, first_ends), end)


def states_line(net: RoadNetwork, layer: Layer, states: list[int]) -> Polyline:
    """Whole states one after the other (junction repeats dropped)."""
    points, _ = _vertices(net, layer, states)
    cum = _cumlen(points)
    return _cut(points, cum, 0.0, cum[-1])
