"""The feed fast path's fallbacks (`api.fastproto`): a changed uvicorn, and a failure while answering.

The fast path lives on uvicorn internals. If an upgrade renames one, `feed_protocol` must notice at
start-up, say so once, and hand uvicorn a protocol that still answers every feed poll (200 and 304 on
the normal path); if the fast path raises while answering, the request must still get its answer.
Each case runs a real uvicorn server in front of an app that answers conditional polls itself, marked
`x-answered-by: app`, so a 304 without that header proves the fast path answered it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import pytest
import uvicorn
from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from tests.integration.hubs import wait_until
from tests.integration.test_feed_fastpath import CIFS, ETAG, Conn, Feeds, poll, principals, request
from tests.uvicorn_thread import uvicorn_thread, with_lane
from traffic_hub.api import fastproto
from traffic_hub.api.fastproto import (
    FAST_HOOKS,
    LIMIT_HOOKS,
    FeedProtocol,
    LimitedProtocol,
    StockProtocol,
    feed_protocol,
    missing_hooks,
)
from traffic_hub.api.feedlane import FeedLane
from traffic_hub.auth import KeyStore
from traffic_hub.metrics import Metrics
from traffic_hub.settings import LimitSettings

LIMITS = LimitSettings(
    max_header_bytes=4096, header_timeout_s=5.0, body_timeout_s=5.0, keep_alive_s=5, max_connections=3
)
FASTPROTO = "traffic_hub.api.fastproto"


def conditional_app(lane: FeedLane) -> Any:
    """Answers polls of `CIFS` as the hub's normal path would: 304 for the current ETag, else 200."""

    async def answer(scope: Scope, receive: Receive, send: Send) -> None:
        matches = dict(scope["headers"]).get(b"if-none-match") == ETAG.encode()
        status, body = (304, b"") if matches else (200, b"<feed/>")
        headers = [(b"etag", ETAG.encode()), (b"x-answered-by", b"app")]
        if status == 200:
            headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return with_lane(lane, answer)


def new_lane() -> FeedLane:
    return FeedLane(Feeds(), KeyStore(principals()), Metrics())


@contextmanager
def serving(protocol: type[Any], lane: FeedLane) -> Iterator[int]:
    with uvicorn_thread(conditional_app(lane), protocol, LIMITS.keep_alive_s) as server:
        port = server.config.port
        SERVERS[port] = server
        try:
            yield port
        finally:
            del SERVERS[port]


SERVERS: dict[int, uvicorn.Server] = {}


def _holds(connections: set[Any], count: int) -> bool:
    return len(connections) == count


def wait_until_idle(port: int) -> None:
    """Until the server has let go of every earlier connection (a client's close reaches it a moment later,
    and until then uvicorn still counts that connection against `limit_concurrency`)."""
    state = SERVERS[port].server_state
    wait_until(lambda: not state.connections and not state.tasks, timeout=10)


def exchange(port: int, *raw: bytes) -> list[tuple[int, str | None]]:
    """Sends each request on one connection; (status, x-answered-by) of each reply."""
    conn = Conn(port)
    try:
        replies = []
        for one in raw:
            conn.send(one)
            reply = conn.reply()
            replies.append((reply.status, reply.header("x-answered-by")))
        return replies
    finally:
        conn.close()


NORMAL_PATH = [(304, "app"), (200, "app"), (304, "app")]


def polls_on_the_normal_path(port: int) -> None:
    stale = poll(**{"If-None-Match": '"stale"'})
    assert exchange(port, poll(), stale, poll()) == NORMAL_PATH


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == FASTPROTO and r.levelno == logging.WARNING]


