"""Starting and stopping Kafka clients keeps the caller's cancellation (traffic_hub/kafka/starting.py),
without a broker: the awaits here stand for aiokafka's.

The stop below does what aiokafka's `close` does (aio-libs/aiokafka#983): it cancels an inner task and
awaits it under `suppress(CancelledError)`. A caller cancelled there used to carry on as if never cancelled;
a normaliser stopped just after starting went on polling that way and its hub's stop hung.
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from traffic_hub.kafka.starting import start_whole, stop_quietly


async def _cleanup_that_takes_a_while() -> None:
    try:
        await asyncio.Event().wait()
    finally:
        await asyncio.sleep(0.05)


async def _aiokafka_like_stop(inner: asyncio.Task[None]) -> None:
    inner.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await inner


async def test_a_caller_cancelled_during_a_stop_is_cancelled_once_the_stop_is_done() -> None:
    inner = asyncio.create_task(_cleanup_that_takes_a_while())
    carried_on = asyncio.Event()

    async def caller() -> None:
        await stop_quietly(_aiokafka_like_stop(inner))
        carried_on.set()  # only if the cancellation was lost

    await asyncio.sleep(0)  # the inner task waits
    stopping = asyncio.create_task(caller())
    await asyncio.sleep(0.01)  # the caller waits in the stop, the inner task in its cleanup
    stopping.cancel()
    async with asyncio.timeout(30):
        await asyncio.wait({stopping})
    assert stopping.cancelled()
    assert not carried_on.is_set()
    assert inner.done(), "the stop was left half-way"


async def test_a_stop_that_hangs_is_given_up_after_its_bound() -> None:
    never = asyncio.Event()
    async with asyncio.timeout(30):
        await stop_quietly(never.wait(), timeout_s=0.05)


async def test_a_start_that_does_not_finish_is_cancelled_after_the_grace() -> None:
    never = asyncio.Event()
    starting = asyncio.create_task(start_whole(never.wait(), None, grace_s=0.05))
    await asyncio.sleep(0)
    starting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await starting


async def test_a_start_out_of_time_gets_the_grace_to_finish_then_the_timeout_goes_on() -> None:
    finished = asyncio.Event()

    async def slow_start() -> None:
        await asyncio.sleep(0.05)
        finished.set()

    with pytest.raises(TimeoutError):
        await start_whole(slow_start(), 0.01, grace_s=5)
    assert finished.is_set()
