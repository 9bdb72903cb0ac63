"""Waze partner feed (Waze for Cities "GeoRSS" JSON): alerts, jams and irregularities.

The feed is a snapshot of what is active now: an item missing from the next poll has ended, so
`Parsed.snapshot` is True and no item is marked `ended` here. Real data differs from the docs:
`HAZARD` (2024) vs `WEATHERHAZARD` (2019), `speedKMH` vs `speedKPH`, booleans as strings,
`confidence` -1 and `delay` -1 (blocked) meaning "unknown".
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import Any

from connectors.base import ParseContext, Parsed, PayloadError
from connectors.coords import MAX_POINTS, LonLat, geometry
from connectors.items import collect, json_id, json_raw
from connectors.json_safety import parse_json
from connectors.trusted import build
from connectors.values import ItemError, as_dict, as_list, boolean, from_millis, known, number, small, text
from connectors.waze_vocabulary import alert_type
from traffic_hub.model import Direction, EventType, IncidentReport, LineString, Point, Validity

KIND = "waze-partner-feed"
_ENVELOPE_KEYS = ("alerts", "jams", "startTimeMillis")


class WazePartnerFeedParser:
    kind = KIND

    def parse(self, payload: bytes, ctx: ParseContext) -> Parsed:
        document = parse_json(payload)
        if not isinstance(document, dict) or not any(key in document for key in _ENVELOPE_KEYS):
            raise PayloadError("not a Waze partner feed (no alerts, jams or startTimeMillis)")
        parsed = Parsed(snapshot=True)
        for key, make in _BUILDERS.items():
            items = document.get(key)
            if items is None:
                continue
            if not isinstance(items, list):
                raise PayloadError(f"{key} is not a list")
            found, bad = collect(items, partial(make, ctx=ctx), json_raw, json_id("uuid", "id"))
            parsed.incidents.extend(found)
            parsed.rejects.extend(bad)
        return parsed


def _alert(item: Any, ctx: ParseContext) -> IncidentReport:
    alert = as_dict(item, "alert")
    uuid = _id(alert.get("uuid"), "alert uuid")
    waze_type = text(alert.get("type")) or "UNKNOWN"
    subtype = text(alert.get("subtype"))
    event_type, cause = alert_type(waze_type, subtype)
    location = as_dict(alert.get("location"), "alert location")
    published = from_millis(alert.get("pubMillis"), "pubMillis")
    street = text(alert.get("street"))
    reliability = number(alert.get("reliability"))
    return _incident(
        source=ctx.source,
        kind="waze-alert",
        source_id=uuid,
        type=event_type,
        subtype=subtype,
        cause=cause,
        description=text(alert.get("reportDescription")) or _label(subtype or waze_type, street),
        geometry=geometry([_xy(location)]),
        street=street,
        city=text(alert.get("city")),
        validity=_starting(published),
        observed_at=published,
        reliability=None if reliability is None else min(max(reliability / 10, 0.0), 1.0),
        said=small(
            {
                "type": waze_type,
                "subtype": subtype,
                "reliability": reliability,
                "confidence": known(alert.get("confidence")),
                "reportRating": number(alert.get("reportRating")),
                "roadType": number(alert.get("roadType")),
                "magvar": number(alert.get("magvar")),
                "nThumbsUp": number(alert.get("nThumbsUp")),
                "reportByMunicipalityUser": boolean(alert.get("reportByMunicipalityUser")),
                "jamUuid": text(alert.get("jamUuid")),
                "country": text(alert.get("country")),
            }
        ),
    )


def _jam(item: Any, ctx: ParseContext) -> IncidentReport:
    jam = as_dict(item, "jam")
    jam_id = _id(jam.get("uuid", jam.get("id")), "jam uuid")
    published = from_millis(jam.get("pubMillis"), "pubMillis")
    street = text(jam.get("street"))
    level = number(jam.get("level"))
    speed_kmh = number(jam.get("speedKMH", jam.get("speedKPH")))
    if speed_kmh is None and number(jam.get("speed")) is not None:
        speed_kmh = round(float(jam["speed"]) * 3.6, 2)
    return _incident(
        source=ctx.source,
        kind="waze-jam",
        source_id=f"jam-{jam_id}",
        type=EventType.JAM,
        subtype=_jam_subtype(jam.get("type")),
        description=_label(f"jam level {_int_text(level)}", street),
        geometry=_line_geometry(jam.get("line")),
        direction=Direction.ONE_DIRECTION,
        street=street,
        city=text(jam.get("city")),
        validity=_starting(published),
        observed_at=published,
        said=small(
            {
                "level": level,
                "speedKMH": speed_kmh,
                "delay": known(jam.get("delay")),
                "blocked": level == 5 or None,
                "length": number(jam.get("length")),
                "type": text(jam.get("type")),
                "roadType": number(jam.get("roadType")),
                "startNode": text(jam.get("startNode")),
                "endNode": text(jam.get("endNode")),
                "blockingAlertUuid": text(jam.get("blockingAlertUuid")),
                "country": text(jam.get("country")),
            }
        ),
    )


def _irregularity(item: Any, ctx: ParseContext) -> IncidentReport:
    irregularity = as_dict(item, "irregularity")
    irregularity_id = _id(irregularity.get("id"), "irregularity id")
    detected = from_millis(irregularity.get("detectionDateMillis"), "detectionDateMillis")
    updated = irregularity.get("updateDateMillis")
    street = text(irregularity.get("street"))
    return _incident(
        source=ctx.source,
        kind="waze-irregularity",
        source_id=f"irregularity-{irregularity_id}",
        type=EventType.JAM,
        subtype="irregularity",
        description=_label("unusual traffic", street),
        geometry=_line_geometry(irregularity.get("line")),
        direction=Direction.ONE_DIRECTION,
        street=street,
        city=text(irregularity.get("city")),
        validity=_starting(detected),
        observed_at=from_millis(updated, "updateDateMillis") if updated is not None else detected,
        said=small(
            {
                "type": text(irregularity.get("type")),
                "severity": number(irregularity.get("severity")),
                "jamLevel": number(irregularity.get("jamLevel")),
                "speed": number(irregularity.get("speed")),
                "regularSpeed": number(irregularity.get("regularSpeed")),
                "delaySeconds": known(irregularity.get("delaySeconds")),
                "length": number(irregularity.get("length")),
                "trend": number(irregularity.get("trend")),
                "driversCount": number(irregularity.get("driversCount")),
                "alertsCount": number(irregularity.get("alertsCount")),
                "causeType": text(irregularity.get("causeType")),
            }
        ),
    )


def _incident(**fields: Any) -> IncidentReport:
    """The report of one item, from values this module's readers checked (`connectors.trusted`)."""
    return build(IncidentReport, fields)


