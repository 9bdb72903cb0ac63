"""Issue 16's chaos run: the hub on three brokers with every role scaled out, killed piece by piece under load.

    python -m loadtests.chaos            (or: python -m loadtests --only chaos)

Why: "nothing lost, nothing merged twice, feeds never down" is a claim about failures, so it is measured
by causing them. The run starts the local three-node cluster if it is not running (stopping it again at
the end), creates the hub's topics with replication factor 3 / min ISR 2, and starts two API replicas,
three normalisers and two connector runners as separate processes (sources served on loopback:
recorded Lille samples plus a live Waze feed that changes every few seconds, so connector reports flow).
Under steady load (closures posted by teams of four communes through a load balancer stand-in,
partners polling every feed of both replicas with conditional GETs, an SSE stream open on each replica,
see `loadtests.load`), it kills with SIGKILL, one at a time and then in combination: a broker, the
active controller (a dedicated controller process by default; a whole node on a cluster started with
TRAFFIC_HUB_KAFKA_CONTROLLERS=combined), a broker with the active controller, a normaliser, an API replica,
a connector runner; then restarts each. Processes are restarted at once, as a supervisor
(`restart: unless-stopped`) does; a broker or controller stays down `--hold-s`.

For each fault it reports, computed from what the clients saw and from the events topic:
- acknowledged writes lost: every closure that got a 201 (or a 200 for a retry) must be a current
  event in the events topic and in the view of every replica;
- duplicate events: two current events for one closure reference or one source item;
- the refused-write window: from the first to the last 5xx answer to a POST after the kill (a refused
  connection is not counted: the balancer sends the POST to the other replica at once; requests cut by
  the kill are counted apart and retried the same way, safely: POSTs are idempotent by reference);
- time until processing resumed: from the kill until closures posted right after it are in every feed
  of every replica in the rotation (and, for a connector runner, until a new item of a source is an
  event on every replica);
- whether the replicas converged: the same ETag and the same bytes for every feed (plain and gzip)
  once the load pauses;
- 5xx answers from a feed (none allowed; a replica that is rebuilding is out of the rotation).
Every wait has a deadline; nothing sleeps for a condition.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import os
import signal
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from types import FrameType

import httpx2
import shapely
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from geo.communes import Communes
from geo.network import RoadNetwork
from loadtests import cluster as clusters
from loadtests.closures_load import closure_body
from loadtests.eventgen import Street, streets
from loadtests.load import CUT, FEED_PATHS, Balancer, Load, Poll, Replica, Team, Write
from loadtests.machine import describe
from loadtests.report import Row, verdict
from loadtests.roles import Deployment, RoleProcess
from loadtests.sources import SourceServer, serving
from traffic_hub.auth import hash_key
from traffic_hub.kafka import ensure_topics
from traffic_hub.kafka.starting import started_admin
from traffic_hub.model import Event
from traffic_hub.topics import Topics

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
BEGIN, END = "<!-- chaos run: begin -->", "<!-- chaos run: end -->"
COMMUNES = {"59350": "lille", "59512": "roubaix", "59599": "tourcoing", "59009": "villeneuve-d-ascq"}
PARTNER_KEY, OPERATOR_KEY = "chaos-key-partner", "chaos-key-operator"
GOAL_BROKER_REFUSED_S = 5.0
GOAL_RESUME_S = 3.0

# name → what is killed at once. "controller" is the process leading the KRaft quorum: a dedicated controller
# (the cluster's default), or, on a combined cluster, a whole node. "broker" is a broker that is not the active
# controller. "broker+controller" is a machine hosting a broker and the active controller (a combined node's
# loss, made on dedicated controllers); on a combined cluster it is the "controller" fault.
FAULTS: dict[str, tuple[str, ...]] = {
    "none": (),  # the baseline: the same measurements with nothing killed (what the loaded machine gives)
    "broker": ("broker",),
    "controller": ("controller",),
    "broker+controller": ("controller", "broker"),
    "normaliser": ("normaliser",),
    "api": ("api",),
    "connectors": ("connectors",),
    "controller+normaliser": ("controller", "normaliser"),
    "api+connectors+normaliser": ("api", "connectors", "normaliser"),
    "broker+api": ("broker", "api"),
}
SHORT = ["none", "controller", "normaliser", "api"]


@dataclass(frozen=True, slots=True)
class Config:
    faults: list[str] = field(default_factory=lambda: list(FAULTS))
    replicas: int = 2
    normalisers: int = 3
    connectors: int = 2
    steady_s: float = 6.0  # load before each fault
    hold_s: float = 6.0  # a killed broker stays down this long (processes restart at once)
    writers: int = 4  # concurrent closure writers (spread over the teams)
    write_gap_s: float = 0.5  # each writer's pause between two closures
    poll_gap_s: float = 1.0  # each partner's pause between two rounds of every feed
    probes: int = 3  # closures posted right after a kill, timed until every feed has them
    connector_interval_s: float = 5.0  # the connectors file's minimum
    source_every_s: float = 2.0  # a new item on the live Waze source this often
    deadline_s: float = 120.0  # every wait for a condition


@dataclass
class FaultResult:
    name: str
    killed: list[str]
    acked: int = 0  # closures acknowledged during the fault's window
    lost: int = 0  # acknowledged closures (so far) missing from the events topic or a replica's view
    duplicates: int = 0  # closure references / source items in more than one current event
    refused_window_s: float = 0.0
    refused: int = 0  # POST answers ≥ 500
    cut: int = 0  # POSTs cut by a kill (retried on the other replica)
    not_acked: int = 0  # writes never acknowledged (refused for good or given up)
    max_write_s: float = 0.0  # longest POST → acknowledgement, retries included
    stall_s: float = 0.0  # longest time without any acknowledged write, from the kill on
    resume_s: float | None = None
    resume_detail: str = ""  # where the time went: probes acknowledged, then each replica's view and feeds
    source_resume_s: float | None = None
    restart_s: dict[str, float] = field(default_factory=dict)
    converged: bool = False
    converge_s: float | None = None
    differing: list[str] = field(default_factory=list)
    feed_polls: int = 0
    feed_5xx: int = 0
    stream_seen: str = ""
    error: str | None = None

    @property
    def broker_fault(self) -> bool:
        """A broker was lost (writes may be refused < 5 s): a dedicated controller's loss is not one."""
        return "broker" in self.killed_kinds or ("controller" in self.killed_kinds and not clusters.dedicated())

    @property
    def killed_kinds(self) -> tuple[str, ...]:
        return kinds_of(self.name)

    @property
    def ok(self) -> bool:
        window_goal = GOAL_BROKER_REFUSED_S if self.broker_fault else 0.0
        return (
            self.error is None and self.lost == 0 and self.duplicates == 0 and self.converged and self.feed_5xx == 0
            and self.not_acked == 0 and self.refused_window_s <= window_goal
            and self.resume_s is not None and self.resume_s < GOAL_RESUME_S
        )

    @property
    def correct(self) -> bool:
        """The hard promises (the timing goals aside): nothing lost or doubled, replicas agree, no feed 5xx."""
        return self.error is None and self.lost == 0 and self.duplicates == 0 and self.converged and self.feed_5xx == 0


