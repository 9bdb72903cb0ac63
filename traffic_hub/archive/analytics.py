"""Analytics over the archive, computed in PostgreSQL: incidents per hour of week, durations, Waze jams.

What MEL's mobility department asks of the past (issue 19): when and where incidents happen, how long
they last, and where Waze users queue compared with usual. Everything is summed in PostgreSQL; Python
only shapes the answer. Local hours are Europe/Paris (`AT TIME ZONE`, from the tz database: DST-correct).

Definitions (docs/analytics.md says them for people):
- an event is counted once, at the start of its validity (first archived version), in its commune;
- its duration runs from that start to the first version that ended or cancelled it (or its deletion),
  else to its planned end once past; events still open are not counted;
- a Waze jam's state holds from one report of it to the next (at most `STALE`: a jam whose end was
  never reported); per hour, a segment's *delay* is the time-averaged sum of its jams' delays (seconds)
  and its *length* the time-averaged metres of jam: an hour without jams counts 0;
- a *segment* is a street of a city in one heading (8 compass points): Waze gives no stable segment id.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg.rows import dict_row

from traffic_hub.archive.analytics_periods import WEEK, floor_hour, hour_of_week, hours_between

STALE = timedelta(hours=2)
DURATION_BUCKETS = (("lt_15min", 900), ("lt_1h", 3600), ("lt_4h", 4 * 3600), ("lt_1d", 86400), ("lt_7d", 7 * 86400))

# the segment of a jam: street, city and heading; Waze lines run in the direction of travel
SEGMENT = """coalesce(street, '') || '|' || coalesce(city, '') || '|' || CASE
    WHEN GeometryType(geom) <> 'LINESTRING' OR ST_NPoints(geom) < 2
         OR ST_Equals(ST_StartPoint(geom), ST_EndPoint(geom)) THEN '?'
    ELSE (ARRAY['N','NE','E','SE','S','SW','W','NW'])[
        (floor((degrees(ST_Azimuth(ST_StartPoint(geom), ST_EndPoint(geom))) + 22.5) / 45)::int %% 8) + 1] END"""

# jam states: each report of a jam holds until the next one of the same jam, the last one at most STALE
JAM_SPANS = """
    SELECT key, {segment} AS segment, received_at AS t0,
           least(coalesce(lead(received_at) OVER w, %(now)s), received_at + %(stale)s) AS t1,
           ended, coalesce(delay_s, 0) AS delay_s, coalesce(length_m, 0) AS length_m
    FROM waze_observations
    WHERE kind = 'waze-jam' AND received_at >= %(lo)s AND received_at < %(hi)s AND {where}
    WINDOW w AS (PARTITION BY key ORDER BY received_at)
"""

# per UTC hour and segment: time-averaged summed delay (s) and jam length (m)
HOURLY = """
    SELECT s.segment, h.h AS hour,
           sum(s.delay_s * o.overlap) / 3600 AS delay_s, sum(s.length_m * o.overlap) / 3600 AS length_m,
           sum(o.overlap)::float8 AS jam_s
    FROM ({spans}) s
    CROSS JOIN LATERAL generate_series(date_trunc('hour', s.t0), s.t1 - interval '1 microsecond',
                                       interval '1 hour') AS h(h)
    CROSS JOIN LATERAL (SELECT extract(epoch FROM least(s.t1, h.h + interval '1 hour') - greatest(s.t0, h.h))
                        AS overlap) o
    WHERE NOT s.ended AND s.t1 > s.t0 AND {hours}
    GROUP BY s.segment, h.h
"""


# the same per UTC hour and segment, from the roll-up (complete hours only: a last report's span there runs
# its whole 2 h where the raw query cuts it at now); rows whose jam time cancelled out are no jam
ROLLUP = """
    SELECT segment, hour, sum(delay_ss) / 3600 AS delay_s, sum(length_ms) / 3600 AS length_m
    FROM waze_jam_hours
    WHERE {where} AND {hours}
    GROUP BY segment, hour HAVING sum(jam_s) > %(tiny)s
