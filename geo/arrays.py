"""The numpy array aliases every geo module annotates with, named once.

Why: the network, the index, routing and matching all pass parallel arrays of edge rows (int64),
metres or degrees (float64) and masks (bool); one name per dtype keeps the signatures short and
the dtypes the same everywhere.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["BoolArray", "FloatArray", "IntArray"]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
