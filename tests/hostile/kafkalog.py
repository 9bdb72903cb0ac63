"""Helpers of the hostile tests that talk to the real broker: read a topic, wait for a condition."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, TopicPartition


async def read_topic(bootstrap: str, topic: str) -> list[bytes]:
    """Every record value of the topic up to its current end."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = sorted((await consumer._client.fetch_all_metadata()).partitions_for_topic(topic) or [])
        tps = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        out: list[bytes] = []
        seen = 0
        async with asyncio.timeout(30):
            while sum(ends.values()) > seen:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    seen += len(records)
                    out.extend(r.value for r in records if r.value is not None)
        return out
    finally:
        await consumer.stop()


async def wait_for(predicate: Callable[[], bool], within: float) -> None:
    """Poll plain attributes (no event to wait on) until `predicate` holds; fails on timeout."""
    async with asyncio.timeout(within):
        while True:
            if predicate():
                return
            await asyncio.sleep(0.05)
