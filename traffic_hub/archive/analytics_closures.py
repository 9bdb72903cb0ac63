"""Closure impact: did this closure cause congestion? Waze jams near it during it, against the weeks before.

For one archived closure (its latest version): its active hours (validity and weekly windows, up to now
or until it ended), and for each the same local hour of the same weekday in the `weeks` weeks before it
started (`analytics_periods`). Around the closure (every Waze jam whose line comes within `radius_m`
of the closed line), PostgreSQL sums per hour and segment the time-averaged jam delay and length
(`analytics.HOURLY`). The impact is the mean per active hour minus the mean per baseline hour, overall
and per segment; hours without jams count 0 on both sides. A detour is not modelled by the closure yet:
the radius is what catches it (docs/analytics.md).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from pydantic import ValidationError

from traffic_hub.archive.analytics import STALE, TINY_S, Period, hourly_sql, rollup_sql
from traffic_hub.archive.analytics_periods import HOUR, active_hours, baseline_hours, floor_hour
from traffic_hub.model.event import Event

DEG_PER_M = 1 / 65_000  # a bounding box in degrees that holds `radius` metres at MEL's latitude (lon: 70.6 km/°)
NEAR = ("geom && ST_Expand(ST_GeomFromGeoJSON(%(line)s), %(deg)s) "
        "AND ST_DWithin(geom::geography, ST_GeomFromGeoJSON(%(line)s)::geography, %(radius)s)")
# the same, on the roll-up: the jam lines near the closure (each line once, GiST-indexed)
NEAR_LINES = f"line IN (SELECT line FROM waze_jam_lines WHERE {NEAR})"  # noqa: S608 - constants

LATEST = """
    SELECT DISTINCT ON (event_id) event_id, event::text, received_at
    FROM event_versions
    WHERE {where} AND NOT deleted AND type IN ('closure', 'lane_closure')
      AND jsonb_typeof(event -> 'closure') = 'object'
    ORDER BY event_id, version DESC NULLS LAST, received_at DESC
"""
ENDED = """
    SELECT event_id, min(received_at) FROM event_versions
    WHERE event_id = ANY(%(ids)s) AND (deleted OR lifecycle IN ('ended', 'cancelled')) GROUP BY event_id
