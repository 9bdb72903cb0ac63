"""Sources served on loopback for the connector runners of the chaos run: recorded samples plus a live Waze feed.

Why: connector reports must flow through the run, from real formats, without the network. The recorded
Lille samples (`traffic_hub/demo/samples`, shifted to today) are served as they are; a Waze partner feed
changes under the run's control: `advance()` adds a hazard on a street of Lille and drops the oldest,
so every poll after it publishes a new incident report and an `ended` report. `add()` returns the uuid
of a new alert, to time a source item → event on every replica. Answers carry an ETag and honour
If-None-Match, like a real source.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson

from loadtests.eventgen import Street
from traffic_hub.demo.sources import DEMO_SOURCES, RECORDED_AT, SAMPLES, shift_text

CONTENT_TYPES = {"json": "application/json", "xml": "application/xml", "geojson": "application/geo+json"}
LIVE_PATH = "/waze-live.json"
LIVE_ALERTS = 12  # alerts on the live feed at a time; older ones are dropped (→ ended reports)


class SourceServer:
    """A threaded HTTP server on 127.0.0.1 serving the samples and the live Waze feed."""

    def __init__(self, streets: list[Street]) -> None:
        self._lock = threading.Lock()
        self._bodies: dict[str, tuple[bytes, str]] = {}
        self._streets = streets
        self._alerts: deque[dict[str, Any]] = deque()
        self._seq = 0
        self.requests = 0
        delta = datetime.now(UTC).replace(second=0, microsecond=0) - RECORDED_AT
        for _, _, filename, _ in DEMO_SOURCES:
            body = shift_text((SAMPLES / filename).read_text(encoding="utf-8"), delta).encode()
            self._bodies[f"/{filename}"] = (body, CONTENT_TYPES[filename.rsplit(".", 1)[1]])
        self._publish_live()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.1,), name="sources", daemon=True)

    @property
    def base(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def answer(self, path: str) -> tuple[bytes, str] | None:
        with self._lock:
            self.requests += 1
            return self._bodies.get(path)

    def add(self) -> str:
        """A new hazard on the live feed (the oldest beyond LIVE_ALERTS dropped); its uuid."""
        with self._lock:
            self._seq += 1
            street = self._streets[(self._seq * 37) % len(self._streets)]
            lon, lat = street.coordinates[len(street.coordinates) // 2]
            uuid = f"chaos-{int(time.time())}-{self._seq}"
            now_ms = int(time.time() * 1000)
            self._alerts.append({
                "uuid": uuid, "type": "HAZARD", "subtype": "HAZARD_ON_ROAD_POT_HOLE", "street": street.name,
                "city": "Lille", "country": "FR", "location": {"x": lon, "y": lat}, "pubMillis": now_ms - 60_000,
                "reliability": 6, "confidence": 1, "reportRating": 0, "magvar": 0, "roadType": 2,
            })
            while len(self._alerts) > LIVE_ALERTS:
                self._alerts.popleft()
            self._publish_live()
            return uuid

    def _publish_live(self) -> None:
        now_ms = int(time.time() * 1000)
        body = orjson.dumps({"alerts": list(self._alerts), "jams": [], "startTimeMillis": now_ms - 60_000,
                             "endTimeMillis": now_ms})
        self._bodies[LIVE_PATH] = (body, "application/json")

    def connectors_toml(self, interval_s: float) -> str:
        """A connectors file: one connector per sample and one on the live feed (loopback allowed)."""
        entries = [(name, kind, f"/{filename}", options) for name, kind, filename, options in DEMO_SOURCES]
        entries.append(("chaos-waze-live", "waze-partner-feed", LIVE_PATH, {}))
        out = []
        for name, kind, path, options in entries:
            out.append(
                f'[[connectors]]\nname = "{name}"\nkind = "{kind}"\nurl = "{self.base}{path}"\n'
                f"interval_s = {interval_s}\nallow_private = true\n"
                + (f"options = {_inline_table(options)}\n" if options else "")
            )
        return "\n".join(out)

    def write_connectors(self, path: Path, interval_s: float) -> Path:
        path.write_text(self.connectors_toml(interval_s), encoding="utf-8")
        return path


def _inline_table(options: dict[str, object]) -> str:
    return "{ " + ", ".join(f'{k} = "{v}"' for k, v in options.items()) + " }"


def _handler(server: SourceServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            found = server.answer(self.path.split("?", 1)[0])
            if found is None:
                self.send_error(404)
                return
            body, content_type = found
            etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
            if self.headers.get("If-None-Match") == etag:
                self.send_response(304)
                self.send_header("ETag", etag)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("ETag", etag)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


@contextmanager
def serving(streets: list[Street]) -> Iterator[SourceServer]:
    server = SourceServer(streets)
    server._thread.start()
    try:
        yield server
    finally:
        server._server.shutdown()
        server._server.server_close()
