"""Conditional feed polls answered inside uvicorn's HTTP protocol, before any ASGI machinery.

Why: partners poll every feed with the ETag they already hold, so most feed traffic is 304s, and on the
normal path (parser callbacks, scope, request task, ASGI messages) a 304 costs far more than deciding it.
Before this path existed, `make bench` measured 5,034 and 8,082 304s/s on /feeds/waze/cifs.xml, 0.15x and
0.22x nginx serving the same file (34,131 and 36,481/s; runs of 28 Nov 2026, 15:21 and 15:43 UTC; goal
missed). Answered here from pre-encoded bytes, the same poll ran at 39,543-57,824/s in the six runs since,
1.21-1.42x nginx in the same runs (43,677 against 31,444/s in loadtests/RESULTS.md; README: 304s at
1.0-1.6x nginx across the feeds, 38-56k/s).

How: `FeedProtocol` is uvicorn's httptools protocol that, when a whole plain poll arrives on an idle
connection, asks the `FeedLane` of the lifespan state (the state the ASGI app sees) and writes its 304
itself. Every other request, and every poll the lane leaves alone, goes to uvicorn untouched.

It also holds the connection limits uvicorn's httptools protocol lacks (issue 14: an idle socket stayed
open, a header line every 4 s held a connection for 40 s, a 200 MiB header was read whole), for the fast
and the normal path alike, from `settings.LimitSettings` (`LimitedProtocol`):
- a request head larger than `max_header_bytes` gets 431 and the connection is closed;
- a request head must be complete `header_timeout_s` after the connection opens or its first byte
  arrives, else 408 and closed; a body must be complete `body_timeout_s` after its head, else closed;
- an idle keep-alive connection is closed after `keep_alive_s` (uvicorn's `timeout_keep_alive`);
- beyond `max_connections` open connections, a request gets 503 with Retry-After and its connection is
  closed (a 304 from the fast path too: the normal path answers it with the 503).
Every response written here carries the security headers (`secheaders`).

What it depends on: uvicorn internals, not its API. `LIMIT_HOOKS` (the parser callbacks it wraps,
`transport`, `cycle` and its response flags, `app`, `url`, `headers`, `_unset_keepalive_if_required`...)
for the limits, `FAST_HOOKS` (`pipeline`, `flow.write_paused`, `timeout_keep_alive_task`,
`timeout_keep_alive_handler`, `server_state.total_requests`...) for the fast path.

Its fallback: `feed_protocol` checks those hooks once, when the server is configured, against the
installed uvicorn's classes (class attributes, and the `self.<name>` assignments in their source). With a
fast-path hook missing, it logs one WARNING naming the hooks and the uvicorn version and returns the
limits alone (`LimitedProtocol`): polls take the normal path, slower but correct. With a limits hook
missing, it returns uvicorn's own h11 protocol (`StockProtocol`), which touches no internal, with the limits
uvicorn itself enforces mapped from the settings: `limit_concurrency` (503 beyond `max_connections`),
`h11_max_incomplete_event_size` (size of a head still incomplete), `timeout_keep_alive`; no head or body
timeouts then, and its own answers (400, 503) carry no security headers. At request time, an unexpected
exception while deciding or writing a fast answer is logged (once per kind every `WARN_EVERY_S`, with its
traceback) and the request goes to the normal path; if the answer was already written, the connection is
closed rather than answered twice.
"""

from __future__ import annotations

import ast
import asyncio
import copy
import functools
import inspect
import logging
import sys
import time
from collections.abc import Iterable
from http import HTTPStatus
from typing import Any

import orjson
import uvicorn
from starlette.types import Receive, Scope, Send
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from traffic_hub.api.feedlane import LANE, FeedLane
from traffic_hub.api.secheaders import header_lines, security_headers
from traffic_hub.settings import LimitSettings

log = logging.getLogger(__name__)

DEFAULTS = LimitSettings()
RETRY_AFTER_S = 1
WARN_EVERY_S = 10.0

# What the limits use of uvicorn's httptools protocol: methods wrapped or called, attributes read or set.
# `a.b`: attribute `b` of the object uvicorn keeps in `a`, whose class is `OWNERS[a]` in the protocol's module.
LIMIT_HOOKS = (
    "connection_made", "connection_lost", "data_received", "on_headers_complete", "on_body",
    "on_message_complete", "send_400_response", "_unset_keepalive_if_required", "transport", "loop", "url",
    "headers", "app", "connections", "server_state",
    "server_state.default_headers", "cycle", "cycle.response_complete", "cycle.response_started",
    "cycle.disconnected", "cycle.message_event",
)
# What the fast path uses besides.
FAST_HOOKS = (
    "on_message_begin", "parser", "pipeline", "flow", "flow.write_paused", "app_state", "root_path",
    "limit_concurrency",
    "timeout_keep_alive", "timeout_keep_alive_task", "timeout_keep_alive_handler",
    "server_state.total_requests", "access_log", "access_logger", "client",
)
OWNERS = {"cycle": "RequestResponseCycle", "flow": "FlowControl", "server_state": "ServerState"}