"""
TINY_S = 1e-3  # jam seconds left by float rounding where a span was added and taken off again


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime


def hourly_sql(where: str, hours: str) -> str:
    return HOURLY.format(spans=JAM_SPANS.format(segment=SEGMENT, where=where), hours=hours)


async def incidents_per_hour(
    conn: psycopg.AsyncConnection[Any], period: Period, tz: ZoneInfo,
    communes: Collection[str] | None, types: Collection[str] | None,
) -> list[dict[str, Any]]:
    """Events per commune, type and local hour of week (0 = Monday 00h), counted at their start."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        """
        WITH firsts AS (
            SELECT DISTINCT ON (event_id) event_id, type, commune, starts_at
            FROM event_versions
            WHERE NOT deleted AND type IS NOT NULL AND starts_at >= %(start)s AND starts_at < %(end)s
              AND (%(communes)s::text[] IS NULL OR commune = ANY(%(communes)s::text[]))
              AND (%(types)s::text[] IS NULL OR type = ANY(%(types)s::text[]))
            ORDER BY event_id, version NULLS LAST, received_at
        )
        SELECT coalesce(commune, '') AS commune, type,
               ((extract(isodow FROM starts_at AT TIME ZONE %(tz)s)::int - 1) * 24
                + extract(hour FROM starts_at AT TIME ZONE %(tz)s)::int) AS hour_of_week,
               count(*)::int AS count
        FROM firsts GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        """,
        {"start": period.start, "end": period.end, "tz": tz.key, "communes": _list(communes), "types": _list(types)},
    )
    return list(await cur.fetchall())


async def durations(
    conn: psycopg.AsyncConnection[Any], period: Period, now: datetime,
    communes: Collection[str] | None, types: Collection[str] | None,
) -> list[dict[str, Any]]:
    """Per type, and per type and commune: how many ended events started in the period and how long they
    lasted (seconds: median, 90th percentile, mean, max, and counts per duration bucket)."""
    buckets = ", ".join(
        f"count(*) FILTER (WHERE d >= {low} AND d < {high})::int AS {name}"
        for (name, high), low in zip(DURATION_BUCKETS, (0, *(b for _, b in DURATION_BUCKETS)), strict=False)
    )
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        f"""
        WITH started AS (
            SELECT DISTINCT event_id FROM event_versions
            WHERE NOT deleted AND type IS NOT NULL AND starts_at >= %(start)s AND starts_at < %(end)s
              AND (%(communes)s::text[] IS NULL OR commune = ANY(%(communes)s::text[]))
              AND (%(types)s::text[] IS NULL OR type = ANY(%(types)s::text[]))
        ), spans AS (
            SELECT v.event_id,
                   (array_agg(v.type ORDER BY v.version, v.received_at) FILTER (WHERE v.type IS NOT NULL))[1] AS type,
                   (array_agg(v.commune ORDER BY v.version, v.received_at)
                        FILTER (WHERE v.commune IS NOT NULL))[1] AS commune,
                   (array_agg(v.starts_at ORDER BY v.version, v.received_at)
                        FILTER (WHERE v.starts_at IS NOT NULL))[1] AS began,
                   min(v.received_at) FILTER (WHERE v.deleted OR v.lifecycle IN ('ended', 'cancelled')) AS closed,
                   (array_agg(v.ends_at ORDER BY v.version DESC NULLS LAST, v.received_at DESC)
                        FILTER (WHERE NOT v.deleted))[1] AS planned_end
            FROM event_versions v JOIN started USING (event_id)
            GROUP BY v.event_id
        ), lasted AS (
            SELECT type, coalesce(commune, '') AS commune,
                   extract(epoch FROM coalesce(closed, CASE WHEN planned_end <= %(now)s THEN planned_end END) - began)
                       AS d
            FROM spans
        )
        SELECT type, CASE WHEN GROUPING(commune) = 1 THEN NULL ELSE commune END AS commune, count(*)::int AS count,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY d) AS p50_s,
               percentile_cont(0.9) WITHIN GROUP (ORDER BY d) AS p90_s,
               avg(d)::float8 AS mean_s, max(d)::float8 AS max_s, {buckets},
               count(*) FILTER (WHERE d >= {DURATION_BUCKETS[-1][1]})::int AS ge_7d
        FROM lasted WHERE d > 0
        GROUP BY GROUPING SETS ((type), (type, commune))
        ORDER BY type, commune NULLS FIRST
        """.encode(),  # noqa: S608 - the buckets are constants; values are parameters
        {"start": period.start, "end": period.end, "now": now, "communes": _list(communes), "types": _list(types)},
    )
    return [_floats(row) for row in await cur.fetchall()]


# the same hours from the roll-up, one row per segment, hour and jam line (summed by the caller)
ROLLUP_ROWS = """
    SELECT segment, hour, delay_ss / 3600 AS delay_s, length_ms / 3600 AS length_m, jam_s
    FROM waze_jam_hours WHERE {where} AND hour >= %(start)s AND hour < %(cut)s
