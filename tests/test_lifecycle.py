"""A service's stop never hangs on a task that lost its cancellation (traffic_hub/lifecycle.py).

The task here drops its first cancellation on purpose, as a library's await does when the cancellation
arrives in the same loop turn as the answer it interrupts; the stop cancels it again and says where it was.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

import pytest

from traffic_hub import lifecycle
from traffic_hub.lifecycle import Service


class _Stubborn(Service):
    """One task that survives its first cancellation, and one that behaves."""

    def __init__(self) -> None:
        super().__init__()
        self.lost = asyncio.Event()

    async def _stubborn(self) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.lost.set()  # dropped: the task carries on as if nothing had happened
        await asyncio.Event().wait()

    async def _polite(self) -> None:
        await asyncio.Event().wait()

    def tasks(self) -> dict[str, Coroutine[Any, Any, None]]:
        return {"stubborn": self._stubborn(), "polite": self._polite()}


class _Failing(Service):
    async def _fail(self) -> None:
        raise ValueError("broken")

    def tasks(self) -> dict[str, Coroutine[Any, Any, None]]:
        return {"failing": self._fail()}


async def test_a_task_that_lost_its_cancellation_is_cancelled_again_and_named(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(lifecycle, "STOP_WAIT_S", 0.05)
    service = _Stubborn()
    await service.start()
    await asyncio.sleep(0)  # both tasks wait
    async with asyncio.timeout(30):
        await service.stop()
    assert service.lost.is_set()
    assert not service.running
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "task stubborn still runs" in record.getMessage()
    assert "_stubborn (" in record.getMessage()
    assert "test_lifecycle.py:" in record.getMessage()


async def test_a_task_that_failed_gives_its_error_to_the_stop() -> None:
    service = _Failing()
    await service.start()
    await asyncio.sleep(0)
    with pytest.raises(ValueError, match="broken"):
        await service.stop()
