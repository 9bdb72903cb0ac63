"""The matcher's per-point work, compiled with numba: candidate search and the HMM over a distance table.

Why: on the bundled Lille network (1,470 edges) the numpy matcher ran at 0.25–0.35× fastmm
(37,589 vs 108,840 points/s in one run, 39,201 vs 159,324 in another; loadtests/RESULTS.md). Profiled
on the bench's unseen traces (≈ 42 points each), a trace cost ≈ 22 µs per point: ≈ 12 in the Viterbi
(three numpy calls per column of the forward pass, pair arrays, the distance lookups), ≈ 4 in the
candidate search (about thirty numpy calls whatever the trace length), ≈ 6 in result assembly. Those
are fixed costs of numpy calls on small arrays, not arithmetic: here each trace is one pass over its
points and their candidates, in two calls.

* :func:`candidates` reproduces :func:`geo.hmm.candidates` over :class:`geo.nearby.SegmentGrid`
  exactly: same candidates, same order (by point, then distance, then edge row), same offsets.
* :func:`viterbi_table` reproduces :func:`geo.hmm.viterbi` (the numpy pass, same ties: the first
  best state) on a layer whose distances are a precomputed table (:class:`geo.pathrows.DenseRows`,
  FMM's UBODT idea for a small network: every transition is one lookup).

Measured after (same run as fastmm, unseen traces, load 25 → 31): 61.8k vs 91.5k points/s, 0.68×
(README, "Matching at that size"). Price: numba and these kernels cost ≈ 110 MiB of RSS in every
process that builds a routing layer (61 MiB at import, 48 MiB of LLVM and code when loaded).

Fallback: the numpy functions stay the reference; a layer uses them when these kernels cannot be
loaded (:func:`geo.pathrows.load_kernels`), and the tests compare both on recorded traces
(tests/geo/test_compiled.py). Compiled on first use and cached on disk by numba (``cache=True``,
``NUMBA_CACHE_DIR`` in the container image), like :mod:`geo.bounded`.
"""

from __future__ import annotations

import numba
import numpy as np
import numpy.typing as npt

from geo.arrays import BoolArray, FloatArray, IntArray
from geo.backtrack import backtrack
from geo.nearby import GridColumns

__all__ = ["candidates", "groups", "viterbi_table", "warm"]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


