"""The shared connector runner against a real local HTTP server and the real Kafka broker.

Tests marked `kafka` write to uuid-prefixed topics on the real broker. The others use a publisher
whose broker never answers (a bound, non-listening port): the runner must ride that out too.
"""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaConsumer, TopicPartition
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from connectors.base import ParseContext, Parsed, Parser, PayloadError, Reject
from connectors.config import ConnectorConfig
from connectors.fetch import FetchResult, Validators, make_client
from connectors.runner import (
    Backoff,
    ConnectorRunner,
    Memory,
    audit_payload,
    plan_cycle,
    raw_from_audit,
    running_connectors,
)
from connectors.state import ConnectorsCollector, ConnectorState
from tests.connectors.httpserver import LocalServer, Route, local_server
from tests.kafkarun import started_publisher
from traffic_hub.kafka import BrokerProbe, Publisher
from traffic_hub.model import EventType, IncidentReport, Point, Validity
from traffic_hub.topics import Topics

STARTS = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


class TinyParser:
    """A test parser: `{"snapshot": bool, "items": [{"id", "text", "bad"?}], "crash"?: bool}`."""

    kind = "geojson"

    def parse(self, payload: bytes, ctx: ParseContext) -> Parsed:
        try:
            document = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            raise PayloadError(f"not JSON: {exc}") from None
        if not isinstance(document, dict) or not isinstance(document.get("items"), list):
            raise PayloadError("no items list")
        if document.get("crash"):
            raise RuntimeError("parser bug")
        parsed = Parsed(snapshot=bool(document.get("snapshot", True)))
        for item in document["items"]:
            if item.get("bad"):
                parsed.rejects.append(Reject("item marked bad", orjson.dumps(item), str(item["id"])))
            else:
                parsed.incidents.append(incident(ctx.source, str(item["id"]), str(item["text"])))
        return parsed


def incident(source: str, source_id: str, text: str, ended: bool = False) -> IncidentReport:
    return IncidentReport(
        source=source,
        kind="geojson",
        source_id=source_id,
        type=EventType.ROADWORKS,
        description=text,
        geometry=Point(type="Point", coordinates=[3.0561, 50.6301]),
        validity=Validity(starts_at=STARTS),
        ended=ended,
    )


def tiny(kind: str) -> Parser:
    return TinyParser()


def feed(*items: dict[str, Any], snapshot: bool = True) -> bytes:
    return orjson.dumps({"snapshot": snapshot, "items": list(items)})


def config(name: str, url: str, **extra: Any) -> ConnectorConfig:
    data = {"name": name, "kind": "geojson", "url": url, "interval_s": 0.2, "timeout_s": 2, **extra}
    data.setdefault("allow_private", True)  # the test servers are on 127.0.0.1
    return ConnectorConfig.model_validate(data, context={"testing": True})


async def wait_for(predicate: Callable[[], bool], within: float = 15.0) -> None:
    """Poll the runner's state (plain attributes, no event to wait on) until `predicate` holds."""
    async with asyncio.timeout(within):
        while True:
            if predicate():
                return
            await asyncio.sleep(0.02)


@dataclass
class Log:
    bootstrap: str
    topics: Topics
    publisher: Publisher

    async def read(self, topic: str) -> list[dict[str, Any]]:
        """Every record of the (one-partition) topic up to its current end, values decoded."""
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False)
        await consumer.start()
        try:
            partition = TopicPartition(topic, 0)
            consumer.assign([partition])
            await consumer.seek_to_beginning(partition)
            end = (await consumer.end_offsets([partition]))[partition]
            out: list[dict[str, Any]] = []
            async with asyncio.timeout(15):
                while await consumer.position(partition) < end:
                    for records in (await consumer.getmany(partition, timeout_ms=200)).values():
                        out += [orjson.loads(r.value) for r in records if r.value is not None]
            return out
        finally:
            await consumer.stop()

    async def reports(self, kind: str | None = None) -> list[dict[str, Any]]:
        found = await self.read(self.topics.reports)
        return [r for r in found if kind is None or r["kind"] == kind]

    async def dead_letters(self) -> list[dict[str, Any]]:
        return await self.read(self.topics.deadletter)


@pytest_asyncio.fixture
async def kafka_log(kafka_bootstrap: str, topic_prefix: str) -> AsyncIterator[Log]:
    async with started_publisher(kafka_bootstrap, topic_prefix) as (publisher, topics):
        yield Log(kafka_bootstrap, topics, publisher)


