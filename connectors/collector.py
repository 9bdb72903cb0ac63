"""Python's cyclic garbage collector paused while a payload is planned.

Why: planning one cycle of a large feed allocates tens of thousands of containers (the decoded JSON
document, one report per item, their geometries) that all stay alive until the cycle ends. The
collector counts them and, every 700 allocations, traverses the young ones; every few cycles the
survivors push it into a full collection over the whole process (the runner's own objects, every
source's memory). On the 1.7 MB NYC Waze partner feed sample that was more than a third of
`plan_cycle`'s CPU time (thread time with the collector: 310-420 ms per cycle, paused: 140-210 ms).

Nothing is leaked by pausing: objects are still freed by reference counting the moment their last
reference goes, and reference cycles made meanwhile are collected once the collector runs again
(a parse is bounded in size and time, so the pause is too). The pause is process-wide (the
collector has no per-thread switch), so it is counted: planning threads that overlap share it,
and the collector runs again once the last one is done, unless it was disabled before the first.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator


class _Pause:
    """Counts the threads that want the collector paused."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holders = 0
        self._resume = False  # whether the collector was enabled when the first holder came

    def enter(self) -> None:
        with self._lock:
            if self._holders == 0:
                self._resume = gc.isenabled()
                gc.disable()
            self._holders += 1

    def leave(self) -> None:
        with self._lock:
            self._holders -= 1
            if self._holders == 0 and self._resume:
                gc.enable()

    @property
    def holders(self) -> int:
        return self._holders


_PAUSE = _Pause()


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic collector does not run inside this block (in any thread); see the module docstring."""
    _PAUSE.enter()
    try:
        yield
    finally:
        _PAUSE.leave()


def pause_holders() -> int:
    """How many blocks hold the pause now (0: the collector is as it was)."""
    return _PAUSE.holders
