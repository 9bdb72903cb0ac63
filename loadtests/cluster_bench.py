"""Issue 16's bench rows on the three-node cluster (`python -m loadtests --only cluster`).

Why these figures: they are what a capacity plan for a cluster needs and what changes from one broker.
- Normalised reports/s with 1, 2 and 3 `traffic-hub normaliser` processes (reports topic of 3 partitions,
  replication factor 3). The normaliser works in two stages (traffic_hub/normaliser/service.py):
  placement on the road network, shared over the reports topic's partitions, then every merge decision
  by the one holder of the placed topic's single partition. The normalisers are started and warmed up
  (both groups stable with every process in them, three warm-up reports decided), then a backlog of Waze
  incident reports on streets of Lille (the connector's own parser makes them) is written, and the run
  is timed from the first write until every report is in the placed topic (stage 1 done) and until every
  report's item is in an event (stage 2 done). CPU seconds of each process come from /proc.
- The decision stage's ceiling alone: the placed records of the 1-normaliser run are written to the placed
  topic of a fresh deployment whose one normaliser then only decides; its reports/s and CPU s per report
  are what the single decision owner caps, whatever the number of normalisers.
- POST → closure in every feed, one at a time, with a whole hub (`traffic-hub run`) on the cluster and on
  the single broker (TRAFFIC_HUB_KAFKA__BOOTSTRAP_SERVERS, else 127.0.0.1:$TRAFFIC_HUB_KAFKA_PORT, as
  `make kafka-up` starts it; it must be running and is never stopped here): what replication adds to
  the 2 s promise.
- The hub's own Publisher (acks=all, idempotent) writing one record at a time to a topic of replication
  factor 3 / min ISR 2, and to one of replication factor 1, on the same cluster: the cost of a second copy
  before the acknowledgement.

Every wait has a deadline and fails loudly naming what it waited for (loadtests/kafkawatch.py); progress
goes to stderr. With `--only cluster` and without `--no-write`, the rows go to their own section of
loadtests/RESULTS.md (`write_section`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson
from aiokafka.admin import NewTopic
from aiokafka.errors import KafkaError

from connectors.base import ParseContext
from connectors.fetch import FetchResult, Validators
from connectors.registry import parser_for
from connectors.runner import CHUNK, Memory, plan_cycle
from geo.network import RoadNetwork
from loadtests import closures_load
from loadtests.broker import bootstrap as single_bootstrap
from loadtests.cluster import Cluster
from loadtests.eventgen import streets
from loadtests.feedwatch import feed_paths
from loadtests.hubproc import Hub, principals_toml
from loadtests.kafkawatch import ItemCounter, Stuck, admin_client, groups_formed, say, waited
from loadtests.report import Row
from loadtests.roles import Deployment, RoleProcess
from traffic_hub.kafka import BrokerProbe, Publisher, Record, ensure_topics
from traffic_hub.topics import Topics

SOURCE_ID = re.compile(rb'"source_id":"(nb-[0-9a-z-]+)"')
PARTITIONS = 3
WARM = 3  # warm-up reports: every stage has placed and decided once before the clock starts
TOPICS_S = 120.0  # topics created on the cluster
START_S = 240.0  # processes started, network loaded, groups stable (slow on a loaded 2-core machine)
WORK_S = 300.0  # a backlog worked off
WRITE_S = 120.0  # a backlog written
BEGIN, END = "<!-- cluster rows: begin -->", "<!-- cluster rows: end -->"
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


@dataclass(frozen=True, slots=True)
class Throughput:
    normalisers: int
    reports: int
    seconds: float  # first write → every report's item in an event
    placed_s: float  # first write → every report in the placed topic
    cpu_s: list[float]  # per normaliser, during the timed window
    owner: int  # index of the process that held the decision partition (-1: unknown)
    load: tuple[float, float]  # 1-minute load average at the start and the end of the timed window

    @property
    def per_s(self) -> float:
        return self.reports / self.seconds

    @property
    def placed_per_s(self) -> float:
        return self.reports / self.placed_s


@dataclass(frozen=True, slots=True)
class Latency:
    samples: int
    p50_ms: float
    p99_ms: float


def latency(values_ms: list[float]) -> Latency:
    ordered = sorted(values_ms)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return Latency(len(ordered), statistics.median(ordered), p99)


def load1() -> float:
    return os.getloadavg()[0]


def stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


def waze_backlog(count: int, tag: str) -> bytes:
    """A Waze partner feed of `count` hazards, one per street of Lille (distinct places: few merges)."""
    pool = [s for s in streets(RoadNetwork.default()) if s.commune == "59350"]
    now_ms = int(time.time() * 1000)
    alerts = []
    for i in range(count):
        street = pool[(i * 7) % len(pool)]
        lon, lat = street.coordinates[len(street.coordinates) // 2]
        alerts.append(
            {
                "uuid": f"nb-{tag}-{i}",
                "type": "HAZARD",
                "subtype": "HAZARD_ON_ROAD_POT_HOLE",
                "street": street.name,
                "city": "Lille",
                "country": "FR",
                "location": {"x": lon, "y": lat},
                "pubMillis": now_ms - 60_000,
                "reliability": 6,
                "confidence": 1,
                "reportRating": 0,
                "magvar": 0,
                "roadType": 2,
            }
        )
    return orjson.dumps({"alerts": alerts, "jams": [], "startTimeMillis": now_ms - 60_000, "endTimeMillis": now_ms})


async def reports_of(topics: Topics, count: int, tag: str) -> tuple[list[Record], int]:
    """The records of one connector cycle over `count` hazards, and how many incident reports they hold."""
    body = waze_backlog(count, tag)
    result = FetchResult(200, body, Validators(etag=f'"{tag}"'), "application/json", 0.0)
    ctx = ParseContext(source="bench-waze", received_at=datetime.now(UTC))
    plan = await asyncio.to_thread(plan_cycle, parser_for("waze-partner-feed"), result, ctx, Memory(), topics,
                                   "https://example.invalid/waze")  # fmt: skip
    return plan.records, plan.incidents


async def publisher_ready(publisher: Publisher, timeout_s: float = 60.0) -> None:
    async def poll() -> tuple[bool, str]:
        return publisher.ready, "producer not started or broker probe down"

    await waited("the bench's publisher", poll, timeout_s, every_s=0.05)  # the Publisher has no event to wait on


async def write_records(bootstrap: str, records: Sequence[Record], client: str) -> None:
    """Write `records` acknowledged (acks=all), in chunks of the connector runner's size."""
    try:
        async with asyncio.timeout(WRITE_S):
            async with BrokerProbe(bootstrap, 0.5) as probe, Publisher(bootstrap, probe, 30.0, client) as publisher:
                await publisher_ready(publisher)
                for at in range(0, len(records), CHUNK):
                    await publisher.send_many(records[at : at + CHUNK])
    except TimeoutError as exc:
        raise Stuck(f"writing {len(records)} records to {bootstrap}: not done within {WRITE_S:.0f} s") from exc


