"""Bounded shortest paths between junctions, cached per source (the idea of FMM's UBODT, built lazily).

A :class:`Layer` is a routing view of the network: a set of *states* (a directed edge, or a
one-way edge travelled backwards in the ``both_ways`` layer) and a scipy CSR graph over the
junctions. ``distances`` answers many (source node, target node) queries at once from bounded
Dijkstra rows (``scipy.sparse.csgraph.dijkstra(limit=...)``) cached per source node; rows are
compact (only the nodes reached) and the cache is lock-protected and bounded in size.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

DEFAULT_LIMIT_M = 1500.0
MAX_CACHED_ROWS = 200_000
_CHUNK = 32


@dataclass(frozen=True)
class _Row:
    limit: float
    reached: IntArray  # sorted node indexes
    dist: FloatArray
    pred: IntArray  # predecessor node of each reached node (-9999 for the source)


@dataclass(frozen=True)
class _Merged:
    """All cached rows of the default limit as one sorted table (key = src * n_nodes + dst)."""

    srcs: IntArray  # sorted sources included
    keys: IntArray
    dist: FloatArray
    seen_rows: int


_EMPTY = _Merged(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0), 0)


@dataclass(frozen=True, eq=False)
class Layer:
    """States (directed ways of travelling an edge) and the junction graph they form."""

    edge: IntArray
    reverse: BoolArray
    u: IntArray
    v: IntArray
    length: FloatArray
    n_nodes: int
    graph: csr_matrix
    pair_state: IntArray
    back_state: IntArray
    _rows: dict[int, _Row] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _merged: list[_Merged] = field(default_factory=list, repr=False)

    @classmethod
    def directed(cls, u: IntArray, v: IntArray, length: FloatArray, n_nodes: int) -> Layer:
        """One state per directed edge."""
        n = len(u)
        return cls._make(np.arange(n), np.zeros(n, dtype=bool), u, v, length, n_nodes, n)

    @classmethod
    def both_ways(cls, u: IntArray, v: IntArray, length: FloatArray, twin: IntArray, n_nodes: int) -> Layer:
        """Directed edges plus a reversed virtual state for each edge without a twin."""
        lone = np.flatnonzero(twin < 0)
        edge = np.concatenate([np.arange(len(u)), lone])
        reverse = np.concatenate([np.zeros(len(u), dtype=bool), np.ones(len(lone), dtype=bool)])
        su = np.concatenate([u, v[lone]])
        sv = np.concatenate([v, u[lone]])
        return cls._make(edge, reverse, su, sv, length[edge], n_nodes, len(u))

    @classmethod
    def _make(
        cls, edge: IntArray, reverse: BoolArray, u: IntArray, v: IntArray, length: FloatArray, n_nodes: int, n_real: int
    ) -> Layer:
        states = np.flatnonzero(u != v)
        order = states[np.lexsort((length[states], v[states], u[states]))]
        first = np.ones(len(order), dtype=bool)
        first[1:] = (u[order][1:] != u[order][:-1]) | (v[order][1:] != v[order][:-1])
        best = order[first]
        indptr = np.concatenate([[0], np.cumsum(np.bincount(u[best], minlength=n_nodes))])
        weights = np.maximum(length[best], 0.01)
        graph = csr_matrix((weights, v[best], indptr), shape=(n_nodes, n_nodes))
        back = np.full(n_real, -1, dtype=np.int64)
        back[edge[reverse]] = np.flatnonzero(reverse)
        return cls(edge.astype(np.int64), reverse, u, v, length, n_nodes, graph, best.astype(np.int64), back)

    @property
    def n_states(self) -> int:
        """Number of states."""
        return len(self.edge)

    # ---------------------------------------------------------------- shortest paths
    def _rows_for(self, sources: IntArray, limit: float) -> list[_Row]:
        rows = self._rows
        missing = [int(s) for s in sources if (r := rows.get(int(s))) is None or r.limit < limit]
        for start in range(0, len(missing), _CHUNK):
            chunk = missing[start : start + _CHUNK]
            dist, pred = dijkstra(self.graph, directed=True, indices=chunk, limit=limit, return_predecessors=True)
            fresh = {}
            for k, src in enumerate(chunk):
                reached = np.flatnonzero(np.isfinite(dist[k]))
                fresh[src] = _Row(limit, reached, dist[k][reached], pred[k][reached].astype(np.int64))
            with self._lock:
                if len(rows) + len(fresh) > MAX_CACHED_ROWS:
                    rows.clear()
                rows.update(fresh)
        return [rows[int(s)] for s in sources]

    def _table(self) -> _Merged:
        return self._merged[-1] if self._merged else _EMPTY

    def _remerge(self) -> None:
        """Fold the cached default-limit rows into one sorted table (amortised: on doubling)."""
        if len(self._rows) < 2 * self._table().seen_rows + 64:
            return
        with self._lock:
            rows = dict(self._rows)
            srcs = np.asarray(sorted(rows), dtype=np.int64)
            sizes = np.fromiter((len(rows[int(s)].reached) for s in srcs), dtype=np.int64, count=len(srcs))
            keys = np.concatenate([rows[int(s)].reached for s in srcs]) + np.repeat(srcs * self.n_nodes, sizes)
            dist = np.concatenate([rows[int(s)].dist for s in srcs])
            self._merged[:] = [_Merged(srcs, keys, dist, len(rows))]

    def distances(self, src: IntArray, dst: IntArray, limit: float = DEFAULT_LIMIT_M) -> FloatArray:
        """Shortest-path length from each ``src[i]`` to ``dst[i]`` (inf beyond ``limit`` metres)."""
        if len(src) == 0:
            return np.zeros(0)
        table = self._table()
        if limit <= DEFAULT_LIMIT_M and len(table.srcs):
            at = np.minimum(np.searchsorted(table.srcs, src), len(table.srcs) - 1)
            if bool(np.all(table.srcs[at] == src)):
                return _lookup(table.keys, table.dist, src * self.n_nodes + dst, limit)
        uniq, pos = np.unique(src, return_inverse=True)
        rows = self._rows_for(uniq, max(limit, DEFAULT_LIMIT_M))
        sizes = np.fromiter((len(r.reached) for r in rows), dtype=np.int64, count=len(rows))
        keys = np.concatenate([r.reached for r in rows]) + np.repeat(np.arange(len(rows)) * self.n_nodes, sizes)
        dists = np.concatenate([r.dist for r in rows])
        if limit <= DEFAULT_LIMIT_M:
            self._remerge()
        return _lookup(keys, dists, pos * self.n_nodes + dst, limit)

    def node_path(self, src: int, dst: int, limit: float = DEFAULT_LIMIT_M) -> list[int]:
        """Junctions on the shortest path ``src → dst`` (both included); [] if beyond ``limit``."""
        row = self._rows.get(src)
        if row is None:
            row = self._rows_for(np.asarray([src]), DEFAULT_LIMIT_M)[0]
        path = _walk(row, src, dst)
        if not path and limit > row.limit:
            path = _walk(self._rows_for(np.asarray([src]), limit)[0], src, dst)
        return path

    def state_between(self, a: int, b: int) -> int:
        """The (shortest) state going from junction ``a`` straight to junction ``b``."""
        lo, hi = int(self.graph.indptr[a]), int(self.graph.indptr[a + 1])
        return int(self.pair_state[lo + self.graph.indices[lo:hi].tolist().index(b)])

    def state_path(self, src: int, dst: int, limit: float = DEFAULT_LIMIT_M) -> list[int]:
        """States along the shortest path between two junctions ([] when equal or unreachable)."""
        nodes = self.node_path(src, dst, limit)
        return [self.state_between(a, b) for a, b in itertools.pairwise(nodes)]


def _lookup(keys: IntArray, dist: FloatArray, want: IntArray, limit: float) -> FloatArray:
    out = np.full(len(want), np.inf)
    if len(keys) == 0:
        return out
    at = np.minimum(np.searchsorted(keys, want), len(keys) - 1)
    hit = keys[at] == want
    out[hit] = dist[at[hit]]
    out[out > limit] = np.inf
    return out


def _walk(row: _Row, src: int, dst: int) -> list[int]:
    """Follow predecessors from ``dst`` back to ``src`` in one Dijkstra row."""
    path = [dst]
    node = dst
    reached = row.reached
    while node != src:
        at = int(np.searchsorted(reached, node))
        if at >= len(reached) or reached[at] != node:
            return []
        node = int(row.pred[at])
        path.append(node)
    return path[::-1]
