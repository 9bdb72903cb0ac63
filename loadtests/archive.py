"""Issue 19: the archive. Archiver rows/s and lag under a steady load; history queries on a year at MEL scale.

**Volume, from the real Waze partner feed.** The NYC snapshot in /work/shared/data/waze (one poll) holds
1,364 alerts and 2,117 jams. MEL has ~1.2 M inhabitants against the ~8.3 M of New York City, so a poll
for MEL holds ~190 alerts and ~300 jams (`MEL_ALERTS`, `MEL_JAMS`). Polled every two minutes (720 polls a
day), with alerts living ~1 h and jams ~30 min (a new alert every ~20 s, a new jam every ~6 s) and the
runner re-sending only what changed (every jam moves each poll, ~10 % of alerts), that is ~26 new events
and ~325 event versions per poll: **~6.8 M events and ~85 M event versions a year** (as many reports).

The synthetic year has, at `--archive-scale 1`, MEL's real number of events (~6.9 M, ~26 new per poll, a
few hundred alive at any instant) but only the first and the last version of each: the history queries'
cost depends on how many events a window or an instant holds and on the index depths, not on the
intermediate versions, which only the per-event history reads. `make bench` runs `--archive-scale 0.05`
(~350,000 events: a ~5-minute COPY on the 2-core development machine); the query figures then hold ~1/20
of the events per window, which the row names. It is written with COPY (the span trigger off for the
load: spans are computed here like the trigger computes them).

Queries are the API's own (`traffic_hub.archive.queries`), on one connection, each repeated with varied
parameters: a commune-month (Lille, the busiest commune, first page and the whole walk), the replay of a
day (`at=` every 10 minutes, as the map's slider, and the day as a window). Goals are p99s. Each query row
says the load average it ran under (the machine is shared; a ratio in one run is fair, a latency is not).

The analytics' rows (a closure's impact report, a week's Waze jams per segment metropole-wide, both from the
hourly roll-up) come from `loadtests/bench_impact.py`, run here on `impact_days` days of Waze jams at MEL's
full density (the queries' cost follows the jams per hour, not the length of the history kept).
"""

from __future__ import annotations

import asyncio
import io
import math
import os
import random
import statistics
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson
import psycopg
from aiokafka import AIOKafkaProducer

from loadtests import bench_impact
from loadtests.report import Row, text_table, verdict
from traffic_hub.archive import Archiver, queries
from traffic_hub.archive.schema import migrate, month_start, next_month, partition_name
from traffic_hub.kafka import ensure_topics
from traffic_hub.settings import bootstrap_servers
from traffic_hub.topics import Topics

ROOT = Path(__file__).resolve().parents[1]
MEL_ALERTS, MEL_JAMS = 190, 300
POLLS_PER_DAY = 720
NEW_PER_POLL = MEL_ALERTS / 30 + MEL_JAMS / 15  # alerts live ~30 polls, jams ~15
VERSIONS_PER_POLL = MEL_JAMS + MEL_ALERTS * 0.1 + NEW_PER_POLL
YEAR_EVENTS = NEW_PER_POLL * POLLS_PER_DAY * 365
YEAR_VERSIONS = VERSIONS_PER_POLL * POLLS_PER_DAY * 365
GOAL_ROWS_S = 1_000  # > 6x the closure-write peak (157/s), > 100x MEL's Waze rate (~3 versions/s + reports)
STEADY_RATE = 500  # records/s for the lag measurement (~170x MEL's real rate)
GOAL_LAG_P99_S = 2.0
GOAL_PAGE_P99_MS = 250.0
GOAL_AT_P99_MS = 150.0
# Lille and a few neighbours with their share of events (Lille the busiest; the rest spread over MEL)
COMMUNES = [("59350", 0.30), ("59512", 0.08), ("59599", 0.08), ("59009", 0.06), ("59360", 0.04)]
OTHER_COMMUNES = [f"59{n:03d}" for n in range(1, 96)]


def _cluster_url() -> str:
    done = subprocess.run(["bash", str(ROOT / "ops/postgres/db-local.sh"), "up"], check=True, timeout=300,
                          capture_output=True, text=True)
    return done.stdout.strip().splitlines()[-1]