async def write_backlog(bootstrap: str, topics: Topics, count: int, tag: str) -> int:
    """The incident reports of one connector cycle over `count` hazards, written to the reports topic."""
    records, incidents = await reports_of(topics, count, tag)
    await write_records(bootstrap, records, f"{tag}-backlog")
    return incidents


async def create_topics(bootstrap: str, topics: Topics, replication: int) -> None:
    min_insync = 2 if replication >= 3 else 1
    try:
        async with asyncio.timeout(TOPICS_S):
            await ensure_topics(bootstrap, topics, PARTITIONS, replication, min_insync)
    except TimeoutError as exc:
        raise Stuck(
            f"topics {topics.prefix}.* (RF {replication}) not created on {bootstrap} in {TOPICS_S:.0f} s"
        ) from exc


async def delete_prefix(bootstrap: str, prefix: str) -> None:
    """Delete every topic of a bench deployment (reports, placed, events, dead letters, connector state…)."""
    with contextlib.suppress(KafkaError, OSError, TimeoutError, Stuck):
        async with admin_client(bootstrap, "bench-cleanup", timeout_s=20) as admin, asyncio.timeout(30):
            ours = [t for t in await admin.list_topics() if t.startswith(f"{prefix}.")]
            if ours:
                await admin.delete_topics(ours)


def decision_owner(processes: list[RoleProcess], placed_topic: str) -> int:
    """Which process took the placed topic's partition last (the time stamps of its log), -1 if none did."""
    said = f"normaliser decision: owner of {placed_topic}"
    last = [max((line[:23] for line in p.tail(2000).splitlines() if said in line), default="") for p in processes]
    newest = max(last)
    return last.index(newest) if newest else -1


