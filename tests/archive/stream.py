"""A stream of reports and event versions written straight to run-scoped topics, as the hub writes them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
from aiokafka import AIOKafkaProducer

from traffic_hub.kafka import ensure_topics
from traffic_hub.topics import Topics


def report(n: int) -> bytes:
    now = datetime.now(UTC)
    return orjson.dumps({
        "key": f"bench:{n % 500}", "kind": "fetch", "source": "bench", "received_at": now.isoformat(),
        "payload": {"n": n},
    })


def event(n: int, version: int) -> bytes:
    now = datetime.now(UTC)
    return orjson.dumps({
        "id": f"ev-{n}", "type": "accident", "description": "test", "version": version,
        "geometry": {"type": "Point", "coordinates": [3.06 + n * 1e-5, 50.63]},
        "validity": {"starts_at": now.isoformat(), "ends_at": (now + timedelta(hours=1)).isoformat()},
        "sources": [{"source": "bench", "id": str(n)}], "commune": "59350",
        "created_at": now.isoformat(), "updated_at": now.isoformat(),
    })


async def produce(bootstrap: str, topics: Topics, reports: int, start: int = 0, events: int = 0) -> None:
    """`reports` reports numbered from `start`, and `events` events with two versions and a tombstone each."""
    await ensure_topics(bootstrap, topics, 3, 1)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5)
    await producer.start()
    try:
        for n in range(start, start + reports):
            await producer.send(topics.reports, report(n), key=f"bench:{n % 500}".encode())
        for n in range(events):
            for version in (1, 2):
                await producer.send(topics.events, event(n, version), key=f"ev-{n}".encode())
            await producer.send(topics.events, None, key=f"ev-{n}".encode())
        await producer.flush()
    finally:
        await producer.stop()
