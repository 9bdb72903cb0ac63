"""What each connector is doing, for `GET /api/v1/connectors` and `/metrics`.

Counts only grow after the broker acknowledged the writes they count. URLs are shown without
credentials: user info is dropped and every query value is masked (partners put keys there).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

COUNTERS: dict[str, str] = {
    "fetches": "Fetch attempts",
    "failures": "Failed cycles (HTTP, size limit, broker unavailable)",
    "not_modified": "Fetches answered 304 Not Modified",
    "incidents_published": "Incident reports acknowledged by Kafka",
    "ended_published": "Ended reports for items gone from a snapshot, acknowledged by Kafka",
    "rejects": "Items dead-lettered by the parser",
    "payload_errors": "Whole payloads dead-lettered",
    "bytes_fetched": "Payload bytes fetched",
    "refused_records": "Records Kafka refused for good (too large, invalid), dead-lettered instead",
    "dropped_records": "Records dropped because even their dead letter was refused (reason logged)",
}


def public_url(url: str) -> str:
    """The URL without user info, fragment or query values (`?key=***`)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    query = urlencode([(name, "***") for name, _ in parse_qsl(parts.query, keep_blank_values=True)], safe="*")
    return urlunsplit((parts.scheme, host, parts.path, query, ""))


@dataclass
class ConnectorState:
    name: str
    kind: str
    url: str  # public_url(): no secrets
    enabled: bool = True
    interval_s: float = 60.0
    last_attempt: datetime | None = None
    last_success: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    consecutive_failures: int = 0
    backoff_s: float | None = None  # the delay chosen after the last failure (None while healthy)
    next_run_at: datetime | None = None
    fetches: int = 0
    failures: int = 0
    not_modified: int = 0
    incidents_published: int = 0
    ended_published: int = 0
    rejects: int = 0
    payload_errors: int = 0
    bytes_fetched: int = 0
    refused_records: int = 0
    dropped_records: int = 0
    tracked_items: int = 0  # items of the last good payload still considered current
    # the runner (TRAFFIC_HUB_INSTANCE) polling this source when this process does; None when another
    # runner sharing the sources holds it (`held` false)
    runner: str | None = None
    held: bool = True

    @property
    def status(self) -> str:
        """`disabled`, `elsewhere` (another runner polls it), `pending` (not run yet), `ok` or `failing`."""
        if not self.enabled:
            return "disabled"
        if not self.held:
            return "elsewhere"
        if self.consecutive_failures:
            return "failing"
        return "ok" if self.last_success else "pending"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (datetimes as ISO 8601)."""
        data = asdict(self)
        data["status"] = self.status
        return {key: value.isoformat() if isinstance(value, datetime) else value for key, value in data.items()}


def _labels(state: ConnectorState) -> list[str]:
    return [state.name, state.kind]


def metric_families(states: Iterable[ConnectorState]) -> Iterator[Metric]:
    """Prometheus families, one sample per connector (labels `connector`, `kind`)."""
    states = list(states)
    names = ["connector", "kind"]
    for field, help_text in COUNTERS.items():
        counter = CounterMetricFamily(f"traffic_hub_connector_{field}", help_text, labels=names)
        for state in states:
            counter.add_metric(_labels(state), float(getattr(state, field)))
        yield counter
    gauges: dict[str, tuple[str, Callable[[ConnectorState], float | None]]] = {
        "traffic_hub_connector_up": ("1 when the last cycle succeeded", _up),
        "traffic_hub_connector_consecutive_failures": ("Failures since the last success", _failures),
        "traffic_hub_connector_last_success_timestamp_seconds": ("Last success (Unix time)", _last_success),
        "traffic_hub_connector_tracked_items": ("Items current in the last good payload", _tracked),
    }
    for name, (help_text, read) in gauges.items():
        gauge = GaugeMetricFamily(name, help_text, labels=names)
        for state in states:
            value = read(state) if state.held else None  # a source polled by another runner is its to report
            if value is not None:
                gauge.add_metric(_labels(state), value)
        yield gauge


def _up(state: ConnectorState) -> float:
    return 1.0 if state.status == "ok" else 0.0


def _failures(state: ConnectorState) -> float:
    return float(state.consecutive_failures)


def _last_success(state: ConnectorState) -> float | None:
    return state.last_success.timestamp() if state.last_success else None


def _tracked(state: ConnectorState) -> float:
    return float(state.tracked_items)


class ConnectorsCollector(Collector):
    """Register on a prometheus registry: `registry.register(ConnectorsCollector(runner.states))`."""

    def __init__(self, read: Callable[[], Iterable[ConnectorState]]) -> None:
        self._read = read

    def collect(self) -> Iterator[Metric]:
        yield from metric_families(self._read())
