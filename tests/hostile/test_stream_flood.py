"""Event-stream floods and what partners see on it (issue 14, findings 2 and 7), on a real hub and broker.

A real uvicorn server runs the hub (the CLI's protocol and limits) with a few thousand events written
to its events topic. Ten streams opened at once must share one snapshot, built once for the view's
version (off the event loop, so `/healthz` keeps answering), and the same bytes reach every stream;
beyond the per-key limit a key gets 429, beyond the total limit 503 with Retry-After. A partner key
sees what the open feeds carry (no source's raw `said` data, no publication reasons, no Waze-only
event); an operator key sees everything.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2
import orjson
import pytest
import uvicorn
from aiokafka import AIOKafkaProducer

from tests.conftest import free_port
from tests.feeds import events as ev
from tests.integration.hubs import KEYS, auth, closure_body, settings_for, wait_until, write_principals
from tests.kafkarun import run_name
from traffic_hub.api.fastproto import feed_protocol
from traffic_hub.auth import Principals
from traffic_hub.feeds.opendata import COLUMNS
from traffic_hub.model import Event, SourceReport
from traffic_hub.runtime import Role, create_app
from traffic_hub.settings import LimitSettings, MetricsSettings, Settings
from traffic_hub.topics import Topics
from traffic_hub.view import encode

pytestmark = pytest.mark.kafka

EVENTS = 2000
WAZE_ONLY = 50
PER_KEY = 12
TOTAL = 16
SAID = {"internal_note": "chantier ERDF, contact 06 00 00 00 00"}


@dataclass
class Server:
    url: str
    metrics_url: str
    settings: Settings

    def gauge(self, name: str) -> float:
        text = httpx2.get(self.metrics_url, timeout=10).text
        found = re.search(rf"^traffic_hub_{name} (\S+)$", text, re.MULTILINE)
        return float(found[1]) if found else 0.0


def flood_events(now: datetime) -> list[Event]:
    """Current closures from a road-works team (with what the team said), and Waze-only accidents."""
    out = []
    for number in range(EVENTS):
        event = ev.make_event(f"cl-FLOOD-{number:05d}", now, segments=[ev.segment(ev.RUE_NATIONALE_WEST)])
        out.append(event.model_copy(update={"sources": [s.model_copy(update={"said": SAID}) for s in event.sources]}))
    for number in range(WAZE_ONLY):
        event = ev.waze_accident(now).model_copy(update={"id": f"wz-FLOOD-{number:05d}"})
        report = SourceReport(source="waze-mel", source_id=f"W{number}", kind="waze-alert", received_at=now,
                              said={"reportBy": "wazer-42", "reliability": 7})
        out.append(event.model_copy(update={"sources": [report]}))
    return out


async def produce(bootstrap: str, topic: str, events: list[Event]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_request_size=4 * 1024 * 1024)
    await producer.start()
    try:
        for event in events:
            await producer.send(topic, key=event.id.encode(), value=encode(event))
        await producer.flush()
    finally:
        await producer.stop()


@pytest.fixture(scope="module")
def server(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp: Path = tmp_path_factory.mktemp("flood")
    prefix = run_name("flood")
    metrics_port = free_port()
    settings = settings_for(
        kafka_bootstrap,
        prefix,
        write_principals(tmp),
        limits=LimitSettings(streams_per_key=PER_KEY, streams_total=TOTAL),
        metrics=MetricsSettings(port=metrics_port),
    )
    assert settings.auth_file is not None
    app = create_app(settings, Principals.load(settings.auth_file), {Role.API, Role.NORMALISER})
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, http=feed_protocol(settings.limits), log_config=None, log_level="warning"
    )
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    running = Server(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{metrics_port}/metrics", settings)
    try:
        wait_until(lambda: uv.started, timeout=60)
        wait_until(lambda: httpx2.get(running.url + "/readyz", timeout=5).status_code == 200, timeout=60)
        asyncio.run(produce(kafka_bootstrap, Topics(prefix).events, flood_events(datetime.now(UTC))))
        wait_until(lambda: running.gauge("view_events") >= EVENTS + WAZE_ONLY, timeout=120, interval=0.5)
        yield running
    finally:
        uv.should_exit = True
        thread.join(30)


@dataclass
class Stream:
    """One open stream, read in its own thread: its status, its first message, and later ones."""

    url: str
    key: str
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    problem: dict[str, Any] | None = None
    messages: list[dict[str, Any]] = field(default_factory=list)
    first_raw: bytes = b""
    opened: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)
    client: httpx2.Client = field(default_factory=lambda: httpx2.Client(timeout=60))

    def run(self) -> None:
        try:
            self._read()
        except httpx2.HTTPError:
            if not self.stop.is_set():
                raise
        finally:
            self.opened.set()

    def close(self) -> None:
        """Hang up (from the test's thread): the server sees the disconnect and frees the place."""
        self.stop.set()
        self.client.close()

    def _read(self) -> None:
        url = self.url + "/api/v1/events/stream"
        with self.client.stream("GET", url, headers=auth(self.key)) as response:
            self.status = response.status_code
            self.headers = dict(response.headers)
            if response.status_code != 200:
                self.problem = orjson.loads(response.read())
                self.opened.set()
                return
            current: dict[str, Any] = {}
            raw: list[bytes] = []
            for line in response.iter_lines():
                if self.stop.is_set():
                    return
                if line.startswith(("event:", "data:", "id:")):
                    name, _, value = line.partition(":")
                    current[name] = orjson.loads(value) if name == "data" else value.strip()
                    raw.append(line.encode())
                elif line == "" and current:
                    if not self.messages:
                        self.first_raw = b"\n".join(raw)
                    self.messages.append(current)
                    current, raw = {}, []
                    self.opened.set()

    def first(self) -> dict[str, Any]:
        assert self.opened.wait(120), "no first message"
        assert self.messages, self.problem
        return self.messages[0]


@contextmanager
def streams(url: str, keys: list[str]) -> Iterator[list[Stream]]:
    opened = [Stream(url, key) for key in keys]
    threads = [threading.Thread(target=s.run, daemon=True) for s in opened]
    for thread in threads:
        thread.start()
    try:
        yield opened
    finally:
        for stream in opened:
            stream.close()
        for thread in threads:
            thread.join(10)


def healthz_while(done: threading.Event, url: str) -> list[float]:
    took: list[float] = []
    while not done.is_set():
        started = time.perf_counter()
        assert httpx2.get(url + "/healthz", timeout=30).status_code == 200
        took.append(time.perf_counter() - started)
        time.sleep(0.02)
    return took


def test_ten_parallel_opens_share_one_snapshot_built_once(server: Server) -> None:
    unloaded = []
    for _ in range(10):
        started = time.perf_counter()
        httpx2.get(server.url + "/healthz", timeout=10)
        unloaded.append(time.perf_counter() - started)
    builds, changes = server.gauge("stream_snapshot_builds"), server.gauge("view_changes")
    done = threading.Event()
    latencies: list[float] = []
    probe = threading.Thread(target=lambda: latencies.extend(healthz_while(done, server.url)), daemon=True)
    with streams(server.url, [KEYS.operator] * 10) as opened:
        probe.start()
        firsts = [s.first() for s in opened]
        done.set()
        probe.join(30)
        assert all(s.status == 200 for s in opened)
        assert {s.first_raw for s in opened} == {opened[0].first_raw}  # the very same bytes
        assert all(f["event"] == "reset" for f in firsts)
        assert len(firsts[0]["data"]["features"]) == EVENTS + WAZE_ONLY
        assert server.gauge("stream_connections") == 10
    built = server.gauge("stream_snapshot_builds") - builds
    versions = server.gauge("view_changes") - changes + 1
    assert 1 <= built <= versions  # once per view version, not once per connection
    assert latencies, "/healthz answered while the streams opened"
    print(f"healthz unloaded p50 {sorted(unloaded)[5] * 1000:.1f} ms; during 10 opens: "
          f"{len(latencies)} answers, p50 {sorted(latencies)[len(latencies) // 2] * 1000:.1f} ms, "
          f"max {max(latencies) * 1000:.1f} ms; snapshot {len(opened[0].first_raw)} bytes, built {built:g}x")


def test_stream_limits_per_key_and_in_total(server: Server) -> None:
    wait_until(lambda: server.gauge("stream_connections") == 0, timeout=30, interval=0.2)
    with streams(server.url, [KEYS.operator] * PER_KEY) as held:
        for stream in held:
            stream.first()
        with streams(server.url, [KEYS.operator]) as [extra]:
            assert extra.opened.wait(30)
            assert extra.status == 429
            assert extra.headers["content-type"] == "application/problem+json"
            assert extra.headers["retry-after"] == "5"
            assert extra.problem is not None
            assert extra.problem["status"] == 429
        with streams(server.url, [KEYS.admin] * (TOTAL - PER_KEY)) as others:
            for stream in others:
                stream.first()
            with streams(server.url, [KEYS.partner]) as [late]:
                assert late.opened.wait(30)
                assert late.status == 503
                assert late.headers["retry-after"] == "5"
    # closed streams give their places back
    wait_until(lambda: server.gauge("stream_connections") == 0, timeout=30, interval=0.2)
    with streams(server.url, [KEYS.operator]) as [again]:
        assert again.first()["event"] == "reset"


def test_partners_see_what_the_open_feeds_carry_operators_everything(server: Server) -> None:
    wait_until(lambda: server.gauge("stream_connections") == 0, timeout=30, interval=0.2)
    with streams(server.url, [KEYS.partner, KEYS.operator]) as (partner, operator):
        partner_reset, operator_reset = partner.first()["data"], operator.first()["data"]
        reference = f"FLOOD-{uuid.uuid4().hex[:6]}"
        body = closure_body(reference, description="Travaux de nuit", starts_at=(
            datetime.now(UTC) - timedelta(hours=1)).isoformat())
        created = httpx2.post(server.url + "/api/v1/closures", json=body, headers=auth(KEYS.lille), timeout=10)
        assert created.status_code == 201, created.text
        cid = created.json()["id"]
        wait_until(lambda: any(m["data"].get("id") == cid for m in partner.messages[1:]), timeout=30)
        wait_until(lambda: any(m["data"].get("id") == cid for m in operator.messages[1:]), timeout=30)
        partner_change = next(m for m in partner.messages[1:] if m["data"].get("id") == cid)
        operator_change = next(m for m in operator.messages[1:] if m["data"].get("id") == cid)

    operator_ids = {f["id"] for f in operator_reset["features"]}
    partner_ids = {f["id"] for f in partner_reset["features"]}
    waze_only = {f"wz-FLOOD-{n:05d}" for n in range(WAZE_ONLY)}
    assert waze_only <= operator_ids
    assert not waze_only & partner_ids  # licence: Waze-only events stay out of partners' hands
    assert len(partner_ids) == EVENTS
    for feature in partner_reset["features"]:
        assert tuple(feature["properties"]) == COLUMNS  # the open feeds' properties, nothing more
        assert "publication" not in feature["properties"]
        assert "said" not in orjson.dumps(feature).decode()
    some = next(f for f in operator_reset["features"] if f["id"] == "wz-FLOOD-00000")
    assert some["properties"]["sources"][0]["said"]["reportBy"] == "wazer-42"
    assert "publication" in some["properties"]

    assert partner_change["event"] in ("created", "updated")
    projected = partner_change["data"]["event"]
    assert tuple(projected["properties"]) == COLUMNS
    assert projected["properties"]["sources"] == "roadworks"  # not the team's principal name
    assert "said" not in orjson.dumps(projected).decode()
    full = operator_change["data"]["event"]["properties"]
    assert full["sources"][0]["source"] == "roadworks:voirie-lille"
    assert "publication" in full

