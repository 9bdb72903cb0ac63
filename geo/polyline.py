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

from geo.edgeshapes import EPS_M, EdgeShape
from geo.hmm import Step
from geo.network import DECIMALS, RoadNetwork
from geo.routing import Layer


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
        if len(lines) == 1:
            return lines[0]
        gaps = math.fsum(math.dist(a.xy[-1], b.xy[0]) for a, b in itertools.pairwise(lines))
        return cls(
            [p for line in lines for p in line.xy],
            [p for line in lines for p in line.lonlat],
            math.fsum(line.length for line in lines) + gaps,
        )


def _shapes(net: RoadNetwork, layer: Layer, states: list[int]) -> list[EdgeShape]:
    return net.shapes.path(layer.lists.edge, layer.lists.reverse, states)


def _edge_at(starts: list[float], t: float) -> int:
    """The edge a distance ``t`` along the path falls on (the earlier one at a junction)."""
    return min(max(bisect.bisect_left(starts, t) - 1, 0), len(starts) - 2)


def _at(shape: EdgeShape, t: float) -> tuple[tuple[float, float], tuple[float, float]]:
    """The point ``t`` metres along one edge (``0 ≤ t ≤ length``), in metres and lon/lat (rounded)."""
    cum = shape.cum
    i = bisect.bisect_left(cum, t)
    if i == 0:
        return shape.xy[0], shape.lonlat[0]
    if i >= len(cum):
        return shape.xy[-1], shape.lonlat[-1]
    span = cum[i] - cum[i - 1]
    f = (t - cum[i - 1]) / span if span > 0 else 1.0
    (ax, ay), (bx, by) = shape.xy[i - 1], shape.xy[i]
    (alon, alat), (blon, blat) = shape.lonlat[i - 1], shape.lonlat[i]
    lonlat = (round(alon + f * (blon - alon), DECIMALS), round(alat + f * (blat - alat), DECIMALS))
    return (ax + f * (bx - ax), ay + f * (by - ay)), lonlat


def _same(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return abs(a[0] - b[0]) <= EPS_M and abs(a[1] - b[1]) <= EPS_M


def _cut(shapes: list[EdgeShape], starts: list[float], t0: float, t1: float, *, dedupe: bool = True) -> Polyline:
    """The piece of the path between ``t0 ≤ t1`` metres from its start: the two cut points, and every
    vertex strictly between them (consecutive repeats, such as junctions, dropped if ``dedupe``)."""
    t0, t1 = _clamped(starts, t0, t1)
    k0, k1 = _edge_at(starts, t0), _edge_at(starts, t1)
    xy0, ll0 = _at(shapes[k0], t0 - starts[k0])
    xy, lonlat = [xy0], [ll0]
    for k in range(k0, k1 + 1):
        shape = shapes[k]
        if k0 < k < k1:  # a whole edge
            lo, hi = 0, len(shape.cum)
        else:
            base = starts[k]
            lo, hi = bisect.bisect_right(shape.cum, t0 - base), bisect.bisect_left(shape.cum, t1 - base)
            if lo >= hi:
                continue
        if dedupe and _same(shape.xy[lo], xy[-1]):
            lo += 1
        xy += shape.xy[lo:hi]
        lonlat += shape.lonlat[lo:hi]
    xy1, ll1 = _at(shapes[k1], t1 - starts[k1])
    if not (dedupe and _same(xy1, xy[-1])):
        xy.append(xy1)
        lonlat.append(ll1)
    return Polyline(xy, lonlat, max(t1 - t0, 0.0))


def _clamped(starts: list[float], t0: float, t1: float) -> tuple[float, float]:
    """``t0`` and ``t1`` within the path (0 … its length)."""
    total = starts[-1]
    return min(max(t0, 0.0), total), min(max(t1, 0.0), total)


def _starts(shapes: list[EdgeShape]) -> list[float]:
    return list(itertools.accumulate((shape.length for shape in shapes), initial=0.0))


def _bounds(shapes: list[EdgeShape], starts: list[float], part: list[Step]) -> tuple[float, float]:
    """Where a matched part starts and ends along its path, in metres (its first and last point)."""
    first, last = part[0], part[-1]
    if len(shapes) == 1:
        return first.offset, max(first.offset, last.offset)
    return min(first.offset, shapes[0].length), starts[-2] + min(last.offset, shapes[-1].length)


def part_line(net: RoadNetwork, layer: Layer, part: list[Step], states: list[int]) -> Polyline:
    """Road geometry of a matched part, from its first to its last matched point."""
    shapes = _shapes(net, layer, states)
    starts = _starts(shapes)
    t0, t1 = _bounds(shapes, starts, part)
    return _cut(shapes, starts, t0, t1, dedupe=len(states) > 1)


def part_length(net: RoadNetwork, layer: Layer, part: list[Step], states: list[int]) -> float:
    """``part_line(...).length`` without building the line."""
    shapes = _shapes(net, layer, states)
    starts = _starts(shapes)
    t0, t1 = _clamped(starts, *_bounds(shapes, starts, part))
    return max(t1 - t0, 0.0)


def states_line(net: RoadNetwork, layer: Layer, states: list[int]) -> Polyline:
    """Whole states one after the other (junction repeats dropped)."""
    shapes = _shapes(net, layer, states)
    starts = _starts(shapes)
    return _cut(shapes, starts, 0.0, starts[-1])
