"""What changed between two versions of a closure, a measure or an event: a field-level diff (pure).

A team answering "what did we publish, and when" needs to see the fields that changed, not two JSON
documents. Fields are compared as data (nested objects one level deep as dotted names, e.g.
`lanes.closed`, `validity.ends_at`); lists and geometries are compared whole. Bookkeeping that changes on
every version (`version`, `updated_at`) is left out, and bulky parts are summarised first: an event's
`sources` become one line per source (`source/source_id`, active or not, when it last spoke) and its
`segments` their count, so a diff says "waze-mel spoke again" rather than repeating a whole report.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

BOOKKEEPING = frozenset({"version", "updated_at"})
NESTED = frozenset({"lanes", "validity", "normalised", "schedule", "closure", "measure"})
Summary = Callable[[Mapping[str, Any]], dict[str, Any]]


def flatten(doc: Mapping[str, Any]) -> dict[str, Any]:
    """Top-level fields, with the known nested objects one level deep under dotted names."""
    flat: dict[str, Any] = {}
    for name, value in doc.items():
        if name in BOOKKEEPING:
            continue
        if name in NESTED and isinstance(value, Mapping):
            for inner, inner_value in value.items():
                if inner not in BOOKKEEPING:
                    flat[f"{name}.{inner}"] = inner_value
        else:
            flat[name] = value
    return flat


def changes(before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> list[dict[str, Any]]:
    """[{"field", "from", "to"}] for every field that differs, sorted by field; every field of `after` when
    there is no `before` is NOT listed (a first version is "created", not a diff)."""
    if before is None:
        return []
    old, new = flatten(before), flatten(after)
    out: list[dict[str, Any]] = []
    for name in sorted(old.keys() | new.keys()):
        if old.get(name) != new.get(name):
            out.append({"field": name, "from": old.get(name), "to": new.get(name)})
    return out


def source_line(source: Mapping[str, Any]) -> str:
    state = "active" if source.get("active", True) else "inactive"
    return f"{source.get('source')}/{source.get('source_id')} {state} {source.get('received_at')}"


def event_summary(doc: Mapping[str, Any]) -> dict[str, Any]:
    """An event document as it is diffed: sources as lines, segments counted, the closure's copy left out
    (the closure's own history has it)."""
    summary = {k: v for k, v in doc.items() if k not in ("sources", "segments", "closure", "normalised")}
    sources = doc.get("sources")
    summary["sources"] = sorted(source_line(s) for s in sources if isinstance(s, Mapping)) if isinstance(
        sources, list) else sources
    segments = doc.get("segments")
    summary["segments"] = len(segments) if isinstance(segments, list) else 0
    normalised = doc.get("normalised")
    if isinstance(normalised, Mapping):
        summary["normalised"] = {k: (len(v) if k == "edge_ids" and isinstance(v, list) else v)
                                 for k, v in normalised.items()}
    return summary


def action_of(before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> str:
    """created, updated, deleted (cancelled), reopened: what a closure or measure version did."""
    if before is None:
        return "created"
    if after.get("cancelled") and not before.get("cancelled"):
        return "deleted"
    if before.get("cancelled") and not after.get("cancelled"):
        return "reopened"
    return "updated"


def newest_source(before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The source whose statement made this event version: new, or spoke again (its `received_at` moved)."""
    old = {(s.get("source"), s.get("source_id")): s for s in _sources(before)}
    moved = [s for s in _sources(after) if old.get((s.get("source"), s.get("source_id"))) != s]
    pool = moved or []
    return max(pool, key=lambda s: str(s.get("received_at") or ""), default=None)


def _sources(doc: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    found = doc.get("sources") if doc is not None else None
    return [s for s in found if isinstance(s, Mapping)] if isinstance(found, list) else []
