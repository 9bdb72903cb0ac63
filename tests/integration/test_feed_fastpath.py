"""Conditional feed polls answered in the HTTP protocol (`api.fastproto`), over real sockets.

Three layers: a real uvicorn server with `FeedProtocol` in front of an app that answers everything
itself (so a 304 proves the fast path answered and anything else proves the request fell through);
the request reader against httptools' parser on generated requests (it must never accept what the
parser would read differently); and a real hub process, where fast answers must be byte-for-byte
those of the normal path.
"""

from __future__ import annotations

import asyncio
import gc
import io
import logging
import re
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, cast

import httptools
import httpx2
import pytest
import uvicorn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.types import Receive, Scope, Send
from uvicorn.logging import AccessFormatter
from uvicorn.server import ServerState

from tests.faults.hubprocess import HubProcess, started_hub
from tests.integration.hubs import KEYS, auth, closure_body, wait_until
from tests.uvicorn_thread import uvicorn_thread, with_lane
from traffic_hub.api.fastproto import FeedProtocol
from traffic_hub.api.feedlane import LANE, FeedLane
from traffic_hub.api.feedpoll import read_poll
from traffic_hub.auth import KeyStore, Principal, Principals, Role, hash_key
from traffic_hub.metrics import Metrics

CIFS = "/feeds/waze/cifs.xml"
CSV = "/feeds/geojson/events.csv"
ETAG = '"0123456789abcdef"'
GZIP_ETAG = '"0123456789abcdef-gzip"'
MODIFIED = datetime(2026, 11, 28, 16, 0, tzinfo=UTC)
KEEP_ALIVE_S = 1


# --- a raw HTTP/1.1 client ---------------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for n, v in self.headers if n == name), None)


