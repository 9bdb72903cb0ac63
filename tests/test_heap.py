"""The start's heap is frozen out of the cyclic collector only once the hub is ready, and only then.

Why: a full collection walked the whole start heap (network, view, feeds) every ~2 s of a write burst,
340-450 ms each (traffic_hub/heap.py). Freezing too early would leave what the start builds afterwards
in the walk. The collector's functions are recorded, not run: a real collection here would finalise
what earlier tests left behind (and blame this test for their ResourceWarnings), and a real freeze would
change the whole test process.
"""

from __future__ import annotations

import asyncio
import gc

import pytest

from traffic_hub import heap


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What `heap` asks of the collector, in order."""
    done: list[str] = []

    def collect(*args: int) -> int:
        done.append("collect")
        return 0

    monkeypatch.setattr(gc, "collect", collect)
    monkeypatch.setattr(gc, "freeze", lambda: done.append("freeze"))
    monkeypatch.setattr(gc, "set_threshold", lambda *args: done.append(f"threshold {args[0]}"))
    monkeypatch.setattr(gc, "get_freeze_count", lambda: 1)
    return done


async def test_the_heap_is_frozen_once_every_part_is_ready_in_order(calls: list[str]) -> None:
    order: list[str] = []
    view, feeds = asyncio.Event(), asyncio.Event()

    async def view_ready() -> None:
        await view.wait()
        order.append("view")

    async def feeds_rendered() -> None:
        await feeds.wait()
        order.append("feeds")

    freezing = asyncio.create_task(heap.freeze_when_ready(view_ready, feeds_rendered))
    feeds.set()  # the feeds say rendered first: the view is still awaited before anything is frozen
    await asyncio.sleep(0)
    assert not freezing.done()
    assert calls == []
    view.set()
    await asyncio.wait_for(freezing, timeout=30)
    assert order == ["view", "feeds"]
    assert calls == ["collect", "freeze", f"threshold {heap.YOUNG_THRESHOLD}"]


async def test_a_hub_stopped_before_it_was_ready_froze_nothing(calls: list[str]) -> None:
    never = asyncio.Event()

    async def view_ready() -> None:
        await never.wait()

    freezing = asyncio.create_task(heap.freeze_when_ready(view_ready))
    await asyncio.sleep(0)
    freezing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await freezing
    assert calls == []