@dataclass
class ChaosReport:
    config: Config
    results: list[FaultResult]
    cluster_up_s: float
    started_in_s: float
    total_s: float
    writes: int
    acked: int
    load: str
    processes: str

    @property
    def correct(self) -> bool:
        return bool(self.results) and all(r.correct for r in self.results)


def kinds_of(fault: str) -> tuple[str, ...]:
    """What `fault` kills on this cluster: a combined node is a broker and a controller, so "broker+controller"
    is one node there (killing a second would leave one of three: no quorum, no min ISR)."""
    kinds = FAULTS.get(fault, ())
    if not clusters.dedicated() and "controller" in kinds:
        return tuple(k for k in kinds if k != "broker")
    return kinds


def topology() -> str:
    return "3 dedicated controllers" if clusters.dedicated() else "3 combined broker+controller nodes"


def node_label(node: str, controller: str) -> str:
    """How a killed node is named in the report: "broker 2", "controller c1", or "broker 2 (active controller)"."""
    if node.startswith("c"):
        return f"controller {node} (active)"
    return f"broker {node}" + (" (active controller)" if node == controller else "")


def principals_toml(teams: list[Team]) -> str:
    rows = [(t.name, "roadworks", [t.commune], t.key) for t in teams]
    rows += [("chaos-partner", "partner", [], PARTNER_KEY), ("chaos-operator", "operator", [], OPERATOR_KEY)]
    return "\n".join(
        f'[[principals]]\nname = "{name}"\nrole = "{role}"\ncommunes = [{", ".join(repr(c) for c in communes)}]\n'
        f'key_sha256 = "{hash_key(key)}"\n'.replace("'", '"')
        for name, role, communes, key in rows
    )


def make_teams(network: RoadNetwork) -> list[Team]:
    """One road-works team per commune, with the streets it may post (its whole line in the commune)."""
    communes = Communes.load()
    every = streets(network)
    teams = []
    for insee, label in COMMUNES.items():
        mine = [s for s in every if s.commune == insee and communes.within(shapely.LineString(s.coordinates), {insee})]
        teams.append(Team(f"chaos-voirie-{label}", f"chaos-key-{label}", insee, mine[:400]))
    return teams


async def wait_for(check: Callable[[], Awaitable[bool]], deadline_s: float, what: str, every_s: float = 0.1) -> float:
    """Seconds until `check()` holds; TimeoutError naming `what` after `deadline_s`."""
    started = time.monotonic()
    while not await check():
        if time.monotonic() - started > deadline_s:
            raise TimeoutError(f"{what}: not within {deadline_s:.0f} s")
        await asyncio.sleep(every_s)
    return time.monotonic() - started