@numba.njit(nogil=True, cache=True)
def _cell(v: float, o: float, size: float, n: int) -> int:  # pragma: no cover
    """Grid cell of coordinate ``v`` (as ``SegmentGrid._cells``: floor division, clipped)."""
    c = int((v - o) // size)
    return min(max(c, 0), n - 1)


@numba.njit(nogil=True, cache=True)
def _near_point(  # pragma: no cover
    grid: tuple[F64, F64, F64, F64, F64, I64, F64, I64, npt.NDArray[np.int32]],
    frame: tuple[float, float, float, int, int, float],
    x: float,
    y: float,
    radius: float,
    ke: I64,
    kd: F64,
    ko: F64,
) -> int:
    """Edges within ``radius`` of (x, y), each at its nearest segment (the first one in cell order on
    a tie, as the numpy stable sort keeps), into ``ke``/``kd``/``ko``; returns how many, or -1 when
    the scratch is too small (the caller grows it)."""
    ax, ay, ux, uy, seg_len, seg_edge, seg_from, cell_start, members = grid
    ox, oy, size, nx, ny, reach = frame
    if radius <= reach:
        x0 = x1 = _cell(x, ox, size, nx)
        y0 = y1 = _cell(y, oy, size, ny)
    else:
        x0, x1 = _cell(x - radius, ox, size, nx), _cell(x + radius, ox, size, nx)
        y0, y1 = _cell(y - radius, oy, size, ny), _cell(y + radius, oy, size, ny)
    far = radius * radius * (1.0 + 1e-9)  # squared, with a margin far above rounding (a few 1e-16)
    m = 0
    for cx in range(x0, x1 + 1):
        for cy in range(y0, y1 + 1):
            c = cx * ny + cy
            for at in range(cell_start[c], cell_start[c + 1]):
                s = members[at]
                rx, ry = x - ax[s], y - ay[s]
                along = min(max(rx * ux[s] + ry * uy[s], 0.0), seg_len[s])
                dx, dy = rx - ux[s] * along, ry - uy[s] * along
                if dx * dx + dy * dy > far:  # surely beyond the radius: skip the exact hypot
                    continue
                d = np.hypot(dx, dy)
                if d > radius:
                    continue
                e = seg_edge[s]
                j = 0
                while j < m and ke[j] != e:
                    j += 1
                if j < m:
                    if d < kd[j]:
                        kd[j] = d
                        ko[j] = seg_from[s] + along
                    continue
                if m == len(ke):
                    return -1
                ke[m], kd[m], ko[m] = e, d, seg_from[s] + along
                m += 1
    for i in range(1, m):  # by distance, then edge row (few items: insertion sort)
        e, d, o = ke[i], kd[i], ko[i]
        j = i - 1
        while j >= 0 and (kd[j] > d or (kd[j] == d and ke[j] > e)):
            ke[j + 1], kd[j + 1], ko[j + 1] = ke[j], kd[j], ko[j]
            j -= 1
        ke[j + 1], kd[j + 1], ko[j + 1] = e, d, o
    return m


@numba.njit(nogil=True, cache=True)
def _candidates(  # pragma: no cover
    grid: tuple[F64, F64, F64, F64, F64, I64, F64, I64, npt.NDArray[np.int32]],
    frame: tuple[float, float, float, int, int, float],
    twin: I64,
    back: I64,
    length: F64,
    pts: F64,
    radius: float,
    k: int,
) -> tuple[I64, I64, F64, F64]:
    n = len(pts)
    o_point = np.empty(2 * k * n, dtype=np.int64)
    o_state = np.empty(2 * k * n, dtype=np.int64)
    o_offset = np.empty(2 * k * n)
    o_dist = np.empty(2 * k * n)
    cap = 64
    ke = np.empty(cap, dtype=np.int64)
    kd = np.empty(cap)
    ko = np.empty(cap)
    w = 0
    for p in range(n):
        m = _near_point(grid, frame, pts[p, 0], pts[p, 1], radius, ke, kd, ko)
        while m < 0:
            cap *= 2
            ke, kd, ko = np.empty(cap, dtype=np.int64), np.empty(cap), np.empty(cap)
            m = _near_point(grid, frame, pts[p, 0], pts[p, 1], radius, ke, kd, ko)
        m = min(m, k)
        for i in range(m):  # the pieces found, in their stored direction
            o_point[w], o_state[w], o_offset[w], o_dist[w] = p, ke[i], max(ko[i], 0.0), kd[i]
            w += 1
        for i in range(m):  # then the other direction of each, where the layer has one
            e = ke[i]
            o = twin[e] if twin[e] >= 0 else back[e]
            if o >= 0:
                o_point[w], o_state[w], o_offset[w], o_dist[w] = p, o, max(length[e] - ko[i], 0.0), kd[i]
                w += 1
    return o_point[:w], o_state[:w], o_offset[:w], o_dist[:w]


def candidates(
    grid: GridColumns,
    frame: tuple[float, float, float, int, int, float],
    twin: IntArray,
    back: IntArray,
    length: FloatArray,
    pts: FloatArray,
    radius: float,
    k: int,
) -> tuple[IntArray, IntArray, FloatArray, FloatArray]:
    """(point, state, offset, dist) of every candidate, as :func:`geo.hmm.candidates` returns them.

    ``grid``: the :class:`geo.nearby.SegmentGrid` columns (``ax, ay, ux, uy, seg_len, seg_edge,
    seg_from, cell_start, members``); ``frame``: its origin, cell size, shape and reach; ``twin``
    and ``back``: the state travelling each edge the other way (its twin edge, else the layer's
    reversed state; -1: none)."""
    return _candidates(grid, frame, twin, back, length, np.ascontiguousarray(pts, dtype=np.float64), radius, k)


@numba.njit(nogil=True, cache=True)
def _groups(  # pragma: no cover
    c_point: I64, trace_of: I64, pts: F64, tiers: F64, short_m: float, default_m: float
) -> tuple[I64, I64, BoolArray, F64, F64]:
    """Groups (points with candidates) of a batch: first candidate, count, starts a trace, straight
    distance from the previous group (0 at a trace's start) and search limit (as ``hmm._far``)."""
    n = len(c_point)
    starts = np.empty(n, dtype=np.int64)
    g = 0
    for i in range(n):
        if i == 0 or c_point[i] != c_point[i - 1]:
            starts[g] = i
            g += 1
    starts = starts[:g]
    counts = np.empty(g, dtype=np.int64)
    new = np.zeros(g, dtype=np.bool_)
    gc = np.zeros(g)
    limit = np.empty(g)
    for j in range(g):
        counts[j] = (starts[j + 1] if j + 1 < g else n) - starts[j]
        p = c_point[starts[j]]
        if j == 0 or trace_of[p] != trace_of[c_point[starts[j - 1]]]:
            new[j] = True
        else:
            q = c_point[starts[j - 1]]
            gc[j] = np.hypot(pts[p, 0] - pts[q, 0], pts[p, 1] - pts[q, 1])
    lo = 0
    while lo < g:
        hi = lo + 1
        longest = gc[lo]
        while hi < g and not new[hi]:
            longest = max(longest, gc[hi])
            hi += 1
        want = 2.0 * longest + 300.0
        t = 0
        while t < len(tiers) - 1 and tiers[t] < want:
            t += 1
        for j in range(lo, hi):
            limit[j] = default_m if gc[j] <= short_m else tiers[t]
        lo = hi
    return starts, counts, new, gc, limit


def groups(
    c_point: IntArray, trace_of: IntArray, pts: FloatArray, tiers: FloatArray, short_m: float, default_m: float
) -> tuple[IntArray, IntArray, BoolArray, FloatArray, FloatArray]:
    """The groups :func:`geo.bounded.viterbi` walks, as ``geo.hmm._groups_numpy`` lays them out."""
    return _groups(
        np.asarray(c_point, dtype=np.int64),
        np.asarray(trace_of, dtype=np.int64),
        np.ascontiguousarray(pts, dtype=np.float64),
        np.asarray(tiers, dtype=np.float64),
        short_m,
        default_m,
    )


@numba.njit(nogil=True, cache=True)
def _viterbi_table(  # pragma: no cover
    table: npt.NDArray[np.float32],
    layer: tuple[I64, I64, F64],
    cands: tuple[I64, I64, F64, F64],
    trace_of: I64,
    pts: F64,
    model: tuple[float, float, float, float, float],
    tiers: F64,
) -> tuple[I64, BoolArray]:
    s_u, s_v, s_len = layer
    c_point, c_state, c_offset, c_dist = cands
    sigma, beta, tolerance, short_m, default_m = model
    starts, counts, new, gcs, limits = _groups(c_point, trace_of, pts, tiers, short_m, default_m)
    n_groups = len(starts)
    n = len(c_state)
    emis = np.empty(n)
    for i in range(n):
        emis[i] = -0.5 * (c_dist[i] / sigma) ** 2
    score = np.empty(n)
    back = np.full(n, -1, dtype=np.int64)
    fresh = np.zeros(n_groups, dtype=np.bool_)
    for g in range(n_groups):
        s0, nb = starts[g], counts[g]
        alive = False
        if not new[g]:
            p0, na = starts[g - 1], counts[g - 1]
            gc, limit = gcs[g], limits[g]
            for j in range(nb):
                b = s0 + j
                sb, tb, eb = c_state[b], c_offset[b], emis[b]
                best, arg = -np.inf, -1
                for i in range(na):
                    a = p0 + i
                    sa, ta = c_state[a], c_offset[a]
                    if sa == sb and tb >= ta - tolerance:
                        route = max(tb - ta, 0.0)
                    else:
                        between = float(table[s_v[sa], s_u[sb]])
                        if between > limit:
                            between = np.inf
                        route = (s_len[sa] - ta) + between + tb
                    value = (-abs(route - gc) / beta + eb) + score[a]
                    if value > best:
                        best, arg = value, a
                score[b] = best
                back[b] = arg
                alive = alive or best > -np.inf
        if not alive:
            fresh[g] = True
            for j in range(nb):
                score[s0 + j] = emis[s0 + j]
                back[s0 + j] = -1
    return backtrack(score, back, fresh, starts, counts), fresh


def viterbi_table(
    table: npt.NDArray[np.float32],
    layer: tuple[IntArray, IntArray, FloatArray],
    cands: tuple[IntArray, IntArray, FloatArray, FloatArray],
    trace_of: IntArray,
    pts: FloatArray,
    model: tuple[float, float, float, float, float],
    tiers: FloatArray,
) -> tuple[IntArray, BoolArray]:
    """The chosen candidate of every group (point with candidates, in candidate order) and whether a
    part starts there (a trace's first group, or a break: no transition possible).

    ``table[a, b]``: road distance between junctions (inf beyond the table's bound); ``layer``: the
    states' ``u``, ``v``, ``length``; ``cands``: point, state, offset, distance to the point;
    ``model``: σ (emission), β (transition), reverse tolerance, the step length up to which the
    default limit applies, that default limit (metres); ``tiers``: the longer limits."""
    return _viterbi_table(
        table,
        layer,
        cands,
        np.asarray(trace_of, dtype=np.int64),
        np.ascontiguousarray(pts, dtype=np.float64),
        model,
        np.asarray(tiers, dtype=np.float64),
    )


def warm() -> None:
    """Compile the kernels now (or load them from numba's cache), not on the first request."""
    f1, i1, z1 = np.ones(1), np.ones(1, dtype=np.int64), np.zeros(1, dtype=np.int64)
    grid = (f1, f1, f1, f1, f1, z1, f1, np.zeros(2, dtype=np.int64), np.zeros(1, dtype=np.int32))
    candidates(grid, (0.0, 0.0, 1.0, 1, 1, 1.0), -i1, -i1, f1, np.zeros((1, 2)), 1.0, 1)
    table = np.zeros((1, 1), dtype=np.float32)
    viterbi_table(table, (z1, z1, f1), (z1, z1, f1, f1), z1, np.zeros((1, 2)), (1.0, 1.0, 1.0, 1.0, 1.0), f1)
    groups(z1, z1, np.zeros((1, 2)), f1, 1.0, 1.0)
