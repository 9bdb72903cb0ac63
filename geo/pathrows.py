"""Bounded shortest-path distances and paths between junctions of one routing graph.

The HMM asks for thousands of (source, target) distances per trace; lookups must be array
operations, and their cost must not grow with the network:

* :class:`DenseRows` (networks of up to :data:`DENSE_MAX_NODES` junctions, a city centre): the whole
  table of distances up to :data:`TABLE_LIMIT_M` (``scipy.sparse.csgraph.dijkstra(limit=...)``),
  computed when the layer is built, like FMM's UBODT: a transition is one lookup, and the compiled
  HMM (:mod:`geo.compiled`) reads the table directly. Memory is fixed: 2 × n² × 4 bytes per
  routing layer, 32 MiB at most; build time ≈ 0.06 s per layer on the bundled Lille network (848
  junctions), ≈ 0.5 s for 2,025 junctions (a 45 × 45 grid), measured on the 2-core machine. It is an
  index of the network, not a cache of answers: matching never fills it.
* :class:`BoundedRows` (metro-scale networks): targeted, bounded searches (:mod:`geo.bounded`), one
  per distinct source, stopping once its targets are settled or the limit is passed. Cost grows
  with the search ball, not the network, and nothing is kept between calls: memory does not grow
  with the number of traces matched. (It replaced compact rows cached per source: full-width
  scipy rows on a 62,500-junction grid, ≈ 11 KB kept per source, several GB at its cap.)

Both are safe to share between threads. ``SparseRows`` is kept as a name for :class:`BoundedRows`.
"""

from __future__ import annotations

import logging
import threading
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from geo.arrays import FloatArray, IntArray

if TYPE_CHECKING:
    from geo import bounded

DEFAULT_LIMIT_M = 1500.0
"""Default search limit: a route between two consecutive trace points longer than this is impossible."""
DENSE_MAX_NODES = 2048
"""Up to this many junctions, rows are dense (2 × n² × 4 bytes per routing layer: 32 MiB at most)."""
TABLE_LIMIT_M = 20_000.0
"""Bound of the dense table: the longest route the HMM ever asks for (``geo.hmm.MAX_ROUTE_M``, its
largest search tier); a longer one (none today) computes its row again."""
log = logging.getLogger(__name__)


def load_kernels() -> ModuleType | None:
    """The compiled matcher (:mod:`geo.compiled`), compiled or loaded from numba's cache now; None
    (the numpy matcher, same results, ≈ 2–3× slower on Lille) if numba cannot load or compile it.

    Imported here, on purpose: numba costs about 60 MiB of RSS at import, paid by a process when it
    builds its first routing layer, not by every process that imports :mod:`geo`."""
    try:
        import geo.compiled as kernels

        kernels.warm()
    except Exception:  # numba missing, or no compiler for this platform: the numpy fallback
        log.warning("compiled matcher unavailable, matching with numpy", exc_info=True)
        return None
    return kernels
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
    """Rows as ``n × n`` float32 distances and int32 predecessors (inf / -1 beyond the limit), all
    computed up to :data:`TABLE_LIMIT_M` when built. ``kernels``: the compiled matcher, or None
    (``compiled=False``, or numba unavailable: the numpy matcher)."""

    def __init__(self, graph: csr_matrix, *, compiled: bool = True) -> None:
        n = graph.shape[0]
        self._graph = graph
        self._dist = np.full((n, n), np.inf, dtype=np.float32)
        self._pred = np.full((n, n), -1, dtype=np.int32)
        self._limit = np.zeros(n)  # limit each row was computed with (0: not computed)
        self._lock = threading.Lock()
        self._ensure(np.arange(n), TABLE_LIMIT_M)
        self.kernels = load_kernels() if compiled else None

    @property
    def table(self) -> npt.NDArray[np.float32]:
        """Road distance between every two junctions (inf beyond :data:`TABLE_LIMIT_M`), read-only."""
        return self._dist

    def clear(self) -> None:
        """Nothing to forget: the table is an index built with the layer, not a cache of answers."""

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


class BoundedRows:
    """Distances and paths over one CSR junction graph, by targeted bounded search (no cache)."""

    def __init__(self, graph: csr_matrix, xy: FloatArray | None = None) -> None:
        # Imported here, on purpose: numba costs about 60 MiB of RSS at import (measured with `make bench`:
        # the feed process at 10,000 events went from 346 to 430 MiB), paid when a routing layer is built
        # (see load_kernels), not by every importer of geo. Listed in tests/test_architecture.py
        # (KNOWN_FUNCTION_IMPORTS).
        import geo.bounded as kernels

        self.kernels = load_kernels()
        self.csr: bounded.Csr = kernels.Csr(graph.indptr, graph.indices, graph.data, xy)
        self._many_to_many = kernels.many_to_many
        self._node_path = kernels.node_path
        self._viterbi = kernels.viterbi
        self._new_scratch = kernels.Scratch
        self._local = threading.local()
        kernels.warm()  # compile the kernels with the layer (network start-up), not on a request

    def clear(self) -> None:
        """Nothing is cached (kept for callers that reset caches, e.g. benchmarks)."""

    def distances(self, src: IntArray, dst: IntArray, limit: float | FloatArray) -> FloatArray:
        """Shortest-path length ``src[i] → dst[i]`` (inf beyond ``limit``, a number or one per pair)."""
        limits = np.broadcast_to(np.asarray(limit, dtype=np.float64), np.shape(src))
        return self._many_to_many(self.csr, np.asarray(src), np.asarray(dst), limits)

    def node_path(self, src: int, dst: int, limit: float) -> list[int]:
        """Junctions on the shortest path ``src → dst`` (both included); [] beyond ``limit``."""
        return self._node_path(self.csr, int(src), int(dst), float(limit))

    def viterbi(
        self,
        states: tuple[IntArray, IntArray, FloatArray],
        cands: tuple[IntArray, FloatArray, FloatArray],
        groups: tuple[IntArray, IntArray, npt.NDArray[np.bool_], FloatArray, FloatArray],
        beta: float,
        tolerance: float,
    ) -> tuple[IntArray, npt.NDArray[np.bool_]]:
        """The compiled HMM (:func:`geo.bounded.viterbi`) with this thread's scratch memory."""
        scratch = getattr(self._local, "scratch", None)
        if scratch is None:
            scratch = self._local.scratch = self._new_scratch(self.csr)
        return self._viterbi(self.csr, scratch, states, cands, groups, beta, tolerance)


SparseRows = BoundedRows
