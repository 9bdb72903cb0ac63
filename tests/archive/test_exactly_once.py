"""Exactly once: a replay of the same offsets writes nothing twice, and a kill -9 in the middle of a stream
loses and doubles nothing (count = distinct = produced). Also prints the archiver's rows/s on a burst."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from tests.archive.conftest import count
from tests.conftest import ROOT
from tests.kafkarun import run_name
from traffic_hub.archive import Archiver
from traffic_hub.archive.schema import drop_expired, ensure_partition, migrate, months_back
from traffic_hub.topics import Topics

from .rollup_check import rollup_matches_raw
from .stream import JAM_EVERY, produce

pytestmark = [pytest.mark.kafka, pytest.mark.db]

ROWS = "SELECT count(*) FROM reports"
DISTINCT = "SELECT count(DISTINCT (topic, partition, \"offset\")) FROM reports"


async def wait_for(predicate_sql: str, url: str, target: int, deadline_s: float) -> float:
    started = time.monotonic()
    while await asyncio.to_thread(count, url, predicate_sql) < target:
        if time.monotonic() - started > deadline_s:
            raise AssertionError(f"{predicate_sql}: {await asyncio.to_thread(count, url, predicate_sql)} < {target}")
        await asyncio.sleep(0.1)
    return time.monotonic() - started


async def test_replay_of_the_same_offsets_writes_nothing_twice_and_burst_rate(
    kafka_bootstrap: str, database_url: str
) -> None:
    topics = Topics(run_name("arch"))
    burst, events = 20_000, 200
    await produce(kafka_bootstrap, topics, burst, events=events)
    archiver = Archiver(database_url, kafka_bootstrap, topics, f"{topics.prefix}-a")
    async with archiver:
        seconds = await wait_for(ROWS, database_url, burst, deadline_s=240)
        await wait_for("SELECT count(*) FROM event_versions", database_url, 3 * events, deadline_s=60)
    load = os.getloadavg()
    print(f"\narchiver burst: {burst} reports in {seconds:.2f} s = {burst / seconds:.0f} rows/s "
          f"(load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, {os.cpu_count()} cores)")
    spans = _spans(database_url)
    assert len(spans) == events
    rolled_up = rollup_matches_raw(database_url)
    assert rolled_up > 0
    assert all(s[3] is not None for s in spans)  # each ended by its tombstone
    # forget the stored offsets: a new archiver replays both topics from the start
    with psycopg.connect(database_url) as conn:
        conn.execute("DELETE FROM archive_offsets")
    async with Archiver(database_url, kafka_bootstrap, topics, f"{topics.prefix}-b") as again:
        await wait_for("SELECT coalesce(sum(next_offset), 0) FROM archive_offsets", database_url,
                       burst + 3 * events, deadline_s=240)
        assert again.running
    assert count(database_url, ROWS) == count(database_url, DISTINCT) == burst
    assert count(database_url, "SELECT count(*) FROM event_versions") == 3 * events
    assert count(database_url, "SELECT count(*) FROM event_versions WHERE deleted") == events
    assert count(database_url, "SELECT count(*) FROM event_versions WHERE geom IS NOT NULL AND version = 2") == events
    assert _spans(database_url) == spans  # the span trigger fired only for rows inserted: the replay left them
    assert rollup_matches_raw(database_url) == rolled_up  # nor the roll-up's: not one jam's hours counted twice


def _spans(url: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT event_id, first_at, last_offset, ended_at, life::text FROM event_spans ORDER BY event_id"
        ).fetchall()


def _archiver_process(bootstrap: str, prefix: str, url: str, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "TRAFFIC_HUB_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
        "TRAFFIC_HUB_TOPIC_PREFIX": prefix,
        "TRAFFIC_HUB_DATABASE_URL": url,
        "TRAFFIC_HUB_INSTANCE": f"{prefix}-archiver",
        "TRAFFIC_HUB_METRICS__PORT": "0",
    }
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "traffic_hub", "archiver"], env=env, stdout=out,
                                stderr=subprocess.STDOUT, cwd=ROOT)


async def _stream(bootstrap: str, topics: Topics, total: int, chunk: int) -> None:
    for start in range(0, total, chunk):  # one producer per chunk: the stream lasts while the archiver runs
        await produce(bootstrap, topics, chunk, start=start)


@pytest.mark.slow
async def test_kill_9_in_the_middle_of_a_stream_loses_and_doubles_nothing(
    kafka_bootstrap: str, database_url: str, tmp_path: Path
) -> None:
    topics = Topics(run_name("arch"))
    await produce(kafka_bootstrap, topics, 0)
    first = _archiver_process(kafka_bootstrap, topics.prefix, database_url, tmp_path / "archiver.log")
    total, chunk = 12_000, 1_000
    try:
        stream = asyncio.create_task(_stream(kafka_bootstrap, topics, total, chunk))
        await wait_for(ROWS, database_url, 1, deadline_s=60)  # it is writing
        assert count(database_url, ROWS) < total, "the stream was over before the kill: raise `total`"
        os.kill(first.pid, signal.SIGKILL)
        await asyncio.to_thread(first.wait, 10)
        killed_at = count(database_url, ROWS)
        await stream
    finally:
        if first.poll() is None:
            first.kill()
    second = _archiver_process(kafka_bootstrap, topics.prefix, database_url, tmp_path / "archiver.log")
    try:
        await wait_for(ROWS, database_url, total, deadline_s=240)
        # give a doubling the chance to show: every offset has been stored past the end
        await wait_for("SELECT coalesce(sum(next_offset), 0) FROM archive_offsets", database_url, total, deadline_s=60)
    finally:
        second.send_signal(signal.SIGTERM)
        await asyncio.to_thread(second.wait, 20)
    print(f"\nkill -9 after {killed_at} of {total} rows; after restart: {count(database_url, ROWS)}")
    assert count(database_url, ROWS) == count(database_url, DISTINCT) == total
    assert count(database_url, "SELECT count(DISTINCT payload->'payload'->>'n') FROM reports") == total
    # the Waze jams among them: their hourly roll-up is what the raw reports give, none counted twice or lost
    assert count(database_url, "SELECT count(*) FROM waze_observations") == total // JAM_EVERY
    assert rollup_matches_raw(database_url) > 0


async def test_retention_drops_only_month_partitions_older_than_the_window(database_url: str) -> None:
    now = datetime.now(UTC)
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        await migrate(conn)
        old, kept = months_back(now, 30), months_back(now, 3)
        async with conn.transaction():
            await ensure_partition(conn, "reports", old)
            await ensure_partition(conn, "reports", kept)
        dropped = await drop_expired(conn, now, 24)
    assert dropped == [f"reports_p{old.year:04d}{old.month:02d}"]
    assert months_back(now, 0).day == 1

