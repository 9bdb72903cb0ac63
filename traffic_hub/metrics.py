"""Prometheus metrics: one registry per hub (tests run several side by side), served on their own listener.

The metrics name principals (feed requests per partner) and connectors, so they are not served on the
public port: `serve_metrics` listens on a separate address (default 127.0.0.1:9108, loopback) that only
Prometheus reaches. It answers `GET /metrics` and nothing else, one request per connection, with a short
deadline, so a stray client cannot hold it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

Gauges = Callable[[], dict[str, float]]
HEAD_LIMIT = 8192  # bytes of request head the metrics listener reads
HEAD_TIMEOUT_S = 5.0


class _Gauges(Collector):
    def __init__(self, read: Gauges) -> None:
        self._read = read

    def collect(self) -> Iterator[Metric]:
        for name, value in self._read().items():
            family = GaugeMetricFamily(f"traffic_hub_{name}", name.replace("_", " "))
            family.add_metric([], value)
            yield family


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=lambda: CollectorRegistry(auto_describe=True))

    def __post_init__(self) -> None:
        r = self.registry
        self.http_requests = Counter(
            "traffic_hub_http_requests", "HTTP requests", ["method", "route", "status"], registry=r
        )
        self.http_latency = Histogram(
            "traffic_hub_http_request_seconds",
            "HTTP request latency",
            ["route"],
            registry=r,
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5),
        )
        self.feed_requests = Counter(
            "traffic_hub_feed_requests", "Feed requests per partner", ["feed", "partner", "status"], registry=r
        )
        self.closure_writes = Counter(
            "traffic_hub_closure_writes", "Closure writes acknowledged by Kafka", ["operation"], registry=r
        )

    def watch(self, read: Gauges) -> None:
        """Gauges read from live state at scrape time."""
        self.registry.register(_Gauges(read))


async def serve_metrics(registry: CollectorRegistry, host: str, port: int) -> asyncio.Server | None:
    """A listener answering `GET /metrics` from `registry` on host:port; None (logged) when it cannot bind.

    The hub's work is traffic, not metrics: a taken port costs the metrics, never the hub.
    """

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await _answer(registry, reader, writer)
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    try:
        server = await asyncio.start_server(handle, host, port, limit=HEAD_LIMIT)
    except OSError as exc:
        log.error("metrics listener on %s:%d not started: %s", host, port, exc)
        return None
    log.info("metrics on http://%s:%d/metrics", host, port)
    return server


async def _answer(registry: CollectorRegistry, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        async with asyncio.timeout(HEAD_TIMEOUT_S):
            head = await reader.readuntil(b"\r\n\r\n")
    except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        return
    method, _, rest = head.partition(b" ")
    target = rest.partition(b" ")[0].partition(b"?")[0]
    if method not in (b"GET", b"HEAD"):
        status, media_type, body = b"405 Method Not Allowed", b"text/plain", b"GET /metrics only\n"
    elif target != b"/metrics":
        status, media_type, body = b"404 Not Found", b"text/plain", b"GET /metrics only\n"
    else:
        status, media_type, body = b"200 OK", CONTENT_TYPE_LATEST.encode(), generate_latest(registry)
    writer.write(
        b"HTTP/1.1 " + status + b"\r\ncontent-type: " + media_type
        + b"\r\ncontent-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n"
        + (b"" if method == b"HEAD" else body)
    )
    with contextlib.suppress(ConnectionError):
        await writer.drain()
