"""Bounded shortest-path rows from each junction, computed on demand and kept (FMM's UBODT idea, lazily).

A row is one bounded Dijkstra (``scipy.sparse.csgraph.dijkstra(limit=...)``) from a source
junction: the distance to, and predecessor of, every junction within the limit. The HMM asks for
thousands of (source, target) distances per trace, so lookups must be array operations:

* :class:`DenseRows` (networks of up to :data:`DENSE_MAX_NODES` junctions, a city centre): rows
  live in an ``n × n`` matrix; a lookup is one fancy index.
* :class:`SparseRows` (metro-scale networks): rows are compact (only the junctions reached),
  bounded in number, and folded into one sorted key table searched with ``searchsorted``.

Both are safe to share between threads: rows are written under a lock and a row is marked
available only once written; a row only ever grows (a larger limit adds far junctions, it does not
change the near ones).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from geo.arrays import FloatArray, IntArray

DEFAULT_LIMIT_M = 1500.0
DENSE_MAX_NODES = 2048
"""Up to this many junctions, rows are dense (2 × n² × 4 bytes per routing layer: 32 MiB at most)."""
MAX_CACHED_ROWS = 200_000
_CHUNK = 32
_NO_PRED = -9999  # scipy's marker for "no predecessor"


def _dijkstra(graph: csr_matrix, sources: list[int], limit: float) -> tuple[FloatArray, npt.NDArray[np.int32]]:
    """Rows for ``sources``: (len(sources), n) distances (inf beyond ``limit``) and predecessors."""
    dist, pred = dijkstra(graph, directed=True, indices=sources, limit=limit, return_predecessors=True)
    return dist, pred


def _walk(pred_of: npt.NDArray[np.int32], src: int, dst: int) -> list[int]:
    """Follow predecessors from ``dst`` back to ``src`` in one dense row (negative: none)."""
    path = [dst]
    node = dst
    while node != src:
        node = int(pred_of[node])
        if node < 0:
            return []
        path.append(node)
    return path[::-1]


class DenseRows:
    """Rows as ``n × n`` float32 distances and int32 predecessors (inf / -1 beyond the limit)."""

    def __init__(self, graph: csr_matrix) -> None:
        n = graph.shape[0]
        self._graph = graph
        self._dist = np.full((n, n), np.inf, dtype=np.float32)
        self._pred = np.full((n, n), -1, dtype=np.int32)
        self._limit = np.zeros(n)  # limit each row was computed with (0: not computed)
        self._lock = threading.Lock()

    def clear(self) -> None:
        """Forget every row (benchmarks: a cold start)."""
        with self._lock:
            self._limit[:] = 0.0

    def _ensure(self, sources: IntArray, limit: float | FloatArray) -> None:
        short = self._limit[sources] < limit
        if not short.any():
            return
        missing = np.unique(sources[short])
        limit = float(np.max(limit))
        for start in range(0, len(missing), _CHUNK):
            chunk = missing[start : start + _CHUNK]
            dist, pred = _dijkstra(self._graph, chunk.tolist(), limit)
            with self._lock:
                self._dist[chunk] = dist
                self._pred[chunk] = np.where(pred == _NO_PRED, -1, pred)
                self._limit[chunk] = limit

    def distances(self, src: IntArray, dst: IntArray, limit: float | FloatArray) -> FloatArray:
        """Shortest-path length ``src[i] → dst[i]`` (inf beyond ``limit``, a number or one per pair)."""
        self._ensure(src, np.maximum(limit, DEFAULT_LIMIT_M))
        out = self._dist[src, dst].astype(np.float64)
        out[out > limit] = np.inf
        return out

    def node_path(self, src: int, dst: int, limit: float) -> list[int]:
        """Junctions on the shortest path ``src → dst`` (both included); [] beyond ``limit``."""
        self._ensure(np.asarray([src]), DEFAULT_LIMIT_M)
        if not self._dist[src, dst] <= limit:
            self._ensure(np.asarray([src]), limit)
        if not self._dist[src, dst] <= limit:
            return []
        return _walk(self._pred[src], src, dst)


@dataclass(frozen=True)
class _Row:
    limit: float
    reached: IntArray  # sorted node indexes
    dist: FloatArray
    pred: IntArray  # predecessor node of each reached node (-9999 for the source)


@dataclass(frozen=True)
class _Merged:
    """All cached rows as one sorted table (key = src * n_nodes + dst)."""

    srcs: IntArray  # sorted sources included
    keys: IntArray
    dist: FloatArray
    seen_rows: int


_EMPTY = _Merged(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0), 0)


class SparseRows:
    """Compact rows, bounded in number, folded into one sorted table on doubling."""

    def __init__(self, graph: csr_matrix) -> None:
        self._graph = graph
        self._n = graph.shape[0]
        self._rows: dict[int, _Row] = {}
        self._merged = _EMPTY
        self._lock = threading.Lock()

    def clear(self) -> None:
        """Forget every row (benchmarks: a cold start)."""
        with self._lock:
            self._rows.clear()
            self._merged = _EMPTY

    def _rows_for(self, sources: IntArray, limit: float) -> list[_Row]:
        rows = self._rows
        missing = [int(s) for s in sources.tolist() if (r := rows.get(s)) is None or r.limit < limit]
        for start in range(0, len(missing), _CHUNK):
            chunk = missing[start : start + _CHUNK]
            dist, pred = _dijkstra(self._graph, chunk, limit)
            fresh = {}
            for k, src in enumerate(chunk):
                reached = np.flatnonzero(np.isfinite(dist[k]))
                fresh[src] = _Row(limit, reached, dist[k][reached], pred[k][reached].astype(np.int64))
            with self._lock:
                if len(rows) + len(fresh) > MAX_CACHED_ROWS:
                    rows.clear()
                    self._merged = _EMPTY
                rows.update(fresh)
        return [rows[s] for s in sources.tolist()]

    def _remerge(self) -> None:
        """Fold the cached rows into one sorted table (amortised: when the row count doubles)."""
        if len(self._rows) < 2 * self._merged.seen_rows + 64:
            return
        with self._lock:
            rows = dict(self._rows)
        srcs = np.asarray(sorted(rows), dtype=np.int64)
        sizes = np.fromiter((len(rows[s].reached) for s in srcs.tolist()), dtype=np.int64, count=len(srcs))
        keys = np.concatenate([rows[s].reached for s in srcs.tolist()]) + np.repeat(srcs * self._n, sizes)
        dist = np.concatenate([rows[s].dist for s in srcs.tolist()])
        self._merged = _Merged(srcs, keys, dist, len(rows))

    def distances(self, src: IntArray, dst: IntArray, limit: float | FloatArray) -> FloatArray:
        """Shortest-path length ``src[i] → dst[i]`` (inf beyond ``limit``, a number or one per pair).

        Pairs are answered per distinct limit, so that near pairs do not make far rows."""
        if np.ndim(limit) == 0:
            return self._distances(src, dst, float(limit))
        limits = np.asarray(limit, dtype=np.float64)
        out = np.empty(len(src))
        for value in np.unique(limits).tolist():
            mask = limits == value
            out[mask] = self._distances(src[mask], dst[mask], value)
        return out

    def _distances(self, src: IntArray, dst: IntArray, limit: float) -> FloatArray:
        table = self._merged
        if limit <= DEFAULT_LIMIT_M and len(table.srcs):
            at = np.minimum(np.searchsorted(table.srcs, src), len(table.srcs) - 1)
            if bool(np.all(table.srcs[at] == src)):
                return _lookup(table.keys, table.dist, src * self._n + dst, limit)
        uniq, pos = np.unique(src, return_inverse=True)
        rows = self._rows_for(uniq, max(limit, DEFAULT_LIMIT_M))
        sizes = np.fromiter((len(r.reached) for r in rows), dtype=np.int64, count=len(rows))
        keys = np.concatenate([r.reached for r in rows]) + np.repeat(np.arange(len(rows)) * self._n, sizes)
        dists = np.concatenate([r.dist for r in rows])
        if limit <= DEFAULT_LIMIT_M:
            self._remerge()
        return _lookup(keys, dists, pos * self._n + dst, limit)

    def node_path(self, src: int, dst: int, limit: float) -> list[int]:
        """Junctions on the shortest path ``src → dst`` (both included); [] beyond ``limit``."""
        row = self._rows.get(src)
        if row is None:
            row = self._rows_for(np.asarray([src]), DEFAULT_LIMIT_M)[0]
        path = _row_walk(row, src, dst)
        if not path and limit > row.limit:
            path = _row_walk(self._rows_for(np.asarray([src]), limit)[0], src, dst)
        return path


def _lookup(keys: IntArray, dist: FloatArray, want: IntArray, limit: float) -> FloatArray:
    out = np.full(len(want), np.inf)
    if len(keys) == 0:
        return out
    at = np.minimum(np.searchsorted(keys, want), len(keys) - 1)
    hit = keys[at] == want
    out[hit] = dist[at[hit]]
    out[out > limit] = np.inf
    return out


def _row_walk(row: _Row, src: int, dst: int) -> list[int]:
    """Follow predecessors from ``dst`` back to ``src`` in one compact row."""
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