def all_alive(processes: list[RoleProcess]) -> None:
    for process in processes:
        process.ready()  # raises, with the end of its log, if it died


async def started(processes: list[RoleProcess], bootstrap: str, topics: Topics) -> None:
    """Start the normalisers; wait until both of their groups are stable with every one of them in it."""
    for process in processes:
        process.start()
    groups = [topics.normaliser_group, topics.decision_group]
    took = await groups_formed(bootstrap, groups, len(processes), START_S, lambda: all_alive(processes))
    say(f"{len(processes)} normaliser(s) in both groups after {took:.0f} s")


@dataclass(frozen=True, slots=True)
class Timed:
    placed_s: float
    decided_s: float
    cpu_s: list[float]
    load: tuple[float, float]
    placed: list[tuple[bytes, bytes]]  # the placed records of the backlog (key, value)


async def timed(
    bootstrap: str,
    topics: Topics,
    processes: list[RoleProcess],
    records: Sequence[Record],
    wanted: int,
    what: str,
    tag: str,
) -> Timed:
    """Write `records`, time until their `wanted` items (ids `nb-<tag>-N`) are placed and decided."""
    mine = re.compile(rb'"source_id":"nb-' + re.escape(tag.encode()) + rb'-[0-9]+"')
    async with (
        ItemCounter(bootstrap, topics.placed, 1, SOURCE_ID, keep=mine) as placed,
        ItemCounter(bootstrap, topics.events, PARTITIONS, SOURCE_ID) as events,
    ):
        await placed.until(WARM, 60, f"{what}: warm-up placed")  # read up to now: the clock starts clean
        await events.until(WARM, 60, f"{what}: warm-up decided")
        cpu_before = [p.cpu_s() for p in processes]
        load_start, start = load1(), time.monotonic()
        await write_records(bootstrap, records, f"{topics.prefix}-backlog")
        placed_at, decided_at = await asyncio.gather(
            placed.until(WARM + wanted, WORK_S, f"{what}: placed"),
            events.until(WARM + wanted, WORK_S, f"{what}: decided"),
        )
        cpu = [p.cpu_s() - before for p, before in zip(processes, cpu_before, strict=True)]
    return Timed(placed_at - start, decided_at - start, cpu, (load_start, load1()), placed.kept)


async def normaliser_throughput(
    cluster: Cluster, workdir: Path, count: int, normalisers: int
) -> tuple[Throughput, list[Record], str]:
    """`normalisers` processes working off a backlog of `count` incident reports on the cluster; and the
    placed records of the backlog with its tag (for the decision stage's ceiling)."""
    prefix = f"bench-norm{normalisers}-{int(time.time())}-{os.getpid()}"
    topics = Topics(prefix)
    auth = workdir / "principals.toml"
    auth.write_text(principals_toml(), encoding="utf-8")
    deployment = Deployment(cluster.bootstrap, prefix, auth, workdir, "http://127.0.0.1:8000")
    processes = [RoleProcess(deployment, "normaliser", f"norm{normalisers}-{i + 1}") for i in range(normalisers)]
    say(f"{normalisers} normaliser(s): topics {prefix}.*")
    try:
        await create_topics(cluster.bootstrap, topics, 3)
        await started(processes, cluster.bootstrap, topics)
        await write_backlog(cluster.bootstrap, topics, WARM, f"{prefix}-warm")
        records, wanted = await reports_of(topics, count, prefix)
        say(f"{normalisers} normaliser(s): warm; writing {wanted:,} reports")
        run = await timed(cluster.bootstrap, topics, processes, records, wanted, f"{normalisers} normaliser(s)", prefix)
        result = Throughput(normalisers, wanted, run.decided_s, run.placed_s, run.cpu_s,
                            decision_owner(processes, topics.placed), run.load)  # fmt: skip
        say(f"{normalisers} normaliser(s): {result.per_s:,.0f} reports/s (placed {result.placed_per_s:,.0f}/s), "
            f"CPU s {_cpu(result)}")  # fmt: skip
        return result, [Record("", key, value) for key, value in run.placed], prefix
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.stop()
        await delete_prefix(cluster.bootstrap, prefix)


