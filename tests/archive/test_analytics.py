"""The analytics' numbers on the real PostgreSQL/PostGIS: seeded archive rows, figures worked out by hand."""

from __future__ import annotations

import asyncio
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
    alert,
    event,
    jam,
    local,
    monday_of_last_week,
)
from tests.archive.conftest import count
from traffic_hub.archive import analytics, analytics_closures, reality, rows, schema
from traffic_hub.archive.analytics_db import reading
from traffic_hub.archive.service import INSERT_REPORT
from traffic_hub.model.validity import Schedule
from traffic_hub.model.vocabulary import Direction, EventType, Lifecycle

pytestmark = [pytest.mark.db]
T = TypeVar("T")


def run(url: str, query: Callable[[psycopg.AsyncConnection[Any]], Awaitable[T]]) -> T:
    async def go() -> T:
        async with reading(url) as conn:
            return await query(conn)

    return asyncio.run(go())


def mondays_in_both_seasons(now: datetime) -> tuple[datetime, datetime]:
    """The last Monday in winter time (UTC+1) and the last in summer time (UTC+2) before now."""
    found: dict[int, datetime] = {}
    day = monday_of_last_week(now)
    while len(found) < 2:
        hours = int(day.astimezone(PARIS).utcoffset().total_seconds() // 3600)  # type: ignore[union-attr]
        found.setdefault(hours, day)
        day = local(day, -7, 0)
    return found[1], found[2]


def test_incidents_per_hour_of_week_use_the_local_hour_on_both_sides_of_dst(database_url: str) -> None:
    now = datetime.now(UTC)
    winter, summer = mondays_in_both_seasons(now)
    archive = Archive()
    for n, day in enumerate((winter, summer)):  # 07:30 UTC: 08:30 in winter, 09:30 in summer
        date = day.astimezone(PARIS).date()
        at = datetime(date.year, date.month, date.day, 7, 30, tzinfo=UTC)
        archive.events.append((at, event(f"acc-{n}", EventType.ACCIDENT, at, at)))
        archive.events.append((at + timedelta(minutes=5), event(f"acc-{n}", EventType.ACCIDENT, at, at, version=2)))
    at = local(winter, 2, 17)  # Wednesday 17:00 local, Roubaix
    archive.events.append((at, event("acc-rbx", EventType.ACCIDENT, at, at, commune="59512")))
    archive.write(database_url)
    period = analytics.Period(min(winter, summer) - timedelta(days=1), max(winter, summer) + timedelta(days=3))

    rows = run(database_url, lambda c: analytics.incidents_per_hour(c, period, PARIS, None, ["accident"]))
    assert {(r["commune"], r["hour_of_week"], r["count"]) for r in rows} == {
        ("59350", 8, 1), ("59350", 9, 1), ("59512", 2 * 24 + 17, 1)}  # each event once, not per version
    lille_only = run(database_url, lambda c: analytics.incidents_per_hour(c, period, PARIS, {"59350"}, None))
    assert {r["commune"] for r in lille_only} == {"59350"}


def test_durations_per_type_count_ended_events_only(database_url: str) -> None:
    now = datetime.now(UTC)
    start = monday_of_last_week(now)
    archive = Archive()
    for n, minutes in enumerate((30, 90, 180)):
        began = start + timedelta(hours=8 + n)
        archive.events.append((began, event(f"a{n}", EventType.ACCIDENT, began, began)))
        archive.events.append((began + timedelta(minutes=minutes),
                               event(f"a{n}", EventType.ACCIDENT, began, began, version=2, lifecycle=Lifecycle.ENDED)))
    began = start + timedelta(hours=12)  # still open: no duration yet
    archive.events.append((began, event("open", EventType.ACCIDENT, began, began)))
    archive.write(database_url)
    period = analytics.Period(start, start + timedelta(days=7))

    rows = run(database_url, lambda c: analytics.durations(c, period, now, None, None))
    overall = next(r for r in rows if r["type"] == "accident" and r["commune"] is None)
    assert overall["count"] == 3
    assert overall["p50_s"] == pytest.approx(90 * 60)
    assert overall["mean_s"] == pytest.approx(100 * 60)
    assert overall["max_s"] == pytest.approx(180 * 60)
    assert (overall["lt_15min"], overall["lt_1h"], overall["lt_4h"], overall["lt_1d"]) == (0, 1, 2, 0)
    assert [r["commune"] for r in rows if r["type"] == "accident"] == [None, "59350"]


def test_jams_per_segment_against_the_median_of_the_weeks_before(database_url: str) -> None:
    now = datetime.now(UTC)
    week = monday_of_last_week(now)
    archive = Archive()
    tuesday_8 = local(week, 1, 8)  # Tuesday 08:00 local: hour of week 32
    archive.reports += [jam("w0", tuesday_8, SOLFERINO, delay=120, length=400),
                        jam("w0", tuesday_8 + timedelta(minutes=30), SOLFERINO, 120, 400, ended=True)]
    for back in (1, 2):  # two of the four weeks before: 40 s of delay for half an hour → 20 per hour
        at = local(week, 1 - 7 * back, 8)
        archive.reports += [jam(f"b{back}", at, SOLFERINO, delay=40, length=100),
                            jam(f"b{back}", at + timedelta(minutes=30), SOLFERINO, 40, 100, ended=True)]
    archive.write(database_url)
    assert count(database_url, "SELECT count(*) FROM waze_observations WHERE kind = 'waze-jam'") == 6
    period = analytics.Period(week, local(week, 7, 0))

    segments = run(database_url, lambda c: analytics.jams_by_segment(c, period, now, PARIS, 4, None, 10))
    assert [s["segment"] for s in segments] == ["Rue Solférino|Lille|E"]
    (hour,) = segments[0]["hours"]
    assert hour == {"hour_of_week": 32, "delay_s": 60.0, "length_m": 200.0,
                    "baseline_delay_s": 10.0, "baseline_length_m": 25.0}  # median of 20, 20, 0, 0


def _weekday_closure(week: datetime) -> Archive:
    """A closure on Rue Solférino last week, weekdays 08:00-18:00 (50 active hours), and Waze jams around it."""
    archive = Archive()
    schedule = Schedule(monday=["08:00-18:00"], tuesday=["08:00-18:00"], wednesday=["08:00-18:00"],
                        thursday=["08:00-18:00"], friday=["08:00-18:00"])
    closure = event("c-1", EventType.CLOSURE, week - timedelta(days=3), week, local(week, 7, 0), schedule=schedule)
    archive.events.append((week - timedelta(days=3), closure))
    during = local(week, 1, 9)  # Tuesday 09:00-10:00: 300 s of delay 200 m away
    archive.reports += [jam("d", during, NEAR_200M, 300, 500, street="Rue Nationale"),
                        jam("d", during + timedelta(hours=1), NEAR_200M, 300, 500, street="Rue Nationale", ended=True)]
    for back in (1, 2, 3, 4):  # the same hour in each of the four weeks before: 100 s
        at = local(week, 1 - 7 * back, 9)
        archive.reports += [jam(f"p{back}", at, NEAR_200M, 100, 200, street="Rue Nationale"),
                            jam(f"p{back}", at + timedelta(hours=1), NEAR_200M, 100, 200, street="Rue Nationale",
                                ended=True)]
    saturday = local(week, 5, 10)  # outside the windows: not counted
    archive.reports += [jam("sat", saturday, NEAR_200M, 900, 900, street="Rue Nationale"),
                        jam("sat", saturday + timedelta(hours=1), NEAR_200M, 900, 900, street="Rue Nationale",
                            ended=True)]
    far = local(week, 1, 9)  # 2 km away: not counted
    archive.reports += [jam("far", far, FAR_2KM, 900, 900, street="Rue Loin"),
                        jam("far", far + timedelta(hours=1), FAR_2KM, 900, 900, street="Rue Loin", ended=True)]
    return archive


def test_closure_impact_compares_active_hours_with_the_same_hours_before(database_url: str) -> None:
    now = datetime.now(UTC)
    week = monday_of_last_week(now)
    _weekday_closure(week).write(database_url)

    async def query(conn: psycopg.AsyncConnection[Any]) -> dict[str, Any]:
        found = await analytics_closures.closure(conn, "c-1")
        assert found is not None
        return await analytics_closures.impact(conn, found, now, PARIS, 300.0, 4)

    report = run(database_url, query)
    assert (report["active_hours"], report["baseline_hours"]) == (50, 200)
    assert report["during"] == {"delay_s": 6.0, "length_m": 10.0}  # 300 s over 50 hours
    assert report["baseline"] == {"delay_s": 2.0, "length_m": 4.0}  # 4 × 100 s over 200 hours
    assert report["impact"] == {"extra_delay_s": 4.0, "extra_length_m": 6.0, "delay_ratio": 3.0}
    assert [s["segment"] for s in report["segments"]] == ["Rue Nationale|Lille|E"]

    listed = run(database_url, lambda c: analytics_closures.closures_in(
        c, analytics.Period(week, week + timedelta(days=7)), 10))
    assert [c.id for c in listed] == ["c-1"]


def _closure_now(event_id: str, now: datetime, direction: Direction = Direction.BOTH_DIRECTIONS,
                 kind: EventType = EventType.CLOSURE) -> tuple[datetime, Any]:
    starts = now - timedelta(days=2)
    return starts - timedelta(hours=1), event(event_id, kind, starts - timedelta(hours=1), starts,
                                               now + timedelta(days=5), direction=direction)


def test_reality_check_flags_traffic_on_a_closed_road_and_not_a_confirmed_closure(database_url: str) -> None:
    now = datetime.now(UTC)
    archive = Archive()
    archive.events.append(_closure_now("open-in-fact", now))
    for n in range(2):  # Waze jams moving at 25 km/h along the closed line, twice
        archive.reports.append(jam("flow", now - timedelta(hours=5 - n), SOLFERINO, 30, 300, speed=25, level=2))
    shifted = [(x, y + 0.01) for x, y in SOLFERINO]  # another closed street, 1.1 km north
    shifted_parallel = [(x, y + 0.01) for x, y in PARALLEL_80M]
    at = now - timedelta(days=3)
    archive.events.append((at, event("really-closed", EventType.CLOSURE, at, now - timedelta(days=2),
                                     now + timedelta(days=5), points=shifted)))
    archive.reports += [
        alert("closed-1", now - timedelta(hours=3), shifted[1], "ROAD_CLOSED"),
        jam("blocked", now - timedelta(hours=3), shifted, -1, 300, speed=0, level=5),
        jam("parallel", now - timedelta(hours=2), shifted_parallel, 30, 300, speed=25, level=2),  # 80 m away
        jam("parallel", now - timedelta(hours=1), shifted_parallel, 30, 300, speed=25, level=2),
        alert("hazard", now - timedelta(hours=1), shifted[0], "HAZARD"),  # works seen from nearby: not traffic
    ]
    archive.write(database_url)

    async def checks(conn: psycopg.AsyncConnection[Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        flagged = await analytics_closures.closure(conn, "open-in-fact")
        clean = await analytics_closures.closure(conn, "really-closed")
        assert flagged is not None
        assert clean is not None
        return (await reality.reality_check(conn, flagged, now, PARIS),
                await reality.reality_check(conn, clean, now, PARIS))

    flagged, clean = run(database_url, checks)
    assert flagged["flagged"] is True
    assert flagged["contradicting"] == 2
    assert flagged["evidence"][0]["speed_kmh"] == 25
    assert clean["flagged"] is False
    assert (clean["contradicting"], clean["confirming"]) == (0, 2)


def test_a_one_way_closure_is_not_flagged_by_traffic_the_other_way(database_url: str) -> None:
    now = datetime.now(UTC)
    archive = Archive()
    archive.events.append(_closure_now("one-way", now, direction=Direction.ONE_DIRECTION))
    westward = list(reversed(SOLFERINO))
    for n in range(3):
        archive.reports.append(jam("west", now - timedelta(hours=5 - n), westward, 30, 300, speed=25, level=2))
    archive.reports.append(alert("acc", now - timedelta(hours=1), SOLFERINO[1], "ACCIDENT"))
    archive.write(database_url)

    async def check(conn: psycopg.AsyncConnection[Any]) -> dict[str, Any]:
        found = await analytics_closures.closure(conn, "one-way")
        assert found is not None
        return await reality.reality_check(conn, found, now, PARIS)

    result = run(database_url, check)
    assert result["flagged"] is False  # one accident alert is evidence, but one report is not enough
    assert result["contradicting"] == 1


def test_waze_reports_archived_before_the_migration_are_back_filled(database_url: str) -> None:
    """An archive at schema version 1 (before the analytics) already holds Waze reports: migration 3 copies them."""
    now = datetime.now(UTC)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE schema_version (version integer PRIMARY KEY, applied_at timestamptz NOT NULL)")
        conn.execute(schema.BASE_MIGRATION.encode())
        conn.execute("INSERT INTO schema_version VALUES (1, now())")
        month = schema.month_start(now - timedelta(hours=1))
        conn.execute(f"CREATE TABLE {schema.partition_name('reports', month)} PARTITION OF reports "
                     f"FOR VALUES FROM ('{month.isoformat()}') TO ('{schema.next_month(month).isoformat()}')".encode())
        old = jam("old", now - timedelta(hours=1), SOLFERINO, 45, 250)
        row = rows.report_row("t.reports", 0, 7, int(old.received_at.timestamp() * 1000), old.key.encode(),
                              old.model_dump_json().encode())
        conn.execute(INSERT_REPORT, row)
    assert count(database_url, "SELECT count(*) FROM reports") == 1
    archive = Archive()  # migrates, then adds a report the trigger copies
    archive.reports.append(jam("new", now - timedelta(minutes=30), SOLFERINO, 60, 300))
    archive.write(database_url)
    with psycopg.connect(database_url) as conn:
        found = conn.execute("SELECT source_id, delay_s, length_m, ST_GeometryType(geom) FROM waze_observations "
                             "ORDER BY received_at").fetchall()
    assert found == [("jam-old", 45.0, 250.0, "ST_LineString"), ("jam-new", 60.0, 300.0, "ST_LineString")]
