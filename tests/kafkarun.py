"""Names of the Kafka topics and groups one test run creates, so that the run can delete them at its end.

Every name is `<label>-<run tag>-<random>`. The session fixture `kafka_bootstrap` deletes the topics that
carry this run's tag when the run ends, so the broker's storage does not grow by a few hundred partitions
per run (thousands of leftover partitions once made a broker restart outlast the start timeout). Another
test run on the same broker has another tag and keeps its topics.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from collections.abc import AsyncIterator

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from traffic_hub.kafka import BrokerProbe, Publisher, ensure_topics
from traffic_hub.topics import Topics

RUN_TAG = uuid.uuid4().hex[:6]
_OURS = re.compile(rf"^[A-Za-z0-9_]+(?:-[A-Za-z0-9_]+)*-{RUN_TAG}-")


def run_name(label: str) -> str:
    """A fresh topic prefix, topic or group name owned by this test run."""
    return f"{label}-{RUN_TAG}-{uuid.uuid4().hex[:8]}"


def owned(topic: str) -> bool:
    return _OURS.match(topic) is not None


async def delete_run_topics(bootstrap: str) -> int:
    """Delete every topic this run created; returns how many. Best effort: a broker that is down keeps them."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id=f"tests-cleanup-{RUN_TAG}")
    try:
        async with asyncio.timeout(60):
            await admin.start()
            ours = sorted(t for t in await admin.list_topics() if owned(t))
            for start in range(0, len(ours), 200):
                await admin.delete_topics(ours[start : start + 200], timeout_ms=30_000)
            return len(ours)
    except (KafkaError, OSError, TimeoutError):
        return 0
    finally:
        with contextlib.suppress(KafkaError, OSError, TimeoutError):
            async with asyncio.timeout(5):
                await admin.close()


@contextlib.asynccontextmanager
async def started_publisher(bootstrap: str, prefix: str) -> AsyncIterator[tuple[Publisher, Topics]]:
    """The run's one-partition topics and a started publisher on them (probe included), ready to write."""
    topics = Topics(prefix)
    async with asyncio.timeout(30):
        await ensure_topics(bootstrap, topics, partitions=1, replication=1)
    async with BrokerProbe(bootstrap, 0.5) as probe, Publisher(bootstrap, probe, 5.0, f"{prefix}-producer") as running:
        async with asyncio.timeout(30):
            while True:  # the producer starts in the background once the probe sees the broker
                if running.ready:
                    break
                await asyncio.sleep(0.02)
        yield running, topics
