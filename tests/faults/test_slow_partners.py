"""A partner reading a byte now and then and ones that never read do not slow the others down.

Measured in the run itself, not against a wall-clock limit (the machine may be busy): full fetches
of a multi-megabyte feed beside the stalled partners take no more than a few times what they take
without them, measured just before and just after (plus the slowest of those, this run's noise),
and they all complete while the stalled partners still sit on the unread start of their answers:
the server never waits for them.
"""

from __future__ import annotations

import asyncio
import socket
import statistics
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


def has_unread_data(sock: socket.socket) -> bool:
    """The server has sent this partner bytes it has not read yet (its answer is under way)."""
    try:
        return bool(sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT))
    except BlockingIOError:
        return False


def full_fetch_s(client: httpx2.Client, url: str, size: int) -> float:
    """Seconds for one whole feed (checked complete) and a health check, as another partner sees them."""
    tick = time.monotonic()
    response = client.get(url, params={"key": KEYS.partner})
    assert response.status_code == 200
    assert len(response.content) == size
    assert client.get(url.split("/feeds/")[0] + "/healthz").status_code == 200
    return time.monotonic() - tick


SLOWDOWN = 4.0  # how much slower beside stalled partners still counts as "not slowed down"


def test_slow_and_stalled_partners_do_not_slow_the_others(big_hub: HubProcess) -> None:
    url = f"{big_hub.url}/feeds/datex2/v3/situations.xml"

    # 503 until the view has caught up and the feeds are built (never an empty feed meanwhile)
    def items() -> int:
        return int(httpx2.get(url, params={"key": KEYS.partner}).headers.get("x-feed-items", 0))

    wait_until(lambda: items() > 0, timeout=60)
    size = len(httpx2.get(url, params={"key": KEYS.partner}).content)
    assert size > 1_000_000
    with httpx2.Client(timeout=60) as client:
        before = [full_fetch_s(client, url, size) for _ in range(3)]
        stalled = [stalled_reader(big_hub.port, "/feeds/datex2/v3/situations.xml") for _ in range(4)]
        trickle = stalled_reader(big_hub.port, "/feeds/waze/cifs.xml")
        try:
            wait_until(lambda: all(has_unread_data(sock) for sock in [*stalled, trickle]), timeout=30)
            beside = []
            for _ in range(8):
                trickle.recv(1)  # the trickling partner reads one byte between two fetches of the others
                beside.append(full_fetch_s(client, url, size))
            assert all(has_unread_data(sock) for sock in stalled)  # still stalled: nobody waited for them
        finally:
            for sock in [*stalled, trickle]:
                sock.close()
        after = [full_fetch_s(client, url, size) for _ in range(3)]
    alone = [*before, *after]
    # the slowest fetch without them is the noise of this machine during this run
    limit = SLOWDOWN * statistics.median(alone) + max(alone)
    assert statistics.median(beside) <= limit, (
        f"full feeds took {statistics.median(beside):.2f}s beside slow partners, {statistics.median(alone):.2f}s "
        f"without (slowest {max(alone):.2f}s)"
    )
