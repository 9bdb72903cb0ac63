"""The Waze jams' hourly roll-up answers what the raw reports answer, and a replay does not double it.

The raw path (`raw=True`: the window over every report, as before the roll-up) is the reference: on a
small archive with jams in and out of order, re-sent, ended, without delay, left stale (> 2 h without a
report), on several lines and streets, the jams per segment and a closure's impact are equal both ways.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import psycopg
import pytest

from tests.archive.analytics_seed import (
    FAR_2KM,
    NEAR_200M,
    PARALLEL_80M,
    PARIS,
    SOLFERINO,
    Archive,
    event,
    jam,
    local,
    monday_of_last_week,
)
from tests.archive.conftest import count
from tests.archive.rollup_check import rollup_matches_raw
from traffic_hub.archive import analytics, analytics_closures, rollup_schema, schema
from traffic_hub.archive.analytics_db import reading
from traffic_hub.archive.service import INSERT_REPORT
from traffic_hub.model.validity import Schedule
from traffic_hub.model.vocabulary import EventType

pytestmark = [pytest.mark.db]
T = TypeVar("T")
LINES = [SOLFERINO, PARALLEL_80M, NEAR_200M, FAR_2KM]
STREETS = ["Rue Solférino", "Rue Nationale", "Rue Loin"]

def run(url: str, query: Callable[[psycopg.AsyncConnection[Any]], Awaitable[T]]) -> T:
    async def go() -> T:
        async with reading(url) as conn:
            return await query(conn)

    return asyncio.run(go())


def close(a: Any, b: Any) -> bool:
    """Equal, numbers within 0.1 (both sides round to 0.1: float sums may fall either side of a half)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float):
        return abs(a - b) <= 0.1 + 1e-9
    return bool(a == b)


def messy_jams(week: datetime, rng: random.Random) -> Archive:
    """Jams over five weeks: re-sent every 2-25 min, some ended, some left stale, lines and streets mixed,
    written out of order (a shuffled batch, as a partition's late records would come)."""
    archive = Archive()
    for n in range(40):
        at = week - timedelta(weeks=rng.randint(0, 4), hours=rng.randint(-20, 140), minutes=rng.randint(0, 59))
        points, street = rng.choice(LINES), rng.choice(STREETS)
        for _ in range(rng.randint(1, 8)):
            at += timedelta(minutes=rng.choice([2, 5, 25, 70, 150]), seconds=rng.randint(0, 59))
            delay = rng.choice([None, 30.0, 120.0, 400.0])
            report = jam(f"m{n}", at, points, delay or 0, rng.choice([100, 350]), street=street,
                         ended=rng.random() < 0.15)
            if delay is None and report.incident is not None:
                report.incident.said.pop("delay", None)
            archive.reports.append(report)
    rng.shuffle(archive.reports)
    return archive


def closure_archive(week: datetime) -> tuple[Archive, datetime]:
    archive = messy_jams(week, random.Random(19))
    schedule = Schedule(monday=["08:00-18:00"], tuesday=["08:00-18:00"], wednesday=["08:00-18:00"],
                        thursday=["08:00-18:00"], friday=["08:00-18:00"])
    archive.events.append((week - timedelta(days=3), event(
        "c-weekdays", EventType.CLOSURE, week - timedelta(days=3), week, local(week, 7, 0), schedule=schedule)))
    archive.events.append((week - timedelta(days=3), event(
        "c-whole", EventType.CLOSURE, week - timedelta(days=3), local(week, 1, 6), local(week, 4, 20))))
    return archive, week


def test_rollup_answers_equal_the_raw_rows(database_url: str) -> None:
    now = datetime.now(UTC)
    archive, week = closure_archive(monday_of_last_week(now))
    archive.write(database_url)
    assert rollup_matches_raw(database_url) > 50
    period = analytics.Period(week, local(week, 7, 0))

    for city, limit in ((None, 50), ("Lille", 50), (None, 2)):  # 2: the top ranked on the period alone
        async def jams(conn: psycopg.AsyncConnection[Any], where: str | None = city,
                       most: int = limit) -> list[list[dict[str, Any]]]:
            return [await analytics.jams_by_segment(conn, period, now, PARIS, 4, where, most, raw=flag)
                    for flag in (False, True)]

        rolled, raw = run(database_url, jams)
        assert rolled
        assert close(rolled, raw)
    for closure_id in ("c-weekdays", "c-whole"):
        async def both(conn: psycopg.AsyncConnection[Any], cid: str = closure_id) -> list[dict[str, Any]]:
            found = await analytics_closures.closure(conn, cid)
            assert found is not None
            return [await analytics_closures.impact(conn, found, now, PARIS, 300.0, 4, raw=flag)
                    for flag in (False, True)]

        rolled_report, raw_report = run(database_url, both)
        assert rolled_report["segments"]
        assert close(rolled_report, raw_report)


