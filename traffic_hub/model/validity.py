"""When an event applies: an overall period and optional recurring weekly windows.

Windows are local time (Europe/Paris for MEL) and are turned into instants day by day, so a window
"08:00-18:00" is 08:00 to 18:00 on the clock also on the days the clocks change. A schedule may give
`daily` windows (every day without its own list) and days it does not apply (`except`: weekends,
French public holidays from the maintained `holidays` library, given dates): traffic-regulation
orders are written that way ("de 8 h à 17 h, sauf week-ends et jours fériés").
"""

from __future__ import annotations

import functools
import re
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import holidays
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_WINDOW = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")


def _check_window(value: str) -> str:
    match = _WINDOW.match(value)
    if match is None:
        raise ValueError(f"window {value!r} is not HH:MM-HH:MM")
    start = int(match[1]) * 60 + int(match[2])
    end = int(match[3]) * 60 + int(match[4])
    if end > 24 * 60:
        raise ValueError(f"window {value!r} ends after 24:00")
    if end <= start:
        raise ValueError(f"window {value!r} ends before it starts")
    return value


Window = Annotated[str, AfterValidator(_check_window)]
Windows = Annotated[list[Window], Field(min_length=1, max_length=8)]
HOLIDAY_COUNTRY = "FR"


@functools.lru_cache(maxsize=64)
def public_holidays(year: int) -> frozenset[date]:
    """French public holidays of `year` (metropolitan list, which is Lille's)."""
    return frozenset(holidays.country_holidays(HOLIDAY_COUNTRY, years=year).keys())


def _none(value: Any) -> bool:
    return value is None


class ScheduleExceptions(BaseModel):
    """Local dates on which a schedule does not apply."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    weekends: bool = False
    public_holidays: bool = False
    dates: Annotated[list[date], Field(max_length=366)] = Field(default_factory=list)

    def excludes(self, day: date) -> bool:
        if self.weekends and day.weekday() >= 5:
            return True
        if self.public_holidays and day in public_holidays(day.year):
            return True
        return day in self.dates


class Schedule(BaseModel):
    """Recurring windows per weekday, in the authority's local time ("08:00-18:00").

    `daily`: the windows of every weekday not listed on its own. `except`: days it does not apply
    (JSON name `except`; both are left out of the JSON when not given, so closures read as before).
    """

    model_config = ConfigDict(
        extra="forbid", frozen=True, validate_by_name=True, validate_by_alias=True, serialize_by_alias=True
    )

    monday: Windows | None = None
    tuesday: Windows | None = None
    wednesday: Windows | None = None
    thursday: Windows | None = None
    friday: Windows | None = None
    saturday: Windows | None = None
    sunday: Windows | None = None
    daily: Annotated[Windows | None, Field(exclude_if=_none)] = None
    except_: Annotated[ScheduleExceptions | None, Field(alias="except", exclude_if=_none)] = None

    @model_validator(mode="after")
    def _not_empty(self) -> Schedule:
        if not any(self.windows(day) for day in WEEKDAYS):
            raise ValueError("schedule needs at least one weekday with windows (or daily windows)")
        return self

    def windows(self, day: str) -> list[str]:
        """The windows of a weekday (its own, else the daily ones), whatever the date."""
        windows: list[str] | None = getattr(self, day)
        return windows or self.daily or []

    def windows_on(self, day: date) -> list[str]:
        """The windows of a local date: none on an excepted day."""
        if self.except_ is not None and self.except_.excludes(day):
            return []
        return self.windows(WEEKDAYS[day.weekday()])

    def covers(self, moment: datetime, tz: ZoneInfo) -> bool:
        """Whether `moment` falls inside one of the windows of its local date."""
        local = moment.astimezone(tz)
        minute = local.hour * 60 + local.minute
        for window in self.windows_on(local.date()):
            start, end = _minutes(window)
            if start <= minute < end:
                return True
        return False

    def boundaries(self, after: datetime, tz: ZoneInfo, days: int = 8) -> list[datetime]:
        """Window starts and ends after `after`, over the next `days` days (for feed refresh timers)."""
        local = after.astimezone(tz)
        out: list[datetime] = []
        for offset in range(days):
            day = (local + timedelta(days=offset)).date()
            for window in self.windows_on(day):
                for minute in _minutes(window):
                    hours, minutes = divmod(minute, 60)
                    moment = datetime.combine(day, time(0), tz) + timedelta(hours=hours, minutes=minutes)
                    if moment > after:
                        out.append(moment)
        return sorted(out)


def _minutes(window: str) -> tuple[int, int]:
    start, end = window.split("-")
    return _to_minutes(start), _to_minutes(end)


def _to_minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def ends_after(starts_at: datetime, ends_at: datetime) -> bool:
    """``ends_at`` is a later instant than ``starts_at``. Compared as timestamps: Python compares two
    datetimes that share a tzinfo by their wall clock, and 02:00 and 03:00 Europe/Paris on the
    spring-forward night are one and the same instant."""
    return ends_at.timestamp() > starts_at.timestamp()


class Validity(BaseModel):
    """Overall period [starts_at, ends_at) and optional weekly windows inside it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    starts_at: AwareDatetime
    ends_at: AwareDatetime | None = None
    schedule: Schedule | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Validity:
        if self.ends_at is not None and not ends_after(self.starts_at, self.ends_at):
            raise ValueError("ends_at must be after starts_at")
        return self

    def has_ended(self, now: datetime) -> bool:
        return self.ends_at is not None and not ends_after(now, self.ends_at)

    def has_started(self, now: datetime) -> bool:
        return not ends_after(now, self.starts_at)

    def in_window(self, now: datetime, tz: ZoneInfo) -> bool:
        """Started, not ended, and inside a recurring window when there is a schedule."""
        if not self.has_started(now) or self.has_ended(now):
            return False
        return self.schedule is None or self.schedule.covers(now, tz)
