"""One lifecycle for everything that owns a task: `start()` / `stop()` and `async with`, as aiokafka's
clients do.

A service names the coroutines it runs (`tasks()`); `start()` runs `before_start()` (a first check, a
connection) and then starts each as a named task; `stop()` cancels them in reverse order and waits for
each, and is idempotent; `async with service:` is start then stop. A service never outlives its owner,
and every owner (the composition root) stops what it started in reverse order.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, Self


class Service:
    """A component that owns background tasks. Subclasses implement `tasks()` and call `super().__init__()`."""

    def __init__(self) -> None:
        self._tasks: list[asyncio.Task[None]] = []

    def tasks(self) -> dict[str, Coroutine[Any, Any, None]]:
        """The coroutines to run, by task name (created at `start()`)."""
        raise NotImplementedError

    async def before_start(self) -> None:
        """Runs once at `start()`, before the tasks (e.g. a first check so state is known at once)."""

    async def after_stop(self) -> None:
        """Runs at `stop()`, after the tasks ended (e.g. cancel work a task started on demand)."""

    @property
    def running(self) -> bool:
        """Every task started and none has ended."""
        return bool(self._tasks) and not any(task.done() for task in self._tasks)

    async def start(self) -> Self:
        if self._tasks:
            return self
        await self.before_start()
        self._tasks = [asyncio.create_task(coro, name=name) for name, coro in self.tasks().items()]
        return self

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in reversed(tasks):
            task.cancel()
        for task in reversed(tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.after_stop()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()
