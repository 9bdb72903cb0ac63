"""Durable writes: an idempotent producer with acks=all, every send bounded in time.

A write is acknowledged to a client only after the broker acknowledged it. When the broker does not
answer, `send` raises `Unavailable` within the write timeout instead of hanging (aiokafka waits
forever with idempotence on, aio-libs/aiokafka#1101). A send that timed out may still land later:
that is why every write is keyed by a deterministic id, so a client's retry is harmless.

Kafka errors are classified here, by what retrying can do, never by how an API would show them:
- retriable (broker down, leader moving, no answer in time): `Unavailable`; the same write may succeed
  later and the producer is kept;
- the records themselves (too large, corrupt, bad timestamp): `WriteRejected` naming them; retrying
  cannot succeed, so the caller dead-letters or drops them. Records over `MAX_RECORD_BYTES` are refused
  *before* anything is sent: aiokafka's idempotent producer numbers its batches, and a batch the broker
  refuses leaves a gap in that numbering that breaks every later write to the partition
  (OutOfOrderSequenceNumber) until the producer is restarted, so the broker must never see them;
- anything else that is not retriable (fenced, out-of-order sequence, a sender that died): the shared
  producer is restarted and the write is `Unavailable`. A record the broker refuses despite the size
  check (a topic configured with a smaller `max.message.bytes`) is reported as `WriteRejected` and also
  restarts the producer, for the reason above; the publisher then lowers its record limit below that
  record's size, so it happens once, not for every such record.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from types import TracebackType

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    CorruptRecordException,
    InvalidProducerEpoch,
    InvalidProducerIdMapping,
    InvalidTimestampError,
    KafkaError,
    MessageSizeTooLargeError,
    OutOfOrderSequenceNumber,
    ProducerClosed,
    ProducerFenced,
    RecordListTooLargeError,
    RecordTooLargeError,
    UnsupportedForMessageFormatError,
)
from aiokafka.structs import RecordMetadata

from traffic_hub.errors import Unavailable, WriteRejected
from traffic_hub.kafka.probe import BrokerProbe
from traffic_hub.publishing import RECORD_OVERHEAD_BYTES, Record

log = logging.getLogger(__name__)

# Below Kafka's default `message.max.bytes` (1,048,588): the broker, and every topic the hub creates,
# takes any record under this size. Key + value + this margin for the record and batch headers.
MAX_RECORD_BYTES = 1_000_000

RECORD_ERRORS: tuple[type[KafkaError], ...] = (  # the records are at fault: retrying them cannot succeed
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
    CorruptRecordException,
    InvalidTimestampError,
    UnsupportedForMessageFormatError,
)
SIZE_ERRORS = (MessageSizeTooLargeError, RecordListTooLargeError, RecordTooLargeError)
PRODUCER_ERRORS: tuple[type[KafkaError], ...] = (  # the producer's state is broken: only a restart helps
    OutOfOrderSequenceNumber,
    ProducerFenced,
    InvalidProducerEpoch,
    InvalidProducerIdMapping,
    ProducerClosed,
)


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
        self.max_record_bytes = MAX_RECORD_BYTES  # lowered if the broker refuses a smaller record

    @property
    def ready(self) -> bool:
        return self._producer is not None and self._probe.up

    async def send(self, record: Record) -> RecordMetadata:
        """Write one record durably or raise Unavailable (within the write timeout)."""
        return (await self.send_many([record]))[0]

    async def send_many(self, records: Sequence[Record]) -> list[RecordMetadata]:
        """Write records durably, in order per partition; raise Unavailable, or WriteRejected for bad records."""
        oversized = tuple(index for index, record in enumerate(records) if record.size > self.max_record_bytes)
        if oversized:  # refused before sending: the producer and the other writers are untouched
            largest = max(records[index].size for index in oversized)
            raise WriteRejected(
                f"{len(oversized)} record(s) over the {self.max_record_bytes}-byte record limit (largest {largest})",
                oversized,
            )
        producer = self._producer
        if producer is None or not self._probe.up:
            raise Unavailable("the event log (Kafka) is unavailable; retry shortly", retry_after_s=2)
        futures: list[asyncio.Future[RecordMetadata]] = []
        try:
            async with asyncio.timeout(self._timeout):
                for record in records:
                    futures.append(await producer.send(record.topic, value=record.value, key=record.key))
                outcomes = await asyncio.gather(*futures, return_exceptions=True)
        except TimeoutError as exc:
            raise Unavailable("the event log (Kafka) did not acknowledge in time; retry", retry_after_s=2) from exc
        except RECORD_ERRORS as exc:  # refused by the producer before sending (a size check of aiokafka's)
            with contextlib.suppress(TimeoutError):  # what was queued before it is written (keyed: harmless)
                async with asyncio.timeout(self._timeout):
                    await asyncio.gather(*futures, return_exceptions=True)
            index = len(futures)
            raise WriteRejected(f"the producer refused record {index}: {type(exc).__name__}", (index,)) from exc
        except KafkaError as exc:
            raise self._classified(producer, [(len(futures), exc)], records) from exc
        failures = [(index, outcome) for index, outcome in enumerate(outcomes) if isinstance(outcome, BaseException)]
        if failures:
            raise self._classified(producer, failures, records) from failures[0][1]
        return [outcome for outcome in outcomes if isinstance(outcome, RecordMetadata)]

    def _classified(
        self, producer: AIOKafkaProducer, failures: list[tuple[int, BaseException]], records: Sequence[Record]
    ) -> Unavailable | WriteRejected:
        """The one error to raise for a write's failures (see the module docstring); restarts when needed."""
        for _, exc in failures:
            if not isinstance(exc, KafkaError):
                raise exc
        names = sorted({type(exc).__name__ for _, exc in failures})
        refused = tuple(index for index, exc in failures if isinstance(exc, RECORD_ERRORS))
        others = [exc for _, exc in failures if not isinstance(exc, RECORD_ERRORS)]
        if refused and not any(isinstance(exc, PRODUCER_ERRORS) for exc in others):
            sizes = [records[index].size for index, exc in failures if isinstance(exc, SIZE_ERRORS)]
            self._refused_by_broker(producer, len(refused), sizes)
            return WriteRejected(f"the event log (Kafka) refused {len(refused)} record(s): {', '.join(names)}", refused)
        if not all(getattr(exc, "retriable", False) for exc in others):
            log.error("producer error %s: restarting the producer", names)
            self._restart(producer)
        return Unavailable(f"the event log (Kafka) refused the write: {', '.join(names)}", 2)

    def _refused_by_broker(self, producer: AIOKafkaProducer, count: int, sizes: list[int]) -> None:
        """The broker refused records: its numbering now has a gap, so the producer restarts (see above)."""
        if sizes:
            self.max_record_bytes = max(RECORD_OVERHEAD_BYTES + 1, min(self.max_record_bytes, min(sizes) - 1))
        log.error(
            "the broker refused %d record(s) for good; record limit %d bytes; restarting the producer",
            count,
            self.max_record_bytes,
        )
        self._restart(producer)

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
            producer: AIOKafkaProducer | None = None
            try:
                self._producer = producer = await self._start_producer()
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
                self._producer = None
                if producer is not None:
                    await _stop_quietly(producer)

    def _restart(self, producer: AIOKafkaProducer) -> None:
        """Retire `producer` (once: later errors of a retired producer are ignored); the supervisor restarts."""
        if producer is self._producer:
            self._producer = None  # no further write goes to it: they get a fast Unavailable meanwhile
            self._broken.set()

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