class Conn:
    """One keep-alive connection: raw requests out, responses parsed back."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buffer = b""

    def close(self) -> None:
        self.sock.close()

    def send(self, raw: bytes) -> None:
        self.sock.sendall(raw)

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed by the server")
        self.buffer += chunk

    def reply(self, head: bool = False) -> Reply:
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        block, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        lines = block.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = [(n.lower(), v.strip()) for n, _, v in (line.partition(":") for line in lines[1:])]
        length = 0 if head or status in (204, 304) else int(dict(headers).get("content-length", "0"))
        while len(self.buffer) < length:
            self._fill()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return Reply(status, headers, body)

    def closed_by_server(self, timeout: float = 5.0) -> bool:
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(1) == b""
        except TimeoutError:
            return False
        except ConnectionResetError:
            return True


def request(path: str, headers: dict[str, str] | None = None, method: str = "GET", version: str = "1.1") -> bytes:
    lines = [f"{method} {path} HTTP/{version}", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in (headers or {}).items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


# --- a real uvicorn server with FeedProtocol, in front of an app that answers everything itself -------


@dataclass
class Version:
    etag: str
    last_modified: datetime
    items: int


class Feeds:
    def __init__(self) -> None:
        self.current: dict[str, Version] = {
            "waze/cifs.xml": Version(ETAG, MODIFIED, 3),
            "geojson/events.csv": Version('"c5v"', MODIFIED, 3),
        }

    def get(self, feed: str) -> Version | None:
        return self.current.get(feed)


class ObservedFeedProtocol(FeedProtocol):
    """`FeedProtocol`, noting each chunk the server reads: tests wait for the server instead of sleeping."""

    reads: ClassVar[list[bytes]] = []

    def data_received(self, data: bytes) -> None:
        self.reads.append(data)
        super().data_received(data)


@dataclass
class Stub:
    port: int
    feeds: Feeds
    metrics: Metrics
    seen: list[str]  # requests the app answered (the ones that fell through)
    reads: list[bytes]  # what the server read, chunk by chunk (`ObservedFeedProtocol`)

    def counted(self, feed: str, partner: str) -> float:
        labels = {"feed": feed, "partner": partner, "status": "304"}
        return self.metrics.registry.get_sample_value("traffic_hub_feed_requests_total", labels) or 0.0


def principals() -> Principals:
    return Principals.of(
        [
            Principal(name="waze", role=Role.PARTNER, key_sha256=hash_key(KEYS.partner)),
            Principal(
                name="voirie", role=Role.ROADWORKS, communes=frozenset({"59350"}), key_sha256=hash_key(KEYS.lille)
            ),
        ]
    )


def app_answering_everything(lane: FeedLane, seen: list[str]) -> Any:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(f"{scope['method']} {scope['path']}")
        body = b"the app"
        headers = [(b"content-length", str(len(body)).encode()), (b"x-answered-by", b"app")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return with_lane(lane, app)


@pytest.fixture(scope="module")
def stub() -> Iterator[Stub]:
    feeds, metrics, seen = Feeds(), Metrics(), list[str]()
    lane = FeedLane(feeds, KeyStore(principals()), metrics)
    with uvicorn_thread(app_answering_everything(lane, seen), ObservedFeedProtocol, KEEP_ALIVE_S) as server:
        yield Stub(server.config.port, feeds, metrics, seen, ObservedFeedProtocol.reads)


@pytest.fixture
def conn(stub: Stub) -> Iterator[Conn]:
    stub.seen.clear()
    stub.reads.clear()
    connection = Conn(stub.port)
    yield connection
    connection.close()


def poll(path: str = CIFS, **headers: str) -> bytes:
    return request(path, {"Authorization": f"Bearer {KEYS.partner}", "If-None-Match": ETAG, **headers})


def test_a_matching_etag_gets_a_304_from_the_protocol_on_a_reused_connection(stub: Stub, conn: Conn) -> None:
    before = stub.counted("waze/cifs.xml", "waze")
    for _ in range(5):
        conn.send(poll())
        reply = conn.reply()
        assert reply.status == 304
        assert [n for n, _ in reply.headers] == [
            "date", "server", "etag", "last-modified", "cache-control", "vary", "x-feed-items",
            "content-security-policy", "x-content-type-options", "referrer-policy", "x-frame-options",
        ]
        assert reply.header("etag") == ETAG
        assert reply.header("last-modified") == "Sat, 28 Nov 2026 16:00:00 GMT"
        assert reply.header("cache-control") == "private, no-cache"
        assert reply.header("vary") == "Accept-Encoding, Authorization"
        assert reply.header("x-feed-items") == "3"
        assert reply.header("server") == "uvicorn"
    assert stub.seen == []
    assert stub.counted("waze/cifs.xml", "waze") == before + 5


@pytest.mark.parametrize(
    ("headers", "etag"),
    [
        ({"Accept-Encoding": "gzip, deflate"}, GZIP_ETAG),
        ({"If-None-Match": GZIP_ETAG}, ETAG),
        ({"If-None-Match": GZIP_ETAG, "Accept-Encoding": "GZIP"}, GZIP_ETAG),
        ({"If-None-Match": f'"other", W/{ETAG}'}, ETAG),
        ({"If-None-Match": "*"}, ETAG),
        ({"Connection": "keep-alive"}, ETAG),
        ({"Authorization": "", "If-None-Match": ETAG, "X-Key": "none"}, None),
    ],
)
def test_etag_variants(stub: Stub, conn: Conn, headers: dict[str, str], etag: str | None) -> None:
    if etag is None:  # empty Authorization: not a key, so the normal path answers (401 there)
        conn.send(poll(**headers))
        assert conn.reply().header("x-answered-by") == "app"
        return
    conn.send(poll(**headers))
    reply = conn.reply()
    assert (reply.status, reply.header("etag")) == (304, etag)
    assert stub.seen == []


def test_the_key_may_be_in_the_query_and_public_feeds_need_none(stub: Stub, conn: Conn) -> None:
    conn.send(request(f"{CIFS}?key={KEYS.partner}", {"If-None-Match": ETAG}))
    assert conn.reply().status == 304
    conn.send(request(CSV, {"If-None-Match": '"c5v"'}))
    assert conn.reply().status == 304
    assert stub.seen == []
    assert stub.counted("geojson/events.csv", "public") >= 1


def test_if_modified_since_with_the_feed_date(stub: Stub, conn: Conn) -> None:
    conn.send(request(CIFS, auth(KEYS.partner) | {"If-Modified-Since": "Sat, 28 Nov 2026 16:00:00 GMT"}))
    assert conn.reply().status == 304
    assert stub.seen == []


def test_head_gets_the_same_304(stub: Stub, conn: Conn) -> None:
    conn.send(request(CIFS, {"Authorization": f"Bearer {KEYS.partner}", "If-None-Match": ETAG}, method="HEAD"))
    reply = conn.reply(head=True)
    assert (reply.status, reply.header("etag")) == (304, ETAG)
    assert stub.seen == []


FALLS_THROUGH = {
    "stale etag": poll(**{"If-None-Match": '"stale"'}),
    "no condition": request(CIFS, {"Authorization": f"Bearer {KEYS.partner}"}),
    "no key": request(CIFS, {"If-None-Match": ETAG}),
    "unknown key": poll(Authorization="Bearer not-a-key"),
    "role not allowed": poll(Authorization=f"Bearer {KEYS.lille}"),
    "other date": request(CIFS, auth(KEYS.partner) | {"If-Modified-Since": "Sun, 29 Nov 2026 16:00:00 GMT"}),
    "unknown feed": poll("/feeds/waze/other.xml"),
    "escaped path": poll("/feeds/waze%2Fcifs.xml"),
    "dot segments": poll("/feeds/datex2/../waze/cifs.xml"),
    "HTTP/1.0": request(CIFS, {"Authorization": f"Bearer {KEYS.partner}", "If-None-Match": ETAG}, version="1.0"),
    "POST": request(CIFS, {"Authorization": f"Bearer {KEYS.partner}", "If-None-Match": ETAG}, method="POST"),
    "empty body": poll(**{"Content-Length": "0"}),
    "chunked": poll(**{"Transfer-Encoding": "chunked"}) + b"0\r\n\r\n",
    "upgrade": poll(Connection="Upgrade", Upgrade="h2c"),
    "expect": poll(Expect="100-continue"),
    "two keys": poll()[:-2] + f"Authorization: Bearer {KEYS.partner}\r\n\r\n".encode(),
    "folded header": poll()[:-2] + b" folded\r\n\r\n",
    "bare LF": poll().replace(b"\r\n", b"\n"),
}


@pytest.mark.parametrize("name", sorted(FALLS_THROUGH))
def test_anything_else_goes_to_the_normal_path(stub: Stub, conn: Conn, name: str) -> None:
    raw = FALLS_THROUGH[name]
    conn.send(raw)
    try:
        reply = conn.reply()
    except ConnectionError:
        reply = Reply(0, [], b"")
    assert reply.status != 304
    if reply.status == 200:
        assert reply.header("x-answered-by") == "app"


def test_pipelined_and_split_requests_go_to_the_normal_path(stub: Stub, conn: Conn) -> None:
    conn.send(poll() + request(CIFS, {"Authorization": f"Bearer {KEYS.partner}"}) + poll())
    assert [conn.reply().header("x-answered-by") for _ in range(3)] == ["app"] * 3
    assert stub.seen == [f"GET {CIFS}"] * 3
    raw = poll()
    stub.reads.clear()
    conn.send(raw[:20])
    wait_until(lambda: b"".join(stub.reads) == raw[:20], timeout=30)  # the server has read the first part alone
    conn.send(raw[20:])
    assert conn.reply().header("x-answered-by") == "app"
    conn.send(poll())  # and the next one is the protocol's again
    assert conn.reply().status == 304
    assert len(stub.seen) == 4


def test_connection_close_is_honoured(stub: Stub, conn: Conn) -> None:
    conn.send(poll(Connection="close"))
    reply = conn.reply()
    assert reply.status == 304
    assert reply.header("connection") == "close"
    assert conn.closed_by_server()


def polls_keep_it_open(conn: Conn, span_s: float, pause_s: float = 0.3) -> bool:
    """Polls `pause_s` apart on `conn` for `span_s`, each answered 304 on the same connection.

    False when the machine was too busy to mean anything: a poll went out a keep-alive timeout or more
    after the previous one was sent (the server answered that one later still), so the server was
    right to close. Only a close *within* the timeout fails the test."""
    conn.send(poll())
    assert conn.reply().status == 304
    first = sent = time.monotonic()
    while sent - first < span_s:
        time.sleep(pause_s)
        if time.monotonic() - sent >= KEEP_ALIVE_S:
            return False
        sent = time.monotonic()
        conn.send(poll())
        assert conn.reply().status == 304, "closed less than a keep-alive timeout after the last answer"
    return True


def test_keep_alive_counts_from_the_last_answer(stub: Stub, conn: Conn) -> None:
    """Polls closer than the 1 s keep-alive timeout keep one connection open for 2.5 timeouts; once
    idle, the server closes it (no deadline on how fast: only that it does)."""
    connections = [conn]
    try:
        while not polls_keep_it_open(connections[-1], span_s=2.5 * KEEP_ALIVE_S):
            assert len(connections) < 5, "the machine is too busy for a poll every 0.3 s"
            connections.append(Conn(stub.port))
        assert connections[-1].closed_by_server(timeout=30)
    finally:
        for extra in connections[1:]:
            extra.close()


def test_a_new_version_of_the_feed_ends_the_304s(stub: Stub, conn: Conn) -> None:
    conn.send(poll())
    assert conn.reply().status == 304
    stub.feeds.current["waze/cifs.xml"] = Version('"new"', MODIFIED, 4)
    try:
        conn.send(poll())
        assert conn.reply().header("x-answered-by") == "app"
        conn.send(poll(**{"If-None-Match": '"new"'}))
        reply = conn.reply()
        assert (reply.status, reply.header("etag"), reply.header("x-feed-items")) == (304, '"new"', "4")
        del stub.feeds.current["waze/cifs.xml"]  # being built: the normal path says 503
        conn.send(poll(**{"If-None-Match": '"new"'}))
        assert conn.reply().header("x-answered-by") == "app"
    finally:
        stub.feeds.current["waze/cifs.xml"] = Version(ETAG, MODIFIED, 3)


class Transport:
    def __init__(self) -> None:
        self.written: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 5555) if name == "peername" else default


def test_the_access_log_line_is_uvicorns(caplog: pytest.LogCaptureFixture) -> None:
    lane = FeedLane(Feeds(), KeyStore(principals()), Metrics())
    loop = asyncio.new_event_loop()
    try:
        config = uvicorn.Config(app_answering_everything(lane, []), http=FeedProtocol, log_config=None)
        protocol = FeedProtocol(config, ServerState(), {LANE: lane}, _loop=loop)
        transport = Transport()
        protocol.connection_made(cast(asyncio.Transport, transport))
        protocol.access_log = True
        handler = logging.StreamHandler(io.StringIO())
        handler.setFormatter(AccessFormatter("%(client_addr)s %(request_line)s %(status_code)s", use_colors=False))
        logging.getLogger("uvicorn.access").addHandler(handler)
        try:
            with caplog.at_level(logging.INFO, logger="uvicorn.access"):
                protocol.data_received(poll())
        finally:
            logging.getLogger("uvicorn.access").removeHandler(handler)
        assert transport.written[0].startswith(b"HTTP/1.1 304 Not Modified\r\n")
        assert handler.stream.getvalue() == f"127.0.0.1:5555 GET {CIFS} HTTP/1.1 304 Not Modified\n"
        protocol.connection_lost(None)
    finally:
        loop.close()


# --- the reader never accepts what the parser reads differently -----------------------------------------


class Parsed:
    def __init__(self) -> None:
        self.headers: list[tuple[bytes, bytes]] = []
        self.url = b""
        self.messages = 0
        self.body = b""
        self.keep_alive: bool | None = None
        self.parser: httptools.HttpRequestParser | None = None

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        assert self.parser is not None
        self.keep_alive = self.parser.should_keep_alive()  # as uvicorn reads it; reset after the message

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        self.messages += 1


PIECES = [
    "GET ", "HEAD ", "POST ", "/feeds/waze/cifs.xml", "/feeds/", "?key=abc", "?", "#x", "%2F", " HTTP/1.1", " HTTP/1.0",
    "\r\n", "\n", "\r", " ", "\t", ":", "Host: x\r\n", "Authorization: Bearer k\r\n", "If-None-Match: \"e\"\r\n",
    "Connection: close\r\n", "Connection: upgrade\r\n", "Upgrade: websocket\r\n", "Content-Length: 3\r\n",
    "Transfer-Encoding: chunked\r\n", "Accept-Encoding: gzip\r\n", "\x00", "\x7f", "é", "abc", "\r\n\r\n",
]


NAMES = st.sampled_from(
    [b"Host", b"authorization", b"AUTHORIZATION", b"If-None-Match", b"if-modified-since", b"Accept-Encoding",
     b"Connection", b"X-Authorization"] * 6
    + [b"Content-Length", b"Transfer-Encoding", b"Upgrade", b"Expect", b"A b", b"", b"Host\x00"]
)
CLEAN = st.text(" \t\x80\xff\",;=*/Wabcgzipclosekeep-alive", max_size=16).map(lambda t: t.encode("latin-1"))
VALUES = st.one_of(CLEAN, CLEAN, CLEAN, CLEAN, CLEAN, st.binary(max_size=8))
HEADER_LINES = st.builds(
    lambda name, colon, value, end: name + colon + value + end,
    NAMES,
    st.sampled_from([b":", b": ", b":\t"] * 4 + [b" :"]),
    VALUES,
    st.sampled_from([b"\r\n"] * 20 + [b"\n", b"\r\n "]),
)
STARTS = st.sampled_from(
    [b"GET /feeds/waze/cifs.xml HTTP/1.1\r\n", b"HEAD /feeds/a.csv?key=k%20&key=b HTTP/1.1\r\n"] * 4
    + [b"GET /feeds/x?a#b HTTP/1.1\r\n", b"GET /feeds/x HTTP/1.0\r\n", b"GET /feeds/x?\xff HTTP/1.1\r\n"]
)


def requests() -> st.SearchStrategy[bytes]:
    joined = st.lists(st.sampled_from(PIECES), max_size=14).map(lambda p: "".join(p).encode("utf-8"))
    built = st.builds(
        lambda start, lines, tail: start + b"".join(lines) + b"\r\n" + tail,
        STARTS,
        st.lists(HEADER_LINES, max_size=4),
        st.sampled_from([b""] * 6 + [b"abc", b"GET / HTTP/1.1\r\n\r\n"]),
    )
    distinct = st.builds(  # mostly acceptable: one of each header, plain values
        lambda start, headers: start + b"".join(n + b": " + v + b"\r\n" for n, v in headers.items()) + b"\r\n",
        STARTS,
        st.dictionaries(st.sampled_from([b"Host", b"Authorization", b"If-None-Match", b"Accept-Encoding",
                                         b"Connection", b"If-Modified-Since"]),
                        CLEAN | st.sampled_from([b"close", b"Keep-Alive, close", b'"e", W/"f"', b"Bearer k "])),
    )
    return distinct | distinct | built | built | joined | st.binary(max_size=200)


@given(raw=requests())
@settings(max_examples=3000, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_the_reader_agrees_with_httptools(raw: bytes) -> None:
    poll_ = read_poll(raw)
    if poll_ is None:
        return
    parsed = Parsed()
    parser = parsed.parser = httptools.HttpRequestParser(parsed)
    parser.feed_data(raw)  # must not raise: the reader accepted a valid request
    assert parsed.messages == 1
    assert parsed.body == b""
    assert parser.get_method() in (b"GET", b"HEAD")
    assert parser.get_http_version() == "1.1"
    assert not parser.should_upgrade()
    assert parsed.keep_alive is not poll_.close
    url = httptools.parse_url(parsed.url)
    assert url.path == b"/feeds/" + poll_.feed.encode()
    assert (url.query or b"") == poll_.query
    assert url.fragment is None
    names = [n for n, _ in parsed.headers]
    assert not {b"content-length", b"transfer-encoding", b"upgrade", b"expect"} & set(names)
    kept = {n: v.strip(b" \t") for n, v in parsed.headers}
    assert kept.get(b"authorization") == poll_.authorization
    assert kept.get(b"if-none-match") == poll_.if_none_match
    assert kept.get(b"if-modified-since") == poll_.if_modified_since
    assert kept.get(b"accept-encoding", b"") == poll_.accept_encoding


# --- a real hub: fast answers are the normal path's answers -----------------------------------------------


@pytest.fixture(scope="module")
def hub(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    with started_hub(kafka_bootstrap, tmp_path_factory.mktemp("fastpath"), "fastpath") as process:
        wait_until(lambda: httpx2.get(process.url + CSV).status_code == 200, timeout=60)
        yield process


def test_the_hub_process_freezes_its_start_heap_once_ready(hub: HubProcess) -> None:
    """`traffic-hub run` (a process of its own) takes its start's heap out of the cyclic collector
    (traffic_hub/heap.py); in-process hubs (the other tests) leave the test process's collector alone."""
    wait_until(lambda: "objects of the start frozen" in hub.log.read_text(errors="replace"), timeout=60)
    assert gc.get_freeze_count() == 0


