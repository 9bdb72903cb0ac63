"""Read a whole topic from the beginning and follow it: the base of every materialised view.

`caught_up` is set once the reader has passed the end offsets it saw when it started, so a fresh
replica knows when its view is complete. Broker outages are ridden out: the reader reconnects and
resumes from where it was.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError

from traffic_hub.kafka.starting import start_or_stop, stop_quietly
from traffic_hub.lifecycle import Service

log = logging.getLogger(__name__)

Batch = Sequence[ConsumerRecord[bytes, bytes]]
Apply = Callable[[Batch], Awaitable[None]]


class TopicReader(Service):
    def __init__(
        self, bootstrap_servers: str, topic: str, apply: Apply, client_id: str, gate: asyncio.Event | None = None
    ) -> None:
        super().__init__()
        self._gate = gate
        self._bootstrap = bootstrap_servers
        self._topic = topic
        self._apply = apply
        self._client_id = client_id
        self._positions: dict[int, int] = {}
        self.caught_up = asyncio.Event()

    def position(self, partition: int) -> int:
        """Next offset this reader will read in `partition` (everything before it is applied)."""
        return self._positions.get(partition, 0)

    async def _consumer(self) -> AIOKafkaConsumer:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            client_id=self._client_id,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=50,
            max_partition_fetch_bytes=4 * 1024 * 1024,
            request_timeout_ms=10000,
        )
        await start_or_stop(consumer, 10)
        return consumer

    async def _assign(self, consumer: AIOKafkaConsumer) -> dict[TopicPartition, int]:
        # aiokafka only knows partitions of subscribed topics; ask the cluster for the whole picture
        cluster = await consumer._client.fetch_all_metadata()
        partitions = cluster.partitions_for_topic(self._topic)
        if not partitions:
            raise KafkaError(f"topic {self._topic} has no partitions")
        tps = [TopicPartition(self._topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, self._positions.get(tp.partition, 0))
        ends: dict[TopicPartition, int] = await consumer.end_offsets(tps)
        return ends

    async def _follow(self, consumer: AIOKafkaConsumer) -> None:
        ends = await self._assign(consumer)
        while True:
            if not self.caught_up.is_set() and all(self.position(tp.partition) >= end for tp, end in ends.items()):
                log.info("%s: caught up", self._topic)
                self.caught_up.set()
            batches = await consumer.getmany(timeout_ms=200, max_records=5000)
            for tp, records in batches.items():
                await self._apply(records)
                self._positions[tp.partition] = records[-1].offset + 1

    async def _run(self) -> None:
        if self._gate is not None:
            await self._gate.wait()  # the topic exists with its configuration
        delay = 0.2
        while True:
            consumer: AIOKafkaConsumer | None = None
            try:
                consumer = await self._consumer()
                delay = 0.2
                await self._follow(consumer)
            except (KafkaError, OSError, TimeoutError) as exc:
                log.warning("%s reader: %r; reconnecting in %.1fs", self._topic, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            finally:
                if consumer is not None:
                    await stop_quietly(consumer.stop(), 3)

    def tasks(self) -> dict[str, Coroutine[Any, Any, None]]:
        return {f"reader-{self._topic}": self._run()}


