"""Fixtures of the hostile tests: a real publisher on the real broker, with this test's own topics."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest_asyncio

from tests.hostile.kafkalog import wait_for
from traffic_hub.kafka import BrokerProbe, Publisher, ensure_topics
from traffic_hub.topics import Topics


@pytest_asyncio.fixture
async def publisher(kafka_bootstrap: str, topic_prefix: str) -> AsyncIterator[tuple[Publisher, Topics]]:
    """A started publisher and its (one-partition) topics."""
    topics = Topics(topic_prefix)
    async with asyncio.timeout(30):
        await ensure_topics(kafka_bootstrap, topics, partitions=1, replication=1)
    async with (
        BrokerProbe(kafka_bootstrap, 0.5) as probe,
        Publisher(kafka_bootstrap, probe, 5.0, f"{topic_prefix}-producer") as running,
    ):
        await wait_for(lambda: running.ready, within=30)
        yield running, topics
