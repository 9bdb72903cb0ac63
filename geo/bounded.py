"""Targeted, bounded Dijkstra over a CSR junction graph, compiled with numba.

Why: the HMM asks, for every step of a trace, the road distance from each candidate of one point
to each candidate of the next. Those candidates are a few dozen metres apart, so a search from a
source can stop as soon as it has settled every target it was asked about, or when the next
junction is beyond the distance limit. Its cost grows with the part of the ball around the source
that it visits (usually a handful of junctions, at worst the ``limit`` ball), never with the size
of the network: scratch arrays are allocated once per call and only the touched entries are
reset between searches.

This replaced one-to-all rows (``scipy.sparse.csgraph.dijkstra``) cached per source junction: on
the 249k-edge synthetic grid each row cost a full-width (62,500-junction) allocation and scan,
and the cache held about 11 KB per source, up to several GB. Nothing is cached here: memory is
the scratch of one call (``n_nodes`` × 9 bytes plus the heap), freed when it returns.

The kernels release the GIL (``nogil``): placement threads route in parallel. They are compiled
on first use (:func:`warm`, called when a metro-scale layer is built): ≈ 5 s the first time on
the 2-core machine, ≈ 1 s later from numba's on-disk cache (``__pycache__``, or the user cache
directory when the package directory is read-only).
"""

from __future__ import annotations

import numba
import numpy as np
import numpy.typing as npt

from geo.arrays import FloatArray, IntArray
from geo.backtrack import backtrack

__all__ = ["Scratch", "many_to_many", "node_path", "viterbi"]


@numba.njit(nogil=True, cache=True)
def _push(
    hd: npt.NDArray[np.float64], hn: npt.NDArray[np.int64], size: int, d: float, node: int
) -> int:  # pragma: no cover
    """Push (d, node) on the binary min-heap of ``size`` items; the new size."""
    i = size
    while i > 0:
        parent = (i - 1) >> 1
        if hd[parent] <= d:
            break
        hd[i] = hd[parent]
        hn[i] = hn[parent]
        i = parent
    hd[i] = d
    hn[i] = node
    return size + 1


@numba.njit(nogil=True, cache=True)
def _pop(hd: npt.NDArray[np.float64], hn: npt.NDArray[np.int64], size: int) -> int:  # pragma: no cover
    """Remove the heap's top (read it before calling); the new size."""
    size -= 1
    d = hd[size]
    node = hn[size]
    i = 0
    while True:
        child = 2 * i + 1
        if child >= size:
            break
        if child + 1 < size and hd[child + 1] < hd[child]:
            child += 1
        if hd[child] >= d:
            break
        hd[i] = hd[child]
        hn[i] = hn[child]
        i = child
    hd[i] = d
    hn[i] = node
    return size


