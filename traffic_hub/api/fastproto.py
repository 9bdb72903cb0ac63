"""Conditional feed polls answered inside uvicorn's HTTP protocol, before any ASGI machinery.

A partner polling with the ETag it already holds gets a 304 of a few hundred bytes; on the normal path
the parser callbacks, the scope, the request task and the response messages cost ten times the work
of deciding. `FeedProtocol` is uvicorn's httptools protocol that, when a whole plain poll arrives on an
idle connection, asks the `FeedLane` of the lifespan state (the state the ASGI app sees) and writes its
304 itself. Every other request, and every poll the lane leaves alone, goes to uvicorn untouched.

It also holds the connection limits uvicorn's httptools protocol lacks (issue 14: an idle socket stayed
open, a header line every 4 s held a connection for 40 s, a 200 MiB header was read whole), for the fast
and the normal path alike, from `settings.LimitSettings`:
- a request head larger than `max_header_bytes` gets 431 and the connection is closed;
- a request head must be complete `header_timeout_s` after the connection opens or its first byte
  arrives, else 408 and closed; a body must be complete `body_timeout_s` after its head, else closed;
- an idle keep-alive connection is closed after `keep_alive_s` (uvicorn's `timeout_keep_alive`);
- beyond `max_connections` open connections, a request gets 503 with Retry-After and its connection is
  closed (a 304 from the fast path too: the normal path answers it with the 503).
Every response written here carries the security headers (`secheaders`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from http import HTTPStatus
from typing import Any

import orjson
from starlette.types import Receive, Scope, Send
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from traffic_hub.api.feedlane import LANE, FeedLane
from traffic_hub.api.secheaders import header_lines, security_headers
from traffic_hub.settings import LimitSettings

log = logging.getLogger(__name__)

DEFAULTS = LimitSettings()
RETRY_AFTER_S = 1
WARN_EVERY_S = 10.0


def problem_bytes(status: int, detail: str, extra: list[tuple[bytes, bytes]]) -> tuple[bytes, bytes]:
    """The head lines (after the status line) and body of a problem response that closes the connection."""
    title = HTTPStatus(status).phrase
    body = orjson.dumps({"type": "about:blank", "title": title, "status": status, "detail": detail})
    lines = [
        (b"content-type", b"application/problem+json"),
        (b"content-length", str(len(body)).encode("ascii")),
        (b"connection", b"close"),
        *extra,
    ]
    return header_lines(lines), body


class _Throttle:
    """Warnings at most every `WARN_EVERY_S` per kind (an attack must not flood the log)."""

    def __init__(self) -> None:
        self._last: dict[str, float] = {}

    def warn(self, message: str, *args: Any) -> None:
        now = time.monotonic()
        if now - self._last.get(message, -WARN_EVERY_S) >= WARN_EVERY_S:
            self._last[message] = now
            log.warning(message, *args)


_warn = _Throttle().warn


def overloaded(security: list[tuple[bytes, bytes]]) -> Any:
    """The ASGI answer beyond `max_connections`: 503, Retry-After, and the connection closes."""
    body = orjson.dumps(
        {
            "type": "about:blank",
            "title": "Service Unavailable",
            "status": 503,
            "detail": "the server has as many connections open as it may; retry later",
        }
    )
    headers = [
        (b"content-type", b"application/problem+json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
        (b"retry-after", str(RETRY_AFTER_S).encode()),
        *security,
    ]

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


class FeedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, answering plain conditional feed polls itself when it can, with limits.

    The keep-alive timer is not re-armed per answered poll (that would cost as much as the answer): the
    timer notes the last answer and, when it fires, waits out the rest of the timeout from there.
    The limits are class attributes: `feed_protocol` makes the class for a `LimitSettings`.
    """

    max_header_bytes = DEFAULTS.max_header_bytes
    header_timeout_s = DEFAULTS.header_timeout_s
    body_timeout_s = DEFAULTS.body_timeout_s
    max_connections = DEFAULTS.max_connections
    security = security_headers()

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._fast = not self.root_path and self.limit_concurrency is None
        self._between_messages = True  # the parser holds no partial request
        self._answered_at = 0.0
        self._head_open = True  # no complete request head since the connection or the last message began
        self._head_bytes = 0  # bytes of the open head received (a partial request after a whole one: not counted)
        self._awaiting_body = False
        self._deadline: asyncio.TimerHandle | None = None  # for the head, or for the body

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.header_timeout_s, self._head_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._fast and self._between_messages and not self.pipeline and (
            self.cycle is None or self.cycle.response_complete
        ):
            try:
                if self._answer(data):
                    return
            except Exception:  # a bug here must not cost the request: the normal path answers it
                log.exception("feed fast path failed; the normal path answers")
        if self._head_open:
            self._head_bytes += len(data)
        super().data_received(data)
        if self.transport.is_closing():
            return
        if self._head_open and self._head_bytes > self.max_header_bytes:
            _warn("request head over %d bytes refused (431)", self.max_header_bytes)
            self._refuse(431, f"the request head exceeds {self.max_header_bytes} bytes")
        elif self._deadline is None and ((self._head_open and self._head_bytes) or self._awaiting_body):
            body = self._awaiting_body
            self._arm(self.body_timeout_s if body else self.header_timeout_s,
                      self._body_timed_out if body else self._head_timed_out)

    def on_message_begin(self) -> None:
        self._between_messages = False
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        if self.transport.is_closing():  # refused earlier in this same chunk
            return
        self._head_open = False
        self._head_bytes = 0
        self._awaiting_body = True
        self._disarm()
        size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        if size > self.max_header_bytes:  # a whole head in one chunk: the parser has it, the app must not
            _warn("request head over %d bytes refused (431)", self.max_header_bytes)
            self._refuse(431, f"the request head exceeds {self.max_header_bytes} bytes")
            return
        if len(self.connections) > self.max_connections:
            _warn("over %d connections: requests answered 503", self.max_connections)
            app, self.app = self.app, overloaded(self.security)
            try:
                super().on_headers_complete()
            finally:
                self.app = app
            return
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self.transport.is_closing():
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self.transport.is_closing() and (self.cycle is None or self.cycle.response_complete):
            return  # refused: no request to complete
        self._between_messages = not self.parser.should_upgrade()
        self._head_open = True
        self._head_bytes = 0
        self._awaiting_body = False
        self._disarm()
        super().on_message_complete()

    def send_400_response(self, msg: str) -> None:
        self._refuse(400, msg)

    # --- deadlines ---------------------------------------------------------------------------------

    def _arm(self, delay: float, handler: Any) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(delay, handler)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _head_timed_out(self) -> None:
        self._deadline = None
        if self._head_open and not self.transport.is_closing():
            self._refuse(408, f"no complete request head within {self.header_timeout_s:g} s")

    def _body_timed_out(self) -> None:
        self._deadline = None
        if self._awaiting_body and not self.transport.is_closing():
            _warn("request body not complete within %g s: connection closed", self.body_timeout_s)
            self._refuse(408, f"the request body did not arrive within {self.body_timeout_s:g} s")

    def _refuse(self, status: int, detail: str) -> None:
        """Answer `status` (unless a response is under way on this connection) and close it.

        A request still waiting for its body is cut off: the app reads a disconnect and what it
        answers is dropped.
        """
        cycle = self.cycle
        if cycle is None or cycle.response_complete or not cycle.response_started:
            lines, body = problem_bytes(status, detail, self.security)
            status_line = b"HTTP/1.1 %d %s\r\n" % (status, HTTPStatus(status).phrase.encode("ascii"))
            defaults = header_lines(self.server_state.default_headers)
            self.transport.write(status_line + defaults + lines + b"\r\n" + body)
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True
            cycle.message_event.set()
        self._unset_keepalive_if_required()
        self.transport.close()

    def timeout_keep_alive_handler(self) -> None:
        idle = self.loop.time() - self._answered_at
        if idle < self.timeout_keep_alive and not self.transport.is_closing():
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive - idle, self.timeout_keep_alive_handler
            )
            return
        super().timeout_keep_alive_handler()

    def _answer(self, data: bytes) -> bool:
        lane: FeedLane | None = self.app_state.get(LANE)
        if lane is None or self.flow.write_paused or self.transport.is_closing():
            return False
        if len(data) > self.max_header_bytes or len(self.connections) > self.max_connections:
            return False  # the normal path refuses it
        answer = lane.answer(data)
        if answer is None:
            return False
        self._disarm()  # a whole request came: no head deadline
        self.server_state.total_requests += 1
        if self.access_log:
            self._log_access(data)
        self.transport.write(answer.response_with(self.server_state.default_headers))
        if answer.close:
            self._unset_keepalive_if_required()
            self.transport.close()
            return True
        self._answered_at = self.loop.time()
        if self.timeout_keep_alive_task is None:
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive, self.timeout_keep_alive_handler
            )
        return True

    def _log_access(self, data: bytes) -> None:
        """The line uvicorn writes (its formatter wants exactly these five arguments)."""
        method, target, _ = data[: data.find(b"\r\n")].decode("ascii").split(" ", 2)
        client = "%s:%d" % self.client if self.client else ""  # noqa: UP031 - uvicorn's own format
        self.access_logger.info('%s - "%s %s HTTP/%s" %d', client, method, target, "1.1", 304)

def feed_protocol(limits: LimitSettings, map_tiles: str | None = None) -> type[FeedProtocol]:
    """`FeedProtocol` with these limits and security headers (uvicorn takes a class for `http`)."""
    return type(
        "ConfiguredFeedProtocol",
        (FeedProtocol,),
        {
            "max_header_bytes": limits.max_header_bytes,
            "header_timeout_s": limits.header_timeout_s,
            "body_timeout_s": limits.body_timeout_s,
            "max_connections": limits.max_connections,
            "security": security_headers(map_tiles),
        },
    )
