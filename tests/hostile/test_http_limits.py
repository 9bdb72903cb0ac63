"""Idle, slow and oversized clients against the HTTP protocol (issue 14, findings 3 and 9).

A real uvicorn server with the hub's protocol (`fastproto.feed_protocol`) and small limits, in front of
an app that answers everything itself: an idle socket, a header line every few hundred milliseconds,
a huge header, a body that never finishes, and more connections than allowed are each cut with the
documented answer, on the normal path and the protocol's own feed path, and every answer written by
the protocol carries the security headers.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from starlette.types import Receive, Scope, Send

from tests.integration.hubs import KEYS, wait_until
from tests.integration.test_feed_fastpath import ETAG, Conn, Feeds, poll, principals, request
from tests.uvicorn_thread import uvicorn_thread, with_lane
from traffic_hub.api.fastproto import feed_protocol
from traffic_hub.api.feedlane import FeedLane
from traffic_hub.auth import KeyStore
from traffic_hub.metrics import Metrics
from traffic_hub.settings import LimitSettings

LIMITS = LimitSettings(
    max_header_bytes=4096, header_timeout_s=1.0, body_timeout_s=1.0, keep_alive_s=1, max_connections=20
)
SECURITY = {"content-security-policy", "x-content-type-options", "referrer-policy", "x-frame-options"}


def app_reading_bodies(lane: FeedLane) -> Any:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] == "/slow":  # answers after longer than the head timeout
            await asyncio.sleep(LIMITS.header_timeout_s * 2)
        body = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        answer = b"read %d bytes" % len(body)
        headers = [(b"content-length", str(len(answer)).encode()), (b"x-answered-by", b"app")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": answer})

    return with_lane(lane, app)


@dataclass
class Server:
    port: int

    def connect(self) -> Conn:
        return Conn(self.port)


@contextmanager
def serving(limits: LimitSettings) -> Iterator[Server]:
    lane = FeedLane(Feeds(), KeyStore(principals()), Metrics())
    with uvicorn_thread(app_reading_bodies(lane), feed_protocol(limits), limits.keep_alive_s, "error") as server:
        yield Server(server.config.port)


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with serving(LIMITS) as running:
        yield running


@pytest.fixture(scope="module")
def crowded() -> Iterator[Server]:
    """Few connections allowed, and a head timeout long enough to hold them while the test looks."""
    with serving(LIMITS.model_copy(update={"header_timeout_s": 60.0})) as running:
        yield running


def closed(conn: Conn, within: float) -> bool:
    """The server closes the connection within `within` seconds (reading what it sends first)."""
    deadline = time.monotonic() + within
    conn.sock.settimeout(0.2)
    while time.monotonic() < deadline:
        try:
            chunk = conn.sock.recv(65536)
        except TimeoutError:
            continue
        except ConnectionResetError:
            return True
        if not chunk:
            return True
        conn.buffer += chunk
    return False


def status_of(conn: Conn) -> int:
    line = conn.buffer.partition(b"\r\n")[0]
    return int(line.split(b" ")[1]) if line.startswith(b"HTTP/1.1 ") else 0


def test_a_plain_request_is_answered_and_the_connection_kept(server: Server) -> None:
    conn = server.connect()
    try:
        conn.send(request("/anything"))
        reply = conn.reply()
        assert (reply.status, reply.body) == (200, b"read 0 bytes")
        conn.send(request("/anything", {"Content-Length": "5"}) + b"hello")
        assert conn.reply().body == b"read 5 bytes"
    finally:
        conn.close()


def test_a_slow_answer_is_not_cut_by_the_request_deadlines(server: Server) -> None:
    conn = server.connect()
    try:
        conn.send(request("/slow"))
        assert conn.reply().status == 200  # the deadlines are the client's, never the app's
    finally:
        conn.close()


def test_an_idle_socket_is_closed_after_the_header_timeout(server: Server) -> None:
    conn = server.connect()
    try:
        assert closed(conn, within=LIMITS.header_timeout_s + 5)
        assert status_of(conn) == 408
    finally:
        conn.close()


def test_a_slow_header_is_cut_at_the_header_timeout(server: Server) -> None:
    conn = server.connect()
    started = time.monotonic()
    try:
        conn.send(b"GET /anything HTTP/1.1\r\nHost: x\r\n")
        cut = False
        for number in range(100):  # a header line every 0.2 s would take 20 s
            try:
                conn.send(f"X-Slow-{number}: a\r\n".encode())
            except OSError:
                cut = True
                break
            if closed(conn, within=0.2):
                cut = True
                break
        assert cut
        assert time.monotonic() - started < 15  # cut long before the 20 s the client wanted (generous bound)
        assert status_of(conn) == 408
        head = conn.buffer.partition(b"\r\n\r\n")[0].decode().lower()
        assert all(f"\r\n{name}:" in head for name in SECURITY)
    finally:
        conn.close()


def test_a_slow_header_after_a_kept_alive_request_is_cut_too(server: Server) -> None:
    conn = server.connect()
    try:
        conn.send(request("/anything"))
        assert conn.reply().status == 200
        conn.send(b"GET /again HTTP/1.1\r\n")  # then nothing: neither keep-alive idle nor a whole head
        assert closed(conn, within=LIMITS.header_timeout_s + 5)
        assert status_of(conn) == 408
    finally:
        conn.close()


def test_a_keep_alive_connection_is_closed_when_idle(server: Server) -> None:
    conn = server.connect()
    try:
        conn.send(request("/anything"))
        assert conn.reply().status == 200
        assert closed(conn, within=LIMITS.keep_alive_s + 5)
        assert conn.buffer == b""  # closed quietly
    finally:
        conn.close()


@pytest.mark.parametrize("raw", [
    request("/anything", {"X-Big": "a" * 8000}),
    b"GET /" + b"a" * 8000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    poll(**{"X-Big": "a" * 8000}),  # a feed poll the fast path would answer, but too big
])
def test_a_head_over_the_limit_gets_431(server: Server, raw: bytes) -> None:
    conn = server.connect()
    try:
        conn.send(raw)
        assert closed(conn, within=5)
        assert status_of(conn) == 431
        head, _, body = conn.buffer.partition(b"\r\n\r\n")
        assert b"content-type: application/problem+json" in head
        assert orjson.loads(body)["status"] == 431
    finally:
        conn.close()


def test_a_huge_header_is_refused_before_it_is_read(server: Server) -> None:
    conn = server.connect()
    sent = 0
    try:
        conn.send(b"GET /anything HTTP/1.1\r\nX-Huge: ")
        chunk = b"a" * 65536
        refused = False
        try:  # the server stops reading and closes: the client cannot send its 200 MiB
            for _ in range(200 * 16):
                conn.send(chunk)
                sent += len(chunk)
        except OSError:
            refused = True
        assert refused
        assert sent < 64 * 1024 * 1024
    finally:
        conn.close()


def test_a_body_that_never_finishes_is_cut(server: Server) -> None:
    conn = server.connect()
    try:
        conn.send(request("/upload", {"Content-Length": "100"}) + b"0123456789")
        assert closed(conn, within=LIMITS.body_timeout_s + 5)
        assert status_of(conn) == 408
    finally:
        conn.close()


def test_the_fast_path_304_carries_the_security_headers(server: Server) -> None:
    conn = server.connect()
    try:
        conn.send(poll())
        reply = conn.reply()
        assert (reply.status, reply.header("etag")) == (304, ETAG)
        assert {name for name, _ in reply.headers} >= SECURITY
        assert "frame-ancestors 'none'" in (reply.header("content-security-policy") or "")
        assert reply.header("x-content-type-options") == "nosniff"
        assert reply.header("referrer-policy") == "no-referrer"
    finally:
        conn.close()


def test_beyond_the_connection_limit_requests_get_503_with_retry_after(crowded: Server) -> None:
    server = crowded
    held: list[socket.socket] = []
    try:
        for _ in range(LIMITS.max_connections + 2):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
            sock.sendall(b"GET /hold HTTP/1.1\r\n")  # a partial head keeps each one open (up to the timeout)
            held.append(sock)
        for raw in (request("/anything"), poll()):  # the normal path, and a poll the fast path would answer
            conn = server.connect()
            try:
                conn.send(raw)
                reply = conn.reply()
                assert reply.status == 503
                assert reply.header("retry-after") == "1"
                assert reply.header("connection") == "close"
                assert reply.header("content-type") == "application/problem+json"
                assert {name for name, _ in reply.headers} >= SECURITY
            finally:
                conn.close()
    finally:
        for sock in held:
            sock.close()

    def served() -> bool:  # once they are gone, requests are served again
        conn = server.connect()
        try:
            conn.send(request("/anything"))
            return conn.reply().status == 200
        finally:
            conn.close()

    wait_until(served, timeout=10)


def test_feed_polls_with_the_key_in_the_query_still_work(server: Server) -> None:
    conn = server.connect()
    try:
        conn.send(request(f"/feeds/waze/cifs.xml?key={KEYS.partner}", {"If-None-Match": ETAG}))
        assert conn.reply().status == 304
    finally:
        conn.close()
