"""Per-item error isolation: one bad item becomes a `Reject`, the others are still parsed."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

import orjson
from pydantic import ValidationError

from connectors.base import Reject
from traffic_hub.model import IncidentReport

ItemT = TypeVar("ItemT")
MAX_RAW = 64 * 1024
# What a malformed item can raise inside a builder; anything else is a bug and must surface.
ITEM_ERRORS = (ValueError, TypeError, KeyError, IndexError, OverflowError)


def collect(
    items: Iterable[ItemT],
    build: Callable[[ItemT], IncidentReport],
    raw: Callable[[ItemT], bytes],
    ident: Callable[[ItemT], str],
) -> tuple[list[IncidentReport], list[Reject]]:
    incidents: list[IncidentReport] = []
    rejects: list[Reject] = []
    for item in items:
        try:
            incidents.append(build(item))
        except ITEM_ERRORS as exc:
            rejects.append(Reject(reason=_reason(exc), raw=raw(item)[:MAX_RAW], source_id=_safe_id(ident, item)))
    return incidents, rejects


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ValidationError):
        errors = exc.errors()
        if not errors:
            return "invalid item"
        where = ".".join(str(part) for part in errors[0]["loc"])
        return f"invalid {where}: {errors[0]['msg']}"[:300]
    return str(exc)[:300] or type(exc).__name__


def _safe_id(ident: Callable[[ItemT], str], item: ItemT) -> str:
    try:
        return ident(item)[:200]
    except ITEM_ERRORS:
        return ""


def json_raw(item: object) -> bytes:
    """The item re-encoded as JSON, for the dead-letter topic."""
    try:
        return orjson.dumps(item)
    except (TypeError, orjson.JSONEncodeError):
        return repr(item).encode("utf-8", "replace")


def json_id(*keys: str) -> Callable[[object], str]:
    """The first of `keys` an item (a JSON object) has, as text."""

    def ident(item: object) -> str:
        if isinstance(item, dict):
            for key in keys:
                if isinstance(item.get(key), str | int) and not isinstance(item.get(key), bool):
                    return str(item[key])
        return ""

    return ident
