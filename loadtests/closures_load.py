"""Issue 7: closures accepted by the API per second under concurrent clients, and POST → in every feed.

Bodies are real streets of Lille from the bundled road network (© OpenStreetMap contributors),
posted by a road-works team of Lille with fresh references: every POST is a new closure that goes
through the whole pipeline (API → reports → normaliser → events → view → feeds).

Only streets the team may post are used: the API checks a closure's line geometrically against the
team's communes (25 m tolerance), and some edges tagged Lille cross into a neighbour (Lomme, La
Madeleine, …). Posting those gave the "1–2 refused" of earlier runs, which were 403s, not 503s.
Refusals are reported by status code, so a refusal is never read as something it is not.

`mix=True` (`--measure-mix`): the same load through POST /api/v1/measures, cycling through the measure
types (road closed, lane closed, alternating traffic, no overtaking, speed limit, lorry ban; issue 18),
so write and feed figures can be compared with closures alone. The one-at-a-time "in every feed" timing
then posts road_closed measures: the other types are withheld from Waze by design, so "in every feed"
would never hold for them.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2
import shapely

from geo.communes import Communes
from geo.network import RoadNetwork
from loadtests.eventgen import Street, streets
from loadtests.feeds_load import ChangeLatency, latency
from loadtests.feedwatch import current_etags, until_in_every_feed
from loadtests.hubproc import LILLE, ROADWORKS_KEY, Hub

GOAL_VISIBLE_P99_MS = 250.0  # issue 7 (the cluster bench's goal too)
GOAL_EVERY_FEED_P99_MS = 150.0  # issue 17: POST → every feed, one hub
GOAL_PER_S = 500.0  # issue 17: 64 concurrent teams
GOAL_P99_MS = 250.0
GOAL_AFTER_BURST_S = 2.0  # the 2 s promise, right after a burst too
NO_ANSWER = 0  # status recorded when the request got no HTTP answer at all (connection error, client timeout)


@dataclass(frozen=True, slots=True)
class Throughput:
    clients: int
    seconds: float
    accepted: int
    refused: dict[int, int]  # status code (0: no answer) → count, for every answer but 201
    per_s: float
    p50_ms: float
    p99_ms: float
    load: str = ""  # the machine's load average (1, 5, 15 min) at the end of the run
    cpu_ms: float = 0.0  # the hub process's CPU time per accepted write, the pipeline's drain included
    after_burst_s: float = 0.0  # a closure posted right after the run: POST → in every feed

    @property
    def refused_total(self) -> int:
        return sum(self.refused.values())

    @property
    def unavailable(self) -> int:
        """503s: the broker was judged unavailable (must be 0 while it is healthy, however busy)."""
        return self.refused.get(503, 0)


def describe_refused(refused: dict[int, int]) -> str:
    """ "0 refused" or "3 refused (403: 2, 503: 1)" (0 stands for no HTTP answer)."""
    total = sum(refused.values())
    if not total:
        return "0 refused"
    parts = ", ".join(f"{'no answer' if code == NO_ANSWER else code}: {n}" for code, n in sorted(refused.items()))
    return f"{total} refused ({parts})"


def lille_streets() -> list[Street]:
    """Streets of Lille whose whole line the Lille team may post (the API's own commune check)."""
    communes = Communes.load()
    return [
        s
        for s in streets(RoadNetwork.default())
        if s.commune == LILLE and communes.within(shapely.LineString(s.coordinates), {LILLE})
    ]


def closure_body(street: Street, reference: str) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "reference": reference,
        "description": f"Travaux de voirie, {street.name} fermée (bench)",
        "street": street.name,
        "geometry": {"type": "LineString", "coordinates": street.coordinates},
        "direction": "BOTH_DIRECTIONS",
        "starts_at": (now - timedelta(hours=1)).isoformat(),
        "ends_at": (now + timedelta(days=2)).isoformat(),
    }


MEASURE_MIX: tuple[dict[str, Any], ...] = (
    {"type": "road_closed"},
    {"type": "lane_closed", "lanes": {"closed": 1, "total": 2, "side": "RIGHT"}},
    {"type": "alternate_traffic"},
    {"type": "no_overtaking"},
    {"type": "speed_limit", "speed_kmh": 30},
    {"type": "vehicle_restriction",
     "vehicles": {"max_weight_t": 3.5, "kinds": ["heavy_goods_vehicle"], "except": ["deliveries"]}},
)
"""The measure types of the mix (a detour needs a live closure to go around: not part of a blind load)."""


def write(street: Street, reference: str, n: int, mix: bool) -> tuple[str, dict[str, Any]]:
    """(path, body) of the `n`-th write: a closure, or with `mix` the `n`-th measure type of the mix."""
    body = closure_body(street, reference)
    if not mix:
        return "/api/v1/closures", body
    return "/api/v1/measures", {**body, **MEASURE_MIX[n % len(MEASURE_MIX)]}


def _auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {ROADWORKS_KEY}"}


