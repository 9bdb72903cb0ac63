"""Incident reports to the bytes of the reports topic: fast, and exactly the bytes pydantic writes.

Why: on the NYC Waze partner feed (3,536 items per cycle) pydantic's serialisation was a third of a
connector cycle: `Report.model_dump_json` for every record, then `model_dump(mode="json")` again for
every item's content hash. orjson writes the same bytes several times faster for these models, because
nothing in them depends on more than the field values: fields in declaration order (the order pydantic
keeps in `__dict__`), the same shortest round-trip numbers, the same string escapes, the same RFC 3339
times with `Z` (`OPT_UTC_Z`), enums by value. Where pydantic's output depends on more (a `Schedule`:
aliases and fields left out; a `Measure`), or where orjson refuses a value (an integer over 64 bits, a
set, bytes), the incident goes through pydantic exactly as before.

`tests/connectors/test_encoding.py` pins the equality on every recorded feed of every source kind: the
record values are byte-identical to `Report.model_dump_json()` and the content hashes to the former
`sha256(orjson.dumps(model_dump(mode="json"), OPT_SORT_KEYS))` (the hashes a runner saved before this
module still match, so nothing is re-sent after an upgrade).
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

import orjson
from pydantic import BaseModel

from traffic_hub.model import IncidentReport, LineString, Point, Report, ReportKind, Validity
from traffic_hub.model.geometry import MultiLineString

_OPTIONS = orjson.OPT_UTC_Z
_SORTED = orjson.OPT_UTC_Z | orjson.OPT_SORT_KEYS
# The models an incident nests that pydantic writes from their field values alone (exact types: an
# `isinstance` check against pydantic's metaclass was a tenth of this module's time).
_NESTED: frozenset[type[BaseModel]] = frozenset({Point, LineString, MultiLineString, Validity})


def _fields(value: object) -> dict[str, Any]:
    """A nested model (geometry, validity) as its fields, in declaration order; anything else is refused."""
    if type(value) in _NESTED:
        fields: dict[str, Any] = value.__dict__
        return fields
    raise TypeError(f"{type(value).__name__} is not written by orjson here")


def _plain(incident: IncidentReport) -> bool:
    """Whether pydantic writes this incident from its field values alone (see the module docstring)."""
    return incident.measure is None and incident.validity.schedule is None


def incident_json(incident: IncidentReport) -> bytes:
    """`incident.model_dump_json()`, as bytes."""
    if _plain(incident):
        try:
            return orjson.dumps(incident.__dict__, default=_fields, option=_OPTIONS)
        except orjson.JSONEncodeError:
            pass
    return incident.__pydantic_serializer__.to_json(incident)


def content_hash(incident: IncidentReport) -> str:
    """SHA-256 of the incident's JSON with sorted keys: what tells a changed item from one already sent."""
    if _plain(incident):
        try:
            return hashlib.sha256(orjson.dumps(incident.__dict__, default=_fields, option=_SORTED)).hexdigest()
        except orjson.JSONEncodeError:
            pass
    return hashlib.sha256(orjson.dumps(incident.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)).hexdigest()


def incident_report(key: str, source: str, received_at: datetime, incident: IncidentReport) -> bytes:
    """`Report(key=…, kind=INCIDENT, source=…, received_at=…, incident=…).model_dump_json()`, as bytes."""
    if received_at.tzinfo is None:  # the model refuses it: let it say so
        report = Report(key=key, kind=ReportKind.INCIDENT, source=source, received_at=received_at, incident=incident)
        return report.model_dump_json().encode()
    envelope = {
        "key": key,
        "kind": ReportKind.INCIDENT,
        "source": source,
        "received_at": received_at,
        "closure": None,
        "incident": incident.__dict__,
        "payload": {},
    }
    if _plain(incident):
        try:
            return orjson.dumps(envelope, default=_fields, option=_OPTIONS)
        except orjson.JSONEncodeError:
            pass
    envelope["incident"] = orjson.Fragment(incident.__pydantic_serializer__.to_json(incident))
    return orjson.dumps(envelope, option=_OPTIONS)
