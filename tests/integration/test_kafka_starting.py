"""Starting a Kafka client, cancelled at any moment, leaves no connection open (traffic_hub/kafka/starting.py).

aiokafka's bootstrap leaves its bootstrap connection open when cancelled while it waits for the first
metadata answer; a hub stopped just after starting did that about once in eight runs of the closure tests,
and the "Unclosed AIOKafkaConnection" ResourceWarning failed whichever test was running when it was
collected. Here the caller is cancelled at every moment of a start against the real broker: at 0, 1, 2, …
ms, which passes through the connect, the version lookup and the metadata request.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.conn import AIOKafkaConnection

from traffic_hub.kafka.starting import start_or_stop, start_whole, stop_quietly
from traffic_hub.settings import bootstrap_servers

pytestmark = pytest.mark.kafka

MOMENTS_MS = range(0, 40)  # a start takes a few ms on a local broker: the later moments find it started


def _open_connections() -> int:
    """Connections still open, found without a collection (a collection would finalise other tests' leftovers)."""
    return sum(1 for obj in gc.get_objects() if isinstance(obj, AIOKafkaConnection) and obj.connected())


async def _cancel_after(start: asyncio.Task[None], delay_s: float) -> None:
    await asyncio.sleep(delay_s)
    start.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await start


async def test_a_consumer_start_cancelled_at_any_moment_is_stopped_whole() -> None:
    before = _open_connections()
    for moment in MOMENTS_MS:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers(), request_timeout_ms=5000)
        starting = asyncio.create_task(start_or_stop(consumer, 10))
        await _cancel_after(starting, moment / 1000)
        await stop_quietly(consumer.stop())  # a start that had finished: the caller's own stop
        assert _open_connections() == before, f"a connection left open when cancelled after {moment} ms"


async def test_a_producer_start_cancelled_at_any_moment_is_stopped_whole() -> None:
    before = _open_connections()
    for moment in MOMENTS_MS:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers(), request_timeout_ms=5000)
        starting = asyncio.create_task(start_whole(producer.start(), 10))
        await _cancel_after(starting, moment / 1000)
        await stop_quietly(producer.stop())
        assert _open_connections() == before, f"a connection left open when cancelled after {moment} ms"
