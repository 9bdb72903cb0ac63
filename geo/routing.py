"""Routing layers: the states a vehicle can be in and the junction graph they form.

A :class:`Layer` is a routing view of the network: a set of *states* (a directed edge, or a
one-way edge travelled backwards in the ``both_ways`` layer) and a scipy CSR graph over the
junctions. Distances come from :mod:`geo.pathrows`: fixed-size dense rows on a city-centre
network, targeted searches bounded by the distance limit (:mod:`geo.bounded`) on a metro-scale one,
which cost what the search ball costs and keep nothing.
State paths between junction pairs are kept in a small LRU (:data:`PATH_CACHE_BYTES`), since a
matched trace asks for the same few hops again and again.
"""

from __future__ import annotations

import itertools
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from scipy.sparse import csr_matrix

from geo.arrays import BoolArray, FloatArray, IntArray
from geo.pathrows import DEFAULT_LIMIT_M, DENSE_MAX_NODES, BoundedRows, DenseRows

__all__ = ["DEFAULT_LIMIT_M", "Layer", "StateLists"]

PATH_CACHE_BYTES = 16 * 1024 * 1024
"""Budget of the state-path LRU of one layer (estimated bytes: a key, a tuple and a list of ints
cost about 200 bytes plus 8 per state). 16 MiB holds ~60,000 short hops: the hops of a few
thousand traces, far more than a burst of closures revisits, and small next to the network."""
_PATH_ENTRY_BYTES = 200


@dataclass(frozen=True)
class StateLists:
    """Per-state columns as Python lists (cheaper than numpy for the few states of one result)."""

    edge: list[int]
    reverse: list[bool]
    u: list[int]
    v: list[int]
    length: list[float]


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
    rows: DenseRows | BoundedRows = field(repr=False)
    _paths: OrderedDict[tuple[int, int], tuple[float, list[int]]] = field(default_factory=OrderedDict, repr=False)
    _path_bytes: list[int] = field(default_factory=lambda: [0], repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def directed(
        cls, u: IntArray, v: IntArray, length: FloatArray, n_nodes: int, xy: FloatArray | None = None
    ) -> Layer:
        """One state per directed edge (``xy``: junction coordinates in metres, to guide searches)."""
        n = len(u)
        return cls._make(np.arange(n), np.zeros(n, dtype=bool), u, v, length, n_nodes, n, xy)

    @classmethod
    def both_ways(
        cls, u: IntArray, v: IntArray, length: FloatArray, twin: IntArray, n_nodes: int, xy: FloatArray | None = None
    ) -> Layer:
        """Directed edges plus a reversed virtual state for each edge without a twin."""
        lone = np.flatnonzero(twin < 0)
        edge = np.concatenate([np.arange(len(u)), lone])
        reverse = np.concatenate([np.zeros(len(u), dtype=bool), np.ones(len(lone), dtype=bool)])
        su = np.concatenate([u, v[lone]])
        sv = np.concatenate([v, u[lone]])
        return cls._make(edge, reverse, su, sv, length[edge], n_nodes, len(u), xy)

    @classmethod
    def _make(
        cls,
        edge: IntArray,
        reverse: BoolArray,
        u: IntArray,
        v: IntArray,
        length: FloatArray,
        n_nodes: int,
        n_real: int,
        xy: FloatArray | None,
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
        rows = DenseRows(graph) if n_nodes <= DENSE_MAX_NODES else BoundedRows(graph, xy)
        return cls(edge.astype(np.int64), reverse, u, v, length, n_nodes, graph, best.astype(np.int64), back, rows)

    @cached_property
    def lists(self) -> StateLists:
        """The per-state columns result building reads, as Python lists."""
        return StateLists(
            self.edge.tolist(), self.reverse.tolist(), self.u.tolist(), self.v.tolist(), self.length.tolist()
        )

    @property
    def n_states(self) -> int:
        """Number of states."""
        return len(self.edge)

    # ---------------------------------------------------------------- shortest paths
    def forget(self) -> None:
        """Drop every cached row and path (benchmarks: a cold start)."""
        self.rows.clear()
        with self._lock:
            self._paths.clear()
            self._path_bytes[0] = 0

    def distances(self, src: IntArray, dst: IntArray, limit: float | FloatArray = DEFAULT_LIMIT_M) -> FloatArray:
        """Shortest-path length from each ``src[i]`` to ``dst[i]`` (inf beyond ``limit`` metres, a
        number or one per pair)."""
        if len(src) == 0:
            return np.zeros(0)
        return self.rows.distances(src, dst, limit)

    def node_path(self, src: int, dst: int, limit: float = DEFAULT_LIMIT_M) -> list[int]:
        """Junctions on the shortest path ``src → dst`` (both included); [] if beyond ``limit``."""
        return self.rows.node_path(src, dst, limit)

    def state_between(self, a: int, b: int) -> int:
        """The (shortest) state going from junction ``a`` straight to junction ``b``."""
        lo, hi = int(self.graph.indptr[a]), int(self.graph.indptr[a + 1])
        return int(self.pair_state[lo + self.graph.indices[lo:hi].tolist().index(b)])

    def state_path(self, src: int, dst: int, limit: float = DEFAULT_LIMIT_M) -> list[int]:
        """States along the shortest path between two junctions ([] when equal or unreachable)."""
        key = (src, dst)
        with self._lock:
            known = self._paths.get(key)
            if known is not None:
                self._paths.move_to_end(key)
        if known is None:
            nodes = self.node_path(src, dst, limit)
            if not nodes:
                return []
            states = [self.state_between(a, b) for a, b in itertools.pairwise(nodes)]
            known = (float(self.length[states].sum()), states)
            self._remember(key, known)
        return list(known[1]) if known[0] <= limit else []

    def _remember(self, key: tuple[int, int], path: tuple[float, list[int]]) -> None:
        """Keep a path, dropping the least recently used ones beyond :data:`PATH_CACHE_BYTES`."""
        with self._lock:
            if key in self._paths:
                return
            self._paths[key] = path
            self._path_bytes[0] += _PATH_ENTRY_BYTES + 8 * len(path[1])
            while self._path_bytes[0] > PATH_CACHE_BYTES and self._paths:
                _, old = self._paths.popitem(last=False)
                self._path_bytes[0] -= _PATH_ENTRY_BYTES + 8 * len(old[1])

    @property
    def cache_bytes(self) -> int:
        """Estimated bytes held by this layer's path cache (at most :data:`PATH_CACHE_BYTES`)."""
        return self._path_bytes[0]
