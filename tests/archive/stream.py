"""A stream of reports (a tenth of them Waze jams) and event versions written straight to run-scoped topics,
as the hub writes them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
from aiokafka import AIOKafkaProducer

from traffic_hub.kafka import ensure_topics
from traffic_hub.topics import Topics

JAM_EVERY = 10  # every 10th report is a Waze jam (40 jams re-sent in turn): the roll-up is written too


def report_key(n: int) -> str:
    return f"waze-mel:jam-{n // JAM_EVERY % 40}" if n % JAM_EVERY == 0 else f"bench:{n % 500}"


def report(n: int) -> bytes:
    now = datetime.now(UTC)
    doc: dict[str, object] = {
        "key": report_key(n), "kind": "fetch", "source": "bench", "received_at": now.isoformat(), "payload": {"n": n}}
    if n % JAM_EVERY == 0:
        x = 3.0 + n // JAM_EVERY % 40 * 0.001
        doc.update(kind="incident", source="waze-mel", incident={
            "source": "waze-mel", "kind": "waze-jam", "source_id": f"jam-{n // JAM_EVERY % 40}", "type": "jam",
            "description": "jam", "street": "Rue Test", "city": "Lille", "ended": n // JAM_EVERY % 7 == 0,
            "geometry": {"type": "LineString", "coordinates": [[x, 50.6], [x + 0.002, 50.6]]},
            "said": {"delay": n % 300, "length": 250, "level": 2},
        })
    return orjson.dumps(doc)


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
            await producer.send(topics.reports, report(n), key=report_key(n).encode())
        for n in range(events):
            for version in (1, 2):
                await producer.send(topics.events, event(n, version), key=f"ev-{n}".encode())
            await producer.send(topics.events, None, key=f"ev-{n}".encode())
        await producer.flush()
    finally:
        await producer.stop()
