"""Each edge's geometry as plain Python lists, built on first use and kept: what result building reads.

A matched closure covers a handful of edges and a few dozen vertices. Building its line vertex by
vertex (a numpy gather, then a distance per vertex) was the largest cost of placing a closure; with
these shapes the path's line is a few list slices per edge, and only the two cut ends are
interpolated. Shapes are cached per (edge, direction) in a bounded dict, so a metro-scale network
keeps only the streets that closures actually touch.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from geo.arrays import FloatArray

EPS_M = 1e-9
"""Consecutive vertices closer than this (in metres) are one vertex."""


@dataclass(frozen=True, slots=True)
class EdgeShape:
    """One edge in one travel direction: vertices in metres and published lon/lat (index-aligned),
    the distance of each vertex from the start, and the lon/lat with equal consecutive points dropped
    (what a published polyline is built from)."""

    xy: list[tuple[float, float]]
    lonlat: list[tuple[float, float]]
    cum: list[float]
    distinct: list[tuple[float, float]]
    length: float  # cum[-1]


class EdgeShapes:
    """``shape(edge, reverse)`` for every edge of a network, cached (at most ``limit`` shapes)."""

    def __init__(self, xy: FloatArray, lonlat_rounded: FloatArray, offsets: list[int], limit: int = 200_000) -> None:
        self._xy = xy
        self._lonlat = lonlat_rounded
        self._offsets = offsets
        self._limit = limit
        self._cache: dict[tuple[int, bool], EdgeShape] = {}

    def path(self, edges: list[int], reverse: list[bool], states: list[int]) -> list[EdgeShape]:
        """Shapes of ``states`` (rows into the per-state ``edges`` and ``reverse`` columns).

        Shapes not cached yet are built together (:meth:`_build_many`): on a metro-scale network a
        trace the service has not seen before meets mostly new edges, and building them one by one
        (two numpy slices per edge) was 27 % of matching such a trace on the 249k-edge grid."""
        cache = self._cache
        keys = [(edges[s], reverse[s]) for s in states]
        missing = [k for k in dict.fromkeys(keys) if k not in cache]
        if not missing:
            return [cache[k] for k in keys]
        built = dict(zip(missing, self._build_many(missing), strict=True))
        if len(cache) + len(built) > self._limit:
            cache.clear()  # rare (a metro network's every street); rebuilt on demand
        cache.update(built)
        return [built.get(k) or cache[k] for k in keys]

    def shape(self, edge: int, reverse: bool) -> EdgeShape:
        """Edge ``edge`` in its own direction, or against it when ``reverse``."""
        key = (edge, reverse)
        found = self._cache.get(key)
        if found is None:
            found = self._build_many([key])[0]
            if len(self._cache) >= self._limit:
                self._cache.clear()  # rare (a metro network's every street); rebuilt on demand
            self._cache[key] = found
        return found

    def _build_many(self, keys: list[tuple[int, bool]]) -> list[EdgeShape]:
        """Shapes of ``keys`` (edge, reverse): one gather of all their vertices, then lists."""
        offsets = self._offsets
        lo = [offsets[e] for e, _ in keys]
        hi = [offsets[e + 1] for e, _ in keys]
        counts = np.subtract(hi, lo)
        first = np.cumsum(counts) - counts
        local = np.arange(int(counts.sum())) - np.repeat(first, counts)
        rev = np.repeat([r for _, r in keys], counts)
        rows = np.where(rev, np.repeat(np.asarray(hi) - 1, counts) - local, np.repeat(lo, counts) + local)
        xy, ll = self._xy[rows], self._lonlat[rows]
        n = len(rows)
        step = np.diff(xy, axis=0)
        inner = np.ones(max(n - 1, 0), dtype=bool)
        inner[(first[1:] - 1)] = False  # between the last vertex of an edge and the next edge's first
        dup = inner & (np.abs(step[:, 0]) <= EPS_M) & (np.abs(step[:, 1]) <= EPS_M)
        same_ll = inner & np.all(ll[1:] == ll[:-1], axis=1)
        pts = list(zip(*xy.T.tolist(), strict=True))
        lls = list(zip(*ll.T.tolist(), strict=True))
        seg = list(map(math.hypot, *step.T.tolist()))
        slow = set(np.unique(np.searchsorted(first, np.flatnonzero(dup | same_ll), side="right") - 1).tolist())
        out: list[EdgeShape] = []
        for k, (a, b) in enumerate(zip(first.tolist(), (first + counts).tolist(), strict=True)):
            if k in slow:  # repeated vertices (rare): the exact vertex-by-vertex rule
                out.append(_shape(pts[a:b], lls[a:b]))
            else:
                cum = list(itertools.accumulate(seg[a : b - 1], initial=0.0))
                kept_ll = lls[a:b]
                out.append(EdgeShape(pts[a:b], kept_ll, cum, kept_ll, cum[-1]))
        return out


def _shape(xy: list[tuple[float, float]], lonlat: list[tuple[float, float]]) -> EdgeShape:
    """One edge's shape from its vertices in travel order (equal consecutive vertices dropped)."""
    x0, y0 = xy[0]
    kept_xy, kept_ll, cum = [(x0, y0)], [(lonlat[0][0], lonlat[0][1])], [0.0]
    for (bx, by), (lon, lat) in zip(xy[1:], lonlat[1:], strict=True):
        ax, ay = kept_xy[-1]
        if abs(bx - ax) > EPS_M or abs(by - ay) > EPS_M:
            kept_xy.append((bx, by))
            kept_ll.append((lon, lat))
            cum.append(cum[-1] + math.hypot(bx - ax, by - ay))
    distinct = [kept_ll[0], *(q for p, q in itertools.pairwise(kept_ll) if q != p)]
    return EdgeShape(kept_xy, kept_ll, cum, distinct, cum[-1])
