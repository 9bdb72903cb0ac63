"""Per-item error isolation: one bad item becomes a `Reject`, the others are still parsed."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import orjson
from pydantic import ValidationError

from connectors.base import Reject
from connectors.json_safety import first_non_finite
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
    label: str | None = None,
) -> tuple[list[IncidentReport], list[Reject]]:
    """Build every item; a bad one becomes a Reject (its reason prefixed `{label} #{index}: ` when labelled)."""
    incidents: list[IncidentReport] = []
    rejects: list[Reject] = []
    for index, item in enumerate(items):
        try:
            incidents.append(build(item))
        except ITEM_ERRORS as exc:
            reason = _reason(exc) if label is None else f"{label} #{index}: {_reason(exc)}"
            rejects.append(Reject(reason=reason, raw=raw(item)[:MAX_RAW], source_id=_safe_id(ident, item)))
    return incidents, rejects


def finite_only(build: Callable[[Any], IncidentReport]) -> Callable[[Any], IncidentReport]:
    """`build` for a GeoJSON feature read leniently: NaN / Infinity in the geometry reject the feature;
    elsewhere (properties) they mean "no value", as pandas / GeoPandas write them, and become null."""

    def checked(item: Any) -> IncidentReport:
        if not isinstance(item, dict):
            return build(item)
        where = first_non_finite(item.get("geometry"), "geometry")
        if where is not None:
            raise ValueError(f"non-finite number (NaN or Infinity) at {where}")
        if first_non_finite(item) is None:
            return build(item)
        return build(nulled(item))

    return checked


def nulled(value: Any) -> Any:
    """A copy of a decoded JSON value with every NaN or infinite number replaced by None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: nulled(child) for key, child in value.items()}
    if isinstance(value, list):
        return [nulled(child) for child in value]
    return value


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
    """The item re-encoded as JSON, for the dead-letter topic (NaN / Infinity kept as written)."""
    try:
        if first_non_finite(item) is not None:
            return json.dumps(item, ensure_ascii=False).encode("utf-8", "replace")
        return orjson.dumps(item)
    except (TypeError, ValueError, RecursionError):
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