"""


@dataclass(frozen=True)
class ArchivedClosure:
    event: Event
    ended_at: datetime | None  # the first version that ended or cancelled it (or its deletion)

    @property
    def id(self) -> str:
        return self.event.id

    @property
    def line(self) -> str:
        return self.event.geometry.model_dump_json()

    def until(self, now: datetime) -> datetime:
        return min(now, self.ended_at) if self.ended_at is not None else now

    def summary(self) -> dict[str, Any]:
        state = self.event.closure
        return {
            "id": self.id, "reference": state.reference if state else None, "owner": state.owner if state else None,
            "type": self.event.type.value, "street": self.event.street, "commune": self.event.commune,
            "communes": state.communes if state else [], "direction": self.event.direction.value,
            "starts_at": self.event.validity.starts_at, "ends_at": self.event.validity.ends_at,
            "ended_at": self.ended_at, "schedule": self.event.validity.schedule,
        }


async def closure(conn: psycopg.AsyncConnection[Any], closure_id: str) -> ArchivedClosure | None:
    found = await _closures(conn, "event_id = %(id)s", {"id": closure_id})
    return found[0] if found else None


async def closures_in(conn: psycopg.AsyncConnection[Any], period: Period, limit: int) -> list[ArchivedClosure]:
    """The closures whose validity (latest version) meets the period."""
    found = await _closures(
        conn,
        "event_id IN (SELECT event_id FROM event_versions WHERE type IN ('closure', 'lane_closure') "
        "AND starts_at < %(end)s AND coalesce(ends_at, 'infinity') > %(start)s)",
        {"start": period.start, "end": period.end},
    )
    meets = [c for c in found if c.event.validity.starts_at < period.end
             and (c.event.validity.ends_at is None or c.event.validity.ends_at > period.start)]
    return meets[:limit]


async def _closures(conn: psycopg.AsyncConnection[Any], where: str, params: dict[str, Any]) -> list[ArchivedClosure]:
    cur = await conn.execute(LATEST.format(where=where).encode(), params)
    latest = await cur.fetchall()
    events: list[Event] = []
    for row in latest:
        try:
            events.append(Event.model_validate_json(row[1]))
        except ValidationError:
            continue  # a version the model no longer reads: not analysed
    cur = await conn.execute(ENDED.encode(), {"ids": [e.id for e in events]})
    ended = {str(r[0]): r[1] for r in await cur.fetchall()}
    return [ArchivedClosure(e, ended.get(e.id)) for e in events]


async def impact(
    conn: psycopg.AsyncConnection[Any], archived: ArchivedClosure, now: datetime, tz: ZoneInfo,
    radius_m: float, weeks: int, raw: bool = False,
) -> dict[str, Any]:
    """The closure's impact report (see the module's docstring; `raw`: from the raw reports only, not the
    roll-up, what the roll-up is checked against)."""
    during = active_hours(archived.event.validity, tz, archived.until(now))
    before = baseline_hours(during, archived.event.validity.starts_at, tz, weeks)
    rows = await _hourly_near(conn, archived.line, during, before, now, radius_m, raw) if during else []
    return _report(archived, rows, during, before, radius_m, weeks)


async def _hourly_near(
    conn: psycopg.AsyncConnection[Any], line: str, during: list[datetime], before: list[datetime], now: datetime,
    radius_m: float, raw: bool,
) -> list[tuple[str, datetime, float, float]]:
    """Per segment and hour of `during` and `before` (the jams within the radius): the complete hours from the
    roll-up (the lines near the closure through `waze_jam_lines`' GiST index), the current hour from the raw rows."""
    hours = sorted(set(during) | set(before))
    cut = hours[0] if raw else floor_hour(now)
    near = {"line": line, "deg": radius_m * DEG_PER_M, "radius": radius_m}
    # a semi-join (hashed), not `= ANY(array)`: a closure of weeks has thousands of hours to look up
    found = await conn.execute(rollup_sql(NEAR_LINES, "hour IN (SELECT unnest(%(hours)s::timestamptz[]))").encode(),
                               {**near, "hours": [h for h in hours if h < cut], "tiny": TINY_S})
    out = [(str(r[0]), r[1], float(r[2]), float(r[3])) for r in await found.fetchall()]
    recent = [h for h in hours if h >= cut]
    if recent:
        sql = hourly_sql(NEAR, "h.h IN (SELECT unnest(%(hours)s::timestamptz[]))")
        cur = await conn.execute(sql.encode(), {
            **near, "hours": recent, "lo": recent[0] - STALE, "hi": recent[-1] + HOUR + STALE, "now": now,
            "stale": STALE,
        })
        out += [(str(r[0]), r[1], float(r[2]), float(r[3])) for r in await cur.fetchall()]
    return out


def _report(
    archived: ArchivedClosure, rows: list[tuple[str, datetime, float, float]], during: list[datetime],
    before: list[datetime], radius_m: float, weeks: int,
) -> dict[str, Any]:
    per_hour: dict[datetime, dict[str, tuple[float, float]]] = defaultdict(dict)
    for segment, hour, delay, length in rows:
        per_hour[hour][segment] = (delay, length)
    now_side = _sums(per_hour, during)
    base_side = _sums(per_hour, before)
    segments = []
    for segment in sorted(set(now_side[2]) | set(base_side[2])):
        d_delay, d_length = _mean(now_side[2].get(segment, (0.0, 0.0)), len(during))
        b_delay, b_length = _mean(base_side[2].get(segment, (0.0, 0.0)), len(before))
        street, city, heading = segment.split("|")
        segments.append({"segment": segment, "street": street or None, "city": city or None, "heading": heading,
                         "delay_s": d_delay, "baseline_delay_s": b_delay, "extra_delay_s": round(d_delay - b_delay, 1),
                         "length_m": d_length, "baseline_length_m": b_length,
                         "extra_length_m": round(d_length - b_length, 1)})
    segments.sort(key=lambda s: (-float(s["extra_delay_s"] or 0), str(s["segment"])))
    d_delay, d_length = _mean((now_side[0], now_side[1]), len(during))
    b_delay, b_length = _mean((base_side[0], base_side[1]), len(before))
    return {
        "closure": archived.summary(), "radius_m": radius_m, "weeks": weeks,
        "active_hours": len(during), "baseline_hours": len(before),
        "during": {"delay_s": d_delay, "length_m": d_length},
        "baseline": {"delay_s": b_delay, "length_m": b_length},
        "impact": {"extra_delay_s": round(d_delay - b_delay, 1), "extra_length_m": round(d_length - b_length, 1),
                   "delay_ratio": round(d_delay / b_delay, 2) if b_delay > 0 else None},
        "segments": segments,
    }


def _sums(
    per_hour: dict[datetime, dict[str, tuple[float, float]]], hours: list[datetime]
) -> tuple[float, float, dict[str, tuple[float, float]]]:
    """Sums over `hours` (with their multiplicity): total delay, total length, and per segment."""
    delay = length = 0.0
    segments: dict[str, tuple[float, float]] = {}
    for hour in hours:
        for segment, (d, m) in per_hour.get(hour, {}).items():
            delay += d
            length += m
            old = segments.get(segment, (0.0, 0.0))
            segments[segment] = (old[0] + d, old[1] + m)
    return delay, length, segments


def _mean(sums: tuple[float, float], n: int) -> tuple[float, float]:
    return (round(sums[0] / n, 1), round(sums[1] / n, 1)) if n else (0.0, 0.0)
