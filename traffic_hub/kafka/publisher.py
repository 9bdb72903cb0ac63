"""Durable writes: an idempotent producer with acks=all, every send bounded in time.

A write is acknowledged to a client only after the broker acknowledged it. When the broker does not
answer, `send` raises `Unavailable` within the write timeout instead of hanging (aiokafka waits
forever with idempotence on, aio-libs/aiokafka#1101). A send that timed out may still land later:
that is why every write is keyed by a deterministic id, so a client's retry is harmless.

The write timeout (1.5 s) is not a deadline for a busy broker, only for a silent one. A write not
acknowledged by then goes on waiting as long as the broker keeps answering the probe's round trips
sent during the write (`BrokerProbe.confirm`), up to `BUSY_LIMIT_S`; it is refused with a 503 as soon
as a round trip goes unanswered. So a healthy broker under load is never refused (a fixed 1.5 s
deadline refused the slowest writes of a burst), and a broker that is down still gets a 503 within
the write timeout: the last check starts at most one probe round trip before it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TypeVar

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.structs import RecordMetadata

from traffic_hub.errors import Unavailable
from traffic_hub.kafka.probe import BrokerProbe

log = logging.getLogger(__name__)

# A write the broker keeps answering for is still refused after this long: no request waits for ever.
# (The producer's own request timeout is 10 s; past that it retries, and the write is not waited for.)
BUSY_LIMIT_S = 10.0

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Record:
    topic: str
    key: bytes
    value: bytes | None  # None is a tombstone


class Publisher:
    """One producer per process, started when the broker answers and restarted after fatal errors."""

    def __init__(self, bootstrap_servers: str, probe: BrokerProbe, timeout_s: float, client_id: str) -> None:
        self._bootstrap = bootstrap_servers
        self._probe = probe
        self._timeout = timeout_s
        self._client_id = client_id
        self._producer: AIOKafkaProducer | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._broken = asyncio.Event()

    @property
    def ready(self) -> bool:
        return self._producer is not None and self._probe.up

    async def send(self, record: Record) -> RecordMetadata:
        """Write one record durably or raise Unavailable (see `send_many`)."""
        return (await self.send_many([record]))[0]

    async def send_many(self, records: Sequence[Record]) -> list[RecordMetadata]:
        """Write records durably, in order per partition, or raise Unavailable: at once when the probe says the
        broker is down, within the write timeout when it stops answering, after `BUSY_LIMIT_S` at most."""
        producer = self._producer
        if producer is None or not self._probe.up:
            raise Unavailable("the event log (Kafka) is unavailable; retry shortly", retry_after_s=2)
        started = time.monotonic()
        write = asyncio.ensure_future(_write(producer, records))
        try:
            return await acknowledged(write, started, self._timeout, self._probe)
        except KafkaError as exc:
            log.error("producer error: %r", exc)
            if not getattr(exc, "retriable", False):
                self._broken.set()
            raise Unavailable(f"the event log (Kafka) refused the write: {type(exc).__name__}", 2) from exc
        finally:
            if not write.done():
                write.cancel()  # what was sent may still land: keyed by deterministic ids, a retry is harmless

    async def _start_producer(self) -> AIOKafkaProducer:
        producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap,
            client_id=self._client_id,
            acks="all",
            enable_idempotence=True,
            linger_ms=2,
            max_batch_size=256 * 1024,
            max_request_size=2 * 1024 * 1024,
            request_timeout_ms=10000,
            retry_backoff_ms=100,
        )
        try:
            async with asyncio.timeout(10):
                await producer.start()
        except BaseException:
            await _stop_quietly(producer)
            raise
        return producer

    async def _supervise(self) -> None:
        delay = 0.2
        while True:
            await self._probe.wait_up()
            try:
                self._producer = await self._start_producer()
                delay = 0.2
                log.info("kafka producer started")
                await self._broken.wait()
                self._broken.clear()
                log.warning("restarting kafka producer after a fatal error")
            except (KafkaError, OSError, TimeoutError) as exc:
                log.warning("kafka producer could not start (%s); retrying", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            finally:
                producer, self._producer = self._producer, None
                if producer is not None:
                    await _stop_quietly(producer)

    async def __aenter__(self) -> Publisher:
        self._supervisor = asyncio.create_task(self._supervise(), name="kafka-publisher")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor


async def acknowledged(write: asyncio.Future[T], started: float, timeout_s: float, probe: BrokerProbe) -> T:
    """The write's outcome; waits past `timeout_s` only while the broker answers the probe.

    The first check comes one probe round trip before the write timeout, so that a write sent to
    a broker already down is refused within the timeout; then one check per round trip, each
    wanting an answer to a round trip sent since the previous one (a write in flight when the
    broker goes silent is refused at most a round trip or two after: about 2 s with the defaults).
    Raises Unavailable; the caller cancels `write`.
    """
    step = probe.timeout_s
    check_at = started + max(timeout_s - step, timeout_s / 2)
    while True:
        await asyncio.wait({write}, timeout=max(0.0, check_at - time.monotonic()))
        if write.done():
            return write.result()
        now = time.monotonic()
        answering = now - started < BUSY_LIMIT_S and await probe.confirm(since=max(started, now - step))
        if write.done():
            return write.result()
        if not answering:
            raise Unavailable("the event log (Kafka) did not acknowledge in time; retry", retry_after_s=2)
        check_at = time.monotonic() + step


async def _write(producer: AIOKafkaProducer, records: Sequence[Record]) -> list[RecordMetadata]:
    """Hand every record to the producer (waiting for buffer room if need be), then wait for the acks."""
    futures = [await producer.send(r.topic, value=r.value, key=r.key) for r in records]
    return list(await asyncio.gather(*futures))


async def _stop_quietly(producer: AIOKafkaProducer) -> None:
    """Stop with a bound: aiokafka's stop() can hang when the broker is gone."""
    try:
        async with asyncio.timeout(3):
            await producer.stop()
    except (TimeoutError, KafkaError, OSError) as exc:
        log.warning("kafka producer did not stop cleanly: %r", exc)
