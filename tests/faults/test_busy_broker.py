"""A busy broker is waited for, a silent one is not: the write deadline depends on whether the broker answers.

A write still unacknowledged at the write timeout used to be refused with a 503 whatever the reason;
under a burst of clients on a loaded host the slowest writes were refused although the broker was
fine. Now the write goes on waiting while the broker answers the probe's round trips sent during the
write, and is refused as soon as one goes unanswered. The write itself is a plain future here (the
slowness of a busy broker cannot be ordered on demand); the probe talks to the real broker, to a port
nobody listens on (a broker that is gone) and to a socket that accepts and never answers (a broker
that hangs, like a stopped process).
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import time
from collections.abc import AsyncIterator, Callable

import pytest

from tests.conftest import free_port
from traffic_hub.errors import Unavailable
from traffic_hub.kafka.probe import BrokerProbe
from traffic_hub.kafka.publisher import acknowledged

WRITE_TIMEOUT_S = 1.5  # the default of TRAFFIC_HUB_KAFKA__WRITE_TIMEOUT_S
CONTRACT_S = 2.0  # "Kafka down → writes get 503 with Retry-After within 2 s"


def slow_write(after_s: float) -> asyncio.Future[str]:
    """A write the broker acknowledges after `after_s` seconds."""
    future: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def ack() -> None:
        if not future.done():
            future.set_result("acked")

    asyncio.get_running_loop().call_later(after_s, ack)
    return future


async def until(condition: Callable[[], bool], timeout_s: float = 30.0) -> None:
    """Poll `condition` until it holds; fails the test after `timeout_s`."""
    for _ in range(int(timeout_s / 0.05)):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"condition not met within {timeout_s}s")


@contextlib.asynccontextmanager
async def fake_broker(answering: list[bool]) -> AsyncIterator[str]:
    """A listener that answers ApiVersions like a broker while `answering[0]`, and otherwise accepts the
    connection and stays silent (a hung broker). Yields its bootstrap address."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            (size,) = struct.unpack(">i", await reader.readexactly(4))
            request = await reader.readexactly(size)
            if not answering[0]:
                await reader.read()  # hold the connection until the client gives up
                return
            correlation = request[4:8]
            body = correlation + struct.pack(">h", 0)
            writer.write(struct.pack(">i", len(body)) + body)
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.close()


@pytest.mark.kafka
async def test_a_write_slower_than_the_timeout_is_waited_for_while_the_real_broker_answers(
    kafka_bootstrap: str,
) -> None:
    async with BrokerProbe(kafka_bootstrap, 0.5) as probe:
        assert probe.up
        started = time.monotonic()
        outcome = await acknowledged(slow_write(3 * WRITE_TIMEOUT_S), started, WRITE_TIMEOUT_S, probe)
    assert outcome == "acked"  # not a 503: the broker answered all along


async def test_a_write_to_a_broker_that_is_gone_is_refused_within_2s() -> None:
    # the probe still believes the broker up (it answered a moment ago); nothing listens any more
    async with fake_broker([True]) as address, BrokerProbe(address, 0.5) as probe:
        assert probe.up
    write = slow_write(30)
    started = time.monotonic()
    with pytest.raises(Unavailable) as refused:
        await acknowledged(write, started, WRITE_TIMEOUT_S, probe)
    took = time.monotonic() - started
    assert not write.done()  # refused while the write was still pending, not after it
    assert refused.value.retry_after_s >= 1
    assert took < CONTRACT_S, f"refused after {took:.2f}s"


async def test_a_write_to_a_broker_that_hangs_is_refused_within_2s() -> None:
    answering = [True]
    async with fake_broker(answering) as address, BrokerProbe(address, 0.5) as probe:
        assert probe.up
        answering[0] = False  # accepts connections, answers nothing: a stopped or wedged broker
        write = slow_write(30)
        started = time.monotonic()
        with pytest.raises(Unavailable):
            await acknowledged(write, started, WRITE_TIMEOUT_S, probe)
        took = time.monotonic() - started
    assert not write.done()
    assert took < CONTRACT_S, f"refused after {took:.2f}s"


async def test_a_write_in_flight_when_the_broker_hangs_is_refused_soon_after() -> None:
    answering = [True]
    async with fake_broker(answering) as address, BrokerProbe(address, 0.5) as probe:
        write = slow_write(30)
        started = time.monotonic()
        asyncio.get_running_loop().call_later(2.5, answering.__setitem__, 0, False)
        with pytest.raises(Unavailable):
            await acknowledged(write, started, WRITE_TIMEOUT_S, probe)
        took = time.monotonic() - started
    assert took > 2.5  # waited while the broker answered (past the write timeout) …
    assert not write.done()  # … and gave up on the write once it did not


async def test_one_late_answer_does_not_mark_the_broker_down_but_two_do() -> None:
    answering = [True]
    async with fake_broker(answering) as address, BrokerProbe(address, 0.2) as probe:
        assert probe.up
        answering[0] = False
        silent_since = time.monotonic()
        await until(lambda: not probe.up)
        # the first timed-out round trip left it up (a busy host can make one probe late); the second
        # in a row marked it down: no sooner than two round-trip timeouts after the broker fell silent
        assert time.monotonic() - silent_since >= 2 * probe.timeout_s - 0.1
        answering[0] = True
        async with asyncio.timeout(30):
            await probe.wait_up()


async def test_a_refused_connection_means_down() -> None:
    async with BrokerProbe(f"127.0.0.1:{free_port()}", 0.2) as probe:
        assert not probe.up
        assert not await probe.confirm(since=time.monotonic())