# --- the start-up check of uvicorn's hooks ---------------------------------------------------------------


@functools.cache
def _classes_in(module: str) -> dict[str, ast.ClassDef]:
    """The class statements of a module's source, by name (none when it ships no source)."""
    try:
        tree = ast.parse(inspect.getsource(sys.modules[module]))
    except (KeyError, OSError, TypeError, SyntaxError):
        return {}
    return {node.name: node for node in ast.walk(tree) if isinstance(node, ast.ClassDef)}


@functools.cache
def assigned_attributes(cls: type) -> frozenset[str]:
    """The `self.<name>` a class and its bases assign in their source (read once per module)."""
    names: set[str] = set()
    for klass in cls.__mro__:
        statement = _classes_in(klass.__module__).get(klass.__name__)
        if statement is None:
            continue
        for node in ast.walk(statement):
            if (isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store)
                    and isinstance(node.value, ast.Name) and node.value.id == "self"):
                names.add(node.attr)
    return frozenset(names)


def has_attribute(cls: type, name: str) -> bool:
    """`cls` has `name` as a class attribute or sets it on its instances."""
    return hasattr(cls, name) or name in assigned_attributes(cls)


def missing_hooks(base: type, hooks: Iterable[str]) -> list[str]:
    """The hooks (`name` or `owner.name`) the installed uvicorn's `base` protocol lacks."""
    module = vars(sys.modules[base.__module__])
    missing = []
    for hook in hooks:
        owner, _, name = hook.rpartition(".")
        if owner:
            owner_cls = module.get(OWNERS[owner])
            present = isinstance(owner_cls, type) and has_attribute(base, owner) and has_attribute(owner_cls, name)
        else:
            present = has_attribute(base, name)
        if not present:
            missing.append(hook)
    return missing


# --- answers written by the protocol ---------------------------------------------------------------------


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
    """Log lines at most every `WARN_EVERY_S` per kind (an attack or a bug per request must not flood the log)."""

    def __init__(self) -> None:
        self._last: dict[str, float] = {}
        self._skipped: dict[str, int] = {}

    def warn(self, message: str, *args: Any, kind: str | None = None, exc: BaseException | None = None) -> None:
        key = kind or message
        now = time.monotonic()
        if now - self._last.get(key, -WARN_EVERY_S) < WARN_EVERY_S:
            self._skipped[key] = self._skipped.get(key, 0) + 1
            return
        self._last[key] = now
        skipped = self._skipped.pop(key, 0)
        suffix = f" ({skipped} more since the last such line)" if skipped else ""
        log.warning(message + suffix, *args, exc_info=exc)


_throttle = _Throttle()
_warn = _throttle.warn


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


# --- the limits ------------------------------------------------------------------------------------------


class LimitedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the header, time and connection limits (the module docstring).

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


# --- the fast path ---------------------------------------------------------------------------------------


