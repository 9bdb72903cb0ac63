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

The write timeout (1.5 s) is not a deadline for a busy broker, only for a silent one. A write not
acknowledged by then goes on waiting as long as the broker keeps answering the probe's round trips
sent during the write (`BrokerProbe.confirm`), up to `BUSY_LIMIT_S`; it is refused with `Unavailable`
as soon as a round trip goes unanswered. So a healthy broker under load is never refused (a fixed 1.5 s
deadline refused the slowest writes of a burst), and a broker that is down still gets a refusal within
the write timeout: the last check starts at most one probe round trip before it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

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
from traffic_hub.kafka.starting import start_whole, stop_quietly
from traffic_hub.lifecycle import Service
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
# A write the broker keeps answering for is still refused after this long: no request waits for ever.
# (The producer's own request timeout is 10 s; past that it retries, and the write is not waited for.)
BUSY_LIMIT_S = 10.0

T = TypeVar("T")
SIZE_ERRORS = (MessageSizeTooLargeError, RecordListTooLargeError, RecordTooLargeError)
PRODUCER_ERRORS: tuple[type[KafkaError], ...] = (  # the producer's state is broken: only a restart helps
    OutOfOrderSequenceNumber,
    ProducerFenced,
    InvalidProducerEpoch,
    InvalidProducerIdMapping,
    ProducerClosed,
)


class Publisher(Service):
    """One producer per process, started when the broker answers and restarted after fatal errors."""

    def __init__(self, bootstrap_servers: str, probe: BrokerProbe, timeout_s: float, client_id: str) -> None:
        super().__init__()
        self._bootstrap = bootstrap_servers
        self._probe = probe
        self._timeout = timeout_s
        self._client_id = client_id
        self._producer: AIOKafkaProducer | None = None
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
        started = time.monotonic()
        write = asyncio.ensure_future(_write(producer, records))
        try:
            outcomes = await acknowledged(write, started, self._timeout, self._probe)
        except _SendFailed as failed:
            if isinstance(failed.cause, RECORD_ERRORS):  # refused by the producer before sending (its size check)
                name = type(failed.cause).__name__
                raise WriteRejected(f"the producer refused record {failed.index}: {name}", (failed.index,)) from (
                    failed.cause
                )
            raise self._classified(producer, [(failed.index, failed.cause)], records) from failed.cause
        finally:
            if not write.done():
                write.cancel()  # what was sent may still land: keyed by deterministic ids, a retry is harmless
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
            await start_whole(producer.start(), 10)
        except (Exception, asyncio.CancelledError):
            await stop_quietly(producer.stop())
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
                    await stop_quietly(producer.stop())

    def _restart(self, producer: AIOKafkaProducer) -> None:
        """Retire `producer` (once: later errors of a retired producer are ignored); the supervisor restarts."""
        if producer is self._producer:
            self._producer = None  # no further write goes to it: they get a fast Unavailable meanwhile
            self._broken.set()

    def tasks(self) -> dict[str, Coroutine[Any, Any, None]]:
        return {"kafka-publisher": self._supervise()}


class _SendFailed(Exception):
    """The producer refused record `index` when it was handed over (what was queued before it is written)."""

    def __init__(self, index: int, cause: KafkaError) -> None:
        super().__init__(index, cause)
        self.index = index
        self.cause = cause


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


async def _write(producer: AIOKafkaProducer, records: Sequence[Record]) -> list[RecordMetadata | BaseException]:
    """Hand every record to the producer (waiting for buffer room if need be), then wait for every outcome."""
    futures: list[asyncio.Future[RecordMetadata]] = []
    for record in records:
        try:
            futures.append(await producer.send(record.topic, value=record.value, key=record.key))
        except KafkaError as exc:
            await asyncio.gather(*futures, return_exceptions=True)  # what was queued before it (keyed: harmless)
            raise _SendFailed(len(futures), exc) from exc
    return list(await asyncio.gather(*futures, return_exceptions=True))
