"""The archive never stalls: a record PostgreSQL refuses is kept in a degraded form (its offset archived once),
and an archiver started while its database is missing retries and catches up once it is there."""

from __future__ import annotations

import asyncio
import time

import orjson
import psycopg
import pytest
from aiokafka import AIOKafkaProducer

from tests.archive.conftest import count, with_database
from tests.kafkarun import run_name
from traffic_hub.archive import Archiver
from traffic_hub.kafka import ensure_topics
from traffic_hub.topics import Topics

from .stream import event, produce, report

pytestmark = [pytest.mark.kafka, pytest.mark.db]


async def until(url: str, query: str, target: int, deadline_s: float = 60) -> None:
    started = time.monotonic()
    while await asyncio.to_thread(count, url, query) < target:
        assert time.monotonic() - started < deadline_s, f"{query} < {target}"
        await asyncio.sleep(0.1)


async def test_refused_records_are_kept_degraded_and_the_archiver_goes_on(
    kafka_bootstrap: str, database_url: str
) -> None:
    topics = Topics(run_name("arch"))
    await ensure_topics(kafka_bootstrap, topics, 1, 1)
    nul = orjson.dumps({"key": "bad", "kind": "fetch", "source": "x", "payload": {"text": "a\x00b"}})
    broken = orjson.loads(event(1, 1))
    broken["geometry"] = {"type": "LineString", "coordinates": [[3.0]]}
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for value in (report(1), nul, report(2)):
            await producer.send_and_wait(topics.reports, value, key=b"k")
        for value in (orjson.dumps(broken), event(2, 1)):
            await producer.send_and_wait(topics.events, value, key=b"e")
    finally:
        await producer.stop()
    async with Archiver(database_url, kafka_bootstrap, topics, f"{topics.prefix}-a"):
        await until(database_url, "SELECT count(*) FROM reports", 3)
        await until(database_url, "SELECT count(*) FROM event_versions", 2)
    assert count(database_url, "SELECT count(*) FROM reports WHERE payload ? 'unstorable'") == 1
    assert count(database_url, "SELECT count(*) FROM event_versions WHERE geom IS NULL AND event_id = 'ev-1'") == 1
    assert count(database_url, "SELECT count(*) FROM event_versions WHERE geom IS NOT NULL AND event_id = 'ev-2'") == 1


async def test_an_archiver_whose_database_is_missing_retries_and_catches_up(
    kafka_bootstrap: str, database_cluster: str
) -> None:
    topics = Topics(run_name("arch"))
    await produce(kafka_bootstrap, topics, 200)
    name = run_name("late").replace("-", "_").lower()
    url = with_database(database_cluster, name)
    archiver = Archiver(url, kafka_bootstrap, topics, f"{topics.prefix}-a")
    try:
        async with archiver:
            started = time.monotonic()
            while archiver.last_error is None:
                assert time.monotonic() - started < 30, "the archiver did not report the missing database"
                await asyncio.sleep(0.05)
            assert not archiver.connected
            with psycopg.connect(database_cluster, autocommit=True) as admin:
                admin.execute(f'CREATE DATABASE "{name}"')
            await produce(kafka_bootstrap, topics, 100, start=200)
            await until(url, "SELECT count(*) FROM reports", 300)
            assert archiver.connected
    finally:
        with psycopg.connect(database_cluster, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
