"""Start a Kafka consumer so that a failed start leaves nothing open.

aiokafka's `start()` may fail half-way (no broker answers the bootstrap, or the caller's timeout cancels
it after the client has connected and started its metadata task); the consumer is then neither running
nor closed, and every retry of the caller would leave one more client behind (and a ResourceWarning when
it is collected). `start_or_stop` stops it before the error goes on, unchanged: the caller still sees
aiokafka's error (retriable or not) or the TimeoutError.
"""

from __future__ import annotations

import asyncio
import contextlib

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError

STOP_TIMEOUT_S = 3.0  # a stop can hang when the broker is gone


async def start_or_stop(consumer: AIOKafkaConsumer, timeout_s: float) -> None:
    """Start `consumer` within `timeout_s`; if that fails or is cancelled, stop it, then raise."""
    try:
        async with asyncio.timeout(timeout_s):
            await consumer.start()
    except BaseException:
        with contextlib.suppress(KafkaError, OSError, TimeoutError):
            async with asyncio.timeout(STOP_TIMEOUT_S):
                await consumer.stop()
        raise