async def decision_ceiling(cluster: Cluster, workdir: Path, placed: list[Record], tag: str) -> Throughput:
    """One normaliser that only decides: the backlog's placed records written straight to its placed topic."""
    prefix = f"bench-decide-{int(time.time())}-{os.getpid()}"
    topics = Topics(prefix)
    deployment = Deployment(cluster.bootstrap, prefix, workdir / "principals.toml", workdir, "http://127.0.0.1:8000")
    process = RoleProcess(deployment, "normaliser", "decide-1")
    records = [Record(topics.placed, r.key, r.value) for r in placed]
    items = len({item for r in placed for item in SOURCE_ID.findall(r.value or b"")})  # a report placed twice: once
    say(f"decision stage alone: topics {prefix}.*, {len(records):,} placed reports")
    try:
        await create_topics(cluster.bootstrap, topics, 3)
        await started([process], cluster.bootstrap, topics)
        await write_backlog(cluster.bootstrap, topics, WARM, f"{prefix}-warm")
        run = await timed(cluster.bootstrap, topics, [process], records, items, "decision stage alone", tag)
        result = Throughput(1, items, run.decided_s, run.placed_s, run.cpu_s, 0, run.load)
        say(f"decision stage alone: {result.per_s:,.0f} reports/s, CPU {run.cpu_s[0]:.1f} s")
        return result
    finally:
        process.stop()
        await delete_prefix(cluster.bootstrap, prefix)


async def broker_answers(bootstrap: str, what: str) -> None:
    """Fail at once, saying how to fix it, when the broker of a comparison is not running."""
    try:
        async with admin_client(bootstrap, "bench-probe", timeout_s=30) as admin, asyncio.timeout(30):
            await admin.list_topics()
    except (KafkaError, OSError, TimeoutError, Stuck) as exc:
        raise Stuck(f"{what} at {bootstrap} does not answer ({exc!r}); start it (`make kafka-up`) or set "
                    "TRAFFIC_HUB_KAFKA__BOOTSTRAP_SERVERS") from exc  # fmt: skip


def hub_latency(bootstrap: str, replication: int, workdir: Path, samples: int) -> Latency:
    """POST → closure in every feed, one at a time, on a whole hub (`traffic-hub run`) on `bootstrap`."""
    prefix = f"bench-visible-rf{replication}-{int(time.time())}-{os.getpid()}"
    auth = workdir / f"principals-rf{replication}.toml"
    auth.write_text(principals_toml(), encoding="utf-8")
    deployment = Deployment(bootstrap, prefix, auth, workdir, "http://127.0.0.1:8000", replication=replication)
    process = RoleProcess(deployment, "run", f"hub-rf{replication}")
    say(f"whole hub on {bootstrap} (RF {replication}): starting")
    process.start()
    try:
        deadline = time.monotonic() + START_S
        while not process.ready():  # raises, with the end of its log, if the hub died
            if time.monotonic() > deadline:
                raise Stuck(f"the hub on {bootstrap} was not ready within {START_S:.0f} s:\n{process.tail()}")
            time.sleep(0.3)  # synchronous code: polling a process's readiness, with a deadline
        assert process.process is not None
        hub = Hub(process.process, prefix, process.port, process.log)
        say(f"whole hub on {bootstrap} (RF {replication}): ready, {samples} closures one at a time")
        seen = closures_load.visible(hub, feed_paths(), samples)
        say(f"whole hub on {bootstrap} (RF {replication}): p50 {seen.p50_ms:.0f} ms, p99 {seen.p99_ms:.0f} ms")
        return Latency(seen.samples, seen.p50_ms, seen.p99_ms)
    finally:
        process.stop()
        asyncio.run(delete_prefix(bootstrap, prefix))


