"""Durable writes: an idempotent producer with acks=all, every send bounded in time.

A write is acknowledged to a client only after the broker acknowledged it. When the broker does not
answer, `send` raises `Unavailable` within the write timeout instead of hanging (aiokafka waits
forever with idempotence on, aio-libs/aiokafka#1101). A send that timed out may still land later:
that is why every write is keyed by a deterministic id, so a client's retry is harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.structs import RecordMetadata

from traffic_hub.errors import Unavailable
from traffic_hub.kafka.probe import BrokerProbe

log = logging.getLogger(__name__)


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
        """Write one record durably or raise Unavailable (within the write timeout)."""
        return (await self.send_many([record]))[0]

    async def send_many(self, records: Sequence[Record]) -> list[RecordMetadata]:
        """Write records durably, in order per partition, or raise Unavailable."""
        producer = self._producer
        if producer is None or not self._probe.up:
            raise Unavailable("the event log (Kafka) is unavailable; retry shortly", retry_after_s=2)
        try:
            async with asyncio.timeout(self._timeout):
                futures = [await producer.send(r.topic, value=r.value, key=r.key) for r in records]
                return list(await asyncio.gather(*futures))
        except TimeoutError as exc:
            raise Unavailable("the event log (Kafka) did not acknowledge in time; retry", retry_after_s=2) from exc
        except KafkaError as exc:
            log.error("producer error: %r", exc)
            if not getattr(exc, "retriable", False):
                self._broken.set()
            raise Unavailable(f"the event log (Kafka) refused the write: {type(exc).__name__}", 2) from exc

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


async def _stop_quietly(producer: AIOKafkaProducer) -> None:
    """Stop with a bound: aiokafka's stop() can hang when the broker is gone."""
    try:
        async with asyncio.timeout(3):
            await producer.stop()
    except (TimeoutError, KafkaError, OSError) as exc:
        log.warning("kafka producer did not stop cleanly: %r", exc)
