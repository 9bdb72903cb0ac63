"""Start Kafka clients so that a failed start leaves nothing open.

aiokafka's `start()` may fail half-way (no broker answers the bootstrap, or the caller's timeout cancels
it after the client has connected and started its metadata task); the consumer is then neither running
nor closed, and every retry of the caller would leave one more client behind (and a ResourceWarning when
it is collected). `start_or_stop` stops it before the error goes on, unchanged: the caller still sees
aiokafka's error (retriable or not) or the TimeoutError. `started_admin` does the same for a short-lived
admin client, closed on leaving whatever happened.

`start_whole` is how every start is awaited: a start is never cancelled half-way while the broker answers.
aiokafka's bootstrap (client.py, `AIOKafkaClient.bootstrap`) closes its bootstrap connection on a Kafka error
or a timeout, but not when the task is cancelled while it waits for the first metadata answer: that
connection is in no list the client's `close` walks, so it stayed open until collected, with a
"Unclosed AIOKafkaConnection" ResourceWarning. A hub stopped just after starting (tests do it hundreds of
times) cancelled its normaliser group in that window about once in eight test runs of the two closure
files (traced 8 December with a recording of each connection's creator). So the start runs as a task of
its own; a caller cancelled, or out of time, gives it `START_GRACE_S` more to finish, and the caller's own
stop then closes a client whole. The fallback: a start still unfinished after the grace (a broker that
accepts and does not answer) is cancelled, and its one connection is closed by aiokafka's collector hook.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

STOP_TIMEOUT_S = 3.0  # a stop can hang when the broker is gone
START_GRACE_S = 2.0  # what a start gets to finish after its caller gave up; a local broker answers in ms


async def start_whole(start: Awaitable[object], timeout_s: float | None, grace_s: float = START_GRACE_S) -> None:
    """Await a client's `start()` for `timeout_s` (TimeoutError after; None: the caller bounds it); if the
    caller is cancelled or out of time, the start itself goes on for up to `grace_s` before it is cancelled
    (module doc: aiokafka leaks a connection when its bootstrap is cancelled). The caller stops the client
    afterwards, as always."""
    starting = asyncio.ensure_future(start)
    starting.add_done_callback(_retrieve)
    try:
        async with asyncio.timeout(timeout_s):
            await asyncio.shield(starting)
    except (Exception, asyncio.CancelledError):
        try:
            if not starting.done():
                await asyncio.wait({starting}, timeout=grace_s)
        finally:
            starting.cancel()  # no-op once done
        raise


def _retrieve(task: asyncio.Future[object]) -> None:
    """The start's own error is the caller's to see (through the shield) or to drop (the caller gave up
    first): either way it is not a "Task exception was never retrieved" at collection."""
    if not task.cancelled():
        task.exception()


async def stop_quietly(stop: Awaitable[object], timeout_s: float = STOP_TIMEOUT_S) -> None:
    """Await a client's `stop()` or `close()` for at most `timeout_s`; the errors a stop meets when the
    broker is gone (Kafka's, the socket's, the timeout) end it quietly: a stop never hangs or raises them.

    The stop runs as its own task, shielded: a caller cancelled meanwhile lets it finish (within
    `timeout_s`) and is then cancelled, as asked. Why: aiokafka's stops cancel their own tasks and await
    them under `suppress(CancelledError)` (client.py `close`, the coordinator's and the fetcher's stops;
    aio-libs/aiokafka#983 lists them), so a cancellation of the caller that arrives there is taken for the
    inner task's and dropped: the caller carries on as if never cancelled. A hub stopped just after
    starting lost its normaliser's cancellation that way and its stop hung (8 December)."""
    stopping = asyncio.ensure_future(stop)
    stopping.add_done_callback(_retrieve)
    try:
        async with asyncio.timeout(timeout_s):
            await asyncio.shield(stopping)
    except (KafkaError, OSError, TimeoutError):
        pass
    except asyncio.CancelledError:
        await asyncio.wait({stopping}, timeout=timeout_s)
        raise
    finally:
        stopping.cancel()  # given up after `timeout_s` (no-op once done)


async def start_or_stop(consumer: AIOKafkaConsumer, timeout_s: float) -> None:
    """Start `consumer` within `timeout_s`; if that fails or is cancelled, stop it, then raise."""
    try:
        await start_whole(consumer.start(), timeout_s)
    except (Exception, asyncio.CancelledError):
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
        await start_whole(admin.start(), None)
        yield admin
    finally:
        await stop_quietly(admin.close())
