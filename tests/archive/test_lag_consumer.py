"""The history monitor's Kafka consumer (the archive lag on /readyz) never outlives a failed start.

`HistoryDb` reads the topics' end offsets through a consumer it keeps between checks. When the broker
cannot be reached, that consumer's `start()` fails; it must be stopped then, or every check (every 2 s,
for as long as the broker is away) leaves one more open client behind. The error itself goes on to the
check, which reports the lag as unknown: aiokafka's own `KafkaConnectionError`, retriable.

No database is needed: the pool is never opened by these tests.
"""

from __future__ import annotations

import gc

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaConnectionError

from tests.conftest import free_port
from traffic_hub.archive.store import HistoryDb
from traffic_hub.kafka import ensure_topics
from traffic_hub.topics import Topics

pytestmark = pytest.mark.kafka

UNUSED_DATABASE = "postgresql://nobody@127.0.0.1:1/none"  # never connected to: the pool stays closed


def open_consumers(client_id: str) -> list[AIOKafkaConsumer]:
    """This client's consumers that were created and not stopped (started or not): a failed one is still
    referenced by the traceback of the error that `pytest.raises` holds, so a leak is found here."""
    return [
        o for o in gc.get_objects()
        if isinstance(o, AIOKafkaConsumer) and o._closed is False and o._client._client_id == client_id
    ]


async def test_a_lag_consumer_that_cannot_start_is_stopped_and_its_error_goes_on() -> None:
    closed_port = f"127.0.0.1:{free_port()}"  # nothing listens there
    db = HistoryDb(UNUSED_DATABASE, closed_port, Topics("unreachable"), "lag-unreachable")
    for _ in range(2):  # a later check starts afresh, and leaves nothing either
        with pytest.raises(KafkaConnectionError) as raised:
            await db._end_offsets({})
        assert raised.value.retriable  # the check reports the lag as unknown and tries again later
        assert db._consumer is None
        assert open_consumers("lag-unreachable-archive-lag") == []


async def test_the_lag_consumer_is_kept_between_checks_and_stopped_with_the_service(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    topics = Topics(topic_prefix)
    await ensure_topics(kafka_bootstrap, topics, 3, 1)
    db = HistoryDb(UNUSED_DATABASE, kafka_bootstrap, topics, "lag-test")
    ends = await db._end_offsets({})
    assert ends == {(topic, p): 0 for topic in (topics.reports, topics.events) for p in range(3)}
    first: AIOKafkaConsumer | None = db._consumer
    await db._end_offsets({})
    assert first is not None
    assert db._consumer is first  # one consumer for every check
    await db.after_stop()
    assert open_consumers("lag-test-archive-lag") == []  # stopped