def test_a_jam_still_going_now_counts_up_to_now_like_the_raw_rows(database_url: str) -> None:
    now = datetime.now(UTC)
    archive = Archive()
    at = now - timedelta(hours=3, minutes=10)
    archive.reports += [jam("live", at + timedelta(minutes=20 * k), SOLFERINO, 60, 200) for k in range(10)]
    archive.write(database_url)
    period = analytics.Period(now - timedelta(hours=5), now + timedelta(hours=1))
    rolled = run(database_url, lambda c: analytics.jams_by_segment(c, period, now, PARIS, 0, None, 5))
    raw = run(database_url, lambda c: analytics.jams_by_segment(c, period, now, PARIS, 0, None, 5, raw=True))
    assert close(rolled, raw)
    assert sum(h["delay_s"] for h in rolled[0]["hours"]) > 0


def test_the_stale_interval_is_the_queries_one() -> None:
    assert f"interval '{int(analytics.STALE.total_seconds() // 3600)} hours'" == rollup_schema.STALE_SQL


def test_a_replay_of_the_same_reports_does_not_double_the_rollup(database_url: str) -> None:
    now = datetime.now(UTC)
    archive = messy_jams(monday_of_last_week(now), random.Random(7))
    archive.write(database_url)
    before = rollup_matches_raw(database_url)
    with psycopg.connect(database_url) as conn:
        totals = conn.execute("SELECT sum(jam_s), sum(delay_ss), sum(reports) FROM waze_jam_hours").fetchone()
        replayed = conn.execute(
            "SELECT topic, partition, \"offset\", received_at, key, deleted, kind, source, principal, reported_at, "
            "payload::text FROM reports").fetchall()
        with conn.cursor() as cur:  # the archiver's own statement, again, for every record (a replay)
            cur.executemany(INSERT_REPORT, replayed)
        conn.commit()
        again = conn.execute("SELECT sum(jam_s), sum(delay_ss), sum(reports) FROM waze_jam_hours").fetchone()
    assert again == totals
    assert rollup_matches_raw(database_url) == before
    assert count(database_url, "SELECT sum(reports) FROM waze_jam_hours") == count(
        database_url, "SELECT count(*) FROM waze_observations WHERE kind = 'waze-jam' AND NOT ended")


def test_reports_archived_before_the_rollup_are_back_filled(database_url: str) -> None:
    now = datetime.now(UTC)
    archive = messy_jams(monday_of_last_week(now), random.Random(3))
    archive.write(database_url)
    expected = rollup_matches_raw(database_url)
    with psycopg.connect(database_url) as conn:  # back to schema 3: no roll-up, reports archived since
        conn.execute("DROP TABLE waze_jam_hours, waze_jam_lines CASCADE")
        conn.execute("DROP FUNCTION waze_jam_rollup, waze_jam_add, waze_jam_hours_partition, waze_jam_line, "
                     "waze_jam_segment CASCADE")
        conn.execute("UPDATE alembic_version SET version_num = %s", (f"{rollup_schema.ROLLUP_VERSION - 1:04d}",))
        conn.commit()

    async def migrate() -> int:
        async with await psycopg.AsyncConnection.connect(database_url) as conn:
            return await schema.migrate(conn)

    assert asyncio.run(migrate()) >= rollup_schema.ROLLUP_VERSION
    assert rollup_matches_raw(database_url) == expected


def test_retention_drops_the_rollup_months_with_the_rest(database_url: str) -> None:
    now = datetime.now(UTC)
    old = now - timedelta(days=31 * 30)
    archive = Archive()
    archive.reports += [jam("old", old, SOLFERINO, 60, 100), jam("new", now - timedelta(hours=3), SOLFERINO, 60, 100)]
    archive.write(database_url)
    old_partition = schema.partition_name("waze_jam_hours", schema.month_start(old))

    async def drop() -> list[str]:
        async with await psycopg.AsyncConnection.connect(database_url) as conn:
            return await schema.drop_expired(conn, now, 24)

    assert old_partition in asyncio.run(drop())
    assert count(database_url, "SELECT count(DISTINCT segment) FROM waze_jam_hours") == 1
