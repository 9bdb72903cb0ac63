"""Watching the hub's feeds: which exist, when they have settled, when a change has reached them."""

from __future__ import annotations

import asyncio
import time

import httpx2

from loadtests.hubproc import PARTNER_KEY, Hub, wait_for

POLL_S = 0.005


def feed_paths() -> list[str]:
    """Every feed route of the hub as it is now (`traffic_hub.runtime.FEEDS`)."""
    from traffic_hub.runtime import FEEDS

    return [f"/feeds/{name}" for name in FEEDS]


def partner_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {PARTNER_KEY}"}


def _etags(hub: Hub, paths: list[str]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for path in paths:
        response = httpx2.get(hub.url + path, headers=partner_headers(), timeout=30)
        out[path] = response.headers.get("etag") if response.status_code == 200 else None
    return out


def settle(hub: Hub, paths: list[str], timeout_s: float = 180.0, quiet_s: float = 1.5) -> float:
    """Seconds until every feed answers 200 with the same ETag twice `quiet_s` apart (rendering done)."""
    last: dict[str, str | None] = {}

    def settled() -> bool:
        nonlocal last
        now = _etags(hub, paths)
        done = all(now.values()) and now == last
        last = now
        return done

    return wait_for(settled, timeout_s, quiet_s)


async def current_etags(client: httpx2.AsyncClient, paths: list[str]) -> dict[str, str | None]:
    responses = [await client.get(path, headers=partner_headers()) for path in paths]
    return {p: r.headers.get("etag") if r.status_code == 200 else None for p, r in zip(paths, responses, strict=True)}


async def _until_in_feed(
    client: httpx2.AsyncClient, path: str, needle: bytes, deadline: float, etag: str | None
) -> float:
    while time.monotonic() < deadline:
        headers = partner_headers() | ({"If-None-Match": etag} if etag else {})
        response = await client.get(path, headers=headers)
        if response.status_code == 200:
            if needle in response.content:
                return time.monotonic()
            etag = response.headers.get("etag")
        await asyncio.sleep(POLL_S)
    raise TimeoutError(f"{needle!r} not in {path}")


async def until_in_every_feed(
    client: httpx2.AsyncClient,
    etags: dict[str, str | None],
    needle: bytes,
    started: float,
    timeout_s: float = 15.0,
) -> float:
    """Seconds from `started` (time.monotonic) until `needle` is in the bytes of every feed.

    `etags` are the feeds' ETags before the change: until they change, the polls are cheap 304s.
    """
    deadline = started + timeout_s
    waits = (_until_in_feed(client, path, needle, deadline, etag) for path, etag in etags.items())
    arrivals = await asyncio.gather(*waits)
    return max(arrivals) - started