async def _write_latency(bootstrap: str, replication: int, samples: int) -> Latency:
    topic = f"bench-rf{replication}-{int(time.time())}-{os.getpid()}"
    out: list[float] = []
    async with admin_client(bootstrap, "bench-rf") as admin:
        configs = {"min.insync.replicas": str(min(2, replication))}
        async with asyncio.timeout(TOPICS_S):
            await admin.create_topics([NewTopic(topic, 1, replication, topic_configs=configs)])
        try:
            async with (
                asyncio.timeout(WORK_S),
                BrokerProbe(bootstrap, 0.5) as probe,
                Publisher(bootstrap, probe, 30.0, topic) as publisher,
            ):
                await publisher_ready(publisher)
                for _ in range(5):  # metadata and connections first
                    await publisher.send(Record(topic, b"warm", b"{}"))
                for i in range(samples):
                    begun = time.perf_counter()
                    await publisher.send(Record(topic, str(i).encode(), b'{"bench": true}'))
                    out.append((time.perf_counter() - begun) * 1000)
        finally:
            with contextlib.suppress(KafkaError, OSError, TimeoutError):
                async with asyncio.timeout(30):
                    await admin.delete_topics([topic])
    return latency(out)


def write_latency(bootstrap: str, replication: int, samples: int = 300) -> Latency:
    """One acks=all write at a time through the hub's Publisher to a topic of `replication` replicas."""
    say(f"one acks=all write at a time, RF {replication}: {samples} writes")
    return asyncio.run(_write_latency(bootstrap, replication, samples))


def _cpu(t: Throughput) -> str:
    return ", ".join(f"{c:.1f}{'*' if i == t.owner else ''}" for i, c in enumerate(t.cpu_s))


def throughput_row(t: Throughput, one: Throughput, decision: Throughput | None) -> Row:
    cores = os.cpu_count() or 1
    ceiling = f"; decision stage alone {decision.per_s:,.0f}/s" if decision else ""
    return Row(
        "16",
        f"normalised reports/s, {t.normalisers} normaliser{'s' if t.normalisers > 1 else ''} on the cluster (RF 3; "
        f"backlog of {t.reports:,} Waze incident reports, 3 partitions)",
        f"{t.per_s:,.0f} reports/s decided in {t.seconds:.1f} s (placed: {t.placed_per_s:,.0f}/s in "
        f"{t.placed_s:.1f} s); CPU s per normaliser: {_cpu(t)} (* decision owner; sum {sum(t.cpu_s):.1f} of "
        f"{t.seconds * cores:.0f} core-s: {sum(t.cpu_s) / t.reports * 1000:.1f} CPU ms per report); "
        f"load {t.load[0]:.1f} → {t.load[1]:.1f}",
        f"1 normaliser: {one.per_s:,.0f}/s → {t.per_s / one.per_s:.2f}x{ceiling}",
        f"≤ {cores} cores: the machine caps the sum of CPU; one decision owner caps the total",
    )


def decision_row(d: Throughput, one: Throughput) -> Row:
    per_report_ms = d.cpu_s[0] / d.reports * 1000
    stage1_ms = max(0.0, sum(one.cpu_s) / one.reports * 1000 - per_report_ms)
    return Row(
        "16",
        f"decision stage alone (one owner, serial by design): {d.reports:,} placed reports written to the placed "
        "topic of one normaliser",
        f"{d.per_s:,.0f} reports/s in {d.seconds:.1f} s; CPU {d.cpu_s[0]:.1f} s = {per_report_ms:.2f} ms per report; "
        f"load {d.load[0]:.1f} → {d.load[1]:.1f}",
        f"whole normaliser (1 process): {sum(one.cpu_s) / one.reports * 1000:.2f} CPU ms per report → placement "
        f"≈ {stage1_ms:.2f} ms",
        "the ceiling of the hub's normalisation, whatever the number of normalisers",
    )


def normaliser_rows(cluster: Cluster, workdir: Path, reports: int) -> list[Row]:
    """1, 2 and 3 normalisers, then the decision stage alone on the 1-normaliser run's placed records."""
    runs: list[Throughput] = []
    placed: list[Record] = []
    tag = ""
    for n in (1, 2, 3):
        t, records, prefix = asyncio.run(normaliser_throughput(cluster, workdir, reports, n))
        runs.append(t)
        if not placed:
            placed, tag = records, prefix
    decision = asyncio.run(decision_ceiling(cluster, workdir, placed, tag)) if placed else None
    out = [throughput_row(t, runs[0], decision) for t in runs]
    if decision is not None:
        out.append(decision_row(decision, runs[0]))
    return out