class Chaos:
    """One deployment on the cluster, its load, and the faults inflicted on it."""

    def __init__(self, cfg: Config, cluster: clusters.Cluster, workdir: Path, prefix: str) -> None:
        self.cfg, self.cluster, self.workdir, self.prefix = cfg, cluster, workdir, prefix
        self.topics = Topics(prefix)
        self.network = RoadNetwork.default()
        self.teams = make_teams(self.network)
        self.api: list[RoleProcess] = []
        self.normalisers: list[RoleProcess] = []
        self.runners: list[RoleProcess] = []
        self.turn: dict[str, int] = defaultdict(int)
        self.probe_streets: list[Street] = []
        self.sources: SourceServer | None = None
        self.load: Load | None = None
        self.killed_controller: str | None = None  # within one fault: the active controller, once killed

    # --- set-up -------------------------------------------------------------------------------

    def deployment(self, sources: SourceServer) -> Deployment:
        auth = self.workdir / "principals.toml"
        auth.write_text(principals_toml(self.teams), encoding="utf-8")
        connectors = sources.write_connectors(self.workdir / "connectors.toml", self.cfg.connector_interval_s)
        return Deployment(self.cluster.bootstrap, self.prefix, auth, self.workdir, "https://traffic.example.org",
                          connectors)

    async def start_processes(self, deployment: Deployment) -> float:
        started = time.monotonic()
        async with asyncio.timeout(self.cfg.deadline_s):
            await ensure_topics(self.cluster.bootstrap, self.topics, 3, 3, 2)
        self.api = [RoleProcess(deployment, "api", f"api-{i + 1}") for i in range(self.cfg.replicas)]
        self.normalisers = [RoleProcess(deployment, "normaliser", f"normaliser-{i + 1}")
                            for i in range(self.cfg.normalisers)]
        self.runners = [RoleProcess(deployment, "connectors", f"connectors-{i + 1}")
                        for i in range(self.cfg.connectors)]
        for process in [*self.api, *self.normalisers, *self.runners]:
            process.start()
        for process in [*self.api, *self.normalisers, *self.runners]:
            await self.until_ready(process)
        return time.monotonic() - started

    async def until_ready(self, process: RoleProcess) -> float:
        async def ready() -> bool:
            return await asyncio.to_thread(process.ready)

        return await wait_for(ready, self.cfg.deadline_s * 2, f"{process.name} ready", every_s=0.2)

    async def find_probe_streets(self, lb: Balancer) -> None:
        """Streets of Lille whose closures every feed carries (the preview says Waze-ready): probes must be."""
        lille = self.teams[0]
        headers = {"Authorization": f"Bearer {lille.key}"}
        replica = lb.replicas[0]
        for n in range(len(lille.streets)):
            street = lille.streets[(n * 7) % len(lille.streets)]
            preview = await lb.http.post(f"{replica.url}/api/v1/closures/preview", headers=headers,
                                         json=closure_body(street, "PREVIEW"))
            if preview.status_code == 200 and preview.json()["waze_ready"]:
                self.probe_streets.append(street)
            if len(self.probe_streets) >= 12:
                return
        if not self.probe_streets:
            raise RuntimeError("no street of Lille gives a closure every feed carries")

    # --- measuring ----------------------------------------------------------------------------

    async def until_in_views(self, lb: Balancer, needles: list[bytes], since: float, out: dict[str, float]) -> None:
        """Fill `out` with each replica's seconds from `since` until its event view holds every needle (closure
        ids, read one by one): the part of `resumed` before the feeds (runs until cancelled)."""
        headers = {"Authorization": f"Bearer {OPERATOR_KEY}"}
        found: set[tuple[str, bytes]] = set()  # (replica, closure id): one small GET each, not the whole list
        while True:
            for replica in [r for r in lb.replicas if r.up and r.name not in out]:
                for needle in [n for n in needles if (replica.name, n) not in found]:
                    with contextlib.suppress(httpx2.HTTPError):
                        response = await lb.http.get(f"{replica.url}/api/v1/events/{needle.decode()}", headers=headers)
                        if response.status_code == 200:
                            found.add((replica.name, needle))
                if all((replica.name, n) in found for n in needles):
                    out[replica.name] = time.monotonic() - since
            await asyncio.sleep(0.1)

    async def until_in_every_feed(
        self, lb: Balancer, needles: list[bytes], since: float, per_replica: dict[str, float] | None = None
    ) -> float:
        """Seconds from `since` until every feed of every replica in the rotation holds every needle
        (and, in `per_replica`, each replica's seconds until all its feeds did)."""
        seen: dict[tuple[str, str], float] = {}
        etags: dict[tuple[str, str], str] = {}
        headers = {"Authorization": f"Bearer {PARTNER_KEY}"}

        async def look(replica: Replica, path: str) -> None:
            key = (replica.name, path)
            conditional = {"If-None-Match": etags[key]} if key in etags else {}
            try:
                response = await lb.http.get(f"{replica.url}{path}", headers=headers | conditional)
            except httpx2.HTTPError:
                return
            if response.status_code == 200:
                etags[key] = response.headers.get("etag", "")
                if all(n in response.content for n in needles):
                    seen[key] = time.monotonic()

        async def everywhere() -> bool:
            live = [r for r in lb.replicas if r.up]
            pending = [(r, p) for r in live for p in FEED_PATHS if (r.name, p) not in seen]
            await asyncio.gather(*(look(r, p) for r, p in pending))
            return bool(live) and all((r.name, p) in seen for r in live for p in FEED_PATHS)

        await wait_for(everywhere, self.cfg.deadline_s, "probe closures in every feed", every_s=0.05)
        live = {r.name for r in lb.replicas if r.up}
        if per_replica is not None:
            for name in live:
                per_replica[name] = max(t for (n, _), t in seen.items() if n == name) - since
        return max(t for (name, _), t in seen.items() if name in live) - since

    async def until_event_everywhere(self, lb: Balancer, source_id: str, since: float) -> float:
        """Seconds from `since` until a source item is an event in the view of every replica in the rotation."""
        needle = f'"source_id":"{source_id}"'.encode()

        async def everywhere() -> bool:
            live = [r for r in lb.replicas if r.up]
            for replica in live:
                try:
                    response = await lb.http.get(f"{replica.url}/api/v1/events",
                                                 headers={"Authorization": f"Bearer {OPERATOR_KEY}"})
                except httpx2.HTTPError:
                    return False
                if response.status_code != 200 or needle not in response.content.replace(b": ", b":"):
                    return False
            return bool(live)

        await wait_for(everywhere, self.cfg.deadline_s, f"source item {source_id} on every replica", every_s=0.2)
        return time.monotonic() - since

    async def view_ids(self, lb: Balancer, replica: Replica) -> set[str]:
        headers = {"Authorization": f"Bearer {OPERATOR_KEY}"}
        response = await lb.http.get(f"{replica.url}/api/v1/events", headers=headers)
        response.raise_for_status()
        return {str(f["id"]) for f in response.json()["features"]}

    async def feed_versions(self, lb: Balancer, replica: Replica) -> dict[tuple[str, bool], tuple[str, str]]:
        """(feed, gzip) → (ETag, SHA-256 of the bytes as sent)."""
        out = {}
        for path in FEED_PATHS:
            for gzip in (False, True):
                headers = {"Authorization": f"Bearer {PARTNER_KEY}", "Accept-Encoding": "gzip" if gzip else "identity"}
                async with lb.http.stream("GET", f"{replica.url}{path}", headers=headers) as response:
                    raw = b"".join([chunk async for chunk in response.aiter_raw()])
                    out[path, gzip] = (f"{response.status_code} {response.headers.get('etag')}",
                                       hashlib.sha256(raw).hexdigest()[:16])
        return out

    async def converge(self, lb: Balancer, result: FaultResult) -> None:
        """Wait (bounded) until every replica serves the same ETag and bytes for every feed."""
        last: list[str] = []

        async def same() -> bool:
            nonlocal last
            if not all(r.up for r in lb.replicas):
                last = ["a replica is not in the rotation"]
                return False
            try:
                versions = [await self.feed_versions(lb, r) for r in lb.replicas]
            except httpx2.HTTPError as exc:  # a connection reset under load: look again
                last = [f"{type(exc).__name__} while fetching the feeds"]
                return False
            last = [f"{path}{' (gzip)' if gz else ''}: " + " ≠ ".join(str(v[path, gz]) for v in versions)
                    for (path, gz) in versions[0] if any(v[path, gz] != versions[0][path, gz] for v in versions)]
            return not last and all(v.startswith("200 ") for v, _ in versions[0].values())

        try:
            result.converge_s = await wait_for(same, self.cfg.deadline_s, "replicas converged", every_s=0.3)
            result.converged = True
        except TimeoutError:
            result.differing = last

    async def check_stored(self, lb: Balancer, result: FaultResult) -> None:
        """Lost: acknowledged closures not current in the events topic or in a replica's view. Duplicates too."""
        acked = self.load.acked() if self.load else {}

        async def in_views() -> bool:
            try:
                for replica in lb.replicas:
                    if not set(acked) <= await self.view_ids(lb, replica):
                        return False
            except httpx2.HTTPError:  # a connection reset under load: look again
                return False
            return True

        with contextlib.suppress(TimeoutError):
            await wait_for(in_views, self.cfg.deadline_s, "acknowledged closures in every view", every_s=0.5)
        views = [await self.view_ids(lb, r) for r in lb.replicas]
        current = await current_events(self.cluster.bootstrap, self.topics.events)
        missing = {cid for cid in acked if cid not in current or any(cid not in v for v in views)}
        result.lost = len(missing)
        result.duplicates = len(duplicates(current.values()))

    # --- faults -------------------------------------------------------------------------------

    def next_of(self, kind: str, members: list[RoleProcess]) -> RoleProcess:
        member = members[self.turn[kind] % len(members)]
        self.turn[kind] += 1
        return member

    async def aim(self, kind: str, lb: Balancer) -> Shot:
        """Choose the member of `kind` to kill and everything its kill needs (the active controller, a
        process id: scripts, seconds under load), so that `Shot.fire` only sends the SIGKILL: the victims
        of a combined fault then die at the same moment, and the outage counts from that moment."""
        if kind in ("broker", "controller"):
            controller = self.killed_controller or await self.cluster.acontroller()
            if kind == "controller":
                node = self.killed_controller = controller
            else:
                others = [n for n in clusters.BROKERS if n != controller]
                node = others[self.turn["broker"] % len(others)]
                self.turn["broker"] += 1
            pid = await self.cluster.apid(node)

            async def node_gone() -> None:
                await wait_for(partial(_gone, pid), self.cfg.deadline_s, f"node {node} (pid {pid}) gone")

            async def start_node() -> float:
                return await self.cluster.astart(node)

            return Shot(node_label(node, controller), partial(os.kill, pid, signal.SIGKILL), node_gone, start_node)
        members = {"normaliser": self.normalisers, "api": self.api, "connectors": self.runners}[kind]
        victim = self.next_of(kind, members)
        replica = next((r for r in lb.replicas if r.name == victim.name), None)

        async def reaped() -> None:
            await asyncio.to_thread(victim.reap)
            if replica is not None:
                replica.set_up(False)

        async def restart() -> float:
            started = time.monotonic()
            victim.start()
            await self.until_ready(victim)
            if replica is not None:
                await wait_for(partial(_up, replica), self.cfg.deadline_s, f"{victim.name} back in the rotation")
            return time.monotonic() - started

        return Shot(victim.name, victim.sigkill, reaped, restart)

    async def kill_all(self, kinds: Iterable[str], lb: Balancer) -> tuple[list[Shot], float]:
        """Kill one member of each kind at the same moment; the shots and that moment (time.monotonic())."""
        shots = [await self.aim(kind, lb) for kind in kinds]
        t0 = time.monotonic()
        for shot in shots:
            shot.fire()
        for shot in shots:
            await shot.settle()
        return shots, t0

    async def until_replicated(self) -> None:
        """Until every partition has its full ISR again. Why: a broker the previous fault restarted is
        registered (its restart time) before it has caught up; killing another broker meanwhile would be a
        double fault (partitions below min ISR 2 refuse acks=all writes), not the single one this fault names.
        Measured 0.0-0.3 s of waiting: the slower back-to-back broker faults (docs/cluster.md) are not this."""
        async with started_admin(self.cluster.bootstrap, 5.0, "chaos-isr") as admin:

            async def full() -> bool:
                described = await admin.describe_topics(await admin.list_topics())
                return all(len(p["isr"]) >= len(p["replicas"]) for t in described for p in t["partitions"])

            waited = await wait_for(full, self.cfg.deadline_s, "every partition's ISR full again", every_s=0.5)
        if waited > 0:
            print(f"[chaos] every partition's ISR full again after {waited:.1f} s", file=sys.stderr, flush=True)

    async def fault(self, name: str, lb: Balancer) -> FaultResult:
        assert self.load is not None
        assert self.sources is not None
        cfg, load = self.cfg, self.load
        await self.until_replicated()
        load.running.set()
        await asyncio.sleep(cfg.steady_s)  # steady load before the fault: a duration, not a condition
        writes_before, polls_before = len(load.writes), len(load.polls)
        self.killed_controller = None
        shots, t0 = await self.kill_all(kinds_of(name), lb)  # t0: the SIGKILLs, all at once
        result = FaultResult(name, [shot.label for shot in shots])
        restarts: list[asyncio.Task[float]] = []
        for shot in shots:
            delay = cfg.hold_s if shot.label.startswith(("broker", "controller")) else 0.0
            restarts.append(asyncio.create_task(_after(delay, shot.restart), name=f"restart {shot.label}"))
        try:
            probes = [
                load.write_one(self.teams[0], f"PROBE-{name.replace('+', '-')}-{i}-{time.time_ns()}",
                               self.probe_streets[(self.turn["probe"] + i) % len(self.probe_streets)])
                for i in range(cfg.probes)
            ]
            self.turn["probe"] += cfg.probes
            source_item = self.sources.add() if "connectors" in FAULTS[name] else None
            written = await asyncio.gather(*probes)
            needles = [w.closure_id.encode() for w in written if w.closure_id]
            if len(needles) < len(written):
                raise RuntimeError(f"a probe closure was not acknowledged: {written}")
            acked = max(w.acked_at or t0 for w in written) - t0
            views: dict[str, float] = {}
            watch = asyncio.create_task(self.until_in_views(lb, needles, t0, views))
            feeds: dict[str, float] = {}
            try:
                result.resume_s = await self.until_in_every_feed(lb, needles, t0, feeds)
            finally:
                watch.cancel()
            result.resume_detail = f"acked {acked:.1f} s; " + ", ".join(
                f"{name} view {_s(views.get(name))} feeds {_s(at)}" for name, at in sorted(feeds.items())
            )
            if source_item is not None:
                result.source_resume_s = await self.until_event_everywhere(lb, source_item, t0)
            for shot, task in zip(shots, restarts, strict=True):
                result.restart_s[shot.label] = await task
            await load.quiesce(cfg.deadline_s)
            t1 = time.monotonic()
            await self.converge(lb, result)
            await self.check_stored(lb, result)
        except (TimeoutError, RuntimeError, KafkaError, httpx2.HTTPError) as exc:
            result.error = f"{type(exc).__name__}: {exc}"[:400]
            for task in restarts:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(task, cfg.deadline_s * 2)
            await load.quiesce(cfg.deadline_s)
            t1 = time.monotonic()
            with contextlib.suppress(TimeoutError, KafkaError, httpx2.HTTPError):
                await self.check_stored(lb, result)  # lost and duplicates are still counted
        summarise(result, load.writes[writes_before:], load.polls[polls_before:], t0, t1)
        result.stream_seen = self.stream_figure(lb, [w for w in load.writes[writes_before:] if w.closure_id])
        return result

    def stream_figure(self, lb: Balancer, written: list[Write]) -> str:
        assert self.load is not None
        parts = []
        for replica in lb.replicas:
            seen = self.load.streamed.get(replica.name, set())
            got = sum(1 for w in written if w.closure_id in seen)
            parts.append(f"{replica.name} {got}/{len(written)} ({self.load.stream_opens[replica.name]} opens)")
        return ", ".join(parts)

    # --- the run ------------------------------------------------------------------------------

    async def run(self) -> tuple[list[FaultResult], float, str]:
        with serving(self.teams[0].streets) as sources:
            self.sources = sources
            deployment = self.deployment(sources)
            try:
                started_in = await self.start_processes(deployment)
                replicas = [Replica(p.name, p.url) for p in self.api]
                lb = Balancer(replicas, OPERATOR_KEY, PARTNER_KEY)
                try:
                    results = await self.drive(lb)
                finally:
                    await lb.close()
                return results, started_in, self.cpu_figure()
            finally:
                everyone = [*self.runners, *self.normalisers, *self.api]
                for process in everyone:
                    process.terminate()
                for process in everyone:
                    process.stop()

    async def drive(self, lb: Balancer) -> list[FaultResult]:
        self.load = load = Load(lb, self.teams, self.cfg.writers, self.cfg.write_gap_s, self.cfg.poll_gap_s)
        tasks = [asyncio.create_task(lb.health_loop(r, load.stop)) for r in lb.replicas]
        try:
            for replica in lb.replicas:
                await wait_for(partial(_up, replica), self.cfg.deadline_s, f"{replica.name} in the rotation")
            await self.find_probe_streets(lb)
            tag = str(int(time.time()))
            tasks += [asyncio.create_task(load.writer(n, tag)) for n in range(self.cfg.writers)]
            tasks += [asyncio.create_task(load.poller(r)) for r in lb.replicas]
            tasks += [asyncio.create_task(load.streamer(r)) for r in lb.replicas]
            assert self.sources is not None
            tasks.append(asyncio.create_task(load.sources_ticker(self.sources.add, self.cfg.source_every_s)))
            results = []
            for name in self.cfg.faults:
                print(f"[chaos] fault: {name} …", file=sys.stderr, flush=True)
                result = await self.fault(name, lb)
                print(f"[chaos] {describe_result(result)}", file=sys.stderr, flush=True)
                results.append(result)
            return results
        finally:
            load.stop.set()
            load.running.set()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def cpu_figure(self) -> str:
        return ", ".join(f"{p.name} {p.cpu_s():.0f} s" for p in [*self.api, *self.normalisers, *self.runners])