def _with_db(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


@dataclass
class ArchiverFigures:
    records: int
    rows_per_s: float
    steady_rate: float
    lag_p99_s: float
    lag_max_s: float
    lag_max_records: int


def _record(n: int, events: bool) -> tuple[bytes, bytes]:
    now = datetime.now(UTC).isoformat()
    if events:
        doc = {"id": f"ev-{n // 2}", "type": "jam", "description": "jam", "version": n % 2 + 1,
               "geometry": {"type": "LineString", "coordinates": [[3.06, 50.63], [3.07, 50.64]]},
               "validity": {"starts_at": now, "ends_at": None}, "commune": "59350",
               "sources": [{"source": "waze-mel", "source_id": str(n // 2), "kind": "waze-jam", "received_at": now}],
               "created_at": now, "updated_at": now}
        return f"ev-{n // 2}".encode(), orjson.dumps(doc)
    doc = {"key": f"waze-mel:{n}", "kind": "incident", "source": "waze-mel", "received_at": now, "payload": {}}
    return f"waze-mel:{n}".encode(), orjson.dumps(doc)


async def _produce(producer: AIOKafkaProducer, topics: Topics, start: int, count: int) -> None:
    futures = []
    for n in range(start, start + count):
        events = n % 2 == 0
        key, value = _record(n, events)
        futures.append(await producer.send(topics.events if events else topics.reports, value, key=key))
    await asyncio.gather(*futures)


async def _archived(url: str) -> int:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        try:
            cur = await conn.execute("SELECT coalesce(sum(next_offset), 0) FROM archive_offsets")
        except psycopg.errors.UndefinedTable:
            return 0
        row = await cur.fetchone()
    return int(row[0]) if row else 0


async def _wait_archived(url: str, target: int, deadline_s: float) -> None:
    started = time.monotonic()
    while await _archived(url) < target:
        if time.monotonic() - started > deadline_s:
            raise TimeoutError(f"the archiver did not archive {target} records in {deadline_s:.0f} s")
        await asyncio.sleep(0.05)


async def archiver_figures(url: str, burst: int, steady_s: float) -> ArchiverFigures:
    """`burst` records written before the archiver starts (rows/s), then STEADY_RATE records/s (lag)."""
    bootstrap = bootstrap_servers()
    topics = Topics(f"bench-archive-{uuid.uuid4().hex[:8]}")
    await ensure_topics(bootstrap, topics, 3, 1)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5)
    await producer.start()
    try:
        await _produce(producer, topics, 0, burst)
        archiver = Archiver(url, bootstrap, topics, f"{topics.prefix}-archiver")
        async with archiver:
            await _wait_archived(url, 1, 120)  # the consumer group formed, the first batch written
            started, first = time.monotonic(), await _archived(url)
            await _wait_archived(url, burst, 600)
            rows_per_s = (burst - first) / (time.monotonic() - started)
            produced_at: list[float] = []  # time at which each 100th steady record had been sent
            lags: list[float] = []
            lag_records = 0
            sent = burst
            begin = time.monotonic()
            while time.monotonic() - begin < steady_s:
                tick = time.monotonic()
                await _produce(producer, topics, sent, STEADY_RATE // 10)
                sent += STEADY_RATE // 10
                produced_at.append(time.monotonic())
                done = await _archived(url)
                lag_records = max(lag_records, sent - done)
                behind = (done - burst) // (STEADY_RATE // 10)  # whole steady chunks archived
                waiting = produced_at[behind:]
                lags.append(time.monotonic() - waiting[0] if waiting else 0.0)
                await asyncio.sleep(max(0.0, 0.1 - (time.monotonic() - tick)))
            steady_rate = (sent - burst) / (time.monotonic() - begin)
            await _wait_archived(url, sent, 120)
    finally:
        await producer.stop()
    lags.sort()
    return ArchiverFigures(burst, rows_per_s, steady_rate, lags[int(len(lags) * 0.99) - 1] if lags else 0.0,
                           lags[-1] if lags else 0.0, lag_records)


# --- a synthetic year ------------------------------------------------------------------------------


@dataclass
class Year:
    events: int
    versions: int
    seconds: float
    start: datetime
    end: datetime


def _commune(rng: random.Random) -> str:
    x = rng.random()
    for code, share in COMMUNES:
        if x < share:
            return code
        x -= share
    return rng.choice(OTHER_COMMUNES)


def _span_row(event_id: str, first: datetime, ended: datetime, kind: str, commune: str, geom: str) -> str:
    life = f"[{first.isoformat()},{max(first, ended).isoformat()})"
    source = "waze-mel" if kind != "closure" else "roadworks:voirie-lille"
    names = "{" + ",".join(sorted({source, source.split(":")[0]})) + "}"
    return "\t".join((event_id, first.isoformat(), ended.isoformat(), "bench", "0", "0", "f", ended.isoformat(),
                      "\\N", life, kind, commune, names, "t" if kind != "closure" else "f", geom)) + "\n"


def _doc(event_id: str, version: int, kind: str, commune: str, first: datetime, coords: list[list[float]],
         lifecycle: str) -> str:
    at = first.isoformat()
    source = "waze-mel" if kind != "closure" else "roadworks:voirie-lille"
    return orjson.dumps({
        "id": event_id, "type": kind, "description": kind, "version": version, "lifecycle": lifecycle,
        "geometry": {"type": "LineString", "coordinates": coords}, "commune": commune,
        "validity": {"starts_at": at, "ends_at": None},
        "sources": [{"source": source, "source_id": event_id, "kind": f"waze-{kind}", "received_at": at}],
        "created_at": at, "updated_at": at,
    }).decode().replace("\\", "\\\\")


def _version_row(offset: int, at: datetime, event_id: str, version: int, kind: str, commune: str, doc: str,
                 wkt: str, lifecycle: str) -> str:
    return "\t".join(("bench", "0", str(offset), at.isoformat(), event_id, str(version), "f", kind, lifecycle,
                      commune, doc, wkt)) + "\n"


def generate_year(url: str, scale: float, end: datetime) -> Year:
    """A year of events ending at `end` at MEL density × `scale`, with COPY (see the module doc)."""
    rng = random.Random(19)
    start = end - timedelta(days=365)
    total = int(YEAR_EVENTS * scale)
    step = (end - start).total_seconds() / total
    spans, versions = io.StringIO(), io.StringIO()
    offset = 0
    for n in range(total):
        first = start + timedelta(seconds=n * step + rng.random() * step)
        x = rng.random()
        kind, mean_min = ("closure", 60 * 24 * 5) if x < 0.005 else ("jam", 30) if x < 0.6 else ("accident", 60)
        ended = first + timedelta(minutes=rng.expovariate(1 / mean_min))
        commune = _commune(rng)
        lon, lat = 2.95 + rng.random() * 0.35, 50.55 + rng.random() * 0.25
        coords = [[round(lon, 6), round(lat, 6)], [round(lon + 0.002, 6), round(lat + 0.001, 6)]]
        wkt = f"SRID=4326;LINESTRING({coords[0][0]} {coords[0][1]},{coords[1][0]} {coords[1][1]})"
        event_id = f"y{n}"
        spans.write(_span_row(event_id, first, ended, kind, commune, wkt))
        for version, at, lifecycle in ((1, first, "open"), (2, ended, "ended")):
            doc = _doc(event_id, version, kind, commune, first, coords, lifecycle)
            versions.write(_version_row(offset, at, event_id, version, kind, commune, doc, wkt, lifecycle))
            offset += 1
    started = time.monotonic()
    with psycopg.connect(url, autocommit=True) as conn:
        month = month_start(start)
        while month <= end + timedelta(days=60):
            bounds = f"FROM ('{month.isoformat()}') TO ('{next_month(month).isoformat()}')"
            conn.execute(f'CREATE TABLE IF NOT EXISTS "{partition_name("event_versions", month)}" PARTITION OF '
                         f"event_versions FOR VALUES {bounds}")
            month = next_month(month)
        conn.execute("SET session_replication_role = replica")  # the span trigger off: spans come with COPY
        with conn.cursor() as cur, cur.copy(
            "COPY event_spans (event_id, first_at, last_at, last_topic, last_partition, last_offset, deleted, "
            "ended_at, ends_at, life, type, commune, sources, waze_only, geom) FROM STDIN"
        ) as copy:
            copy.write(spans.getvalue())
        with conn.cursor() as cur, cur.copy(
            'COPY event_versions (topic, partition, "offset", received_at, event_id, version, deleted, type, '
            "lifecycle, commune, event, geom) FROM STDIN"
        ) as copy:
            copy.write(versions.getvalue())
        conn.execute("ANALYZE event_spans")
        conn.execute("ANALYZE event_versions")
    return Year(total, offset, time.monotonic() - started, start, end)


# --- query times -----------------------------------------------------------------------------------


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


async def _timed(runs: list[Callable[[], Awaitable[Any]]]) -> tuple[list[float], list[Any]]:
    times, results = [], []
    for run in runs:
        started = time.perf_counter()
        results.append(await run())
        times.append((time.perf_counter() - started) * 1000)
    return times, results


async def query_rows(url: str, year: Year) -> list[Row]:
    rows: list[Row] = []
    lille = queries.EventFilter(commune="59350")
    everything = queries.EventFilter()
    rng = random.Random(7)
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await queries.events_between(conn, year.start, year.start + timedelta(days=1), everything, None, 10)  # warm
        months = [year.start + timedelta(days=30 * m + 5) for m in range(11)]
        first_pages, _ = await _timed([  # the API's default page (200)
            partial(queries.events_between, conn, m, m + timedelta(days=30), lille, None, 200) for m in months])
        _, results = await _timed([partial(queries.events_between, conn, months[0], months[0] + timedelta(days=30),
                                           lille, None, 1000)])
        walk_started = time.perf_counter()
        page = results[0]
        pages, walked = 1, len(page.items)
        while page.next is not None:
            page = await queries.events_between(conn, months[0], months[0] + timedelta(days=30), lille, page.next, 1000)
            pages, walked = pages + 1, walked + len(page.items)
        walk_s = time.perf_counter() - walk_started
        rows.append(Row(
            "19", f"history: a commune-month (Lille, 30 days), first page of 200 (n={len(first_pages)}); "
            "whole walk by pages of 1,000",
            f"p50 {statistics.median(first_pages):.0f} ms, p99 {_p(first_pages, 0.99):.0f} ms; "
            f"{walked:,} events in {pages} pages, {walk_s:.1f} s (load average {os.getloadavg()[0]:.1f})", "",
            f"page p99 < {GOAL_PAGE_P99_MS:.0f} ms",
            verdict(_p(first_pages, 0.99) < GOAL_PAGE_P99_MS)))
        day = year.start + timedelta(days=rng.randrange(30, 330))
        instants = [day + timedelta(minutes=10 * k) for k in range(144)]
        at_times, at_pages = await _timed([partial(queries.events_at, conn, t, everything, None, 1000)
                                           for t in instants])
        alive = statistics.mean(len(p.items) for p in at_pages)
        rows.append(Row(
            "19", f"history: replay of one day, at= every 10 min (n={len(at_times)}), whole MEL",
            f"p50 {statistics.median(at_times):.0f} ms, p99 {_p(at_times, 0.99):.0f} ms ({alive:,.0f} events alive "
            f"per instant; load average {os.getloadavg()[0]:.1f})", "", f"p99 < {GOAL_AT_P99_MS:.0f} ms",
            verdict(_p(at_times, 0.99) < GOAL_AT_P99_MS)))
        days = [year.start + timedelta(days=rng.randrange(30, 330)) for _ in range(50)]
        day_times, _ = await _timed([partial(queries.events_between, conn, d, d + timedelta(days=1), everything,
                                             None, 200) for d in days])
        rows.append(Row(
            "19", f"history: a day's window, whole MEL, first page of 200 (n={len(day_times)})",
            f"p50 {statistics.median(day_times):.0f} ms, p99 {_p(day_times, 0.99):.0f} ms (load average "
            f"{os.getloadavg()[0]:.1f})", "before the GiST-first stab (generic plan): p99 688 ms",
            f"p99 < {GOAL_PAGE_P99_MS:.0f} ms", verdict(_p(day_times, 0.99) < GOAL_PAGE_P99_MS)))
    return rows


async def _run(scale: float, burst: int, steady_s: float, impact_days: int) -> list[Row]:
    cluster = _cluster_url()
    name = f"bench_archive_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(cluster, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = _with_db(cluster, name)
    try:
        figures = await archiver_figures(url, burst, steady_s)
        rows = [
            Row("19", f"archiver: {figures.records:,} records (reports + event versions) from Kafka to PostgreSQL",
                f"{figures.rows_per_s:,.0f} rows/s", f"MEL Waze ≈ {VERSIONS_PER_POLL * 2 / 120:,.0f} records/s",
                f"≥ {GOAL_ROWS_S:,} rows/s", verdict(figures.rows_per_s >= GOAL_ROWS_S)),
            Row("19", f"archiver lag at a steady {figures.steady_rate:,.0f} records/s",
                f"p99 {figures.lag_p99_s:.2f} s, max {figures.lag_max_s:.2f} s ({figures.lag_max_records:,} records)",
                "", f"p99 < {GOAL_LAG_P99_S:.0f} s", verdict(figures.lag_p99_s < GOAL_LAG_P99_S)),
        ]
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await migrate(conn)
        year = generate_year(url, scale, datetime.now(UTC).replace(microsecond=0))
        rows.append(Row(
            "19", f"synthetic year at MEL density × {scale:g}: {year.events:,} events, {year.versions:,} versions "
            f"(real volume ≈ {YEAR_EVENTS / 1e6:.1f} M events, {YEAR_VERSIONS / 1e6:.0f} M versions a year)",
            f"written with COPY in {year.seconds:.0f} s ({year.versions / year.seconds:,.0f} rows/s)"))
        rows += await query_rows(url, year)
        if impact_days > 0:
            result = await asyncio.to_thread(bench_impact.run, 1.0, False, impact_days, 20, True)
            rows += bench_impact.report_rows(result, 1.0)
    finally:
        with psycopg.connect(cluster, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return rows


def run(scale: float = 1.0, burst: int = 20_000, steady_s: float = 10.0, impact_days: int = 60) -> list[Row]:
    return asyncio.run(_run(scale, burst, steady_s, impact_days))


if __name__ == "__main__":
    print(text_table(run(scale=0.1)))