def _starting(moment: datetime) -> Validity:
    """A validity from `moment` (aware: `values.from_millis`), open-ended."""
    return build(Validity, {"starts_at": moment})


def _id(value: Any, what: str) -> str:
    found = text(value, limit=200)
    if found is None:
        raise ItemError(f"{what} is missing")
    return found


def _xy(point: dict[str, Any]) -> LonLat:
    lon, lat = number(point.get("x")), number(point.get("y"))
    if lon is None or lat is None:
        raise ItemError("a position without numeric x/y")
    return (lon, lat)


def _line_geometry(value: Any) -> Point | LineString:
    """`geometry(_line(value))` in one pass for the common line: every point `{"x": float, "y": float}` in
    WGS84 range (NaN is not). Jam lines are most of a feed's positions (58,683 of the NYC sample's), and
    the two general passes (read the points, then check and de-duplicate them) were a fifth of parsing.
    Any other point (a number as text, an int, out of range) takes the general path for the whole line,
    which raises the same errors as before."""
    points = as_list(value, "line")
    coordinates: list[list[float]] = []
    last_x = last_y = math.nan
    for point in points:
        if type(point) is not dict:
            return geometry(_line(points))
        x, y = point.get("x"), point.get("y")
        if not (type(x) is float and type(y) is float and -180.0 <= x <= 180.0 and -90.0 <= y <= 90.0):
            return geometry(_line(points))
        if x != last_x or y != last_y:  # consecutive repeats dropped (-0.0 equals 0.0, as in `geometry`)
            coordinates.append([x, y])
            last_x, last_y = x, y
    if len(coordinates) < 2 or len(coordinates) > MAX_POINTS:  # a point, none or too many: as `geometry` says
        return geometry(_line(points))
    return build(LineString, {"type": "LineString", "coordinates": coordinates})


def _line(points: list[Any]) -> list[LonLat]:
    """The points of a jam or irregularity line, read one by one."""
    return [_xy(as_dict(point, "line point")) for point in points]


def _label(what: str, street: str | None) -> str:
    readable = what.replace("_", " ").lower()
    return f"{readable} on {street}" if street else readable


def _jam_subtype(value: Any) -> str | None:
    found = text(value)
    return None if found is None or found == "NONE" else found


def _int_text(value: float | None) -> str:
    return "unknown" if value is None else str(int(value))


_BUILDERS: dict[str, Callable[..., IncidentReport]] = {
    "alerts": _alert,
    "jams": _jam,
    "irregularities": _irregularity,
}