async def _up(replica: Replica) -> bool:
    return replica.up


async def _gone(pid: int) -> bool:
    return await asyncio.to_thread(_dead, pid)


def _dead(pid: int) -> bool:
    """The process is dead: gone, or a zombie (a cluster node is not our child; whoever reaps it, pid 1 in a
    container, may take seconds, which counted as outage when the probes waited for it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return True
    return stat.rpartition(")")[2].split()[0] in ("Z", "X")  # the state follows the parenthesised command


@dataclass(frozen=True, slots=True)
class Shot:
    """One victim of a fault, aimed: `fire` sends the SIGKILL at once, `settle` waits until it is gone,
    `restart` brings it back (seconds until it serves again)."""

    label: str
    fire: Callable[[], None]
    settle: Callable[[], Awaitable[None]]
    restart: Callable[[], Awaitable[float]]


async def _after(delay_s: float, action: Callable[[], Awaitable[float]]) -> float:
    await asyncio.sleep(delay_s)  # how long the machine stays lost: part of the scenario
    return await action()


def summarise(result: FaultResult, writes: list[Write], polls: list[Poll], t0: float, t1: float) -> None:
    """The client-side figures of one fault, from what the load recorded between the kill and the pause."""
    attempts = [a for w in writes for a in w.attempts if t0 <= a.started <= t1]
    refused = [a for a in attempts if a.status >= 500]
    result.refused = len(refused)
    result.refused_window_s = (max(a.ended for a in refused) - min(a.started for a in refused)) if refused else 0.0
    result.cut = sum(1 for a in attempts if a.status == CUT)
    result.acked = sum(1 for w in writes if w.acked_at is not None)
    result.not_acked = sum(1 for w in writes if w.acked_at is None)
    result.max_write_s = max((w.acked_at - w.started for w in writes if w.acked_at is not None), default=0.0)
    acks = sorted(w.acked_at for w in writes if w.acked_at is not None and t0 <= w.acked_at <= t1)
    result.stall_s = max((b - a for a, b in zip([t0, *acks], acks, strict=False)), default=0.0)
    feed = [p for p in polls if t0 <= p.at <= t1]
    result.feed_polls = len(feed)
    result.feed_5xx = sum(1 for p in feed if p.status >= 500)


async def current_events(bootstrap: str, topic: str) -> dict[str, Event]:
    """The events topic read to its end: the latest version of every key that is not a tombstone, current now."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, client_id="chaos-reader")
    async with asyncio.timeout(60):
        await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or {0, 1, 2})]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        latest: dict[bytes, bytes | None] = {}
        async with asyncio.timeout(120):
            while await _behind(consumer, ends):
                for records in (await consumer.getmany(*partitions, timeout_ms=500)).values():
                    latest.update((r.key, r.value) for r in records if r.key is not None)
    finally:
        async with asyncio.timeout(10):
            await consumer.stop()
    now = datetime.now(UTC)
    events = (Event.model_validate_json(value) for value in latest.values() if value is not None)
    return {e.id: e for e in events if e.is_current(now) and e.merged_into is None}