@pytest.fixture(autouse=True)
def fresh_throttle(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test sees the first line of each kind (the throttle is per process)."""
    monkeypatch.setattr(fastproto._throttle, "_last", {})
    monkeypatch.setattr(fastproto._throttle, "_skipped", {})


def without(real: Callable[[type], frozenset[str]], name: str) -> Callable[[type], frozenset[str]]:
    """`assigned_attributes` as if uvicorn had renamed `self.<name>`."""
    return lambda cls: real(cls) - {name}


# --- the start-up check -----------------------------------------------------------------------------------


def test_the_installed_uvicorn_has_every_hook_and_gets_the_fast_class(caplog: pytest.LogCaptureFixture) -> None:
    assert missing_hooks(HttpToolsProtocol, LIMIT_HOOKS + FAST_HOOKS) == []
    with caplog.at_level(logging.WARNING, logger=FASTPROTO):
        protocol = feed_protocol(LIMITS)
    assert issubclass(protocol, FeedProtocol)
    assert warnings_of(caplog) == []
    with serving(protocol, new_lane()) as port:  # and it is the fast path that answers
        assert exchange(port, poll(), poll(**{"If-None-Match": '"stale"'})) == [(304, None), (200, "app")]


def test_hooks_are_looked_up_on_the_class_its_instances_and_the_objects_they_hold() -> None:
    hooks = ("send_400_response", "pipeline", "url", "cycle.response_complete", "flow.write_paused",
             "server_state.total_requests", "renamed", "cycle.renamed", "flow.renamed")
    assert missing_hooks(HttpToolsProtocol, hooks) == ["renamed", "cycle.renamed", "flow.renamed"]


def test_a_renamed_fast_path_hook_keeps_the_limits_and_polls_take_the_normal_path(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(fastproto, "assigned_attributes", without(fastproto.assigned_attributes, "pipeline"))
    with caplog.at_level(logging.WARNING, logger=FASTPROTO):
        protocol = feed_protocol(LIMITS)
    assert issubclass(protocol, LimitedProtocol)
    assert not issubclass(protocol, FeedProtocol)
    [line] = warnings_of(caplog)
    assert f"uvicorn {uvicorn.__version__} lacks pipeline" in line
    assert "feed fast path off" in line
    assert "limits kept" in line
    with serving(protocol, new_lane()) as port:
        polls_on_the_normal_path(port)
        conn = Conn(port)  # the limits still hold: an oversized head gets the hub's 431
        try:
            conn.send(request(CIFS, {"X-Big": "x" * LIMITS.max_header_bytes}))
            assert conn.reply().status == 431
        finally:
            conn.close()


def test_a_removed_limits_hook_falls_back_to_uvicorns_own_protocol_and_limits(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delattr(HttpToolsProtocol, "send_400_response")
    with caplog.at_level(logging.WARNING, logger=FASTPROTO):
        protocol = feed_protocol(LIMITS)
    assert issubclass(protocol, StockProtocol)
    assert issubclass(protocol, H11Protocol)
    [line] = warnings_of(caplog)
    assert f"uvicorn {uvicorn.__version__} lacks send_400_response" in line
    assert "limit_concurrency=4" in line
    assert "h11_max_incomplete_event_size=4096" in line
    with serving(protocol, new_lane()) as port:
        polls_on_the_normal_path(port)
        wait_until_idle(port)
        state = SERVERS[port].server_state
        conns: list[Conn] = []
        try:  # beyond max_connections, uvicorn's own 503 (it counts the open connections when a request comes)
            statuses = []
            for opened in range(1, LIMITS.max_connections + 2):
                conns.append(Conn(port))
                wait_until(partial(_holds, state.connections, opened), timeout=10)  # uvicorn has it
                conns[-1].send(poll())
                statuses.append(conns[-1].reply().status)
            assert statuses == [304] * LIMITS.max_connections + [503]
        finally:
            for conn in conns:
                conn.close()
        conn = Conn(port)  # and uvicorn's own limit on a head still incomplete (h11 takes a whole one)
        try:
            conn.send(request(CIFS, {"X-Big": "x" * LIMITS.max_header_bytes})[:-4])
            assert conn.reply().status == 400
        finally:
            conn.close()


def test_several_missing_hooks_are_named_in_one_line(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(fastproto, "FAST_HOOKS", (*FAST_HOOKS, "pipelines", "flow.paused"))
    with caplog.at_level(logging.WARNING, logger=FASTPROTO):
        protocol = feed_protocol(LIMITS, "https://tiles.example.org/{z}/{x}/{y}.png")
    assert issubclass(protocol, LimitedProtocol)
    assert "tiles.example.org" in dict(protocol.security)[b"content-security-policy"].decode()
    [line] = warnings_of(caplog)
    assert "lacks pipelines, flow.paused:" in line


# --- failures at request time -------------------------------------------------------------------------------


def test_an_exception_deciding_a_poll_leaves_it_to_the_normal_path(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    lane = new_lane()

    def broken(request: bytes) -> None:
        raise RuntimeError("a bug in the lane")

    monkeypatch.setattr(FeedLane, "answer", lambda self, request: broken(request))
    with caplog.at_level(logging.WARNING, logger=FASTPROTO), serving(feed_protocol(LIMITS), lane) as port:
        polls_on_the_normal_path(port)
        polls_on_the_normal_path(port)
    lines = warnings_of(caplog)
    assert lines == ["feed fast path failed (RuntimeError), the normal path answers"]  # once per kind
    [record] = [r for r in caplog.records if r.name == FASTPROTO]
    assert record.exc_info is not None  # with its traceback


def test_an_exception_after_the_304_is_written_closes_the_connection_without_a_second_answer(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(self: FeedProtocol, data: bytes, close: bool) -> None:
        raise KeyError("bookkeeping")

    monkeypatch.setattr(FeedProtocol, "_after_answer", broken)
    with caplog.at_level(logging.WARNING, logger=FASTPROTO), serving(feed_protocol(LIMITS), new_lane()) as port:
        conn = Conn(port)
        try:
            conn.send(poll())
            reply = conn.reply()
            assert (reply.status, reply.header("x-answered-by")) == (304, None)
            assert conn.closed_by_server()
            assert conn.buffer == b""  # nothing else was written
        finally:
            conn.close()
    assert warnings_of(caplog) == ["feed fast path failed (KeyError), after its 304 was written; connection closed"]
