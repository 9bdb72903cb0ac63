"""Hours, in Python: a closure's active hours and the same local hours in the weeks before it (pure).

Why here and not in SQL: a closure's weekly windows (`Schedule`, "08:00-18:00" on weekdays, local time)
are already interpreted by the model (`Validity.in_window`), DST included; re-writing that in SQL would
give two rules that can disagree. A closure active for months is a few thousand hours: cheap to list.
The queries then take these hours as an array and do the sums in PostgreSQL.

"The same hours in the weeks before" means the same local wall-clock hour of the same weekday
(Europe/Paris), k weeks earlier, counted back from the closure's start so the baseline is never itself
inside the closure: a Monday 08:00 CEST hour in November compares with Mondays 08:00 in October, not
with the UTC instant 7 × 24 h earlier (which is 07:00 local across the autumn change).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from traffic_hub.model.validity import Validity

HOUR = timedelta(hours=1)
WEEK = timedelta(weeks=1)
MAX_HOURS = 24 * 400  # a closure's active hours considered: a bit more than a year


def floor_hour(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def hours_between(start: datetime, end: datetime) -> Iterator[datetime]:
    """The UTC hours that start in [floor(start), end)."""
    at = floor_hour(start)
    while at < end:
        yield at
        at += HOUR


def active_hours(validity: Validity, tz: ZoneInfo, until: datetime) -> list[datetime]:
    """The UTC hours (their start) whose middle the closure covers, up to `until` (now, or when it ended).
    Middle of the hour: an hour is counted when the closure holds for most of it."""
    end = until if validity.ends_at is None else min(until, validity.ends_at)
    out: list[datetime] = []
    for hour in hours_between(validity.starts_at, end):
        middle = hour + HOUR / 2
        if middle < validity.starts_at or middle >= end:
            continue
        if validity.schedule is not None and not validity.schedule.covers(middle, tz):
            continue
        out.append(hour)
        if len(out) >= MAX_HOURS:
            break
    return out


def _local_naive(at: datetime, tz: ZoneInfo) -> datetime:
    return at.astimezone(tz).replace(tzinfo=None)


def _from_local(naive: datetime, tz: ZoneInfo) -> datetime:
    """A local wall-clock time back to UTC (in the spring-forward gap, the hour after it)."""
    return floor_hour(naive.replace(tzinfo=tz))


def weeks_before(hour: datetime, start: datetime, tz: ZoneInfo, weeks: int) -> list[datetime]:
    """The same local hour of the same weekday in the `weeks` weeks before `start` (most recent first)."""
    local = _local_naive(hour, tz)
    first = (local - _local_naive(floor_hour(start), tz)) // WEEK + 1  # weeks back to land before `start`
    return [_from_local(local - WEEK * (first + k), tz) for k in range(weeks)]


def baseline_hours(hours: list[datetime], start: datetime, tz: ZoneInfo, weeks: int) -> list[datetime]:
    """For each active hour, its `weeks` baseline hours (an hour may appear several times: its weight)."""
    return [b for hour in hours for b in weeks_before(hour, start, tz, weeks)]


def hour_of_week(at: datetime, tz: ZoneInfo) -> int:
    """0 = Monday 00:00-01:00 local time … 167 = Sunday 23:00-24:00."""
    local = at.astimezone(tz)
    return local.weekday() * 24 + local.hour
