"""Recurring windows written by sources ("8:00-10:00,19:00-21:00") as a canonical `Schedule`."""

from __future__ import annotations

import re

from connectors.values import ItemError
from traffic_hub.model import Schedule
from traffic_hub.model.validity import WEEKDAYS

_WINDOW = re.compile(r"^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$")
MAX_WINDOWS = 8


def cifs_schedule(days: dict[str, str]) -> Schedule | None:
    """`{"everyday": "18:00-22:00", "tuesday": "12:00-14:00,19:00-21:00"}` as a Schedule.

    A window that crosses midnight ("22:00-06:00") is split over the day and the next one.
    """
    if not days:
        return None
    windows: dict[str, list[str]] = {day: [] for day in WEEKDAYS}
    for day, text in days.items():
        targets = WEEKDAYS if day == "everyday" else (day,)
        for window in (part.strip() for part in text.split(",") if part.strip()):
            start, end = _window(window)
            for target in targets:
                _add(windows, target, start, end)
    kept = {day: sorted(set(found)) for day, found in windows.items() if found}
    if any(len(found) > MAX_WINDOWS for found in kept.values()):
        raise ItemError(f"more than {MAX_WINDOWS} windows in a day")
    return Schedule.model_validate(kept) if kept else None


def _window(window: str) -> tuple[int, int]:
    match = _WINDOW.match(window)
    if match is None:
        raise ItemError(f"schedule window {window[:30]!r} is not H:MM-H:MM")
    start = int(match[1]) * 60 + int(match[2])
    end = int(match[3]) * 60 + int(match[4])
    if start >= 24 * 60 or end > 24 * 60 or int(match[2]) > 59 or int(match[4]) > 59:
        raise ItemError(f"schedule window {window!r} is not a time of day")
    return start, end


def _add(windows: dict[str, list[str]], day: str, start: int, end: int) -> None:
    if end > start:
        windows[day].append(f"{_hhmm(start)}-{_hhmm(end)}")
        return
    if end == start:
        raise ItemError("schedule window of zero length")
    windows[day].append(f"{_hhmm(start)}-24:00")
    if end > 0:
        following = WEEKDAYS[(WEEKDAYS.index(day) + 1) % 7]
        windows[following].append(f"00:00-{_hhmm(end)}")


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"