"""


def hours_sql(where: str, hybrid: bool) -> str:
    """Rows (segment, hour, delay_s, length_m, jam_s) that sum, per segment and UTC hour in
    [%(start)s, %(end)s), to the time-averaged delay and jam length. The complete hours, before %(cut)s, come
    from the roll-up (`rollup_schema.py`); with `hybrid`, the hours from %(cut)s from the raw reports (the
    current hour, or every hour when checking the roll-up)."""
    rolled = ROLLUP_ROWS.format(where=where)
    if not hybrid:
        return rolled
    return f"{rolled} UNION ALL {hourly_sql(where, 'h.h >= %(cut)s AND h.h < %(end)s')}"


def _hours(start: datetime, end: datetime, now: datetime, where: str, params: dict[str, Any],
           raw: bool) -> tuple[str, dict[str, Any]]:
    cut = start if raw else max(start, min(end, floor_hour(now)))
    values = {**params, "start": start, "end": end, "cut": cut, "tiny": TINY_S, "lo": cut - STALE, "hi": end,
              "now": min(now, end), "stale": STALE}
    return hours_sql(where, cut < end), values


def rollup_sql(where: str, hours: str) -> str:
    return ROLLUP.format(where=where, hours=hours)


# The jams per segment, summed in PostgreSQL: per segment, local hour of week and week (-1: the period; 0: the
# local week just before it, 1 the one before, …; from `cal`, worked out in Python per UTC hour), for the
# `limit` segments with the most delay per hour in the period (Python then takes the baselines' medians).
# The segments are ranked first on the period alone (`TOP_SEGMENTS`: a week, a few hundred groups; on the
# baseline weeks too only when fewer than `limit` segments had delay in it, as those then fill the list),
# then only theirs are summed per hour of week and week (the (segment, hour) index): summing every segment's
# (~180,000 groups for a week and 4 baseline weeks metropole-wide) cost 3 to 6 times more.
JAMS_BY_SEGMENT = """
WITH cal AS (
    SELECT * FROM unnest(%(cal_hours)s::timestamptz[], %(cal_how)s::int[], %(cal_week)s::int[]) AS c(hour, how, week)
), sums AS (
    SELECT h.segment, c.how, c.week, sum(h.delay_s) AS delay_s, sum(h.length_m) AS length_m
    FROM ({hours}) h JOIN cal c ON c.hour = h.hour
    WHERE h.segment = ANY(%(top)s::text[])
    GROUP BY 1, 2, 3 HAVING sum(h.jam_s) > %(tiny)s
), keys AS (
    SELECT segment, how, coalesce(sum(delay_s) FILTER (WHERE week = -1), 0) AS delay_s,
           coalesce(sum(length_m) FILTER (WHERE week = -1), 0) AS length_m,
           coalesce(array_agg(delay_s) FILTER (WHERE week >= 0 AND week < %(weeks)s), '{{}}') AS base_delay,
           coalesce(array_agg(length_m) FILTER (WHERE week >= 0 AND week < %(weeks)s), '{{}}') AS base_length
    FROM sums GROUP BY 1, 2
)
-- the baseline: the median over the `weeks` weeks before, a week without jams counting 0
SELECT segment, how, delay_s, length_m,
       (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY v)
        FROM unnest(base_delay || array_fill(0::float8, ARRAY[%(weeks)s - cardinality(base_delay)])) AS v),
       (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY v)
        FROM unnest(base_length || array_fill(0::float8, ARRAY[%(weeks)s - cardinality(base_length)])) AS v)
FROM keys
"""
# the segments ranked by their delay per hour in the hours given (the period: -1 in the calendar), then name
TOP_SEGMENTS = """
WITH cal AS (
    SELECT * FROM unnest(%(cal_hours)s::timestamptz[], %(cal_how)s::int[], %(cal_week)s::int[]) AS c(hour, how, week)
)
SELECT h.segment,
       sum(CASE WHEN c.week = -1 THEN h.delay_s / greatest((%(occurrences)s::int[])[c.how + 1], 1) ELSE 0 END)