@numba.njit(nogil=True, cache=True)
def _many_to_many(  # pragma: no cover
    indptr: npt.NDArray[np.int64],
    indices: npt.NDArray[np.int64],
    weights: npt.NDArray[np.float64],
    n: int,
    q_src: npt.NDArray[np.int64],
    q_limit: npt.NDArray[np.float64],
    t_ptr: npt.NDArray[np.int64],
    t_node: npt.NDArray[np.int64],
    xy: npt.NDArray[np.float64],
    alpha: float,
) -> npt.NDArray[np.float64]:
    out = np.full(len(t_node), np.inf)
    guided = len(xy) == n
    dist = np.full(n, np.inf)
    done = np.zeros(n, dtype=np.bool_)
    stamp = np.full(n, -1, dtype=np.int64)
    touched = np.empty(16, dtype=np.int64)
    hd = np.empty(16, dtype=np.float64)
    hn = np.empty(16, dtype=np.int64)
    for q in range(len(q_src)):
        src, limit = q_src[q], q_limit[q]
        left = 0
        cx = cy = radius = 0.0
        for k in range(t_ptr[q], t_ptr[q + 1]):
            t = t_node[k]
            if stamp[t] != q:
                stamp[t] = q
                left += 1
                if guided:
                    cx += xy[t, 0]
                    cy += xy[t, 1]
        if guided and left > 0:
            cx /= left
            cy /= left
            for k in range(t_ptr[q], t_ptr[q + 1]):
                t = t_node[k]
                radius = max(radius, np.hypot(xy[t, 0] - cx, xy[t, 1] - cy))
        dist[src] = 0.0
        touched[0] = src
        n_touched = 1
        h = 0.0
        if guided:
            h = alpha * max(0.0, np.hypot(xy[src, 0] - cx, xy[src, 1] - cy) - radius)
        size = _push(hd, hn, 0, h, src)
        while size > 0 and left > 0:
            f, node = hd[0], hn[0]
            size = _pop(hd, hn, size)
            if f > limit:
                break
            if done[node]:
                continue
            done[node] = True
            d = dist[node]
            if stamp[node] == q:
                left -= 1
            for e in range(indptr[node], indptr[node + 1]):
                nxt = indices[e]
                nd = d + weights[e]
                h = 0.0
                if guided:
                    h = alpha * max(0.0, np.hypot(xy[nxt, 0] - cx, xy[nxt, 1] - cy) - radius)
                if nd < dist[nxt] and nd + h <= limit:
                    if dist[nxt] == np.inf:
                        if n_touched == len(touched):
                            touched = np.concatenate((touched, np.empty(len(touched), dtype=np.int64)))
                        touched[n_touched] = nxt
                        n_touched += 1
                    dist[nxt] = nd
                    if size == len(hd):
                        hd = np.concatenate((hd, np.empty(len(hd), dtype=np.float64)))
                        hn = np.concatenate((hn, np.empty(len(hn), dtype=np.int64)))
                    size = _push(hd, hn, size, nd + h, nxt)
        for k in range(t_ptr[q], t_ptr[q + 1]):
            t = t_node[k]
            if done[t]:
                out[k] = dist[t]
        for i in range(n_touched):
            dist[touched[i]] = np.inf
            done[touched[i]] = False
    return out


@numba.njit(nogil=True, cache=True)
def _node_path(  # pragma: no cover
    indptr: npt.NDArray[np.int64],
    indices: npt.NDArray[np.int64],
    weights: npt.NDArray[np.float64],
    n: int,
    src: int,
    dst: int,
    limit: float,
) -> npt.NDArray[np.int64]:
    dist = np.full(n, np.inf)
    done = np.zeros(n, dtype=np.bool_)
    pred = np.full(n, -1, dtype=np.int64)
    hd = np.empty(16, dtype=np.float64)
    hn = np.empty(16, dtype=np.int64)
    dist[src] = 0.0
    size = _push(hd, hn, 0, 0.0, src)
    while size > 0:
        d, node = hd[0], hn[0]
        size = _pop(hd, hn, size)
        if d > limit:
            break
        if done[node]:
            continue
        done[node] = True
        if node == dst:
            break
        for e in range(indptr[node], indptr[node + 1]):
            nxt = indices[e]
            nd = d + weights[e]
            if nd < dist[nxt] and nd <= limit:
                dist[nxt] = nd
                pred[nxt] = node
                if size == len(hd):
                    hd = np.concatenate((hd, np.empty(len(hd), dtype=np.float64)))
                    hn = np.concatenate((hn, np.empty(len(hn), dtype=np.int64)))
                size = _push(hd, hn, size, nd, nxt)
    if not done[dst]:
        return np.zeros(0, dtype=np.int64)
    count = 1
    node = dst
    while node != src:
        node = pred[node]
        count += 1
    path = np.empty(count, dtype=np.int64)
    node = dst
    for i in range(count - 1, -1, -1):
        path[i] = node
        node = pred[node]
    return path


