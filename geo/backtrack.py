"""The end of a compiled Viterbi pass: from the last group back to the first, the chosen candidate of each.

Both compiled HMMs (:func:`geo.compiled.viterbi_table` over a distance table, :func:`geo.bounded.viterbi`
over bounded searches) fill the same arrays in their forward pass and walk them back the same way; the
walk lives here once, jitted like them (``nogil``, cached on disk). Each of those modules keeps its own
start-up check and fallback (:func:`geo.pathrows.load_kernels`, ``warm``), which compile this too.
"""

from __future__ import annotations

import numba
import numpy as np

from geo.arrays import BoolArray, FloatArray, IntArray

__all__ = ["backtrack"]


@numba.njit(nogil=True, cache=True)
def backtrack(  # pragma: no cover
    score: FloatArray, back: IntArray, fresh: BoolArray, starts: IntArray, counts: IntArray
) -> IntArray:
    """The chosen candidate of every group: its best-scoring state for the last group of a trace or of a
    part (``fresh``: no transition into the next group), else the state the next choice came from
    (``back``); ties go to the first candidate, as in :func:`geo.hmm.viterbi`."""
    n_groups = len(starts)
    chosen = np.empty(n_groups, dtype=np.int64)
    g = n_groups - 1
    cur = -1
    while g >= 0:
        if cur < 0:  # the last group of a trace, or the group before a fresh start: its best state
            cur = starts[g]
            for i in range(starts[g] + 1, starts[g] + counts[g]):
                if score[i] > score[cur]:
                    cur = i
        chosen[g] = cur
        cur = -1 if fresh[g] else back[cur]
        g -= 1
    return chosen
