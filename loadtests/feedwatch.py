"""Watching the hub's feeds: which exist, when they have settled, when a change has reached them."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import httpx2
import orjson
from aiokafka import AIOKafkaProducer

from loadtests.broker import bootstrap
from loadtests.eventgen import Street, event_dict
from loadtests.hubproc import PARTNER_KEY, Hub
from traffic_hub.feeds.base import FeedContext
from traffic_hub.model import Event
from traffic_hub.runtime import FEEDS

POLL_S = 0.005
ROAD_CLOSED = {"type": "road_closed"}  # the measure of a posted closure (kind 0 of eventgen: a closure)


def feed_paths() -> list[str]:
    """Every feed route of the hub as it is now (`traffic_hub.runtime.FEEDS`)."""
    return [f"/feeds/{name}" for name in FEEDS]


def partner_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {PARTNER_KEY}"}


async def current_etags(client: httpx2.AsyncClient, paths: list[str]) -> dict[str, str | None]:
    """Each feed's ETag now, from the response headers alone: downloading and inflating megabytes of feeds
    before every sample loaded the 2-core machine the hub runs on (the bench's own CPU, not the hub's)."""
    out: dict[str, str | None] = {}
    for path in paths:
        async with client.stream("GET", path, headers=partner_headers()) as response:
            out[path] = response.headers.get("etag") if response.status_code == 200 else None
    return out


async def _until_in_feed(
    client: httpx2.AsyncClient, path: str, needle: bytes, deadline: float, etag: str | None
) -> float:
    """When the hub first served a version of `path` holding `needle`: the moment its response headers
    arrived. A poll only reads headers; each new version is then checked for `needle` in a thread, so
    the bench's own downloading and decompressing never delays its watch on the other feeds."""
    while time.monotonic() < deadline:
        headers = partner_headers() | ({"If-None-Match": etag} if etag else {})
        async with client.stream("GET", path, headers=headers) as response:
            served, status, new_etag = time.monotonic(), response.status_code, response.headers.get("etag")
        if status == 200 and new_etag != etag:
            if await asyncio.to_thread(_version_holds, str(client.base_url), path, new_etag, needle):
                return served
            etag = new_etag
        await asyncio.sleep(POLL_S)
    raise TimeoutError(f"{needle!r} not in {path}")


def _version_holds(base_url: str, path: str, etag: str | None, needle: bytes) -> bool:
    """Whether the version `etag` of `path` holds `needle` (False if the feed has moved on meanwhile)."""
    response = httpx2.get(base_url.rstrip("/") + path, headers=partner_headers(), timeout=60)
    return response.headers.get("etag") == etag and needle in response.content


async def until_in_every_feed(
    client: httpx2.AsyncClient,
    etags: dict[str, str | None],
    needle: bytes,
    started: float,
    timeout_s: float = 15.0,
) -> float:
    """Seconds from `started` (time.monotonic) until every feed serves a version with `needle` in its bytes.

    `etags` are the feeds' ETags before the change: until they change, the polls are cheap 304s.
    """
    deadline = started + timeout_s
    waits = (_until_in_feed(client, path, needle, deadline, etag) for path, etag in etags.items())
    arrivals = await asyncio.gather(*waits)
    return max(arrivals) - started


async def _marks(
    hub: Hub,
    topic: str,
    paths: list[str],
    pool: list[Street],
    feeds: list[str],
    samples: int,
    timeout_s: float,
    budget_s: float,
) -> list[float]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap(), client_id="loadtests-marks", acks="all", linger_ms=0)
    async with asyncio.timeout(20):
        await producer.start()
    out: list[float] = []
    budget_end = time.monotonic() + budget_s
    try:
        async with httpx2.AsyncClient(base_url=hub.url, timeout=60) as client:
            for n in range(samples):
                if out and time.monotonic() > budget_end:
                    break
                etags = await current_etags(client, paths)
                event_id = f"bench-mark-{time.time_ns()}"
                value = orjson.dumps(publishable_mark(event_id, pool, n, feeds))
                started = time.monotonic()
                await producer.send_and_wait(topic, value=value, key=event_id.encode())
                out.append(await until_in_every_feed(client, etags, event_id.encode(), started, timeout_s))
    finally:
        async with asyncio.timeout(10):
            await producer.stop()
    return out


def publishable_mark(event_id: str, pool: list[Street], n: int, feeds: list[str]) -> dict[str, object]:
    """A mark every feed carrying closures accepts (some streets of the pool are too short for Waze, say).

    It is a road closure as the normaliser writes a posted one, measure included: the regulations feed
    carries only measures (without one, no mark could ever be "in every feed")."""
    now = datetime.now(UTC)
    ctx = FeedContext(now=now)
    carrying = [FEEDS[name] for name in feeds]  # `mark_feeds(pool)`, found once per run by `mark`
    for offset in range(len(pool)):
        candidate = event_dict(event_id, pool[(n + offset) % len(pool)], 0, now, n) | {"measure": ROAD_CLOSED}
        event = Event.model_validate(candidate)
        if all(not renderer().check(event, ctx) for renderer in carrying):
            return candidate
    raise RuntimeError("no street of the pool gives an event every feed accepts")


def mark_feeds(pool: list[Street], tries: int = 50) -> list[str]:
    """The feeds that carry a mark (a road closure with its measure, as a posted one) on some street of the
    pool: every feed today, the regulations feed included; a feed that could never carry one is not waited for."""
    now = datetime.now(UTC)
    ctx = FeedContext(now=now)
    marks = [event_dict("bench-mark", street, 0, now, 0) | {"measure": ROAD_CLOSED} for street in pool[:tries]]
    events = [Event.model_validate(mark) for mark in marks]
    return [name for name, renderer in FEEDS.items() if any(not renderer().check(e, ctx) for e in events)]


def mark(
    hub: Hub,
    topic: str,
    paths: list[str],
    pool: list[Street],
    samples: int = 1,
    timeout_s: float = 60.0,
    budget_s: float = 60.0,
) -> list[float]:
    """Write new closure events to the events topic one at a time (as the normaliser does); per event,
    the seconds until it is in the bytes of every feed. A feed carrying a mark was rendered from a view
    holding everything written before it. Sampling stops after `budget_s` (at least one sample). Feeds
    that never carry a closure (`mark_feeds`) are not waited for."""
    feeds = mark_feeds(pool)
    carrying = {f"/feeds/{name}" for name in feeds}
    paths = [path for path in paths if path in carrying]
    return asyncio.run(_marks(hub, topic, paths, pool, feeds, samples, timeout_s, budget_s))