def visibility_rows(cluster: Cluster, workdir: Path, samples: int) -> list[Row]:
    """POST → closure in every feed, whole hub on the single broker, then on the cluster."""
    single_at = single_bootstrap()
    asyncio.run(broker_answers(single_at, "the single broker"))
    load_start = load1()
    single = hub_latency(single_at, 1, workdir, samples)
    replicated = hub_latency(cluster.bootstrap, 3, workdir, samples)
    return [
        Row(
            "16",
            f"POST → closure in every feed, one at a time, whole hub on the cluster (RF 3, min ISR 2) "
            f"(n={replicated.samples})",
            f"p50 {replicated.p50_ms:.0f} ms, p99 {replicated.p99_ms:.0f} ms; load {load_start:.1f} → {load1():.1f}",
            f"single broker (RF 1): p50 {single.p50_ms:.0f} ms, p99 {single.p99_ms:.0f} ms → "
            f"p99 {replicated.p99_ms / single.p99_ms:.2f}x",
            f"p99 < {closures_load.GOAL_VISIBLE_P99_MS:.0f} ms",
            "ok" if replicated.p99_ms < closures_load.GOAL_VISIBLE_P99_MS else "MISSED",
        )
    ]


def write_rows(cluster: Cluster) -> list[Row]:
    """One acks=all write at a time, RF 1 then RF 3, on the same cluster."""
    load_start = load1()
    rf1 = write_latency(cluster.bootstrap, 1)
    rf3 = write_latency(cluster.bootstrap, 3)
    return [
        Row(
            "16",
            f"one acks=all write through the hub's Publisher, RF 3 / min ISR 2 on the cluster (n={rf3.samples})",
            f"p50 {rf3.p50_ms:.1f} ms, p99 {rf3.p99_ms:.1f} ms; load {load_start:.1f} → {load1():.1f}",
            f"RF 1 on the same cluster: p50 {rf1.p50_ms:.1f} ms, p99 {rf1.p99_ms:.1f} ms → "
            f"p50 {rf3.p50_ms / rf1.p50_ms:.2f}x, p99 {rf3.p99_ms / rf1.p99_ms:.2f}x",
        )
    ]


def rows(cluster: Cluster, workdir: Path, reports: int = 1500, samples: int = 30) -> list[Row]:
    """The cluster rows of `make bench`. A part that fails (a wait past its deadline says what it waited
    for) gives a FAILED row with the reason, and the other parts are still measured."""
    parts: list[tuple[str, Callable[[], list[Row]]]] = [
        ("normalisers", lambda: normaliser_rows(cluster, workdir, reports)),
        ("POST → every feed", lambda: visibility_rows(cluster, workdir, samples)),
        ("RF 3 vs RF 1 writes", lambda: write_rows(cluster)),
    ]
    out: list[Row] = []
    for name, part in parts:
        try:
            out += part()
        except Exception as exc:  # reported in the table and on stderr; the next part still runs
            say(f"{name}: FAILED: {type(exc).__name__}: {exc}")
            out.append(Row("16", f"cluster, {name}: FAILED", f"{type(exc).__name__}: {exc}"[:400], verdict="MISSED"))
    return out


def section(rows_: list[Row], command: str, started: str, load: str, seconds: float) -> str:
    """The cluster rows as their own section of RESULTS.md (`--only cluster` keeps the rest of the file)."""
    out = [BEGIN, "## Cluster rows (issue 16)", "",
           f"Generated by `{command}` ({started}, load average at start {load}, {seconds:.0f} s); "
           "do not edit by hand.", "",
           "| issue | what | measured | reference (same run) | goal |  |", "|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows_:
        cells = (r.issue, r.what, r.measured, r.reference, r.goal, r.verdict)
        out.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    out.append(END)
    return "\n".join(out)


def write_section(text: str, path: Path = RESULTS) -> None:
    """Put the cluster section into RESULTS.md, replacing the previous one (the rest of the file is kept)."""
    current = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n"
    if BEGIN in current and END in current:
        head, _, rest = current.partition(BEGIN)
        current = head + text + rest.partition(END)[2]
    else:
        chaos = "<!-- chaos run: begin -->"
        head, found, tail = current.partition(chaos)
        current = (head.rstrip("\n") + "\n\n" + text + "\n\n" + found + tail) if found else (
            current.rstrip("\n") + "\n\n" + text + "\n")  # fmt: skip
    path.write_text(current, encoding="utf-8")