async def _behind(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    for tp, end in ends.items():
        if await consumer.position(tp) < end:
            return True
    return False


def duplicates(events: Iterable[Event]) -> dict[tuple[str, str], list[str]]:
    """Closure references or source items that more than one current event claims (an active source of each)."""
    claims: dict[tuple[str, str], list[str]] = defaultdict(list)
    for event in events:
        for source in event.sources:
            if source.active:
                claims[source.source, source.source_id].append(event.id)
    return {k: ids for k, ids in claims.items() if len(ids) > 1}


async def delete_topics(bootstrap: str, topics: Topics) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="chaos-cleanup")
    with contextlib.suppress(KafkaError, OSError, TimeoutError):
        async with asyncio.timeout(30):
            await admin.start()
            await admin.delete_topics([topics.reports, topics.events, topics.deadletter])
    with contextlib.suppress(KafkaError, OSError, TimeoutError):
        async with asyncio.timeout(5):
            await admin.close()


# --- reporting --------------------------------------------------------------------------------


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def describe_result(r: FaultResult) -> str:
    restart = ", ".join(f"{k} {v:.1f} s" for k, v in r.restart_s.items()) or "-"
    text = (
        f"{r.name}: killed {', '.join(r.killed)}; lost {r.lost}, duplicates {r.duplicates}, "
        f"writes refused for {r.refused_window_s:.1f} s ({r.refused} × 5xx, {r.cut} cut, {r.not_acked} not acked, "
        f"{r.acked} acked, longest write {r.max_write_s:.1f} s, no ack for {r.stall_s:.1f} s at most), "
        f"resumed {_s(r.resume_s)}" + (f" ({r.resume_detail})" if r.resume_detail else "")
        + (f" (source item {_s(r.source_resume_s)})" if r.source_resume_s is not None else "")
        + f", restarted {restart}, converged {'yes' if r.converged else 'NO'} {_s(r.converge_s)}, "
        f"feed 5xx {r.feed_5xx}/{r.feed_polls}, stream {r.stream_seen}"
    )
    if r.differing:
        text += f"; differing: {'; '.join(r.differing[:4])}"
    if r.error:
        text += f"; ERROR {r.error}"
    return text


