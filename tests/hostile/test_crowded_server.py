"""A thousand idle or slow-header connections must not slow anyone else down (issue 14, finding 3).

A real hub process (`traffic-hub run`: the CLI's uvicorn set-up, protocol and limits) and the real
broker. `/healthz` and a partner's conditional feed poll are timed on fresh connections, first on an
idle server, then with 1,000 connections open: half of them silent, half in the middle of a request
head. The added median latency must stay under 100 ms (the issue's goal), measured against the
unloaded median of the same run, so a slow machine moves both.
"""

from __future__ import annotations

import socket
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from tests.faults.hubprocess import HubProcess, started_hub
from tests.integration.hubs import KEYS, auth, wait_until
from tests.integration.test_feed_fastpath import Conn, request

pytestmark = pytest.mark.kafka

CROWD = 1000
SAMPLES = 41
CIFS = "/feeds/waze/cifs.xml"


@pytest.fixture(scope="module")
def hub(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TRAFFIC_HUB_LIMITS__HEADER_TIMEOUT_S", "120")  # the crowd must outlast the measurement
        with started_hub(kafka_bootstrap, tmp_path_factory.mktemp("crowd"), "crowd") as process:
            wait_until(lambda: httpx2.get(process.url + CIFS, headers=auth(KEYS.partner)).status_code == 200, 60)
            yield process


def timed(port: int, raw: bytes, expect: int) -> float:
    """Seconds from connecting to the whole answer, on a fresh connection."""
    started = time.perf_counter()
    conn = Conn(port)
    try:
        conn.send(raw)
        reply = conn.reply()
    finally:
        conn.close()
    assert reply.status == expect
    return time.perf_counter() - started


def medians(port: int, probes: dict[str, tuple[bytes, int]]) -> dict[str, float]:
    samples: dict[str, list[float]] = {name: [] for name in probes}
    for _ in range(SAMPLES):  # interleaved, so both see the same moments of the machine
        for name, (raw, expect) in probes.items():
            samples[name].append(timed(port, raw, expect))
    return {name: statistics.median(values) for name, values in samples.items()}


def crowd(port: int, opened: list[socket.socket]) -> None:
    for number in range(CROWD):
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        if number % 2:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: 1\r\n")  # a head that never ends
        opened.append(sock)


def still_open(sockets: list[socket.socket]) -> int:
    """How many the server neither answered nor closed."""
    alive = 0
    for sock in sockets:
        sock.setblocking(False)
        try:
            sock.recv(1)
        except BlockingIOError:
            alive += 1
        except OSError:
            pass
    return alive


def test_healthz_and_a_feed_poll_stay_fast_beside_a_thousand_idle_connections(hub: HubProcess) -> None:
    etag = httpx2.get(hub.url + CIFS, headers=auth(KEYS.partner) | {"Accept-Encoding": "identity"}).headers["etag"]
    probes = {
        "healthz": (request("/healthz"), 200),
        "feed poll": (request(CIFS, auth(KEYS.partner) | {"If-None-Match": etag}), 304),
        "feed": (request(CIFS, auth(KEYS.partner) | {"Accept-Encoding": "gzip"}), 200),
    }
    unloaded = medians(hub.port, probes)
    opened: list[socket.socket] = []
    try:
        crowd(hub.port, opened)
        loaded = medians(hub.port, probes)
        assert still_open(opened) == CROWD  # the crowd was really there while we measured
    finally:
        for sock in opened:
            sock.close()
    report = ", ".join(f"{n} {unloaded[n] * 1000:.1f} → {loaded[n] * 1000:.1f} ms" for n in probes)
    print(f"median latency, idle → beside {CROWD} idle/slow connections: {report}")
    for name in probes:
        assert loaded[name] - unloaded[name] < 0.100, report
    assert "Traceback" not in Path(hub.log).read_text(encoding="utf-8", errors="replace")