async def _client(
    http: httpx2.AsyncClient, bodies: itertools.cycle[Street], refs: itertools.count[int], deadline: float, limit: int,
    mix: bool = False,
) -> list[tuple[int, float]]:
    out: list[tuple[int, float]] = []
    tag = time.time_ns()
    while time.monotonic() < deadline and (n := next(refs)) < limit:
        path, body = write(next(bodies), f"BENCH-{tag}-{len(out)}", n, mix)
        started = time.perf_counter()
        try:
            status = (await http.post(path, json=body, headers=_auth())).status_code
        except httpx2.HTTPError:
            status = NO_ANSWER
        out.append((status, (time.perf_counter() - started) * 1000))
    return out


async def _throughput(
    hub: Hub, clients: int, seconds: float, limit: int, pool: list[Street], mix: bool = False
) -> Throughput:
    bodies = itertools.cycle(pool)
    refs = itertools.count()
    limits = httpx2.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx2.AsyncClient(base_url=hub.url, timeout=30, limits=limits) as http:
        started = time.monotonic()
        results = await asyncio.gather(
            *(_client(http, bodies, refs, started + seconds, limit, mix) for _ in range(clients))
        )
        elapsed = time.monotonic() - started
    flat = [r for part in results for r in part]
    accepted = [ms for status, ms in flat if status == 201]
    ordered = sorted(ms for _, ms in flat)
    return Throughput(
        clients=clients,
        seconds=elapsed,
        accepted=len(accepted),
        refused=dict(Counter(status for status, _ in flat if status != 201)),
        per_s=len(accepted) / elapsed,
        p50_ms=ordered[len(ordered) // 2],
        p99_ms=ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))],
    )


def throughput(
    hub: Hub, clients: int = 32, seconds: float = 10.0, limit: int = 20_000, pool: list[Street] | None = None,
    mix: bool = False, paths: list[str] | None = None, cpu: Callable[[], float] | None = None,
) -> Throughput:
    """`clients` concurrent clients posting new closures (`mix`: measures) for `seconds` (at most `limit`).

    With `paths`, one more closure is posted right after the run and timed until it is in every feed
    (`after_burst_s`: the 2 s promise while the pipeline still drains the burst); the hub's CPU time per
    accepted write then covers the drain too (the whole pipeline's cost of a write, whatever the load of
    the machine: a figure that other processes' load changes far less than a rate). `cpu`: the CPU
    seconds of the hub's processes so far (default: the hub process's own)."""
    pool = pool or lille_streets()
    cpu = cpu or functools.partial(cpu_seconds, hub.process.pid)
    cpu_before = cpu()
    tp = asyncio.run(_throughput(hub, clients, seconds, limit, pool, mix))
    after = asyncio.run(_after_burst(hub, paths, pool)) if paths else 0.0
    used = cpu() - cpu_before
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    return replace(tp, load=load, cpu_ms=used * 1000 / max(tp.accepted, 1), after_burst_s=after)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _after_burst(hub: Hub, paths: list[str], pool: list[Street]) -> float:
    async with httpx2.AsyncClient(base_url=hub.url, timeout=60) as http:
        street = (await _waze_ready(http, pool, 1))[0]
        etags = await current_etags(http, paths)
        path, body = write(street, f"BENCH-AFTER-{time.time_ns()}", 0, False)
        started = time.monotonic()
        response = await http.post(path, json=body, headers=_auth())
        if response.status_code != 201:
            raise RuntimeError(f"POST answered {response.status_code}: {response.text[:300]}")
        return await until_in_every_feed(http, etags, str(response.json()["id"]).encode(), started, 120.0)


async def _waze_ready(http: httpx2.AsyncClient, pool: list[Street], wanted: int) -> list[Street]:
    """Streets whose closures every feed carries (the preview says Waze-ready): only those can be timed."""
    ready: list[Street] = []
    for n in range(len(pool)):
        street = pool[(n * 7) % len(pool)]
        preview = await http.post("/api/v1/closures/preview", json=closure_body(street, "PREVIEW"), headers=_auth())
        if preview.status_code == 200 and preview.json()["waze_ready"]:
            ready.append(street)
        if len(ready) >= wanted:
            break
    return ready or pool


async def _visible(hub: Hub, paths: list[str], samples: int, budget_s: float, mix: bool = False) -> list[float]:
    out: list[float] = []
    budget_end = time.monotonic() + budget_s
    async with httpx2.AsyncClient(base_url=hub.url, timeout=60) as http:
        pool = await _waze_ready(http, lille_streets(), samples)
        for n in range(samples):
            if out and time.monotonic() > budget_end:
                break
            etags = await current_etags(http, paths)
            path, body = write(pool[n % len(pool)], f"BENCH-VISIBLE-{time.time_ns()}", 0, mix)  # 0: road_closed
            started = time.monotonic()
            response = await http.post(path, json=body, headers=_auth())
            if response.status_code != 201:
                raise RuntimeError(f"POST answered {response.status_code}: {response.text[:300]}")
            closure_id = response.json()["id"]
            out.append(await until_in_every_feed(http, etags, str(closure_id).encode(), started, 60.0) * 1000)
    return out


def visible(
    hub: Hub, paths: list[str], samples: int = 50, budget_s: float = 300.0, mix: bool = False
) -> ChangeLatency:
    """One closure at a time: POST sent → its id in the bytes of every feed (sampling stops after `budget_s`)."""
    return latency(asyncio.run(_visible(hub, paths, samples, budget_s, mix)))