TABLE_HEADER = ("fault (SIGKILL)", "killed", "lost", "dup", "writes refused", "resumed", "restart",
                "converged", "feed 5xx", "")


def table_rows(report: ChaosReport) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for r in report.results:
        restart = ", ".join(f"{v:.1f} s" for v in r.restart_s.values()) or "-"
        refused = f"{r.refused_window_s:.1f} s ({r.refused}×5xx, {r.cut} cut; no ack {r.stall_s:.1f} s)"
        resumed = _s(r.resume_s) + (f" / src {_s(r.source_resume_s)}" if r.source_resume_s is not None else "")
        converged = ("yes " + _s(r.converge_s)) if r.converged else "NO"
        mark = "ok" if r.ok else ("correct, slow" if r.correct else "FAILED")
        rows.append((r.name, ", ".join(r.killed), str(r.lost), str(r.duplicates), refused, resumed, restart,
                     converged, f"{r.feed_5xx}/{r.feed_polls}", mark + (f": {r.error}" if r.error else "")))
    return rows


def text_table(report: ChaosReport) -> str:
    cells = [TABLE_HEADER, *table_rows(report)]
    widths = [max(len(c[i]) for c in cells) for i in range(len(TABLE_HEADER))]
    lines = ["  ".join(c[i].ljust(widths[i]) for i in range(len(TABLE_HEADER))).rstrip() for c in cells]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def notes(report: ChaosReport) -> list[str]:
    cfg = report.config
    return [
        f"{cfg.replicas} API replicas, {cfg.normalisers} normalisers, {cfg.connectors} connector runners on the "
        f"three-broker cluster ({topology()}; RF 3, min ISR 2); "
        f"processes started and ready in {report.started_in_s:.0f} s; "
        f"cluster up in {report.cluster_up_s:.0f} s",
        f"load: {cfg.writers} closure writers (4 communes' teams, {cfg.write_gap_s} s between posts each), partners "
        f"polling every feed of every replica (conditional GETs, a round every {cfg.poll_gap_s} s), "
        "one SSE stream per replica, a live Waze source "
        f"changing every {cfg.source_every_s:.0f} s (connectors poll every {cfg.connector_interval_s:.0f} s, "
        "the minimum of a connectors file)",
        "none: the baseline, the same measurements with nothing killed (what this machine gives under this load)",
        f"{cfg.steady_s:.0f} s of steady load before each fault; processes are restarted at once (a supervisor), "
        f"a broker or controller after {cfg.hold_s:.0f} s; "
        f"{report.writes} closures posted, {report.acked} acknowledged",
        "writes refused: first to last 5xx answer to a POST after the kill; a refused connection sends the POST "
        "to the other replica at once (a load balancer's passive check) and is not counted; 'cut' = in flight on "
        "a killed replica, retried on the other (same reference and body: idempotent); 'no ack' = the longest "
        "time without any acknowledged write from the kill on (writes that wait rather than fail)",
        "resumed: kill → closures posted right after it in every feed of every replica in the rotation; "
        "src: kill → a new item of a source is an event on every replica",
        "goals: 0 lost, 0 duplicates, converged, 0 feed 5xx; writes refused < 5 s when a broker is lost, "
        "0 otherwise (a dedicated controller's loss included); "
        "resumed < 3 s",
        f"CPU seconds per process: {report.processes}",
        f"load average during the run: {report.load}; total {report.total_s:.0f} s",
    ]