@numba.njit(nogil=True, cache=True)
def _search(  # pragma: no cover
    indptr: npt.NDArray[np.int64],
    indices: npt.NDArray[np.int64],
    weights: npt.NDArray[np.float64],
    xy: npt.NDArray[np.float64],
    alpha: float,
    scratch: npt.NDArray[np.float64],
    done: npt.NDArray[np.bool_],
    marks: npt.NDArray[np.int64],
    hd: npt.NDArray[np.float64],
    hn: npt.NDArray[np.int64],
    src: int,
    limit: float,
    targets: npt.NDArray[np.int64],
    n_targets: int,
    out: npt.NDArray[np.float64],
) -> None:
    """One goal-directed search from ``src`` to ``targets[:n_targets]`` into ``out`` (inf: beyond
    ``limit``). Scratch: ``scratch``/``done`` (n, reset on return), ``marks`` (n stamps, then the
    search counter at ``marks[n]``, then the touched junctions), heap ``hd``/``hn`` (edges + 1)."""
    n = len(done)
    guided = len(xy) == n
    marks[n] += 1
    tag = marks[n]
    touched = n + 1
    left = 0
    cx = cy = radius = 0.0
    for k in range(n_targets):
        t = targets[k]
        if marks[t] != tag:
            marks[t] = tag
            left += 1
            if guided:
                cx += xy[t, 0]
                cy += xy[t, 1]
    if guided and left > 0:
        cx /= left
        cy /= left
        for k in range(n_targets):
            t = targets[k]
            radius = max(radius, np.hypot(xy[t, 0] - cx, xy[t, 1] - cy))
    scratch[src] = 0.0
    marks[touched] = src
    n_touched = 1
    h = 0.0
    if guided:
        h = alpha * max(0.0, np.hypot(xy[src, 0] - cx, xy[src, 1] - cy) - radius)
    size = _push(hd, hn, 0, h, src)
    while size > 0 and left > 0:
        f, node = hd[0], hn[0]
        size = _pop(hd, hn, size)
        if f > limit:
            break
        if done[node]:
            continue
        done[node] = True
        d = scratch[node]
        if marks[node] == tag:
            left -= 1
        for e in range(indptr[node], indptr[node + 1]):
            nxt = indices[e]
            nd = d + weights[e]
            h = 0.0
            if guided:
                h = alpha * max(0.0, np.hypot(xy[nxt, 0] - cx, xy[nxt, 1] - cy) - radius)
            if nd < scratch[nxt] and nd + h <= limit:
                if scratch[nxt] == np.inf:
                    marks[touched + n_touched] = nxt
                    n_touched += 1
                scratch[nxt] = nd
                size = _push(hd, hn, size, nd + h, nxt)
    for k in range(n_targets):
        t = targets[k]
        out[k] = scratch[t] if done[t] and scratch[t] <= limit else np.inf
    for i in range(n_touched):
        node = marks[touched + i]
        scratch[node] = np.inf
        done[node] = False