@pytest.fixture
def dead_port() -> Iterator[int]:
    """A loopback port that refuses connections: bound (nobody else takes it) but not listening."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


@pytest_asyncio.fixture
async def offline(dead_port: int) -> AsyncIterator[Publisher]:
    """A real publisher whose broker never answers: every write is refused with Unavailable."""
    bootstrap = f"127.0.0.1:{dead_port}"
    async with BrokerProbe(bootstrap, 0.5) as probe, Publisher(bootstrap, probe, 1.0, "offline") as publisher:
        yield publisher


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with local_server() as running:
        yield running


@asynccontextmanager
async def running(
    configs: list[ConnectorConfig],
    publisher: Publisher,
    topics: Topics,
    parser_for: Callable[[str], Parser] = tiny,
    **options: Any,
) -> AsyncIterator[ConnectorRunner]:
    async with (
        make_client(trust_env=False) as client,
        ConnectorRunner(configs, client, publisher, topics, parser_for=parser_for, **options) as runner,
    ):
        yield runner


# --- against the real broker -------------------------------------------------------------------


@pytest.mark.kafka
async def test_conditional_get_publishes_once_and_keeps_the_raw_payload(server: LocalServer, kafka_log: Log) -> None:
    body = feed({"id": "a", "text": "Travaux rue Nationale"}, {"id": "b", "text": "Fermeture pont"})
    server.set("/feed", Route(body))
    async with running([config("mel", server.url("/feed"))], kafka_log.publisher, kafka_log.topics) as runner:
        state = runner.state("mel")
        await wait_for(lambda: state.not_modified >= 2)

    fetched = await kafka_log.reports("fetch")
    incidents = await kafka_log.reports("incident")
    assert len(fetched) == 1
    raw = fetched[0]["payload"]
    assert (raw["raw"], raw["encoding"], raw["truncated"], raw["status"]) == (body.decode(), "utf-8", False, 200)
    assert raw["etag"] == Route(body).etag
    assert raw["bytes"] == len(body)
    assert sorted(r["key"] for r in incidents) == ["mel:a", "mel:b"]
    assert {r["incident"]["description"] for r in incidents} == {"Travaux rue Nationale", "Fermeture pont"}
    assert server.hits("/feed")[-1].headers["if-none-match"] == Route(body).etag
    assert (state.incidents_published, state.bytes_fetched, state.consecutive_failures) == (2, len(body), 0)
    assert state.status == "ok"
    assert state.last_success is not None
    assert state.next_run_at is not None


@pytest.mark.kafka
async def test_unchanged_items_are_not_sent_again_changed_ones_are(server: LocalServer, kafka_log: Log) -> None:
    server.set("/feed", Route(feed({"id": "a", "text": "one"}, {"id": "b", "text": "two"}), validators=False))
    cfg = config("mel", server.url("/feed"))
    async with running([cfg], kafka_log.publisher, kafka_log.topics, full_refresh_every=1000) as runner:
        state = runner.state("mel")
        await wait_for(lambda: state.fetches >= 4 and state.last_success is not None and state.bytes_fetched > 0)
        server.set("/feed", Route(feed({"id": "a", "text": "one"}, {"id": "b", "text": "two, longer"})))
        await wait_for(lambda: state.incidents_published == 3)

    keys = [r["key"] for r in await kafka_log.reports("incident")]
    assert sorted(keys) == ["mel:a", "mel:b", "mel:b"]
    assert len(await kafka_log.reports("fetch")) >= 3


@pytest.mark.kafka
async def test_an_item_gone_from_the_snapshot_is_ended(server: LocalServer, kafka_log: Log) -> None:
    server.set("/feed", Route(feed({"id": "a", "text": "one"}, {"id": "b", "text": "two"})))
    async with running([config("waze", server.url("/feed"))], kafka_log.publisher, kafka_log.topics) as runner:
        state = runner.state("waze")
        await wait_for(lambda: state.incidents_published == 2)
        server.set("/feed", Route(feed({"id": "b", "text": "two"})))
        await wait_for(lambda: state.ended_published == 1)

    reports = await kafka_log.reports("incident")
    a_reports = [r for r in reports if r["key"] == "waze:a"]
    assert [r["incident"]["ended"] for r in a_reports] == [False, True]
    assert a_reports[1]["incident"]["description"] == "one"
    assert len([r for r in reports if r["key"] == "waze:b"]) == 1
    assert state.tracked_items == 1


@pytest.mark.kafka
async def test_a_huge_payload_is_dead_lettered_and_the_other_connector_carries_on(
    server: LocalServer, kafka_log: Log
) -> None:
    server.set("/huge", Route(huge_bytes=50 * 1024 * 1024, validators=False))
    server.set("/good", Route(feed({"id": "a", "text": "fine"})))
    configs = [config("huge", server.url("/huge"), max_bytes=100_000), config("good", server.url("/good"))]
    async with running(configs, kafka_log.publisher, kafka_log.topics) as runner:
        huge, good = runner.state("huge"), runner.state("good")
        await wait_for(lambda: huge.payload_errors >= 1 and good.not_modified >= 1)

    letters = [d for d in await kafka_log.dead_letters() if d["source"] == "huge"]
    assert letters
    assert letters[0]["stage"] == "connector"
    assert "over the limit of 100000 bytes" in letters[0]["reason"]
    assert letters[0]["raw"].startswith("xxxx")
    assert huge.status == "failing"
    assert huge.last_error is not None
    assert "limit of 100000 bytes" in huge.last_error
    assert huge.backoff_s is not None
    assert (good.status, good.incidents_published) == ("ok", 1)


@pytest.mark.kafka
async def test_a_hostile_payload_is_dead_lettered_whole(server: LocalServer, kafka_log: Log) -> None:
    hostile = b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><x>&lol2;</x>'
    server.set("/hostile", Route(hostile, content_type="application/xml"))
    server.set("/good", Route(feed({"id": "a", "text": "fine"})))
    configs = [config("hostile", server.url("/hostile")), config("good", server.url("/good"))]
    async with running(configs, kafka_log.publisher, kafka_log.topics) as runner:
        bad, good = runner.state("hostile"), runner.state("good")
        await wait_for(lambda: bad.payload_errors == 1 and good.incidents_published == 1)

    (letter,) = [d for d in await kafka_log.dead_letters() if d["source"] == "hostile"]
    assert letter["raw"] == hostile.decode()
    assert letter["reason"].startswith("payload error: not JSON")
    assert [r["payload"]["sha256"] for r in await kafka_log.reports("fetch") if r["source"] == "hostile"]
    assert bad.last_error is not None
    assert bad.last_error.startswith("payload error")
    assert bad.incidents_published == 0


@pytest.mark.kafka
async def test_rejected_items_and_crashing_parsers_are_dead_letters(server: LocalServer, kafka_log: Log) -> None:
    server.set("/mixed", Route(feed({"id": "a", "text": "fine"}, {"id": "z", "text": "?", "bad": True})))
    server.set("/crash", Route(orjson.dumps({"items": [], "crash": True})))
    configs = [config("mixed", server.url("/mixed")), config("crash", server.url("/crash"))]
    async with running(configs, kafka_log.publisher, kafka_log.topics) as runner:
        mixed, crash = runner.state("mixed"), runner.state("crash")
        await wait_for(lambda: mixed.rejects == 1 and crash.payload_errors == 1)

    letters = {d["key"]: d for d in await kafka_log.dead_letters()}
    assert letters["mixed:z"]["reason"] == "rejected: item marked bad"
    assert orjson.loads(letters["mixed:z"]["raw"]) == {"id": "z", "text": "?", "bad": True}
    assert letters["crash"]["reason"] == "parser failed: RuntimeError: parser bug"
    assert [r["key"] for r in await kafka_log.reports("incident")] == ["mixed:a"]
    assert (mixed.status, mixed.incidents_published) == ("ok", 1)
    assert crash.status == "failing"


@pytest.mark.kafka
async def test_the_real_geojson_parser_runs_in_the_runner(server: LocalServer, kafka_log: Log) -> None:
    collection = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "id": "lille-42",
                "geometry": {"type": "LineString", "coordinates": [[3.0561, 50.6301], [3.0509, 50.6279]]},
                "properties": {"type": "travaux", "description": "Rue Nationale", "starts_at": STARTS.isoformat()},
            }
        ],
    }
    server.set("/open-data", Route(orjson.dumps(collection), content_type="application/geo+json"))
    cfg = config("open-data", server.url("/open-data"))
    async with running_connectors([cfg], kafka_log.publisher, kafka_log.topics) as runner:  # the registry's parsers
        state = runner.state("open-data")
        await wait_for(lambda: state.not_modified >= 1)

    (report,) = await kafka_log.reports("incident")
    assert report["key"] == "open-data:lille-42"
    assert (report["incident"]["type"], report["incident"]["description"]) == ("roadworks", "Rue Nationale")


# --- failures that never reach the broker ------------------------------------------------------


async def test_a_slow_server_times_out_and_backs_off(server: LocalServer, offline: Publisher) -> None:
    server.set("/slow", Route(feed(), delay_s=30))
    backoff = Backoff(base_s=0.1, cap_s=0.4)
    cfg = config("slow", server.url("/slow"), timeout_s=0.3)
    async with running([cfg], offline, Topics("unused"), backoff=backoff) as runner:
        state = runner.state("slow")
        await wait_for(lambda: state.consecutive_failures >= 2)
        low, high = backoff.bounds(state.consecutive_failures, cfg.interval_s)
        assert state.backoff_s is not None
        assert low <= state.backoff_s <= high

    assert state.last_error == "timed out after 0.3 s"
    assert state.last_success is None
    assert state.status == "failing"


async def test_server_errors_back_off_within_the_jitter_bounds(server: LocalServer, offline: Publisher) -> None:
    server.set("/down", Route(b"oops", status=500))
    backoff = Backoff(base_s=0.05, cap_s=0.2)
    cfg = config("down", server.url("/down"))
    async with running([cfg], offline, Topics("unused"), backoff=backoff) as runner:
        state = runner.state("down")
        await wait_for(lambda: state.consecutive_failures >= 4)
        chosen = state.backoff_s

    assert chosen is not None
    assert backoff.bounds(4, cfg.interval_s) == (0.1, 0.2)
    assert 0.1 <= chosen <= 0.2
    assert state.last_error == "HTTP 500 Internal Server Error"
    assert state.fetches == state.failures


async def test_kafka_down_keeps_the_batch_and_retries_it(server: LocalServer, offline: Publisher) -> None:
    server.set("/feed", Route(feed({"id": "a", "text": "one"})))
    backoff = Backoff(base_s=0.05, cap_s=0.1)
    async with running([config("mel", server.url("/feed"))], offline, Topics("x"), backoff=backoff) as runner:
        state = runner.state("mel")
        await wait_for(lambda: state.consecutive_failures >= 3)

    assert state.last_error is not None
    assert state.last_error.startswith("Kafka unavailable, batch kept for retry")
    assert (state.fetches, len(server.hits("/feed"))) == (1, 1)  # the same batch is retried, not re-fetched
    assert (state.incidents_published, state.bytes_fetched, state.last_success) == (0, 0, None)


async def test_disabled_and_unknown_kinds_do_not_run(server: LocalServer, offline: Publisher) -> None:
    server.set("/feed", Route(feed()))
    configs = [config("off", server.url("/feed"), enabled=False), config("odd", server.url("/feed"))]

    def no_parser(kind: str) -> Parser:
        raise KeyError(kind)

    async with running(configs, offline, Topics("x"), parser_for=no_parser) as runner:
        off, odd = runner.state("off"), runner.state("odd")

    assert off.status == "disabled"
    assert odd.status == "failing"
    assert odd.last_error is not None
    assert odd.last_error.startswith("no parser for kind 'geojson'")
    assert server.hits("/feed") == []


async def test_stopping_cancels_a_fetch_in_flight(server: LocalServer, offline: Publisher) -> None:
    server.set("/slow", Route(feed(), delay_s=30))
    async with running([config("slow", server.url("/slow"), timeout_s=20)], offline, Topics("x")) as runner:
        await wait_for(lambda: len(server.hits("/slow")) == 1)

    state = runner.state("slow")
    assert (state.fetches, state.failures, state.last_error) == (1, 0, None)


# --- pure parts --------------------------------------------------------------------------------


@given(
    failures=st.integers(min_value=1, max_value=200),
    interval=st.floats(min_value=0.1, max_value=3600),
    base=st.floats(min_value=0.01, max_value=60),
    cap=st.floats(min_value=1, max_value=3600),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_backoff_stays_within_its_bounds(failures: int, interval: float, base: float, cap: float, seed: int) -> None:
    backoff = Backoff(base_s=base, cap_s=cap)
    low, high = backoff.bounds(failures, interval)
    delay = backoff.delay(failures, interval, random.Random(seed))

    assert low <= delay <= high
    assert high == 2 * low
    assert high <= max(cap, interval)
    assert backoff.bounds(failures + 1, interval)[1] >= high


def test_retry_after_lengthens_the_delay_up_to_the_cap() -> None:
    backoff = Backoff(base_s=1, cap_s=60)

    assert backoff.honour(2.0, None, 10) == 2.0
    assert backoff.honour(2.0, 30.0, 10) == 30.0
    assert backoff.honour(2.0, 3600.0, 10) == 60.0


@given(body=st.binary(max_size=4000))
def test_the_audit_payload_gives_back_the_bytes(body: bytes) -> None:
    assert raw_from_audit(audit_payload(body)) == body


def test_big_payloads_are_compressed_and_huge_ones_only_hashed() -> None:
    text = b'{"alerts": [' + b'{"type": "ROAD_CLOSED", "street": "Rue Nationale"},' * 40_000 + b"{}]}"
    noise = random.Random(7).randbytes(1_000_000)

    packed, hashed = audit_payload(text), audit_payload(noise)

    assert packed["encoding"] == "gzip+base64"
    assert raw_from_audit(packed) == text
    assert (hashed["raw"], hashed["truncated"], hashed["bytes"]) == (None, True, 1_000_000)
    assert len(hashed["sha256"]) == 64
    assert raw_from_audit(hashed) is None


def _plan(body: bytes, memory: Memory, full_refresh: bool = False) -> tuple[Memory, list[dict[str, Any]]]:
    ctx = ParseContext(source="s", received_at=STARTS)
    result = FetchResult(200, body, Validators(), "application/json", 0.01)
    plan = plan_cycle(TinyParser(), result, ctx, memory, Topics("t"), "http://x/", full_refresh)
    return plan.memory, [orjson.loads(r.value) for r in plan.records if r.value is not None]


def test_plans_send_changes_end_what_is_gone_and_refresh_in_full() -> None:
    memory, first = _plan(feed({"id": "a", "text": "1"}, {"id": "b", "text": "2"}), Memory())
    memory, same = _plan(feed({"id": "a", "text": "1"}, {"id": "b", "text": "2"}), memory)
    memory, gone = _plan(feed({"id": "b", "text": "2"}), memory)
    _, full = _plan(feed({"id": "b", "text": "2"}), memory, full_refresh=True)

    assert [r["kind"] for r in first] == ["fetch", "incident", "incident"]
    assert [r["kind"] for r in same] == ["fetch"]
    assert [(r["key"], r["incident"]["ended"]) for r in gone[1:]] == [("s:a", True)]
    assert [r["key"] for r in full[1:]] == ["s:b"]


def test_a_delta_source_keeps_what_it_did_not_mention() -> None:
    memory, _ = _plan(feed({"id": "a", "text": "1"}, snapshot=False), Memory())
    memory, records = _plan(feed({"id": "b", "text": "2"}, snapshot=False), memory)

    assert sorted(memory.seen) == ["a", "b"]
    assert [r["key"] for r in records[1:]] == ["s:b"]


def test_duplicate_source_ids_in_one_payload_are_sent_once() -> None:
    _, records = _plan(feed({"id": "a", "text": "old"}, {"id": "a", "text": "new"}), Memory())

    assert [(r["key"], r["incident"]["description"]) for r in records[1:]] == [("s:a", "new")]


def test_metrics_expose_every_connector_with_labels() -> None:
    state = ConnectorState(name="waze-mel", kind="waze-partner-feed", url="https://x.org/feed")
    state.fetches, state.incidents_published, state.last_success = 3, 12, STARTS
    registry = CollectorRegistry()
    registry.register(ConnectorsCollector(lambda: [state]))

    samples = {
        sample.name: (sample.labels, sample.value)
        for family in text_string_to_metric_families(generate_latest(registry).decode())
        for sample in family.samples
    }

    labels = {"connector": "waze-mel", "kind": "waze-partner-feed"}
    assert samples["traffic_hub_connector_fetches_total"] == (labels, 3.0)
    assert samples["traffic_hub_connector_incidents_published_total"] == (labels, 12.0)
    assert samples["traffic_hub_connector_up"] == (labels, 1.0)
    assert samples["traffic_hub_connector_last_success_timestamp_seconds"] == (labels, STARTS.timestamp())
    assert state.as_dict()["last_success"] == STARTS.isoformat()