def bench_rows(report: ChaosReport) -> list[Row]:
    """The chaos figures as rows of `make bench`'s table."""
    rows = []
    for r in report.results:
        window_goal = f"< {GOAL_BROKER_REFUSED_S:.0f} s" if r.broker_fault else "0 s"
        rows.append(Row(
            "16",
            f"chaos: SIGKILL {', '.join(r.killed) or r.name} under load",
            f"lost {r.lost}, dup {r.duplicates}, refused {r.refused_window_s:.1f} s, resumed {_s(r.resume_s)}, "
            f"converged {'yes' if r.converged else 'NO'}, feed 5xx {r.feed_5xx}" + (f"; {r.error}" if r.error else ""),
            "",
            f"0 lost/dup, refused {window_goal}, resumed < {GOAL_RESUME_S:.0f} s, converged, 0 5xx",
            verdict(r.ok),
        ))
    return rows


def markdown(report: ChaosReport) -> str:
    out = [BEGIN, "## Chaos run (issue 16)", "",
           f"Generated by `python -m loadtests.chaos` ({describe().date}); do not edit by hand.", "",
           "| " + " | ".join(TABLE_HEADER[:-1]) + " | verdict |", "|" + "---|" * len(TABLE_HEADER)]
    for row in table_rows(report):
        out.append("| " + " | ".join(c.replace("|", "\\|") for c in row) + " |")
    out += ["", *(f"- {n}" for n in notes(report)), END]
    return "\n".join(out)


