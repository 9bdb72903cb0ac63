"""The heap a hub builds at start is moved out of the cyclic collector's sight once the hub is ready.

Why: a hub holds millions of long-lived Python objects from its start (the road network's graph, the
event view, the feeds' blocks, the conflation index). CPython's full collection (generation 2) walks
every one of them, and it runs whenever the objects promoted since the last one reach a quarter of
the heap: during a burst of writes, every ~2 s. Measured on the 2-core machine, `python -m loadtests
--only writes --clients 64` at 10,000 events: full collections of 340-450 ms each (nothing found:
`collected=0`), a stalled event loop each time, which is where POST latencies, the feeds' delays and
the decision owner's late heartbeats had their tails.

`gc.freeze()` (the standard library's documented tool for this) moves every tracked object into a
permanent generation that collections skip; a `gc.collect()` just before frees the start's own cyclic
garbage first. Reference counting still frees frozen objects the moment they are unused: only a
reference cycle among objects that were alive at the freeze is never collected, which the start's
structures (network, view, index) do not form. Objects made later are collected as usual.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

# Allocations between two young collections (CPython's default: 700). A request's objects live a few
# milliseconds: at 700 the young collections caught thousands of them alive every second and promoted
# them, and the promoted ones are what triggers and feeds the full collections.
YOUNG_THRESHOLD = 10_000

async def freeze_when_ready(*ready: Callable[[], Awaitable[None]]) -> None:
    """Once every `ready` has returned (the view read; the feeds rendered, where this process serves
    them), collect and freeze the heap (see the module docstring). Runs once; cancelled with the hub."""
    for wait in ready:
        await wait()
    started = time.perf_counter()
    gc.collect()  # one full collection on the event loop, once: the start's own garbage, before freezing
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *gc.get_threshold()[1:])
    log.info(
        "heap: %d objects of the start frozen out of the cyclic collector in %.2fs (full collections skip them)",
        gc.get_freeze_count(), time.perf_counter() - started,
    )  # fmt: skip
