"""One lifecycle for everything that owns a task: `start()` / `stop()` and `async with`, as aiokafka's
clients do.

A service names the coroutines it runs (`tasks()`); `start()` runs `before_start()` (a first check, a
connection) and then starts each as a named task; `stop()` cancels them in reverse order and waits for
each, and is idempotent; `async with service:` is start then stop. A service never outlives its owner,
and every owner (the composition root) stops what it started in reverse order.

A stop never hangs on a task that lost its cancellation. One can: aiokafka's stops cancel their own tasks
and await them under `suppress(CancelledError)` (aio-libs/aiokafka#983), so a cancellation that arrives
there is dropped and the task runs on. A hub stopped just after starting left its normaliser polling that
way three times in about 35 runs of the closure tests (8 December: the test hung 300 s in its teardown).
`kafka/starting.stop_quietly` now keeps cancellations out of those stops; as the fallback for any other
such place, a task still running `STOP_WAIT_S` after its cancellation is cancelled again, with an ERROR
naming where it waited. A stopper cancelled itself still waits for every task, then is cancelled.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, Self

log = logging.getLogger(__name__)

# A task's cleanup after its cancellation, with margin: the longest is a consumer group member's (the commit
# in flight, 10 s at most, then leaving the group, 5 s: normaliser/group.py).
STOP_WAIT_S = 20.0


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
        cancelled: asyncio.CancelledError | None = None
        for task in reversed(tasks):
            try:
                await ended(task, STOP_WAIT_S)
            except asyncio.CancelledError as exc:  # the stopper itself: the other tasks still get their wait
                cancelled = exc
        await self.after_stop()
        if cancelled is not None:
            raise cancelled

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()


async def ended(task: asyncio.Task[Any], wait_s: float = STOP_WAIT_S) -> None:
    """Wait for a cancelled `task` to end; cancel it again each `wait_s` it runs on (module doc). Its own
    error, if it ended with one, goes on to the caller, as `await task` would."""
    while not task.done():
        await asyncio.wait({task}, timeout=wait_s)
        if not task.done():
            log.error(
                "task %s still runs %.0f s after its cancellation, which it lost at %s; cancelling it again",
                task.get_name(), wait_s, awaiting(task),
            )  # fmt: skip
            task.cancel()
    if not task.cancelled():
        task.result()


def awaiting(task: asyncio.Task[Any]) -> str:
    """Where a suspended task waits: its chain of awaited coroutines, outermost first."""
    where: list[str] = []
    coro: Any = task.get_coro()
    while coro is not None and len(where) < 40:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "ag_frame", None)
        if frame is not None:
            where.append(f"{frame.f_code.co_name} ({frame.f_code.co_filename}:{frame.f_lineno})")
        coro = getattr(coro, "cr_await", None) or getattr(coro, "ag_await", None)
    return " > ".join(where) or "an unknown place"
