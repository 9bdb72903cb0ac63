"""A normaliser stage chooses its group session from the broker's `group.min.session.timeout.ms`, read
before it joins, and says which and why in one INFO line; it never learns it from a refused join (which
logged an aiokafka ERROR, then a WARNING and the 10 s fallback).

Two brokers: the shared one (`make kafka-up`, minimum 1000 ms: the fast 1.5 s session) and one that keeps
Kafka's default minimum of 6000 ms (the 10 s session). Starting that second broker takes about 30 s, so
its tests run only when one is given (not in the default run):

    TRAFFIC_HUB_KAFKA_PORT=59092 TRAFFIC_HUB_KAFKA_RUN_DIR=/tmp/kafka-6000 \\
      TRAFFIC_HUB_KAFKA_EXTRA_CONFIG=group.min.session.timeout.ms=6000 bash ops/kafka/kafka-local.sh up
    TRAFFIC_HUB_TEST_KAFKA_DEFAULT_SESSION=127.0.0.1:59092 .venv/bin/pytest tests/integration/test_group_session.py
    (then the same environment with `kafka-local.sh down`)

(EXTRA_CONFIG lines come after the script's own `group.min.session.timeout.ms=1000`: the later one wins.)
"""

from __future__ import annotations

import asyncio
import logging
import os

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from tests.conftest import free_port
from tests.kafkarun import run_name
from traffic_hub.kafka import ensure_topics
from traffic_hub.kafka.membership import min_session_timeout_ms
from traffic_hub.logs import quiet_start
from traffic_hub.normaliser.group import (
    FAST_SESSION_TIMEOUT_MS,
    SESSION_TIMEOUT_MS,
    Batches,
    GroupStage,
    session_for,
)
from traffic_hub.topics import Topics

DEFAULT_SESSION_BROKER = os.environ.get("TRAFFIC_HUB_TEST_KAFKA_DEFAULT_SESSION")
needs_default_session_broker = pytest.mark.skipif(
    not DEFAULT_SESSION_BROKER,
    reason="set TRAFFIC_HUB_TEST_KAFKA_DEFAULT_SESSION to a broker keeping Kafka's 6000 ms minimum (module doc)",
)
JOIN_TIMEOUT_S = 60  # a loaded machine; a join takes about a second when quiet


class Idle(GroupStage):
    """A stage that does nothing with its records: only its membership is under test."""

    def __init__(self, bootstrap: str, topics: Topics) -> None:
        super().__init__("session test", bootstrap, topics.reports, topics.normaliser_group, run_name("member"))
        self.joined = asyncio.Event()

    async def handle(self, consumer: AIOKafkaConsumer, batches: Batches) -> None:
        pass

    def assigned(self, partitions: set[TopicPartition]) -> None:
        self.joined.set()


def test_the_fast_session_where_the_brokers_allow_it_else_ten_seconds_or_their_minimum() -> None:
    assert session_for(1000)[0] == FAST_SESSION_TIMEOUT_MS
    assert session_for(FAST_SESSION_TIMEOUT_MS)[0] == FAST_SESSION_TIMEOUT_MS
    assert session_for(6000)[0] == SESSION_TIMEOUT_MS
    assert session_for(45_000)[0] == 45_000
    assert session_for(None)[0] == FAST_SESSION_TIMEOUT_MS  # unknown: try it (a refused join falls back)
    assert "6000 ms" in session_for(6000)[1]


async def test_an_unreachable_broker_reads_as_unknown() -> None:
    assert await min_session_timeout_ms(f"127.0.0.1:{free_port()}", "session-test") is None


async def joined_quietly(bootstrap: str, caplog: pytest.LogCaptureFixture) -> tuple[int, list[str]]:
    """Run one stage until it is assigned its partitions; its session and what it logged (INFO and up)."""
    topics = Topics(run_name("session"))
    await ensure_topics(bootstrap, topics, 3, 1)
    stage = Idle(bootstrap, topics)
    caplog.set_level(logging.INFO)
    caplog.clear()
    async with quiet_start():  # as the hub starts: a fresh broker's coordinator election is expected
        running = asyncio.create_task(stage.run())
        try:
            async with asyncio.timeout(JOIN_TIMEOUT_S):
                await stage.joined.wait()
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
    said = [  # ours, and aiokafka's errors (a refused join is one); not a fresh broker's coordinator warnings
        f"{r.levelname} {r.name}: {r.getMessage()}"
        for r in caplog.records
        if r.name == "traffic_hub.normaliser.group"
        or r.levelno >= (logging.WARNING if r.name.startswith("traffic_hub") else logging.ERROR)
    ]
    return stage.session_timeout_ms, said


@pytest.mark.kafka
async def test_on_a_broker_allowing_it_the_fast_session_is_chosen_before_joining(
    kafka_bootstrap: str, caplog: pytest.LogCaptureFixture
) -> None:
    broker_min = await min_session_timeout_ms(kafka_bootstrap, "session-test")
    assert broker_min is not None
    assert broker_min <= FAST_SESSION_TIMEOUT_MS  # ops/kafka/kafka-lib.sh: 1000
    session, said = await joined_quietly(kafka_bootstrap, caplog)
    assert session == FAST_SESSION_TIMEOUT_MS
    assert said == [
        f"INFO traffic_hub.normaliser.group: session test: group session {FAST_SESSION_TIMEOUT_MS} ms: "
        f"the brokers' group.min.session.timeout.ms is {broker_min} ms"
    ]


@needs_default_session_broker
async def test_on_a_broker_keeping_the_default_minimum_the_ten_second_session_is_chosen_quietly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert DEFAULT_SESSION_BROKER is not None
    assert await min_session_timeout_ms(DEFAULT_SESSION_BROKER, "session-test") == 6000
    session, said = await joined_quietly(DEFAULT_SESSION_BROKER, caplog)
    assert session == SESSION_TIMEOUT_MS
    assert said == [
        f"INFO traffic_hub.normaliser.group: session test: group session {SESSION_TIMEOUT_MS} ms: the brokers' "
        f"group.min.session.timeout.ms is 6000 ms, above the fast {FAST_SESSION_TIMEOUT_MS} ms: a killed "
        "process's partitions move to the others only after this session"
    ]  # no aiokafka ERROR of a refused join, no WARNING of a fallback