def current_etag(hub: HubProcess, path: str = CIFS) -> str:
    return str(httpx2.get(hub.url + path, headers=auth(KEYS.partner) | {"Accept-Encoding": "identity"}).headers["etag"])


def fed_counter(hub: HubProcess, feed: str, partner: str) -> float:
    text = httpx2.get(hub.metrics_url).text
    pattern = rf'traffic_hub_feed_requests_total\{{feed="{re.escape(feed)}",partner="{partner}",status="304"\}} (\S+)'
    found = re.search(pattern, text)
    return float(found[1]) if found else 0.0


def without_date(reply: Reply) -> list[tuple[str, str]]:
    return [(n, v) for n, v in reply.headers if n != "date"]


@pytest.mark.kafka
@pytest.mark.parametrize("gzip", [False, True])
def test_fast_304s_equal_the_normal_paths(hub: HubProcess, gzip: bool) -> None:
    etag = current_etag(hub)
    extra = {"Accept-Encoding": "gzip"} if gzip else {}
    raw = request(CIFS, auth(KEYS.partner) | {"If-None-Match": etag} | extra)
    conn = Conn(hub.port)
    try:
        conn.send(raw)
        fast = conn.reply()
        conn.send(raw + raw)  # pipelined: the normal path answers both
        normal = [conn.reply(), conn.reply()]
    finally:
        conn.close()
    assert fast.status == 304
    assert fast.header("etag") == (etag[:-1] + '-gzip"' if gzip else etag)
    assert [without_date(r) for r in normal] == [without_date(fast)] * 2


