"""Steady load on several API replicas, as real clients behind one load balancer produce it.

Why: the chaos run must see what a partner or a road-works team would see while machines die. Clients
here behave like clients behind a load balancer with health checks:
- a replica leaves the rotation on a refused connection (the balancer's passive check) and comes back
  once its `/readyz` answers 200 and every feed is rendered (the active check: `If-None-Match: *` → 304);
- a POST that gets no answer (connection refused, or cut by the kill) is sent again, same body, to
  the next replica at once; a 503 is retried after a short pause. POSTs are idempotent by reference
  (same team, same reference, same body → the same closure, 200), so a retry never makes a second one;
- partners poll every feed of every replica in the rotation with conditional GETs (If-None-Match);
- one SSE stream is held open on each replica (reconnected with its Last-Event-ID when cut).
Every attempt is recorded with its time and outcome, so each fault's figures are computed afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx2
import orjson

from loadtests.closures_load import closure_body
from loadtests.eventgen import Street
from traffic_hub.feeds.registry import FEEDS

NO_ANSWER = 0  # status recorded for an attempt that got no HTTP answer
CUT = -1  # the request was sent but the connection died before the answer (the replica was killed)
FEED_PATHS = [feed.url_path for feed in FEEDS]


@dataclass(frozen=True, slots=True)
class Team:
    name: str
    key: str
    commune: str
    streets: list[Street]


@dataclass(frozen=True, slots=True)
class Attempt:
    started: float
    ended: float
    replica: str
    status: int  # HTTP status, NO_ANSWER or CUT


@dataclass
class Write:
    team: str
    reference: str
    started: float
    attempts: list[Attempt] = field(default_factory=list)
    closure_id: str | None = None
    acked_at: float | None = None  # monotonic time of the 201/200


@dataclass(frozen=True, slots=True)
class Poll:
    at: float
    replica: str
    path: str
    status: int


class Replica:
    """One API replica as the balancer sees it."""

    def __init__(self, name: str, url: str) -> None:
        self.name, self.url = name, url
        self.up = False
        self.changed = asyncio.Event()

    def set_up(self, up: bool) -> None:
        if up != self.up:
            self.up = up
            self.changed.set()
            self.changed = asyncio.Event()


class Balancer:
    """Round-robin over the replicas in rotation, with passive (refused) and active (health) checks."""

    def __init__(self, replicas: list[Replica], operator_key: str, partner_key: str) -> None:
        self.replicas = replicas
        self.operator_key, self.partner_key = operator_key, partner_key
        self._turn = itertools.count()
        # idle connections are dropped before the hub's keep-alive (5 s) closes them under a new request
        limits = httpx2.Limits(max_connections=64, max_keepalive_connections=32, keepalive_expiry=2.0)
        self.http = httpx2.AsyncClient(timeout=httpx2.Timeout(15.0, connect=2.0), limits=limits)

    def pick(self) -> Replica | None:
        live = [r for r in self.replicas if r.up]
        return live[next(self._turn) % len(live)] if live else None

    async def healthy(self, replica: Replica) -> bool:
        """The active check: ready, and every feed rendered (a replica that rebuilds its feeds answers 503)."""
        try:
            if (await self.http.get(f"{replica.url}/readyz", timeout=2)).status_code != 200:
                return False
            for path in FEED_PATHS:
                headers = {"If-None-Match": "*", "Authorization": f"Bearer {self.partner_key}"}
                if (await self.http.get(f"{replica.url}{path}", headers=headers, timeout=5)).status_code != 304:
                    return False
        except httpx2.HTTPError:
            return False
        return True

    async def health_loop(self, replica: Replica, stop: asyncio.Event) -> None:
        while not stop.is_set():
            replica.set_up(await self.healthy(replica))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.5 if replica.up else 0.2):  # the balancer's check interval
                    await stop.wait()

    async def close(self) -> None:
        await self.http.aclose()


async def post_closure(lb: Balancer, team: Team, write: Write, body: dict[str, Any], give_up: float) -> None:
    """Send one closure until a replica acknowledges it (201, or 200 for a retry it had already taken)."""
    headers = {"Authorization": f"Bearer {team.key}"}
    while time.monotonic() < give_up:
        replica = lb.pick()
        if replica is None:
            await _next_change(lb)
            continue
        started = time.monotonic()
        try:
            response = await lb.http.post(f"{replica.url}/api/v1/closures", json=body, headers=headers)
            status = response.status_code
        except httpx2.ConnectError:
            replica.set_up(False)  # refused: the balancer takes it out and tries the next one at once
            write.attempts.append(Attempt(started, time.monotonic(), replica.name, NO_ANSWER))
            continue
        except httpx2.HTTPError:  # cut: the replica died mid-request (or closed a keep-alive connection)
            write.attempts.append(Attempt(started, time.monotonic(), replica.name, CUT))
            continue
        write.attempts.append(Attempt(started, time.monotonic(), replica.name, status))
        if status in (200, 201):
            write.closure_id = str(response.json()["id"])
            write.acked_at = time.monotonic()
            return
        if status < 500:
            return  # refused for good (4xx): recorded, never retried
        await asyncio.sleep(0.2)  # a 503 says "retry shortly"; pacing a retry, not waiting for a condition


async def _next_change(lb: Balancer) -> None:
    """Until some replica's state changes (bounded: a balancer with none in rotation keeps checking)."""
    waits = [asyncio.ensure_future(r.changed.wait()) for r in lb.replicas]
    try:
        await asyncio.wait(waits, timeout=0.5, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()


@dataclass
class Load:
    """The whole steady load and everything it recorded."""

    lb: Balancer
    teams: list[Team]
    writers: int
    write_gap_s: float
    poll_gap_s: float = 1.0
    writes: list[Write] = field(default_factory=list)
    polls: list[Poll] = field(default_factory=list)
    streamed: dict[str, set[str]] = field(default_factory=dict)  # replica → event ids seen in `created`/`updated`
    stream_opens: Counter[str] = field(default_factory=Counter)
    running: asyncio.Event = field(default_factory=asyncio.Event)  # cleared: writers pause (quiesce)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    in_flight: int = 0
    idle: asyncio.Event = field(default_factory=asyncio.Event)  # set while no write is in flight
    _refs: itertools.count[int] = field(default_factory=itertools.count)

    async def write_one(self, team: Team, reference: str, street: Street, give_up_s: float = 120.0) -> Write:
        write = Write(team.name, reference, time.monotonic())
        self.writes.append(write)
        self.in_flight += 1
        self.idle.clear()
        try:
            await post_closure(self.lb, team, write, closure_body(street, reference), write.started + give_up_s)
        finally:
            self.in_flight -= 1
            if not self.in_flight:
                self.idle.set()
        return write

    async def writer(self, n: int, tag: str) -> None:
        team = self.teams[n % len(self.teams)]
        streets = itertools.cycle(team.streets[n::self.writers] or team.streets)
        while not self.stop.is_set():
            await self.running.wait()
            if self.stop.is_set():
                return
            await self.write_one(team, f"CHAOS-{tag}-{next(self._refs)}", next(streets))
            await asyncio.sleep(self.write_gap_s)  # the load's pace: steady, not flat out

    async def poller(self, replica: Replica) -> None:
        etags: dict[str, str] = {}
        headers = {"Authorization": f"Bearer {self.lb.partner_key}"}
        while not self.stop.is_set():
            if not replica.up:
                await _next_change(self.lb)
                continue
            for path in FEED_PATHS:
                conditional = {"If-None-Match": etags[path]} if path in etags else {}
                try:
                    response = await self.lb.http.get(f"{replica.url}{path}", headers=headers | conditional)
                except httpx2.ConnectError:
                    replica.set_up(False)
                    break
                except httpx2.HTTPError:
                    self.polls.append(Poll(time.monotonic(), replica.name, path, CUT))
                    break
                self.polls.append(Poll(time.monotonic(), replica.name, path, response.status_code))
                if response.status_code == 200 and "etag" in response.headers:
                    etags[path] = response.headers["etag"]
            await asyncio.sleep(self.poll_gap_s)  # the partners' polling pace

    async def streamer(self, replica: Replica) -> None:
        seen = self.streamed.setdefault(replica.name, set())
        last_id: str | None = None
        while not self.stop.is_set():
            if not replica.up:
                await _next_change(self.lb)
                continue
            headers = {"Authorization": f"Bearer {self.lb.operator_key}"}
            if last_id:
                headers["Last-Event-ID"] = last_id
            url, timeout = f"{replica.url}/api/v1/events/stream", httpx2.Timeout(None, connect=2)
            try:
                async with self.lb.http.stream("GET", url, headers=headers, timeout=timeout) as response:
                    if response.status_code != 200:
                        await asyncio.sleep(0.5)
                        continue
                    self.stream_opens[replica.name] += 1
                    async for message in sse(response):
                        last_id = message.get("id", last_id)
                        data = message.get("data")
                        if message.get("event") in ("created", "updated") and isinstance(data, dict):
                            seen.add(str(data.get("id")))
                        elif message.get("event") == "reset" and isinstance(data, dict):
                            seen.update(str(f.get("id")) for f in data.get("features", []))
            except httpx2.HTTPError:
                continue

    async def sources_ticker(self, add: Any, every_s: float) -> None:
        """A new item on the live Waze source every `every_s` while the load runs."""
        while not self.stop.is_set():
            await self.running.wait()
            await asyncio.to_thread(add)
            await asyncio.sleep(every_s)

    async def quiesce(self, deadline_s: float) -> None:
        """Pause the writers and wait (bounded) for the writes in flight to end."""
        self.running.clear()
        if self.in_flight:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(deadline_s):
                    await self.idle.wait()

    def acked(self) -> dict[str, Write]:
        return {w.closure_id: w for w in self.writes if w.closure_id is not None}


async def sse(response: httpx2.Response) -> Any:
    """The messages of an event stream: dicts with `id`, `event`, `data` (JSON-decoded)."""
    current: dict[str, Any] = {}
    async for line in response.aiter_lines():
        if line.startswith(("id:", "event:", "data:")):
            name, _, value = line.partition(":")
            value = value.strip()
            if name == "data":
                with contextlib.suppress(orjson.JSONDecodeError):
                    current[name] = orjson.loads(value)
            else:
                current[name] = value
        elif line == "" and current:
            yield current
            current = {}
