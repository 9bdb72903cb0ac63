"""Coercion of the loosely typed values sources send (strings for booleans, -1 for unknown…)."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, tzinfo
from typing import Any


class ItemError(ValueError):
    """One item of a payload is unusable; the parser turns it into a `Reject`."""


_FRACTION = re.compile(r"(\.\d{6})\d+")
_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})


def as_dict(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ItemError(f"{what} is not an object")
    return value


def as_list(value: Any, what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ItemError(f"{what} is not a list")
    return value


def text(value: Any, limit: int = 2000) -> str | None:
    """A trimmed, non-empty string (numbers are written out), else None."""
    if type(value) is str:  # the common case first (90,720 calls for the Waze partner feed sample)
        return value.strip()[:limit] or None
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        value = str(value)
    if not isinstance(value, str):
        return None
    stripped = value.strip()
    return stripped[:limit] or None


def required_text(value: Any, what: str) -> str:
    found = text(value)
    if found is None:
        raise ItemError(f"{what} is missing")
    return found


def number(value: Any) -> float | None:
    """A finite number from a number or numeric string; None otherwise."""
    kind = type(value)  # exact types first: the common case of a large feed's hundreds of thousands of values
    if kind is float:
        return float(value) if math.isfinite(value) else None
    if kind is int:
        return int(value)
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    return None


def known(value: Any) -> float | None:
    """A number where -1 means "unknown" (Waze confidence, delay)."""
    found = number(value)
    return None if found is None or found == -1 else found


def boolean(value: Any) -> bool | None:
    """True/False from a boolean or its string form ("false" in the 2024 Waze feed)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
    return None


def parse_time(value: Any, what: str, default_tz: tzinfo | None = None) -> datetime:
    """An aware datetime from ISO 8601 text; a time without offset needs `default_tz`."""
    raw = required_text(value, what)
    cleaned = _FRACTION.sub(r"\1", raw.replace("Z", "+00:00").replace("z", "+00:00"))
    try:
        moment = datetime.fromisoformat(cleaned)
    except ValueError:
        raise ItemError(f"{what} {raw[:40]!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        if default_tz is None:
            raise ItemError(f"{what} {raw[:40]!r} has no UTC offset")
        moment = moment.replace(tzinfo=default_tz)
    return moment


def optional_time(value: Any, what: str, default_tz: tzinfo | None = None) -> datetime | None:
    return None if text(value) is None else parse_time(value, what, default_tz)


def from_millis(value: Any, what: str) -> datetime:
    """A UTC datetime from Unix milliseconds (Waze `pubMillis`)."""
    millis = number(value)
    if millis is None or not 0 < millis < 32503680000000:
        raise ItemError(f"{what} is not a plausible Unix time in milliseconds")
    return datetime.fromtimestamp(millis / 1000, tz=UTC)


def small(said: dict[str, Any]) -> dict[str, Any]:
    """The summary of what the source said, without empty values (None, "", [], {}).

    Written as truth tests rather than `value not in (None, "", [], {})`: comparing a number with a
    string, a list and a dict falls back through both sides' `__eq__`, and this ran for every field of
    every item (7 % of parsing the NYC Waze sample). A false value is dropped only if it is an empty
    string, list or dict, as before (0, 0.0 and False are kept)."""
    return {
        key: value
        for key, value in said.items()
        if value is not None and (value or not isinstance(value, str | list | dict))
    }