class FeedProtocol(LimitedProtocol):
    """`LimitedProtocol`, answering plain conditional feed polls itself when it can.

    The keep-alive timer is not re-armed per answered poll (that would cost as much as the answer): the
    timer notes the last answer and, when it fires, waits out the rest of the timeout from there.
    """

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

    def data_received(self, data: bytes) -> None:
        if self._fast and self._between_messages and self._answered(data):
            return
        super().data_received(data)

    def on_message_begin(self) -> None:
        self._between_messages = False
        super().on_message_begin()

    def on_message_complete(self) -> None:
        if not (self.transport.is_closing() and (self.cycle is None or self.cycle.response_complete)):
            self._between_messages = not self.parser.should_upgrade()
        super().on_message_complete()

    def timeout_keep_alive_handler(self) -> None:
        idle = self.loop.time() - self._answered_at
        if idle < self.timeout_keep_alive and not self.transport.is_closing():
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive - idle, self.timeout_keep_alive_handler
            )
            return
        super().timeout_keep_alive_handler()

    def _answered(self, data: bytes) -> bool:
        """True when the 304 for `data` was written here; False leaves the request to the normal path.

        A failure before the answer is written costs nothing but the normal path's time; after it, the
        connection is closed (the client has its answer; this connection's state is not sure).
        """
        written = False
        try:
            response = self._fast_response(data)
            if response is None:
                return False
            raw, close = response
            self._disarm()  # a whole request came: no head deadline (the normal path re-arms it)
            self.transport.write(raw)
            written = True
            self._after_answer(data, close)
            return True
        except Exception as exc:  # a bug here must not cost the request
            where = "after its 304 was written; connection closed" if written else "the normal path answers"
            _warn("feed fast path failed (%s), %s", type(exc).__name__, where, kind=f"fast:{type(exc).__name__}",
                  exc=exc)
            if written:
                self.transport.close()
            return written

    def _fast_response(self, data: bytes) -> tuple[bytes, bool] | None:
        """The 304's bytes and whether it closes the connection, or None for the normal path."""
        if self.pipeline or not (self.cycle is None or self.cycle.response_complete):
            return None
        lane: FeedLane | None = self.app_state.get(LANE)
        if lane is None or self.flow.write_paused or self.transport.is_closing():
            return None
        if len(data) > self.max_header_bytes or len(self.connections) > self.max_connections:
            return None  # the normal path refuses it
        answer = lane.answer(data)
        if answer is None:
            return None
        return answer.response_with(self.server_state.default_headers), answer.close

    def _after_answer(self, data: bytes, close: bool) -> None:
        if close:
            self._unset_keepalive_if_required()
            self.transport.close()
        else:
            self._answered_at = self.loop.time()
            if self.timeout_keep_alive_task is None:
                self.timeout_keep_alive_task = self.loop.call_later(
                    self.timeout_keep_alive, self.timeout_keep_alive_handler
                )
        self.server_state.total_requests += 1
        if self.access_log:
            self._log_access(data)

    def _log_access(self, data: bytes) -> None:
        """The line uvicorn writes (its formatter wants exactly these five arguments)."""
        method, target, _ = data[: data.find(b"\r\n")].decode("ascii").split(" ", 2)
        client = "%s:%d" % self.client if self.client else ""  # noqa: UP031 - uvicorn's own format
        self.access_logger.info('%s - "%s %s HTTP/%s" %d', client, method, target, "1.1", 304)


# --- the fallback when the limits' hooks are gone ------------------------------------------------------------


class StockProtocol(H11Protocol):
    """uvicorn's h11 protocol as is, with the limits uvicorn enforces itself taken from `LimitSettings`.

    Beyond `max_connections` open connections uvicorn answers 503 (`limit_concurrency`); a head still
    incomplete past `max_header_bytes` gets its 400 (`h11_max_incomplete_event_size`: h11 takes a whole
    head that came in one read, whatever its size); where the server's configuration
    already sets one of these, it stands. The configuration is copied, never changed.
    """

    max_header_bytes = DEFAULTS.max_header_bytes
    max_connections = DEFAULTS.max_connections

    def __init__(self, config: Config, *args: Any, **kwargs: Any) -> None:
        limited = copy.copy(config)
        if limited.limit_concurrency is None:
            limited.limit_concurrency = self.max_connections + 1  # uvicorn refuses at >=, the hub beyond
        if limited.h11_max_incomplete_event_size is None:
            limited.h11_max_incomplete_event_size = self.max_header_bytes
        super().__init__(limited, *args, **kwargs)


def _configured(base: type[asyncio.Protocol], limits: LimitSettings, map_tiles: str | None) -> type[asyncio.Protocol]:
    return type(
        f"Configured{base.__name__}",
        (base,),
        {
            "max_header_bytes": limits.max_header_bytes,
            "header_timeout_s": limits.header_timeout_s,
            "body_timeout_s": limits.body_timeout_s,
            "max_connections": limits.max_connections,
            "security": security_headers(map_tiles),
        },
    )


def feed_protocol(limits: LimitSettings, map_tiles: str | None = None) -> type[asyncio.Protocol]:
    """The protocol class for uvicorn's `http`: `FeedProtocol` with these limits, or its fallback.

    The installed uvicorn is checked here, once: with a fast-path hook missing, `LimitedProtocol`
    (polls on the normal path); with a limits hook missing, `StockProtocol`. One WARNING says which.
    """
    version = getattr(uvicorn, "__version__", "?")
    limit_missing = missing_hooks(HttpToolsProtocol, LIMIT_HOOKS)
    if limit_missing:
        log.warning(
            "uvicorn %s lacks %s: feed fast path and the hub's connection limits off; uvicorn's h11 protocol "
            "with uvicorn's own limits instead (limit_concurrency=%d, h11_max_incomplete_event_size=%d, "
            "timeout_keep_alive; no head/body timeouts)",
            version, ", ".join(limit_missing), limits.max_connections + 1, limits.max_header_bytes,
        )
        return _configured(StockProtocol, limits, map_tiles)
    fast_missing = missing_hooks(HttpToolsProtocol, FAST_HOOKS)
    if fast_missing:
        log.warning(
            "uvicorn %s lacks %s: feed fast path off, conditional polls take the normal path; "
            "the hub's header, time and connection limits kept",
            version, ", ".join(fast_missing),
        )
        return _configured(LimitedProtocol, limits, map_tiles)
    return _configured(FeedProtocol, limits, map_tiles)