FROM ({hours}) h JOIN cal c ON c.hour = h.hour
GROUP BY h.segment HAVING sum(h.jam_s) > %(tiny)s
ORDER BY 2 DESC, 1
LIMIT %(limit)s
"""


async def jams_by_segment(
    conn: psycopg.AsyncConnection[Any], period: Period, now: datetime, tz: ZoneInfo, weeks: int,
    city: str | None, limit: int, raw: bool = False,
) -> list[dict[str, Any]]:
    """Waze jams per segment and local hour of week over the period, each with its baseline: the median,
    over the `weeks` weeks before the period, of the same segment's value at the same hour of week."""
    base_start = _weeks_back(period.start, tz, weeks)
    occurrences = [0] * 168
    for hour in hours_between(period.start, min(period.end, now)):
        occurrences[hour_of_week(hour, tz)] += 1
    calendar = list(hours_between(base_start, period.end))
    where = "(%(city)s::text IS NULL OR city = %(city)s::text)"
    cal = {"cal_hours": calendar, "cal_how": [hour_of_week(h, tz) for h in calendar],
           "cal_week": [-1 if h >= period.start else _week_index(h, period.start, tz) for h in calendar],
           "occurrences": occurrences, "limit": limit}
    top = await _top(conn, _hours(period.start, period.end, now, where, {"city": city}, raw), cal, limit)
    hours, values = _hours(base_start, period.end, now, where, {"city": city}, raw)
    if top is None:  # fewer than `limit` segments with delay in the period: the baseline's fill the list
        top = await _top(conn, (hours, values), cal, limit, full=False) or []
    cur = await conn.execute(JAMS_BY_SEGMENT.format(hours=hours).encode(),
                             {**values, **cal, "top": top, "weeks": weeks})
    return _segments(list(await cur.fetchall()), occurrences, weeks, limit)


def _segments(
    rows: list[tuple[Any, ...]], occurrences: list[int], weeks: int, limit: int,
) -> list[dict[str, Any]]:
    """(segment, hour of week, period sums, baseline medians) rows → the answer's segments, most delay first."""
    by_segment: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for segment, how, delay, length, base_delay, base_length in sorted(rows, key=lambda r: (r[0], r[1])):
        n = max(occurrences[how], 1)
        by_segment[segment].append({
            "hour_of_week": how,
            "delay_s": round(float(delay) / n, 1),
            "length_m": round(float(length) / n, 1),
            "baseline_delay_s": round(float(base_delay or 0.0), 1) if weeks else None,
            "baseline_length_m": round(float(base_length or 0.0), 1) if weeks else None,
        })
    out = []
    for segment, hours in by_segment.items():
        street, city, heading = segment.split("|")
        total = sum(h["delay_s"] for h in hours)
        baseline = sum(h["baseline_delay_s"] or 0.0 for h in hours)
        out.append({"segment": segment, "street": street or None, "city": city or None, "heading": heading,
                    "delay_s_sum": round(total, 1), "baseline_delay_s_sum": round(baseline, 1), "hours": hours})
    out.sort(key=lambda s: (-s["delay_s_sum"], s["segment"]))
    return out[:limit]


def _weeks_back(at: datetime, tz: ZoneInfo, weeks: int) -> datetime:
    local = at.astimezone(tz).replace(tzinfo=None) - WEEK * weeks
    return floor_hour(local.replace(tzinfo=tz))


async def _top(conn: psycopg.AsyncConnection[Any], hours: tuple[str, dict[str, Any]], cal: dict[str, Any],
               limit: int, full: bool = True) -> list[str] | None:
    """The `limit` segments with the most delay per period hour in `hours`; with `full`, None when the list is
    not full of segments with delay (then segments without any come by name, and the baseline weeks' count)."""
    cur = await conn.execute(TOP_SEGMENTS.format(hours=hours[0]).encode(), {**hours[1], **cal})
    found = await cur.fetchall()
    if full and (len(found) < limit or (found and not float(found[-1][1]) > 0)):
        return None
    return [str(row[0]) for row in found]


def _week_index(hour: datetime, start: datetime, tz: ZoneInfo) -> int:
    """0 for the week just before `start`, 1 for the one before, … (local weeks)."""
    gap = start.astimezone(tz).replace(tzinfo=None) - hour.astimezone(tz).replace(tzinfo=None)
    return max(0, (gap - timedelta(microseconds=1)) // WEEK)


def _list(values: Collection[str] | None) -> list[str] | None:
    return sorted(values) if values is not None else None


def _floats(row: dict[str, Any]) -> dict[str, Any]:
    """Decimals from PostgreSQL's numeric as floats (JSON numbers)."""
    return {k: float(v) if hasattr(v, "as_integer_ratio") and not isinstance(v, int | float) else v
            for k, v in row.items()}
