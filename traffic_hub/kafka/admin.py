"""Create the hub's topics when they are missing (idempotent, safe to run from every role)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from traffic_hub.topics import Topics

log = logging.getLogger(__name__)


def topic_specs(topics: Topics, partitions: int, replication: int) -> list[NewTopic]:
    compact = {"cleanup.policy": "compact", "min.compaction.lag.ms": "60000"}
    keep = {"cleanup.policy": "delete", "retention.ms": str(30 * 24 * 3600 * 1000)}
    return [
        NewTopic(topics.reports, num_partitions=partitions, replication_factor=replication, topic_configs=keep),
        NewTopic(topics.events, num_partitions=partitions, replication_factor=replication, topic_configs=compact),
        NewTopic(topics.deadletter, num_partitions=1, replication_factor=replication, topic_configs=keep),
    ]


async def ensure_topics(bootstrap_servers: str, topics: Topics, partitions: int, replication: int) -> None:
    """Create missing topics; retries until the broker answers (callers bound it with a timeout)."""
    delay = 0.2
    while True:
        try:
            await _create(bootstrap_servers, topic_specs(topics, partitions, replication))
            return
        except (KafkaError, OSError) as exc:
            log.warning("topic set-up failed (%s), retrying in %.1fs", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


async def _create(bootstrap_servers: str, specs: list[NewTopic]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=5000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [spec for spec in specs if spec.name not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(missing)
        await _wait_for_metadata(admin, [spec.name for spec in specs])
    finally:
        await admin.close()


async def _wait_for_metadata(admin: AIOKafkaAdminClient, names: list[str]) -> None:
    for _ in range(50):
        missing = set(names) - set(await admin.list_topics())
        if not missing:
            return
        await asyncio.sleep(0.1)
    raise KafkaError(f"topics not created: {sorted(missing)}")
