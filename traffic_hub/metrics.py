"""Prometheus metrics: one registry per hub (tests run several side by side)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

Gauges = Callable[[], dict[str, float]]


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
