"""Fixtures of the hostile tests: a real publisher on the real broker, with this test's own topics."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from tests.kafkarun import started_publisher
from traffic_hub.kafka import Publisher
from traffic_hub.topics import Topics


@pytest_asyncio.fixture
async def publisher(kafka_bootstrap: str, topic_prefix: str) -> AsyncIterator[tuple[Publisher, Topics]]:
    """A started publisher and its (one-partition) topics."""
    async with started_publisher(kafka_bootstrap, topic_prefix) as started:
        yield started
