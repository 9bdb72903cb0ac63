"""aiokafka 0.14 against the real local Apache Kafka 4.x broker.

Start the broker first: ``bash ops/kafka/kafka-local.sh up`` (127.0.0.1:19092 by default; another address
comes from TRAFFIC_HUB_KAFKA__BOOTSTRAP_SERVERS). Every test uses its own uuid-named topics and groups, so
the tests share one broker and never restart it.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaConnectionError, UnknownTopicOrPartitionError

from tests.kafkarun import run_name
from traffic_hub.settings import bootstrap_servers

pytestmark = pytest.mark.kafka

NO_ERROR = 0
TOPIC_ALREADY_EXISTS = 36  # Kafka protocol error code
DEADLINE_S = 15.0  # upper bound for polling loops; the happy path takes well under a second

Record = tuple[bytes | None, bytes | None]


def unique(prefix: str) -> str:
    return run_name(f"test-{prefix}")


@pytest.fixture
def bootstrap() -> str:
    return bootstrap_servers()


@pytest_asyncio.fixture
async def admin(bootstrap: str) -> AsyncIterator[AIOKafkaAdminClient]:
    client = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    try:
        await client.start()
    except KafkaConnectionError as exc:
        await client.close()
        pytest.fail(f"no Kafka broker at {bootstrap} (start it: bash ops/kafka/kafka-local.sh up): {exc}")
    yield client
    await client.close()


@pytest_asyncio.fixture
async def producer(bootstrap: str) -> AsyncIterator[AIOKafkaProducer]:
    client = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    await client.start()
    yield client
    await asyncio.wait_for(client.stop(), 10)


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port that refuses connections: bound (so nobody else takes it) but not listening."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


async def create_topics(admin: AIOKafkaAdminClient, *topics: NewTopic) -> dict[str, int]:
    """Create topics; return the error code per topic (aiokafka returns errors, it does not raise them)."""
    response = await admin.create_topics(list(topics))
    return {str(name): int(code) for name, code, _message in response.topic_errors}


async def wait_until_listed(admin: AIOKafkaAdminClient, topics: set[str]) -> None:
    async with asyncio.timeout(DEADLINE_S):
        while True:
            if topics <= set(await admin.list_topics()):
                return
            await asyncio.sleep(0.05)


async def topic_config(admin: AIOKafkaAdminClient, topic: str, key: str) -> str:
    [response] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic, {key: None})])
    [(_code, _message, _type, _name, entries)] = response.resources
    return str(next(value for name, value, *_rest in entries if name == key))


async def read_until(bootstrap: str, topic: str, last_offset: int) -> list[Record]:
    """Read a 1-partition topic from the beginning, without a group, up to and including `last_offset`."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest")
    await consumer.start()
    records: list[Record] = []
    offset = -1
    try:
        async with asyncio.timeout(DEADLINE_S):
            while offset < last_offset:
                batch = await consumer.getmany(timeout_ms=500)
                for msgs in batch.values():
                    records += [(m.key, m.value) for m in msgs]
                    offset = max(offset, msgs[-1].offset)
    finally:
        await consumer.stop()
    return records


async def test_create_topics_plain_and_compacted(admin: AIOKafkaAdminClient) -> None:
    plain, compacted = unique("plain"), unique("compacted")

    errors = await create_topics(
        admin,
        NewTopic(plain, num_partitions=3, replication_factor=1),
        NewTopic(compacted, num_partitions=1, replication_factor=1, topic_configs={"cleanup.policy": "compact"}),
    )

    assert errors == {plain: NO_ERROR, compacted: NO_ERROR}
    # CreateTopics returns once the controller committed the topics; the broker's metadata cache catches up
    # a moment later (KRaft propagates asynchronously), so list_topics may lag briefly.
    await wait_until_listed(admin, {plain, compacted})
    assert await topic_config(admin, compacted, "cleanup.policy") == "compact"
    assert await topic_config(admin, plain, "cleanup.policy") == "delete"
    # Creating again is not an exception in aiokafka: the error code comes back in the response.
    assert await create_topics(admin, NewTopic(plain, 3, 1)) == {plain: TOPIC_ALREADY_EXISTS}


async def test_idempotent_produce_then_group_consume_with_manual_commit(
    admin: AIOKafkaAdminClient, producer: AIOKafkaProducer, bootstrap: str
) -> None:
    topic, group = unique("events"), unique("group")
    assert await create_topics(admin, NewTopic(topic, 3, 1)) == {topic: NO_ERROR}
    futures = [await producer.send(topic, key=b"k%d" % (i % 7), value=b"v%d" % i) for i in range(60)]
    sent = await asyncio.gather(*futures)
    partitions = {TopicPartition(topic, p) for p in range(3)}
    offsets = {tp: sorted(m.offset for m in sent if m.partition == tp.partition) for tp in partitions}
    # acks=all + idempotence: every record got an offset, dense per partition from 0.
    assert all(found == list(range(len(found))) for found in offsets.values())
    ends = {tp: len(found) for tp, found in offsets.items()}

    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    seen = 0
    try:
        async with asyncio.timeout(DEADLINE_S):
            while seen < len(sent):
                batch = await consumer.getmany(timeout_ms=500)
                for tp, msgs in batch.items():
                    seen += len(msgs)
                    await consumer.commit({tp: msgs[-1].offset + 1})  # the NEXT offset to read
        committed = {tp: await consumer.committed(tp) for tp in partitions}
    finally:
        await consumer.stop()

    assert seen == len(sent)
    assert committed == ends