@numba.njit(nogil=True, cache=True)
def _viterbi(  # pragma: no cover
    indptr: npt.NDArray[np.int64],
    indices: npt.NDArray[np.int64],
    weights: npt.NDArray[np.float64],
    xy: npt.NDArray[np.float64],
    alpha: float,
    scratch: npt.NDArray[np.float64],
    done: npt.NDArray[np.bool_],
    marks: npt.NDArray[np.int64],
    hd: npt.NDArray[np.float64],
    hn: npt.NDArray[np.int64],
    s_u: npt.NDArray[np.int64],
    s_v: npt.NDArray[np.int64],
    s_len: npt.NDArray[np.float64],
    c_state: npt.NDArray[np.int64],
    c_offset: npt.NDArray[np.float64],
    c_emis: npt.NDArray[np.float64],
    g_start: npt.NDArray[np.int64],
    g_count: npt.NDArray[np.int64],
    g_new: npt.NDArray[np.bool_],
    g_gc: npt.NDArray[np.float64],
    g_limit: npt.NDArray[np.float64],
    beta: float,
    tolerance: float,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    n_groups = len(g_start)
    score = np.empty(len(c_state))
    back = np.full(len(c_state), -1, dtype=np.int64)
    fresh = np.zeros(n_groups, dtype=np.bool_)
    width = 1
    for g in range(n_groups):
        width = max(width, g_count[g])
    targets = np.empty(width, dtype=np.int64)
    routes = np.empty((width, width))
    source = np.empty(width, dtype=np.int64)  # junction searched from, per row of ``routes``
    best = np.empty(width)
    arg = np.empty(width, dtype=np.int64)
    for g in range(n_groups):
        s0, nb = g_start[g], g_count[g]
        alive = False
        if not g_new[g]:
            p0, na = g_start[g - 1], g_count[g - 1]
            gc, limit = g_gc[g], g_limit[g]
            for j in range(nb):
                targets[j] = s_u[c_state[s0 + j]]
                best[j] = -np.inf
                arg[j] = -1
            n_rows = 0
            for i in range(na):
                a = p0 + i
                sa, ta, sc = c_state[a], c_offset[a], score[a]
                if sc == -np.inf:
                    continue
                row = -1
                for j in range(nb):
                    b = s0 + j
                    tb = c_offset[b]
                    if sa == c_state[b] and tb >= ta - tolerance:
                        route = max(tb - ta, 0.0)
                    else:
                        if row < 0:  # candidates ending at the same junction share one search
                            src = s_v[sa]
                            for r in range(n_rows):
                                if source[r] == src:
                                    row = r
                                    break
                            if row < 0:
                                row = n_rows
                                source[row] = src
                                n_rows += 1
                                _search(
                                    indptr,
                                    indices,
                                    weights,
                                    xy,
                                    alpha,
                                    scratch,
                                    done,
                                    marks,
                                    hd,
                                    hn,
                                    src,
                                    limit,
                                    targets,
                                    nb,
                                    routes[row],
                                )
                        route = (s_len[sa] - ta) + routes[row, j] + tb
                    value = (-abs(route - gc) / beta + c_emis[b]) + sc
                    if value > best[j]:
                        best[j] = value
                        arg[j] = a
            for j in range(nb):
                if best[j] > -np.inf:
                    alive = True
                    break
        if alive:
            for j in range(nb):
                score[s0 + j] = best[j]
                back[s0 + j] = arg[j]
        else:
            fresh[g] = True
            for j in range(nb):
                score[s0 + j] = c_emis[s0 + j]
    return backtrack(score, back, fresh, g_start, g_count), fresh


GUIDE_FACTOR = 0.999
"""Share of the straight-line distance used as the A* estimate (below 1: a margin for rounding)."""


class Csr:
    """A CSR junction graph as the int64/float64 arrays the kernels take (one compiled variant).

    With junction coordinates ``xy`` (metres), searches are goal-directed (A*): a junction is
    estimated ``alpha ×`` its straight distance to the ball around the targets away from them.
    ``alpha`` is at most the smallest edge weight / straight length ratio of the graph, so the
    estimate never exceeds a road distance and distances stay exact; without ``xy`` (or if an edge
    is shorter than its chord, e.g. a bad length) the search is plain Dijkstra."""

    def __init__(
        self, indptr: npt.ArrayLike, indices: npt.ArrayLike, weights: npt.ArrayLike, xy: FloatArray | None = None
    ) -> None:
        self.indptr: IntArray = np.ascontiguousarray(indptr, dtype=np.int64)
        self.indices: IntArray = np.ascontiguousarray(indices, dtype=np.int64)
        self.weights: FloatArray = np.ascontiguousarray(weights, dtype=np.float64)
        self.n = len(self.indptr) - 1
        self.xy: FloatArray = np.zeros((0, 2))
        self.alpha = 0.0
        if xy is not None and len(xy) == self.n and len(self.indices):
            xy = np.ascontiguousarray(xy, dtype=np.float64)
            tail = np.repeat(np.arange(self.n), np.diff(self.indptr))
            chord = np.hypot(*(xy[self.indices] - xy[tail]).T)
            ratio = np.min(self.weights[chord > 0] / chord[chord > 0], initial=np.inf)
            self.alpha = float(min(GUIDE_FACTOR, ratio * GUIDE_FACTOR))
            if self.alpha > 0.5:
                self.xy = xy


def many_to_many(graph: Csr, src: IntArray, dst: IntArray, limit: FloatArray) -> FloatArray:
    """Shortest-path length ``src[i] → dst[i]`` (inf beyond ``limit[i]``), one search per distinct source.

    Pairs are grouped by source; each source is searched once, up to the largest limit of its
    pairs, stopping when all its targets are settled."""
    if len(src) == 0:
        return np.zeros(0)
    order = np.argsort(src, kind="stable")
    s, t, lim = src[order], dst[order], limit[order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    q_limit = np.maximum.reduceat(lim, starts)
    t_ptr = np.append(starts, len(s)).astype(np.int64)
    found = _many_to_many(
        graph.indptr,
        graph.indices,
        graph.weights,
        graph.n,
        s[starts].astype(np.int64),
        q_limit,
        t_ptr,
        t.astype(np.int64),
        graph.xy,
        graph.alpha,
    )
    found[found > lim] = np.inf
    out = np.empty(len(src))
    out[order] = found
    return out


def node_path(graph: Csr, src: int, dst: int, limit: float) -> list[int]:
    """Junctions on the shortest path ``src → dst`` (both included); [] beyond ``limit``."""
    path: list[int] = _node_path(graph.indptr, graph.indices, graph.weights, graph.n, src, dst, limit).tolist()
    return path


class Scratch:
    """Per-thread working memory of :func:`viterbi`'s searches, allocated once (the search resets
    what it touched): ``n`` × 25 + edges × 16 bytes (≈ 5.5 MiB per thread on the 249k-edge grid).
    Allocating it per call cost more than the searches of a short trace."""

    def __init__(self, graph: Csr) -> None:
        n = graph.n
        self.dist: FloatArray = np.full(n, np.inf)
        self.done = np.zeros(n, dtype=np.bool_)
        self.marks: IntArray = np.full(2 * n + 1, -1, dtype=np.int64)
        self.marks[n] = 0
        self.hd: FloatArray = np.empty(len(graph.indices) + 1)
        self.hn: IntArray = np.empty(len(graph.indices) + 1, dtype=np.int64)


def viterbi(
    graph: Csr,
    scratch: Scratch,
    states: tuple[IntArray, IntArray, FloatArray],
    cands: tuple[IntArray, FloatArray, FloatArray],
    groups: tuple[IntArray, IntArray, npt.NDArray[np.bool_], FloatArray, FloatArray],
    beta: float,
    tolerance: float,
) -> tuple[IntArray, npt.NDArray[np.bool_]]:
    """The whole HMM of a batch of traces after candidate search, compiled: transitions (routes by
    :func:`_search`, one per candidate whose next step leaves its edge), forward pass, backtrack.

    ``states``: the layer's ``u``, ``v``, ``length``; ``cands``: candidate state, offset, log
    emission; ``groups`` (one per point with candidates, in trace order): first candidate, count,
    starts a trace, straight distance from the previous point, search limit. Returns the chosen
    candidate of every group and whether a part starts there (see :func:`geo.hmm.viterbi`, whose
    numpy forward pass this reproduces, ties broken alike: the first best state)."""
    u, v = np.asarray(states[0], dtype=np.int64), np.asarray(states[1], dtype=np.int64)
    length = np.asarray(states[2], dtype=np.float64)
    c_state = np.asarray(cands[0], dtype=np.int64)
    c_offset, c_emis = np.asarray(cands[1], dtype=np.float64), np.asarray(cands[2], dtype=np.float64)
    g_start, g_count = np.asarray(groups[0], dtype=np.int64), np.asarray(groups[1], dtype=np.int64)
    g_new = np.asarray(groups[2], dtype=np.bool_)
    g_gc, g_limit = np.asarray(groups[3], dtype=np.float64), np.asarray(groups[4], dtype=np.float64)
    chosen, fresh = _viterbi(
        graph.indptr,
        graph.indices,
        graph.weights,
        graph.xy,
        graph.alpha,
        scratch.dist,
        scratch.done,
        scratch.marks,
        scratch.hd,
        scratch.hn,
        u,
        v,
        length,
        c_state,
        c_offset,
        c_emis,
        g_start,
        g_count,
        g_new,
        g_gc,
        g_limit,
        beta,
        tolerance,
    )
    return chosen, fresh


def warm() -> None:
    """Compile the kernels now (about a second), not on the first request."""
    g = Csr([0, 1, 1], [1], [1.0])
    many_to_many(g, np.asarray([0], dtype=np.int64), np.asarray([1], dtype=np.int64), np.asarray([2.0]))
    node_path(g, 0, 1, 2.0)
    i1, f1, b1 = np.ones(1, dtype=np.int64), np.ones(1), np.ones(1, dtype=np.bool_)
    z1 = np.zeros(1, dtype=np.int64)
    viterbi(g, Scratch(g), (z1, i1, f1), (z1, f1, f1), (z1, i1, b1, f1, f1), 5.0, 10.0)