@pytest.mark.kafka
@pytest.mark.parametrize("path", [CIFS, CSV])
def test_keys_stale_etags_and_head_on_the_hub(hub: HubProcess, path: str) -> None:
    etag = current_etag(hub, path)
    conn = Conn(hub.port)
    try:
        conn.send(request(path, {"If-None-Match": etag}))
        no_key = conn.reply()
        conn.send(request(path, auth(KEYS.lille) | {"If-None-Match": etag}))
        wrong_role = conn.reply()
        conn.send(request(path, auth(KEYS.partner) | {"If-None-Match": '"stale"', "Accept-Encoding": "identity"}))
        stale = conn.reply()
        conn.send(request(path, auth(KEYS.partner) | {"If-None-Match": etag}, method="HEAD"))
        head = conn.reply(head=True)
    finally:
        conn.close()
    if path == CIFS:
        assert (no_key.status, wrong_role.status) == (401, 403)
        assert no_key.body == httpx2.get(hub.url + path).content
        assert wrong_role.body == httpx2.get(hub.url + path, headers=auth(KEYS.lille)).content
    else:
        assert (no_key.status, wrong_role.status) == (304, 304)
    assert stale.status == 200
    assert stale.header("etag") == etag
    assert head.status == 304


@pytest.mark.kafka
def test_the_hub_counts_fast_304s_and_a_change_ends_them(hub: HubProcess) -> None:
    etag = current_etag(hub)
    before = fed_counter(hub, "waze/cifs.xml", "waze")
    conn = Conn(hub.port)
    try:
        for _ in range(20):
            conn.send(request(CIFS, auth(KEYS.partner) | {"If-None-Match": etag}))
            assert conn.reply().status == 304
        assert fed_counter(hub, "waze/cifs.xml", "waze") == before + 20
        body = closure_body(f"FAST-{uuid.uuid4().hex[:8]}")
        created = httpx2.post(hub.url + "/api/v1/closures", json=body, headers=auth(KEYS.lille))
        assert created.status_code == 201, created.text
        wait_until(lambda: current_etag(hub) != etag, timeout=10)
        conn.send(request(CIFS, auth(KEYS.partner) | {"If-None-Match": etag, "Accept-Encoding": "identity"}))
        changed = conn.reply()
        assert changed.status == 200
        assert created.json()["id"].encode() in changed.body
    finally:
        conn.close()
    assert "Traceback" not in Path(hub.log).read_text(encoding="utf-8", errors="replace")
