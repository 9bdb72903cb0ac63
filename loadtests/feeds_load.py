"""Issue 5: every feed under load with 10,000 active events, beside nginx serving the same bytes.

Per feed: requests/s of full responses and of 304s (If-None-Match), for the hub and for nginx
serving the feed's bytes as a static file, with the same load generator (wrk, one thread, 16
keep-alive connections). Also: the time from a new event on `{prefix}.events` to new bytes in
every feed, and the hub process's resident memory.
"""

from __future__ import annotations

import statistics
import tempfile
from dataclasses import dataclass
from pathlib import Path

import httpx2

from geo.network import RoadNetwork
from loadtests import wrk
from loadtests.eventgen import streets
from loadtests.feedwatch import mark, partner_headers
from loadtests.hubproc import Hub
from loadtests.nginx import static_server
from loadtests.wrk import WrkResult

GOAL = 0.5


@dataclass(frozen=True, slots=True)
class FeedLoad:
    path: str
    body_bytes: int
    items: int
    hub_full: WrkResult
    nginx_full: WrkResult
    hub_304: WrkResult
    nginx_304: WrkResult


@dataclass(frozen=True, slots=True)
class ChangeLatency:
    samples: int
    p50_ms: float
    p99_ms: float
    max_ms: float


def _feed(hub: Hub, path: str) -> tuple[bytes, str, int]:
    headers = partner_headers() | {"Accept-Encoding": "identity"}
    response = httpx2.get(hub.url + path, headers=headers, timeout=60)
    response.raise_for_status()
    return response.content, response.headers["etag"], int(response.headers.get("x-feed-items", "0"))


def _static_etag(url: str) -> str:
    return str(httpx2.get(url, headers={"Accept-Encoding": "identity"}, timeout=30).headers["etag"])


def load_feeds(hub: Hub, paths: list[str], seconds: int) -> list[FeedLoad]:
    """wrk against each feed of the hub, then against nginx serving the same bytes."""
    feeds = {path: _feed(hub, path) for path in paths}
    auth = partner_headers()
    out: list[FeedLoad] = []
    with tempfile.TemporaryDirectory(prefix="loadtests-nginx-") as tmp:
        files = {path.removeprefix("/"): body for path, (body, _, _) in feeds.items()}
        with static_server(Path(tmp), files) as base:
            for path, (body, etag, items) in feeds.items():
                static = base + path
                static_etag = _static_etag(static)
                out.append(
                    FeedLoad(
                        path=path,
                        body_bytes=len(body),
                        items=items,
                        hub_full=wrk.run(hub.url + path, auth, seconds),
                        nginx_full=wrk.run(static, {}, seconds),
                        hub_304=wrk.run(hub.url + path, auth | {"If-None-Match": etag}, seconds),
                        nginx_304=wrk.run(static, {"If-None-Match": static_etag}, seconds),
                    )
                )
    return out


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def latency(values_ms: list[float]) -> ChangeLatency:
    return ChangeLatency(len(values_ms), statistics.median(values_ms), _quantile(values_ms, 0.99), max(values_ms))


def change_latency(hub: Hub, topic: str, paths: list[str], samples: int) -> ChangeLatency:
    """A new event written to the events topic (as the normaliser does) → in the bytes of every feed."""
    pool = streets(RoadNetwork.default())
    return latency([s * 1000 for s in mark(hub, topic, paths, pool, samples)])
