"""Every real operator sample, served by a local HTTP server, fetched by the connector runner and
written to the real broker: one INCIDENT report per parsed item, the raw payload kept (FETCH), and
payloads no parser can use dead-lettered with the reason."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from connectors.base import ParseContext, PayloadError
from connectors.config import ConnectorConfig
from connectors.registry import parser_for
from connectors.runner import running_connectors
from tests.connectors.httpserver import Route, local_server
from traffic_hub.kafka import BrokerProbe, Publisher, ensure_topics
from traffic_hub.model import Report, ReportKind
from traffic_hub.topics import Topics

pytestmark = pytest.mark.kafka

SOURCES = Path(__file__).resolve().parents[1] / "fixtures" / "sources"
SAMPLES = [
    ("nyc", "waze-partner-feed", "waze-partner-feed/nyc_partner-feed_2019-03-22T2138Z.json"),
    ("antofagasta", "waze-partner-feed", "waze-partner-feed/antofagasta-cl_partner-feed_2024-08-23T1413Z.json"),
    ("bison-fute", "datex2", "datex2/fr-bisonfute-tipi/events.xml"),
    ("dialog", "datex2", "datex2/fr-dialog/dialog-regulations.xml"),
    ("ndw", "datex2", "datex2/nl-ndw/situations.xml"),
    ("fintraffic", "datex2", "datex2/fi-fintraffic/roadworks.xml"),
    ("svv", "datex2", "datex2/no-svv/GetSituations_Datex3.xml"),
    ("wzdx-closure", "wzdx", "wzdx/scenario6_multi_lane_closure_linestring_example.geojson"),
    ("wzdx-detour", "wzdx", "wzdx/scenario4_detour_linestring_example.geojson"),
    ("dialog-cifs", "cifs", "cifs/dialog-fr_cifs-feed_test-fixture.xml"),
]


def expected_incidents(kind: str, payload: bytes) -> int | None:
    """What the parser makes of the payload on its own (None: the whole payload is refused)."""
    try:
        parsed = parser_for(kind).parse(payload, ParseContext(source="x", received_at=datetime.now(UTC)))
    except PayloadError:
        return None
    return len(parsed.incidents)


async def read_all(bootstrap: str, topic: str) -> list[Any]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        cluster = await consumer._client.fetch_all_metadata()
        tps = [TopicPartition(topic, p) for p in sorted(cluster.partitions_for_topic(topic) or [])]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        out: list[Any] = []
        while sum(ends.values()) > len(out):
            for records in (await consumer.getmany(timeout_ms=500)).values():
                out.extend(records)
        return out
    finally:
        await consumer.stop()


async def run_connectors(bootstrap: str, topics: Topics, configs: list[ConnectorConfig]) -> dict[str, Any]:
    await ensure_topics(bootstrap, topics, 3, 1)
    async with (
        BrokerProbe(bootstrap, 0.5) as probe,
        Publisher(bootstrap, probe, 5.0, "samples") as publisher,
        running_connectors(configs, publisher, topics) as runner,
    ):
        for _ in range(600):
            states = {s.name: s for s in runner.states()}
            if all(s.fetches >= 1 and s.last_attempt and (s.last_success or s.payload_errors) for s in states.values()):
                break
            await asyncio.sleep(0.1)
        return {name: state.as_dict() for name, state in states.items()}


def test_real_samples_land_in_kafka(kafka_bootstrap: str, topic_prefix: str) -> None:
    topics = Topics(topic_prefix)
    with local_server() as server:
        configs = []
        for name, kind, path in SAMPLES:
            server.set(f"/{name}", Route(body=(SOURCES / path).read_bytes()))
            configs.append(ConnectorConfig.model_validate(
                {"name": name, "kind": kind, "url": server.url(f"/{name}"), "interval_s": 60, "allow_private": True},
            ))
        states = asyncio.run(run_connectors(kafka_bootstrap, topics, configs))
    reports = [Report.model_validate_json(r.value) for r in asyncio.run(read_all(kafka_bootstrap, topics.reports))]
    incidents = Counter(r.source for r in reports if r.kind is ReportKind.INCIDENT)
    fetches = Counter(r.source for r in reports if r.kind is ReportKind.FETCH)
    dead = [orjson.loads(r.value) for r in asyncio.run(read_all(kafka_bootstrap, topics.deadletter))]
    for name, kind, path in SAMPLES:
        expected = expected_incidents(kind, (SOURCES / path).read_bytes())
        assert fetches[name] == 1, name
        if expected is None:
            assert incidents[name] == 0
            assert any(d["source"] == name and d["raw"] for d in dead), f"{name}: payload not dead-lettered"
            assert states[name]["last_error"], name
        else:
            assert incidents[name] == expected, name
    assert incidents["nyc"] > 3000
