"""A partner reading 1 byte a second and one that never reads do not slow the others down."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx2
import pytest

from geo.network import RoadNetwork
from loadtests.broker import produce
from loadtests.eventgen import events_json
from tests.faults.hubprocess import HubProcess
from tests.integration.hubs import KEYS, wait_until, write_principals
from traffic_hub.kafka import ensure_topics
from traffic_hub.topics import Topics

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

EVENTS = 3000  # a feed of a few megabytes: far more than socket buffers hold


@pytest.fixture
def big_hub(kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> Iterator[HubProcess]:
    topics = Topics(topic_prefix)
    asyncio.run(ensure_topics(kafka_bootstrap, topics, 3, 1))
    records = events_json(EVENTS, RoadNetwork.default(), datetime.now(UTC), prefix=topic_prefix)
    asyncio.run(produce(topics.events, records))
    hub = HubProcess(kafka_bootstrap, topic_prefix, write_principals(tmp_path), tmp_path / "hub.log")
    hub.start("api")
    try:
        yield hub
    finally:
        hub.stop()


def stalled_reader(port: int, path: str) -> socket.socket:
    """A client that sends its request and then does not read (or barely)."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    request = f"GET {path}?key={KEYS.partner} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept-Encoding: identity\r\n\r\n"
    sock.sendall(request.encode())
    return sock


def test_slow_and_stalled_partners_do_not_slow_the_others(big_hub: HubProcess) -> None:
    url = f"{big_hub.url}/feeds/datex2/v3/situations.xml"
    # 503 until the view has caught up and the feeds are built (never an empty feed meanwhile)
    def items() -> int:
        return int(httpx2.get(url, params={"key": KEYS.partner}).headers.get("x-feed-items", 0))

    wait_until(lambda: items() > 0, timeout=60)
    size = len(httpx2.get(url, params={"key": KEYS.partner}).content)
    assert size > 1_000_000
    stalled = [stalled_reader(big_hub.port, "/feeds/datex2/v3/situations.xml") for _ in range(4)]
    trickle = stalled_reader(big_hub.port, "/feeds/waze/cifs.xml")
    latencies = []
    try:
        with httpx2.Client(timeout=10) as client:
            for _ in range(8):
                tick = time.monotonic()
                trickle.recv(1)  # the trickling partner reads one byte a second
                response = client.get(url, params={"key": KEYS.partner})
                assert response.status_code == 200
                assert len(response.content) == size
                assert client.get(f"{big_hub.url}/healthz").status_code == 200
                latencies.append(time.monotonic() - tick)
                time.sleep(max(0.0, 1.0 - (time.monotonic() - tick)))
        assert max(latencies) < 2.0, f"a full feed took {max(latencies):.2f}s beside slow partners"
    finally:
        for sock in [*stalled, trickle]:
            sock.close()
