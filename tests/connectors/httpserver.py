"""A real local HTTP server for connector tests (`http.server` in a thread).

Each path serves a `Route`: a body with an ETag and Last-Modified (answering 304 to a matching
If-None-Match / If-Modified-Since), or an error status, or a slow answer, or a huge streamed body
without Content-Length. Requests are recorded so tests can check what the client sent.
"""

from __future__ import annotations

import email.utils
import hashlib
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

LAST_MODIFIED = "Tue, 01 Dec 2026 08:00:00 GMT"


@dataclass(frozen=True)
class Route:
    body: bytes = b""
    status: int = 200
    content_type: str = "application/json"
    validators: bool = True  # send ETag / Last-Modified and honour conditional requests
    last_modified: str = LAST_MODIFIED
    delay_s: float = 0.0  # wait before answering (woken early when the server stops)
    huge_bytes: int = 0  # stream this many bytes, chunked, no Content-Length
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def etag(self) -> str:
        return '"' + hashlib.sha256(self.body).hexdigest()[:16] + '"'


@dataclass(frozen=True)
class Seen:
    path: str
    headers: dict[str, str]


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that resets its connection (the hub giving up on a source mid-request) is the client's
        doing: not a traceback on the test run's output (fresh-clone CI, 8 December)."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class LocalServer:
    def __init__(self) -> None:
        self._routes: dict[str, Route] = {}
        self._lock = threading.Lock()
        self.stopping = threading.Event()
        self.requests: list[Seen] = []
        self._server = _Server(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="test-http", daemon=True)

    @property
    def base(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def url(self, path: str) -> str:
        return self.base + path

    def set(self, path: str, route: Route) -> None:
        with self._lock:
            self._routes[path] = route

    def route(self, path: str) -> Route | None:
        with self._lock:
            return self._routes.get(path)

    def record(self, seen: Seen) -> None:
        with self._lock:
            self.requests.append(seen)

    def hits(self, path: str) -> list[Seen]:
        with self._lock:
            return [seen for seen in self.requests if seen.path == path]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()  # joins the handler threads (block_on_close)
        self._thread.join(timeout=5)


@contextmanager
def local_server() -> Iterator[LocalServer]:
    server = LocalServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _handler(server: LocalServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = 2  # an idle keep-alive connection ends, so stopping the server never waits long

        def log_message(self, format: str, *args: object) -> None:
            return

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            server.record(Seen(path, {k.lower(): v for k, v in self.headers.items()}))
            route = server.route(path)
            try:
                if route is None:
                    self._answer(404, b"not found", "text/plain", {})
                    return
                if route.delay_s and server.stopping.wait(route.delay_s):
                    return
                self._serve(route)
            except (BrokenPipeError, ConnectionResetError, TimeoutError):
                self.close_connection = True  # the client gave up (size limit, timeout): expected

        def _serve(self, route: Route) -> None:
            extra = dict(route.headers)
            if route.validators and route.status == 200:
                extra.update({"ETag": route.etag, "Last-Modified": route.last_modified})
                if self._unchanged(route):
                    self._answer(304, b"", None, extra)
                    return
            if route.huge_bytes:
                self._stream(route, extra)
                return
            self._answer(route.status, route.body, route.content_type, extra)

        def _unchanged(self, route: Route) -> bool:
            tag = self.headers.get("If-None-Match")
            if tag is not None:
                return route.etag in [t.strip() for t in tag.split(",")]
            since = self.headers.get("If-Modified-Since")
            if since is None:
                return False
            return bool(
                email.utils.parsedate_to_datetime(since) >= email.utils.parsedate_to_datetime(route.last_modified)
            )

        def _answer(self, status: int, body: bytes, content_type: str | None, extra: dict[str, str]) -> None:
            self.send_response(status)
            if content_type:
                self.send_header("Content-Type", content_type)
            for name, value in extra.items():
                self.send_header(name, value)
            if status != 304:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if status != 304:
                self.wfile.write(body)

        def _stream(self, route: Route, extra: dict[str, str]) -> None:
            self.send_response(200)
            self.send_header("Content-Type", route.content_type)
            self.send_header("Transfer-Encoding", "chunked")
            for name, value in extra.items():
                self.send_header(name, value)
            self.end_headers()
            chunk = b"x" * 65536
            left = route.huge_bytes
            while left > 0 and not server.stopping.is_set():
                piece = chunk[: min(left, len(chunk))]
                self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                left -= len(piece)
            self.wfile.write(b"0\r\n\r\n")
            self.close_connection = True

    return Handler
