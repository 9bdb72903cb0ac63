"""Start Kafka clients so that a failed start leaves nothing open.

aiokafka's `start()` may fail half-way (no broker answers the bootstrap, or the caller's timeout cancels
it after the client has connected and started its metadata task); the consumer is then neither running
nor closed, and every retry of the caller would leave one more client behind (and a ResourceWarning when
it is collected). `start_or_stop` stops it before the error goes on, unchanged: the caller still sees
aiokafka's error (retriable or not) or the TimeoutError. `started_admin` does the same for a short-lived
admin client, closed on leaving whatever happened.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

STOP_TIMEOUT_S = 3.0  # a stop can hang when the broker is gone


async def stop_quietly(stop: Awaitable[None], timeout_s: float = STOP_TIMEOUT_S) -> None:
    """Await a client's `stop()` or `close()` for at most `timeout_s`; the errors a stop meets when the
    broker is gone (Kafka's, the socket's, the timeout) end it quietly: a stop never hangs or raises them."""
    with contextlib.suppress(KafkaError, OSError, TimeoutError):
        async with asyncio.timeout(timeout_s):
            await stop


async def start_or_stop(consumer: AIOKafkaConsumer, timeout_s: float) -> None:
    """Start `consumer` within `timeout_s`; if that fails or is cancelled, stop it, then raise."""
    try:
        async with asyncio.timeout(timeout_s):
            await consumer.start()
    except BaseException:
        await stop_quietly(consumer.stop())
        raise


@contextlib.asynccontextmanager
async def started_admin(
    bootstrap_servers: str, request_timeout_s: float, client_id: str = "aiokafka-admin"
) -> AsyncIterator[AIOKafkaAdminClient]:
    """An admin client, started; closed on exit (a failed start included), quietly and within
    `STOP_TIMEOUT_S`. The caller bounds the whole with its own timeout."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers, client_id=client_id, request_timeout_ms=int(request_timeout_s * 1000)
    )
    try:
        await admin.start()
        yield admin
    finally:
        await stop_quietly(admin.close())
