"""Dates for tests, taken from the real clock, so "the future" and "the past" never go stale.

A test whose meaning depends on "now" (a closure is `planned`, a window is ahead) takes its dates
from here. A fixed calendar date is fine only where the test fixes "now" itself (a renderer given
`now=`, a parser given `received_at=`). CI also runs the tests marked `time_dependent` with the
process clock moved more than a year ahead (`make test-future`, libfaketime), which is what keeps
this module honest.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")


def paris_day(days: int, at: str = "08:00") -> datetime:
    """`days` after today in Lille, at the local wall-clock time `at` (HH:MM), as an aware datetime."""
    hour, minute = (int(part) for part in at.split(":"))
    day = datetime.now(UTC).astimezone(PARIS).date() + timedelta(days=days)
    return datetime.combine(day, time(hour, minute), tzinfo=PARIS)


def paris_iso(days: int, at: str = "08:00") -> str:
    """`paris_day` as the ISO 8601 text a road-works team posts (with its UTC offset)."""
    return paris_day(days, at).isoformat()