def kept_section(path: Path = RESULTS) -> str:
    """The chaos section of an existing RESULTS.md (kept when `make bench` rewrites the rest), or ""."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if BEGIN not in text or END not in text:
        return ""
    return "\n" + BEGIN + text.partition(BEGIN)[2].partition(END)[0] + END + "\n"


def write_section(report: ChaosReport, path: Path = RESULTS) -> None:
    """Put the chaos section into RESULTS.md, replacing the previous one (the rest of the file is kept)."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n"
    section = markdown(report)
    if BEGIN in text and END in text:
        head, _, rest = text.partition(BEGIN)
        _, _, tail = rest.partition(END)
        text = head + section + tail
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text, encoding="utf-8")


# --- entry points -----------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def _topics_removed(bootstrap: str, topics: Topics) -> AsyncIterator[None]:
    try:
        yield
    finally:
        await delete_topics(bootstrap, topics)


async def run_on(cfg: Config, cluster: clusters.Cluster, workdir: Path, prefix: str) -> ChaosReport:
    """The chaos run on a running cluster, topics under `prefix` (deleted at the end)."""
    started = time.monotonic()
    chaos = Chaos(cfg, cluster, workdir, prefix)
    async with _topics_removed(cluster.bootstrap, chaos.topics):
        results, started_in, cpu = await chaos.run()
    writes = chaos.load.writes if chaos.load else []
    one, five, _ = os.getloadavg()
    return ChaosReport(cfg, results, cluster.up_s, started_in, time.monotonic() - started, len(writes),
                       sum(1 for w in writes if w.acked_at is not None), f"{one:.1f} (1 min), {five:.1f} (5 min)", cpu)


def run(cfg: Config, keep_cluster: bool = False, workdir: Path | None = None) -> ChaosReport:
    """Start the cluster if needed, run, stop the cluster again if this run started it (unless `keep_cluster`).

    The processes' logs go to `workdir` (kept) or to a temporary directory (their ends printed on failure).
    """
    cluster = clusters.ensure_up()
    try:
        with contextlib.ExitStack() as stack:
            if workdir is None:
                workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="chaos-")))
            workdir.mkdir(parents=True, exist_ok=True)
            prefix = f"chaos-{int(time.time())}"
            try:
                return asyncio.run(run_on(cfg, cluster, workdir, prefix))
            except BaseException:
                for log in sorted(workdir.glob("*.log")):
                    lines = log.read_text(encoding="utf-8", errors="replace").splitlines()[-15:]
                    print(f"[chaos] {log.name}:\n" + "\n".join(lines), file=sys.stderr)
                raise
    finally:
        if not keep_cluster:
            clusters.stop(cluster)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m loadtests.chaos", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--faults", nargs="+", choices=list(FAULTS), help="faults to inflict, in order (default: all)")
    parser.add_argument("--short", action="store_true", help=f"only {', '.join(SHORT)}; 3 s of load before each")
    parser.add_argument("--steady-s", type=float, help="seconds of steady load before each fault (default 6)")
    parser.add_argument("--hold-s", type=float, default=6.0, help="seconds a killed broker or controller stays down")
    parser.add_argument("--replicas", type=int, default=2, help="API replicas (default 2)")
    parser.add_argument("--normalisers", type=int, default=3, help="normaliser processes (default 3)")
    parser.add_argument("--connectors", type=int, default=2, help="connector runners (default 2)")
    parser.add_argument("--keep-cluster", action="store_true", help="leave a cluster this run started running")
    parser.add_argument("--no-write", action="store_true", help="do not write loadtests/RESULTS.md")
    parser.add_argument("--workdir", type=Path, help="keep the processes' logs (and keys, sources file) here")
    return parser


def config_from(args: argparse.Namespace) -> Config:
    faults = args.faults or (SHORT if args.short else list(FAULTS))
    steady = args.steady_s if args.steady_s is not None else (3.0 if args.short else 6.0)
    return Config(faults=faults, steady_s=steady, hold_s=args.hold_s, replicas=args.replicas,
                  normalisers=args.normalisers, connectors=args.connectors)


def _stop(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds every `finally`: the processes stop, the topics go


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _stop)
    report = run(config_from(args), keep_cluster=args.keep_cluster, workdir=args.workdir)
    print(text_table(report))
    print("\n".join(f"- {n}" for n in notes(report)))
    if not args.no_write:
        write_section(report)
    return 0 if report.correct else 1


if __name__ == "__main__":
    sys.exit(main())