async def test_group_resumes_after_committed_offsets(
    admin: AIOKafkaAdminClient, producer: AIOKafkaProducer, bootstrap: str
) -> None:
    topic, group = unique("resume"), unique("group")
    assert await create_topics(admin, NewTopic(topic, 1, 1)) == {topic: NO_ERROR}
    tp = TopicPartition(topic, 0)
    for i in range(3):
        await producer.send_and_wait(topic, value=b"old%d" % i)
    first = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await first.start()
    try:
        await first.commit({tp: 3})
    finally:
        await first.stop()
    await producer.send_and_wait(topic, value=b"new")

    second = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await second.start()
    try:
        message = await asyncio.wait_for(second.getone(), DEADLINE_S)
    finally:
        await second.stop()

    assert (message.offset, message.value) == (3, b"new")


async def test_compacted_topic_delivers_keys_and_tombstones(
    admin: AIOKafkaAdminClient, producer: AIOKafkaProducer, bootstrap: str
) -> None:
    topic = unique("compacted")
    compact = {"cleanup.policy": "compact"}
    assert await create_topics(admin, NewTopic(topic, 1, 1, topic_configs=compact)) == {topic: NO_ERROR}
    written: list[Record] = [(b"closure-1", b'{"v":1}'), (b"closure-2", b'{"v":1}'), (b"closure-1", None)]
    offsets = [(await producer.send_and_wait(topic, key=key, value=value)).offset for key, value in written]

    assert await read_until(bootstrap, topic, offsets[-1]) == written


async def test_log_cleaner_compacts_a_compacted_topic(
    admin: AIOKafkaAdminClient, producer: AIOKafkaProducer, bootstrap: str
) -> None:
    topic = unique("cleaned")
    configs = {"cleanup.policy": "compact", "segment.ms": "100", "min.cleanable.dirty.ratio": "0.01"}
    assert await create_topics(admin, NewTopic(topic, 1, 1, topic_configs=configs)) == {topic: NO_ERROR}
    for i in range(5):
        await producer.send_and_wait(topic, key=b"closure", value=b"v%d" % i)

    # Only closed segments are cleaned: keep appending a marker so that segment.ms rolls the segment,
    # until the cleaner (log.cleaner.backoff.ms=1000 in kafka-local.sh) has dropped v0..v3.
    closure_values: list[bytes | None] = []
    async with asyncio.timeout(DEADLINE_S):
        while closure_values != [b"v4"]:
            await asyncio.sleep(0.2)
            marker = await producer.send_and_wait(topic, key=b"marker", value=b"m")
            records = await read_until(bootstrap, topic, marker.offset)
            closure_values = [value for key, value in records if key == b"closure"]

    assert closure_values == [b"v4"]


async def test_topics_are_not_auto_created(bootstrap: str) -> None:
    """kafka-local.sh sets auto.create.topics.enable=false: the app must create its topics before using them."""
    missing = unique("missing")
    consumer = AIOKafkaConsumer(missing, bootstrap_servers=bootstrap, group_id=None, request_timeout_ms=1000)
    with pytest.raises(UnknownTopicOrPartitionError):
        await consumer.start()  # waits request_timeout_ms for the topic to appear in metadata
    await consumer.stop()

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, request_timeout_ms=1000)
    await producer.start()
    try:
        with pytest.raises(UnknownTopicOrPartitionError):
            await asyncio.wait_for(producer.send_and_wait(missing, b"event"), DEADLINE_S)
    finally:
        await asyncio.wait_for(producer.stop(), 10)


async def test_producer_start_against_closed_port_fails_fast(closed_port: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=f"127.0.0.1:{closed_port}", enable_idempotence=True)

    with pytest.raises(KafkaConnectionError, match="Unable to bootstrap"):
        await asyncio.wait_for(producer.start(), 2)

    await asyncio.wait_for(producer.stop(), 2)


async def test_send_and_wait_to_closed_port_times_out_and_stop_returns(closed_port: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=f"127.0.0.1:{closed_port}", enable_idempotence=True)
    with contextlib.suppress(KafkaConnectionError):
        await producer.start()

    # Without the wait_for this await would never return (aiokafka has no max.block.ms).
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(producer.send_and_wait(unique("nowhere"), b"event"), 2)

    await asyncio.wait_for(producer.stop(), 2)
