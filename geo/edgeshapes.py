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
        """Shapes of ``states`` (rows into the per-state ``edges`` and ``reverse`` columns)."""
        cache, shape = self._cache, self.shape
        out: list[EdgeShape] = []
        for s in states:
            found = cache.get((edges[s], reverse[s]))
            out.append(shape(edges[s], reverse[s]) if found is None else found)
        return out

    def shape(self, edge: int, reverse: bool) -> EdgeShape:
        """Edge ``edge`` in its own direction, or against it when ``reverse``."""
        key = (edge, reverse)
        found = self._cache.get(key)
        if found is None:
            found = self._build(edge, reverse)
            if len(self._cache) >= self._limit:
                self._cache.clear()  # rare (a metro network's every street); rebuilt on demand
            self._cache[key] = found
        return found

    def _build(self, edge: int, reverse: bool) -> EdgeShape:
        lo, hi = self._offsets[edge], self._offsets[edge + 1]
        xy = [(x, y) for x, y in self._xy[lo:hi].tolist()]
        lonlat = [(x, y) for x, y in self._lonlat[lo:hi].tolist()]
        if reverse:
            xy.reverse()
            lonlat.reverse()
        kept_xy, kept_ll, cum = [xy[0]], [lonlat[0]], [0.0]
        for b, ll in zip(xy[1:], lonlat[1:], strict=True):
            ax, ay = kept_xy[-1]
            if abs(b[0] - ax) > EPS_M or abs(b[1] - ay) > EPS_M:
                kept_xy.append(b)
                kept_ll.append(ll)
                cum.append(cum[-1] + math.hypot(b[0] - ax, b[1] - ay))
        distinct = [kept_ll[0], *(q for p, q in itertools.pairwise(kept_ll) if q != p)]
        return EdgeShape(kept_xy, kept_ll, cum, distinct, cum[-1])
