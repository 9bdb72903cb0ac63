"""The start's heap is frozen out of the cyclic collector only once the hub is ready, and only then.

Why: a full collection walked the whole start heap (network, view, feeds) every ~2 s of a write burst,
340-450 ms each (traffic_hub/heap.py). Freezing too early would leave what the start builds afterwards
in the walk; the process-level tuning must not leak into a program that embeds a hub (tests).
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import pytest

from traffic_hub.heap import YOUNG_THRESHOLD, freeze_when_ready


@pytest.fixture
def collector() -> Iterator[None]:
    """This test process's collector, as it was, afterwards."""
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


async def test_the_heap_is_frozen_once_every_part_is_ready_in_order(collector: None) -> None:
    order: list[str] = []
    view, feeds = asyncio.Event(), asyncio.Event()

    async def view_ready() -> None:
        await view.wait()
        order.append("view")

    async def feeds_rendered() -> None:
        await feeds.wait()
        order.append("feeds")

    freezing = asyncio.create_task(freeze_when_ready(view_ready, feeds_rendered))
    feeds.set()  # the feeds say rendered first: the view is still awaited before anything is frozen
    await asyncio.sleep(0)
    assert not freezing.done()
    assert gc.get_freeze_count() == 0
    view.set()
    await asyncio.wait_for(freezing, timeout=30)
    assert order == ["view", "feeds"]
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold()[0] == YOUNG_THRESHOLD


async def test_a_hub_stopped_before_it_was_ready_froze_nothing(collector: None) -> None:
    never = asyncio.Event()

    async def view_ready() -> None:
        await never.wait()

    freezing = asyncio.create_task(freeze_when_ready(view_ready))
    await asyncio.sleep(0)
    freezing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await freezing
    assert gc.get_freeze_count() == 0
