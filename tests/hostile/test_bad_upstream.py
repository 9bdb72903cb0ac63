"""One bad upstream payload must not stall anything (issue 14, finding 1), against the real broker.

The attack: a source serves ~1 MB of bytes that are not UTF-8. Its dead letter used to be ~1.2 MB
(base64 of a 900 KB raw cap), the broker refused it, the refusal was treated as fatal, the producer
shared with the API restarted (a POST in that window got 503), and the connector retried the same
batch every 30 s, forever, never fetching again. Now the dead letter is capped by its encoded size,
a record Kafka cannot take is refused before it reaches the broker (the producer is never restarted
for it), and a batch that cannot be written as planned is dead-lettered and the connector moves on.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.base import ParseContext, Parsed
from connectors.config import ConnectorConfig
from connectors.fetch import make_client
from connectors.runner import ConnectorRunner
from tests.connectors.httpserver import LocalServer, Route, local_server
from tests.hostile.kafkalog import read_topic, wait_for
from tests.integration.hubs import KEYS, auth, closure_body, running_hub, settings_for, wait_until, write_principals
from traffic_hub.errors import Unavailable, WriteRejected
from traffic_hub.kafka import Publisher
from traffic_hub.kafka.publisher import MAX_RECORD_BYTES
from traffic_hub.model import EventType, IncidentReport, Point, Validity
from traffic_hub.normaliser.placement import Placer
from traffic_hub.normaliser.service import Normaliser
from traffic_hub.publishing import MAX_ENCODED_BYTES, Record, dead_letter
from traffic_hub.topics import Topics

BAD_BODY = random.Random(14).randbytes(1_000_000)  # ~1 MB, not UTF-8
GOOD_GEOJSON = orjson.dumps(
    {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "id": "works-1",
                "geometry": {"type": "Point", "coordinates": [3.0561, 50.6301]},
                "properties": {"type": "travaux", "description": "Travaux rue Nationale"},
            }
        ],
    }
)
RESTART = "restarting kafka producer"


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with local_server() as running:
        yield running


def source(name: str, url: str, **extra: Any) -> ConnectorConfig:
    data = {"name": name, "kind": "geojson", "url": url, "interval_s": 0.3, "allow_private": True, **extra}
    return ConnectorConfig.model_validate(data, context={"testing": True})


def restarts(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if RESTART in r.getMessage()]


# --- the attack, end to end: hub (API + connectors share one producer) -----------------------------


@pytest.mark.kafka
def test_a_1mb_non_utf8_payload_is_dead_lettered_within_the_cap_and_nothing_stalls(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path, server: LocalServer, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(UnicodeDecodeError):
        BAD_BODY.decode("utf-8")
    server.set("/feed", Route(BAD_BODY, content_type="application/geo+json"))
    settings = settings_for(kafka_bootstrap, topic_prefix, write_principals(tmp_path))
    connectors = [source("bad-upstream", server.url("/feed"))]
    with caplog.at_level(logging.INFO), running_hub(settings, connectors=connectors) as hub:

        def state() -> dict[str, Any]:
            found: dict[str, Any] = hub.get("/api/v1/connectors", headers=auth(KEYS.operator)).json()["connectors"][0]
            return found

        wait_until(lambda: state()["payload_errors"] >= 1, timeout=60)
        during = hub.post("/api/v1/closures", json=closure_body("HOSTILE-14-1"), headers=auth(KEYS.lille))
        assert during.status_code == 201, during.text

        server.set("/feed", Route(GOOD_GEOJSON, content_type="application/geo+json"))
        wait_until(lambda: state()["incidents_published"] >= 1, timeout=60)  # it fetched again and moved on
        after = hub.post("/api/v1/closures", json=closure_body("HOSTILE-14-2"), headers=auth(KEYS.lille))
        assert after.status_code == 201, after.text
        assert state()["status"] == "ok"

    assert restarts(caplog) == []
    values = asyncio.run(read_topic(kafka_bootstrap, Topics(topic_prefix).deadletter))
    letters = [(len(v), orjson.loads(v)) for v in values if orjson.loads(v)["source"] == "bad-upstream"]
    assert letters
    size, letter = letters[0]
    assert size <= MAX_ENCODED_BYTES
    assert letter["raw_sha256"] == hashlib.sha256(BAD_BODY).hexdigest()
    assert (letter["raw_bytes"], letter["raw_truncated"], letter["raw_encoding"]) == (1_000_000, True, "base64")
    assert 0 < letter["raw_kept_bytes"] < 1_000_000
    assert letter["reason"].startswith("payload error")


# --- a report larger than the broker takes: dead-lettered, not retried forever ---------------------


class HugeReportParser:
    """Parses anything into one incident whose description is `size` characters (a > 1 MB report)."""

    kind = "geojson"

    def __init__(self, size: int) -> None:
        self.size = size

    def parse(self, payload: bytes, ctx: ParseContext) -> Parsed:
        text = payload.decode() * (self.size // max(1, len(payload)) + 1)
        incident = IncidentReport(
            source=ctx.source,
            kind="geojson",
            source_id="huge",
            type=EventType.ROADWORKS,
            description=text[: self.size],
            geometry=Point(type="Point", coordinates=[3.0561, 50.6301]),
            validity=Validity(starts_at=ctx.received_at),
        )
        return Parsed(incidents=[incident])


@pytest.mark.kafka
async def test_a_report_over_the_broker_limit_is_dead_lettered_and_the_connector_moves_on(
    server: LocalServer,
    publisher: tuple[Publisher, Topics],
    kafka_bootstrap: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    producer, topics = publisher
    server.set("/huge", Route(b"0123456789abcdef", content_type="application/json"))
    cfg = source("huge-report", server.url("/huge"))
    caplog.set_level(logging.INFO)
    async with (
        make_client(trust_env=False) as client,
        ConnectorRunner(
            [cfg], client, producer, topics, parser_for=lambda kind: HugeReportParser(1_200_000)
        ) as runner,
    ):
        state = runner.state("huge-report")
        await wait_for(lambda: state.refused_records >= 1 and state.fetches >= 2, within=60)  # then fetched again
        ok = await producer.send(Record(topics.reports, b"after", b"{}"))  # the shared producer still writes

    assert ok.offset >= 0
    assert restarts(caplog) == []
    assert state.last_error is not None
    assert "refused" in state.last_error
    values = await read_topic(kafka_bootstrap, topics.deadletter)
    letters = [orjson.loads(v) for v in values]
    assert any("refused by Kafka" in letter["reason"] and letter["raw_truncated"] for letter in letters)
    assert all(len(v) <= MAX_ENCODED_BYTES for v in values)


@pytest.mark.kafka
async def test_the_publisher_refuses_an_oversized_record_without_touching_the_producer(
    publisher: tuple[Publisher, Topics], caplog: pytest.LogCaptureFixture
) -> None:
    producer, topics = publisher
    caplog.set_level(logging.INFO)
    good = Record(topics.reports, b"k", b"{}")
    huge = Record(topics.reports, b"k", b"x" * MAX_RECORD_BYTES)

    with pytest.raises(WriteRejected) as refused:
        await producer.send_many([good, huge, good])

    assert refused.value.indexes == (1,)
    assert not refused.value.retriable  # permanent: dead-lettered or dropped by the caller, never retried as is
    written = await producer.send_many([good, good])
    assert written[1].offset == written[0].offset + 1
    assert restarts(caplog) == []


# --- the dead letter always fits, whatever the upstream sent -----------------------------------------


PATHOLOGICAL = [
    random.Random(1).randbytes(2_000_000),  # not UTF-8: base64 grows 4/3
    b"\x01" * 2_000_000,  # control characters: JSON escaping grows 6x
    "é".encode() * 1_000_000,  # multi-byte UTF-8
    b'"\\' * 800_000,  # quotes and backslashes: escaping doubles
    ("a" * 700_000 + "€").encode(),  # a character cut in two by the head
]


@pytest.mark.parametrize("raw", PATHOLOGICAL, ids=["binary", "control", "utf8", "escapes", "cut"])
def test_dead_letters_are_capped_by_their_encoded_size(raw: bytes) -> None:
    letter = dead_letter(Topics("t"), stage="connector", source="s", reason="r" * 10_000, raw=raw, key="k" * 5000)

    assert letter.value is not None
    assert len(letter.value) <= MAX_ENCODED_BYTES
    assert letter.size <= MAX_RECORD_BYTES
    body = orjson.loads(letter.value)
    assert body["raw_sha256"] == hashlib.sha256(raw).hexdigest()
    assert (body["raw_bytes"], body["raw_truncated"]) == (len(raw), True)
    assert body["raw_kept_bytes"] > 50_000  # a useful head, not an empty one
    head = body["raw"].encode() if body["raw_encoding"] == "utf-8" else None
    assert head is None or raw.startswith(head)


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=4000), st.integers(min_value=1, max_value=400))
def test_small_payloads_are_kept_whole_and_big_ones_fit(chunk: bytes, repeat: int) -> None:
    raw = chunk * repeat * 40
    letter = dead_letter(Topics("t"), stage="connector", source="s", reason="why", raw=raw)

    assert letter.value is not None
    assert len(letter.value) <= MAX_ENCODED_BYTES
    body = orjson.loads(letter.value)
    if not body["raw_truncated"]:
        kept = body["raw"].encode() if body["raw_encoding"] == "utf-8" else None
        assert kept is None or kept == raw


@pytest.mark.kafka
async def test_a_record_the_broker_refuses_despite_the_check_is_rejected_once_then_refused_before_sending(
    publisher: tuple[Publisher, Topics], kafka_bootstrap: str, topic_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A topic configured below the record limit: the broker's refusal is `WriteRejected`, not retried.

    That one refusal leaves a gap in the idempotent producer's numbering, so the producer restarts once
    and the publisher lowers its record limit; the next such record is refused before it is sent.
    """
    producer, _ = publisher
    small = f"{topic_prefix}-small"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(small, 1, 1, topic_configs={"max.message.bytes": "100000"})])
    finally:
        await admin.close()
    caplog.set_level(logging.INFO)
    await wait_for_write(producer, Record(small, b"k", b"first"))
    big = Record(small, b"k", b"x" * 200_000)

    with pytest.raises(WriteRejected) as refused:
        await producer.send_many([big])
    assert refused.value.indexes == (0,)
    assert producer.max_record_bytes < big.size

    await wait_for_write(producer, Record(small, b"k", b"after"))  # the restarted producer writes again
    with pytest.raises(WriteRejected, match="record limit"):
        await producer.send_many([big])  # refused before sending now: no second restart
    assert len(restarts(caplog)) == 1


async def wait_for_write(producer: Publisher, record: Record) -> None:
    """Write `record`, retrying while the producer is (re)starting."""
    async with asyncio.timeout(30):
        while True:
            try:
                await producer.send(record)
                return
            except WriteRejected:
                raise
            except Unavailable:
                await asyncio.sleep(0.1)


@pytest.mark.kafka
async def test_the_normaliser_dead_letters_an_event_kafka_cannot_take_instead_of_retrying_forever(
    publisher: tuple[Publisher, Topics], kafka_bootstrap: str
) -> None:
    producer, topics = publisher
    normaliser = Normaliser(kafka_bootstrap, topics, producer, cast(Placer, None), "normaliser-test")
    huge = Record(topics.events, b"event-1", b'{"description": "' + b"x" * MAX_RECORD_BYTES + b'"}')

    await asyncio.wait_for(normaliser._publish([Record(topics.events, b"event-0", b"{}"), huge]), 30)

    (letter,) = [orjson.loads(value) for value in await read_topic(kafka_bootstrap, topics.deadletter)]
    assert (letter["stage"], letter["key"], letter["raw_truncated"]) == ("normaliser", "event-1", True)
    assert "refused by Kafka" in letter["reason"]
