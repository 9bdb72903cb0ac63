"""Kafka records → archive rows (pure). Tolerant: a record the model no longer parses is still archived.

The row's `received_at` is the Kafka record's timestamp, fixed per record, so a replay maps a record to
the same month partition and the same primary key (topic, partition, offset, received_at).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import ValidationError

from traffic_hub.model.event import Event

Row = tuple[Any, ...]

EVENT_COLUMNS = (
    "topic", "partition", "offset", "received_at", "event_id", "version", "deleted", "type", "status",
    "lifecycle", "starts_at", "ends_at", "commune", "street", "sources", "event",
)
REPORT_COLUMNS = (
    "topic", "partition", "offset", "received_at", "key", "deleted", "kind", "source", "principal",
    "reported_at", "payload",
)


def record_time(timestamp_ms: int) -> datetime:
    return datetime.fromtimestamp(timestamp_ms / 1000, tz=UTC)


def _text(value: bytes | None) -> str | None:
    return value.decode("utf-8", "replace") if value is not None else None


def _json(value: bytes) -> dict[str, Any] | None:
    try:
        parsed = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _status(doc: dict[str, Any], at: datetime) -> str | None:
    try:
        return str(Event.model_validate(doc).status_at(at).value)
    except (ValidationError, ValueError):
        return None


def event_row(topic: str, partition: int, offset: int, timestamp_ms: int, key: bytes | None,
              value: bytes | None) -> tuple[Row, str | None]:
    """One row of `event_versions` and the GeoJSON geometry text (None for a tombstone or no geometry)."""
    at = record_time(timestamp_ms)
    doc = _json(value) if value is not None else None
    if doc is None:  # a tombstone: the event is gone (or a value nobody can read, kept raw below)
        raw = None if value is None else orjson.dumps({"raw": _text(value)}).decode()
        return (topic, partition, offset, at, _text(key) or "", None, value is None, None, None, None, None, None,
                None, None, None, raw), None
    found = doc.get("validity")
    validity: dict[str, Any] = found if isinstance(found, dict) else {}
    geometry = doc.get("geometry")
    geo = orjson.dumps(geometry).decode() if isinstance(geometry, dict) and "coordinates" in geometry else None
    version = doc.get("version")
    row = (
        topic, partition, offset, at, str(doc.get("id") or _text(key) or ""),
        version if isinstance(version, int) else None, False, doc.get("type"), _status(doc, at),
        doc.get("lifecycle"), validity.get("starts_at"), validity.get("ends_at"), doc.get("commune"),
        doc.get("street"), orjson.dumps(doc.get("sources")).decode(), value.decode("utf-8") if value else None,
    )
    return row, geo


def principal_of(doc: dict[str, Any]) -> str | None:
    """Who wrote a report: `<role>:<principal>` of the writer of a closure version (recorded since schema
    v2; before, the owning team `roadworks:<team>`), `operator:<name>` for an operator action."""
    payload = doc.get("payload")
    if doc.get("kind") in ("closure", "measure") and isinstance(payload, dict) and payload.get("by"):
        return f"{payload.get('role') or 'roadworks'}:{payload['by']}"
    closure = doc.get("closure")
    if isinstance(closure, dict) and closure.get("owner"):
        return f"roadworks:{closure['owner']}"
    if doc.get("kind") == "operator" and isinstance(payload, dict) and payload.get("by"):
        return f"operator:{payload['by']}"
    return None


def report_row(topic: str, partition: int, offset: int, timestamp_ms: int, key: bytes | None,
               value: bytes | None) -> Row:
    at = record_time(timestamp_ms)
    doc = _json(value) if value is not None else None
    if doc is None:
        raw = None if value is None else orjson.dumps({"raw": _text(value)}).decode()
        return (topic, partition, offset, at, _text(key), value is None, None, None, None, None, raw)
    return (
        topic, partition, offset, at, doc.get("key") or _text(key), False, doc.get("kind"), doc.get("source"),
        principal_of(doc), doc.get("received_at"), value.decode("utf-8") if value else None,
    )


UNSTORABLE = '{"unstorable": "PostgreSQL refused this record as it was (e.g. a NUL character or a broken geometry)"}'


def _clean(value: Any) -> Any:
    return value.replace("\x00", "") if isinstance(value, str) else value


def without_geometry(row: Row) -> Row:
    """An event row whose geometry PostGIS refused: kept, geometry left empty (the JSON still has it)."""
    return (*row[:-1], None)


def bare(row: Row, events: bool) -> Row:
    """The last resort for a record PostgreSQL refuses: its identity, version and a marker, so the offset
    is still archived exactly once and the archiver goes on (one bad record never stalls the archive)."""
    if events:  # EVENT_COLUMNS + geometry
        return (*[_clean(v) for v in row[:6]], False, *([None] * 8), UNSTORABLE, None)
    return (*[_clean(v) for v in row[:5]], False, *([None] * 4), UNSTORABLE)
