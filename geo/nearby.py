"""Road pieces near many points at once: a uniform grid over edge segments, queried in bulk.

Why not the STRtree: making a shapely point per input, then asking GEOS for distances and
projections one geometry at a time, cost more than the rest of the HMM for a short trace. An
edge's distance to a point is the distance to its nearest straight segment, so a grid of segments
answers "which edges lie within r metres, how far, and where along them" in a few array ops.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import numpy.typing as npt

from geo.arrays import FloatArray, IntArray

CELL_M = 40.0
REACH_M = 40.0
"""Each cell lists every segment within this distance of it: a query of radius ≤ REACH_M reads
the one cell its point falls in (wider radii read every cell of the point's box)."""
MAX_CELLS = 16_000_000
"""A wider cell is used when the network's box would need more cells than this (huge extracts)."""
GridColumns = tuple[
    FloatArray, FloatArray, FloatArray, FloatArray, FloatArray, IntArray, FloatArray, IntArray, npt.NDArray[np.int32]
]
"""Segment starts (x, y), unit vectors (x, y), lengths, edges, offsets along their edge; cell CSR, members."""


@dataclass(frozen=True)
class Near:
    """(point, edge) pairs within the radius, sorted by point then distance."""

    point: IntArray
    edge: IntArray
    dist: FloatArray
    offset: FloatArray  # metres from the edge's start to the point's projection on it


def _spread(starts: IntArray, counts: IntArray) -> tuple[IntArray, IntArray]:
    """For ranges ``[starts[i], starts[i] + counts[i])``: (owner i, value) of every element."""
    owner = np.repeat(np.arange(len(counts)), counts)
    first = np.cumsum(counts) - counts
    return owner, starts[owner] + np.arange(int(counts.sum())) - first[owner]


@dataclass(frozen=True, eq=False)
class SegmentGrid:
    """Every segment of the indexed edges, bucketed by the grid cells within :data:`REACH_M` of it.

    Coordinates are kept as separate x and y columns: numpy is several times slower on (N, 2)
    arrays than on 1-D ones for the fancy indexing and reductions done here."""

    ax: FloatArray  # segment starts
    ay: FloatArray
    ux: FloatArray  # segment unit vectors (0, 0 for a zero-length segment)
    uy: FloatArray
    seg_len: FloatArray
    seg_edge: IntArray  # edge of each segment
    seg_from: FloatArray  # metres along the edge where the segment starts
    origin: tuple[float, float]
    cell: float
    shape: tuple[int, int]
    cell_start: IntArray  # CSR over cells (row-major, ``cx * ny + cy``) into ``members``
    members: npt.NDArray[np.int32]  # segment indexes
    n_keys: int  # more than any edge row (to pack (point, edge) pairs in one integer)

    @classmethod
    def build(cls, xy: FloatArray, offsets: IntArray, edges: IntArray) -> SegmentGrid:
        """Index the segments of ``edges`` (rows of a network with vertices ``xy`` split by ``offsets``)."""
        counts = offsets[edges + 1] - offsets[edges] - 1
        owner, first = _spread(offsets[edges], counts)
        a, b = xy[first], xy[first + 1]
        seg_len = np.hypot(*(b - a).T)
        starts = np.cumsum(counts) - counts
        cum = np.cumsum(seg_len)
        seg_from = cum - seg_len - np.repeat(cum[starts] - seg_len[starts], counts)
        lo, hi = np.minimum(a, b) - REACH_M, np.maximum(a, b) + REACH_M
        origin = lo.min(axis=0) if len(a) else np.zeros(2)
        span = (hi.max(axis=0) - origin) if len(a) else np.zeros(2)
        cell = max(CELL_M, float(np.sqrt(np.prod(span + CELL_M) / MAX_CELLS)))
        shape = (int(span[0] // cell) + 1, int(span[1] // cell) + 1)
        c0 = ((lo - origin) // cell).astype(np.int64)
        c1 = ((hi - origin) // cell).astype(np.int64)
        seg, cells = _cells_of(c0[:, 0], c0[:, 1], c1[:, 0], c1[:, 1], shape[1])
        order = np.argsort(cells, kind="stable")
        cell_start = np.searchsorted(cells[order], np.arange(shape[0] * shape[1] + 1)).astype(np.int64)
        unit = np.divide(b - a, seg_len[:, None], out=np.zeros_like(a), where=seg_len[:, None] > 0)
        return cls(
            ax=np.ascontiguousarray(a[:, 0]),
            ay=np.ascontiguousarray(a[:, 1]),
            ux=np.ascontiguousarray(unit[:, 0]),
            uy=np.ascontiguousarray(unit[:, 1]),
            seg_len=seg_len,
            seg_edge=edges[owner],
            seg_from=seg_from,
            origin=(float(origin[0]), float(origin[1])),
            cell=cell,
            shape=shape,
            cell_start=cell_start,
            members=seg[order].astype(np.int32),
            n_keys=int(edges.max()) + 1 if len(edges) else 1,
        )

    @cached_property
    def columns(self) -> GridColumns:
        """The columns the compiled search reads (:func:`geo.compiled.candidates`), in its order."""
        segments = (self.ax, self.ay, self.ux, self.uy, self.seg_len, self.seg_edge, self.seg_from)
        return (*segments, self.cell_start, self.members)

    @cached_property
    def frame(self) -> tuple[float, float, float, int, int, float]:
        """Origin, cell size, shape and reach, for the compiled search."""
        return (self.origin[0], self.origin[1], self.cell, self.shape[0], self.shape[1], REACH_M)

    def _cells(self, v: FloatArray, o: float, n: int) -> IntArray:
        return np.minimum(np.maximum(((v - o) // self.cell).astype(np.int64), 0), n - 1)

    def _point_cells(self, px: FloatArray, py: FloatArray, radius: float) -> tuple[IntArray, IntArray]:
        """(point, cell) pairs to read: the point's own cell, or its whole box beyond REACH_M."""
        (ox, oy), (nx, ny) = self.origin, self.shape
        if radius <= REACH_M:
            return np.arange(len(px)), self._cells(px, ox, nx) * ny + self._cells(py, oy, ny)
        x0, x1 = self._cells(px - radius, ox, nx), self._cells(px + radius, ox, nx)
        y0, y1 = self._cells(py - radius, oy, ny), self._cells(py + radius, oy, ny)
        return _cells_of(x0, y0, x1, y1, ny)

    def query(self, pts: FloatArray, radius: float) -> Near:
        """Edges within ``radius`` of each point (one pair per edge: its nearest segment)."""
        px, py = pts[:, 0], pts[:, 1]
        point, cells = self._point_cells(px, py, radius)
        lo = self.cell_start[cells]
        owner, at = _spread(lo, self.cell_start[cells + 1] - lo)
        point, seg = point[owner], self.members[at]
        rx, ry = px[point] - self.ax[seg], py[point] - self.ay[seg]
        ux, uy = self.ux[seg], self.uy[seg]
        along = np.minimum(np.maximum(rx * ux + ry * uy, 0.0), self.seg_len[seg])
        dist = np.hypot(rx - ux * along, ry - uy * along)
        near = np.flatnonzero(dist <= radius)
        return self._nearest_per_edge(point[near], seg[near], dist[near], along[near])

    def _nearest_per_edge(
        self, point: IntArray, seg: npt.NDArray[np.int32], dist: FloatArray, along: FloatArray
    ) -> Near:
        edge = self.seg_edge[seg]
        key = point * self.n_keys + edge
        order = np.lexsort((dist, key))
        first = np.ones(len(order), dtype=bool)
        first[1:] = key[order[1:]] != key[order[:-1]]
        keep = order[first]
        keep = keep[np.lexsort((dist[keep], point[keep]))]
        return Near(point[keep], edge[keep], dist[keep], self.seg_from[seg[keep]] + along[keep])


def _cells_of(x0: IntArray, y0: IntArray, x1: IntArray, y1: IntArray, ny: int) -> tuple[IntArray, IntArray]:
    """(owner, cell id) of every cell in each inclusive box ``x0…x1 × y0…y1`` (id ``cx * ny + cy``)."""
    wy = y1 - y0 + 1
    owner, local = _spread(np.zeros(len(wy), dtype=np.int64), (x1 - x0 + 1) * wy)
    w = wy[owner]
    return owner, (x0[owner] + local // w) * ny + y0[owner] + local % w
