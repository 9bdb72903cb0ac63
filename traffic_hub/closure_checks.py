"""What a road-works team is told about its input beyond "valid".

A closure that has already ended is refused (it would be accepted and then appear in no feed, with
no hint); unusual input (a closure of more than a year, a start more than a year ahead, a time
written with another offset than Lille's, a schedule that never falls inside the period) is
accepted with warnings; and a re-post of a reference is compared with the recorded closure field
by field, as instants and positions, not as text. Pure functions of the input, the recorded
closure and "now" (the service's clock), so they are tested without a hub.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from traffic_hub.errors import InvalidInput
from traffic_hub.model import ClosureState
from traffic_hub.model.closure import ClosureWarning
from traffic_hub.model.validity import WEEKDAYS, Schedule

YEAR = timedelta(days=365)
LATE_START = timedelta(hours=1)
"""A start further in the past than this is worth saying: the closure is in force at once."""
SHORT_NOTICE = timedelta(hours=1)
SAME_POSITION_DEG = 5e-6
"""Positions closer than this (≈ 0.35 m east-west, 0.55 m north-south here) are the same point: the same
line sent again in Lambert-93 or CC50 rounded to the decimetre. Far below what any feed shows (Waze: 6
decimals), far above the float noise of reprojection."""

COMPARED = (
    "description", "geometry", "street", "from_street", "to_street", "direction", "cause", "starts_at", "ends_at",
    "schedule", "lanes", "type", "speed_kmh", "vehicles", "detour_of",
)


def check_ends_in_future(ends_at: datetime, now: datetime) -> None:
    """422 on `ends_at` when the closure would be over before anyone sees it."""
    if ends_at.timestamp() <= now.timestamp():
        raise InvalidInput(
            "ends_at",
            f"ends_at {ends_at.isoformat()} is in the past (now {now.isoformat(timespec='seconds')}); "
            "a closure must end in the future",
        )


def warnings(state: ClosureState, now: datetime, tz: ZoneInfo) -> list[ClosureWarning]:
    """Warnings about a closure just written, in the order a team would read them."""
    out: list[ClosureWarning] = []
    starts, ends = state.starts_at, state.ends_at
    if ends - starts > YEAR:
        days = (ends - starts).days
        out.append(ClosureWarning(code="long-duration", field="ends_at",
                                  message=f"the closure lasts {days} days, more than a year: is ends_at right?"))
    if starts - now > YEAR:
        out.append(ClosureWarning(code="far-future-start", field="starts_at",
                                  message=f"the closure starts in {(starts - now).days} days, more than a year "
                                          "ahead: is starts_at right?"))
    if now - starts > LATE_START:
        out.append(ClosureWarning(code="started-in-past", field="starts_at",
                                  message="starts_at is in the past: the closure is in force now and is "
                                          "published at once"))
    elif timedelta(0) < ends - now < SHORT_NOTICE:
        out.append(ClosureWarning(code="ends-soon", field="ends_at",
                                  message="the closure ends within the hour: partners polling every few "
                                          "minutes may never show it"))
    out += [w for name in ("starts_at", "ends_at") if (w := _offset_warning(name, getattr(state, name), tz))]
    if state.schedule is not None and not _schedule_meets(state.schedule, starts, ends, tz):
        out.append(ClosureWarning(code="schedule-never-applies", field="schedule",
                                  message="no window of the schedule falls between starts_at and ends_at: "
                                          "the closure is never in force"))
    return out


def _offset_warning(name: str, moment: datetime, tz: ZoneInfo) -> ClosureWarning | None:
    """A time written with another UTC offset than the local one at that instant (often "Z" for local).

    Formatted by hand: `strftime` costs ~25 µs a call here and this ran five of them for each of the two
    times of every POST written in UTC (the bench's and many teams' way), ~0.3 ms of a write."""
    given = moment.utcoffset()
    local = moment.astimezone(tz)
    local_offset = local.utcoffset()
    if given is None or local_offset is None or given == local_offset:
        return None
    written = _hhmm(moment)
    return ClosureWarning(
        code="not-local-time", field=name,
        message=f"{name} is written with UTC offset {_offset(given)}: {written} there is "
                f"{_hhmm(local)} in {tz.key} (offset {_offset(local_offset)}); "
                f"if {written} was meant as local time, write the offset {_offset(local_offset)}",
    )


def _hhmm(moment: datetime) -> str:
    """`moment.strftime("%H:%M")`."""
    return f"{moment.hour:02d}:{moment.minute:02d}"


def _offset(offset: timedelta) -> str:
    """`strftime("%z")` of a datetime with this UTC offset: +0100, -0330, +0000 (seconds when there are)."""
    seconds = int(offset.total_seconds())
    sign = "-" if seconds < 0 else "+"
    hours, rest = divmod(abs(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{sign}{hours:02d}{minutes:02d}" + (f"{secs:02d}" if secs else "")


def _schedule_meets(schedule: Schedule, starts: datetime, ends: datetime, tz: ZoneInfo) -> bool:
    """Whether one weekly window overlaps [starts, ends) (a week past the start is enough to know)."""
    first = starts.astimezone(tz).date()
    for offset in range(8):
        day = first + timedelta(days=offset)
        midnight = datetime.combine(day, time(0), tz)
        if midnight.timestamp() >= ends.timestamp():
            break
        for window in schedule.windows(WEEKDAYS[day.weekday()]):
            begin, end = (_at(midnight, hhmm) for hhmm in window.split("-"))
            if begin.timestamp() < ends.timestamp() and end.timestamp() > starts.timestamp():
                return True
    return False


def _at(midnight: datetime, hhmm: str) -> datetime:
    hours, minutes = (int(part) for part in hhmm.split(":"))
    return midnight + timedelta(hours=hours, minutes=minutes)


def differences(current: ClosureState, posted: ClosureState) -> list[dict[str, Any]]:
    """The fields where a re-posted closure differs from the recorded one, with both values."""
    out: list[dict[str, Any]] = []
    for name in COMPARED:
        before, after = getattr(current, name), getattr(posted, name)
        if name == "type":  # a closure recorded before measures existed has no type: it is its derived one
            before, after = current.measure_type, posted.measure_type
        if _same(name, before, after):
            continue
        if name == "geometry":  # a line is too long to echo; the field is what matters
            out.append({"field": name, "current": "the recorded line", "posted": "another line"})
            continue
        dump = current.model_dump(mode="json", include={name}), posted.model_dump(mode="json", include={name})
        out.append({"field": name, "current": dump[0][name], "posted": dump[1][name]})
    return out


def _same(name: str, before: Any, after: Any) -> bool:
    if isinstance(before, datetime) and isinstance(after, datetime):
        return before.timestamp() == after.timestamp()  # the same instant, whatever the offset
    if name == "geometry" and before is not None and after is not None:
        a, b = before.coordinates, after.coordinates
        return len(a) == len(b) and all(
            abs(p - q) <= SAME_POSITION_DEG for u, v in zip(a, b, strict=True) for p, q in zip(u, v, strict=True)
        )
    return bool(before == after)
