"""Another authority's Waze CIFS feed (XML or JSON; v2 layout and the legacy `location` wrapper).

A CIFS feed lists every current incident, so it is a snapshot. Types and subtypes are Waze's
vocabulary (shared with the partner feed); `polyline` is "lat lon lat lon …" (commas are
accepted too, as legacy feeds use them); an `endtime` in the past marks the incident ended.
"""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Any

from connectors.base import ParseContext, Parsed, PayloadError
from connectors.coords import geometry, latlon_text
from connectors.items import collect, json_id, json_raw
from connectors.json_safety import parse_json
from connectors.schedules import cifs_schedule
from connectors.values import ItemError, as_dict, optional_time, required_text, small, text
from connectors.waze_vocabulary import DIRECTIONS, alert_type
from connectors.xml_find import child, child_text, children, local, raw
from connectors.xml_safety import parse_xml
from traffic_hub.model import Direction, IncidentReport, Validity

KIND = "cifs"
_FIELDS = ("type", "subtype", "polyline", "street", "direction", "description", "starttime", "endtime")
_TIMES = ("creationtime", "updatetime")
_DAYS = ("everyday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


class CifsParser:
    kind = KIND

    def parse(self, payload: bytes, ctx: ParseContext) -> Parsed:
        start = payload.lstrip()[:1]
        items = _json_items(payload) if start in (b"{", b"[") else _xml_items(payload)
        incidents, rejects = collect(items, partial(_incident, ctx=ctx), _raw_of, _id_of)
        return Parsed(incidents=incidents, rejects=rejects, snapshot=True)


def _xml_items(payload: bytes) -> list[tuple[dict[str, Any], bytes]]:
    root = parse_xml(payload)
    if local(root) != "incidents":
        raise PayloadError(f"not a CIFS feed: root element is <{local(root)}>")
    return [(_xml_fields(element), raw(element)) for element in children(root, "incident")]


def _xml_fields(element: Any) -> dict[str, Any]:
    """One `<incident>` as the JSON shape: fields from the incident or its legacy `<location>`."""
    fields: dict[str, Any] = {"id": element.get("id")}
    location = child(element, "location")
    for name in (*_FIELDS, *_TIMES):
        fields[name] = child_text(element, name) or child_text(location, name)
    fields["source"] = {n: child_text(element, "source", n) for n in ("reference", "name")}
    parent = child(element, "parent_event")
    fields["parent_event"] = None if parent is None else parent.get("id")
    fields["schedule"] = {day: child_text(element, "schedule", day) for day in _DAYS}
    fields["lane_impact"] = {
        "total_closed_lanes": child_text(element, "lane_impact", "total_closed_lanes"),
        "roadside": child_text(element, "lane_impact", "roadside"),
    }
    return fields


def _json_items(payload: bytes) -> list[tuple[dict[str, Any], bytes]]:
    document = parse_json(payload)
    entries = document.get("incidents") if isinstance(document, dict) else document
    if not isinstance(entries, list):
        raise PayloadError("not a CIFS JSON feed: no incidents list")
    items: list[tuple[dict[str, Any], bytes]] = []
    for entry in entries:
        wrapped = entry.get("incident") if isinstance(entry, dict) else None
        fields = wrapped if isinstance(wrapped, dict) else entry
        items.append((_flatten(fields) if isinstance(fields, dict) else {"_bad": fields}, json_raw(entry)))
    return items


def _flatten(fields: dict[str, Any]) -> dict[str, Any]:
    """Google's documented shape, or the flat one with a legacy `location` object."""
    location = fields.get("location")
    if isinstance(location, dict):
        merged = {key: value for key, value in location.items() if key != "location_description"}
        merged.update({key: value for key, value in fields.items() if key != "location"})
        merged.setdefault("description", fields.get("short_description"))
        return merged
    return fields


def _incident(item: tuple[dict[str, Any], bytes], ctx: ParseContext) -> IncidentReport:
    fields = as_dict(item[0].get("_bad", item[0]), "incident")
    incident_id = required_text(fields.get("id"), "incident id")
    cifs_type = required_text(fields.get("type"), "type").upper()
    subtype = text(fields.get("subtype"))
    event_type, cause = alert_type(cifs_type, subtype)
    created = optional_time(fields.get("creationtime"), "creationtime")
    updated = optional_time(fields.get("updatetime"), "updatetime")
    starts = optional_time(fields.get("starttime"), "starttime") or created or ctx.received_at
    ends = optional_time(fields.get("endtime"), "endtime")
    street = text(fields.get("street"))
    return IncidentReport(
        source=ctx.source,
        kind=KIND,
        source_id=incident_id,
        source_version=None if updated is None else updated.isoformat(),
        type=event_type,
        subtype=subtype,
        cause=cause,
        description=text(fields.get("description")) or _label(cifs_type, street),
        geometry=geometry(latlon_text(required_text(fields.get("polyline"), "polyline"))),
        direction=DIRECTIONS.get(text(fields.get("direction")) or "", Direction.UNKNOWN),
        street=street,
        validity=Validity(starts_at=starts, ends_at=ends, schedule=cifs_schedule(_schedule(fields))),
        lanes=_lanes(fields.get("lane_impact")),
        ended=_ended(ends, ctx.received_at),
        observed_at=updated or created,
        said=small(
            {
                "type": cifs_type,
                "subtype": subtype,
                "parent_event": text(fields.get("parent_event")),
                "source": _source(fields.get("source")),
                "starttime_missing": fields.get("starttime") is None or None,
            }
        ),
    )


def _schedule(fields: dict[str, Any]) -> dict[str, str]:
    schedule = fields.get("schedule")
    if not isinstance(schedule, dict):
        return {}
    return {day: value for day in _DAYS if (value := text(schedule.get(day)))}


def _lanes(value: Any) -> dict[str, Any] | None:
    if not isinstance(value, dict):
        return None
    closed = text(value.get("total_closed_lanes"))
    if closed is None:
        return None
    if not closed.isdigit():
        raise ItemError("total_closed_lanes is not a number")
    return small({"closed": int(closed), "side": text(value.get("roadside"))})


def _source(value: Any) -> str | None:
    if not isinstance(value, dict):
        return text(value)
    return text(value.get("name")) or text(value.get("reference"))


def _ended(ends: datetime | None, now: datetime) -> bool:
    return ends is not None and ends <= now


def _label(cifs_type: str, street: str | None) -> str:
    readable = cifs_type.replace("_", " ").lower()
    return f"{readable} on {street}" if street else readable


def _raw_of(item: tuple[dict[str, Any], bytes]) -> bytes:
    return item[1]


def _id_of(item: tuple[dict[str, Any], bytes]) -> str:
    return json_id("id")(item[0])
