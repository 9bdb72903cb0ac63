"""Waze CIFS v2 incident types and subtypes, and which one a canonical event becomes.

The vocabulary is the enumeration of Google's `cifsv2.xsd`; the subtype families follow the
CIFS specification ("the subtype must match the value provided in the type tag"). `CONSTRUCTION`
and `CHIT_CHAT` take no subtype.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from traffic_hub.model import Cause, Event, EventType

SUBTYPES: Mapping[str, frozenset[str]] = {
    "ACCIDENT": frozenset({"ACCIDENT_MAJOR", "ACCIDENT_MINOR"}),
    "CONSTRUCTION": frozenset(),
    "HAZARD": frozenset(
        {
            "HAZARD_ON_ROAD",
            "HAZARD_ON_ROAD_CAR_STOPPED",
            "HAZARD_ON_ROAD_CONSTRUCTION",
            "HAZARD_ON_ROAD_ICE",
            "HAZARD_ON_ROAD_LANE_CLOSED",
            "HAZARD_ON_ROAD_OBJECT",
            "HAZARD_ON_ROAD_OIL",
            "HAZARD_ON_ROAD_POT_HOLE",
            "HAZARD_ON_ROAD_ROAD_KILL",
            "HAZARD_ON_ROAD_TRAFFIC_LIGHT_FAULT",
            "HAZARD_ON_SHOULDER",
            "HAZARD_ON_SHOULDER_ANIMALS",
            "HAZARD_ON_SHOULDER_CAR_STOPPED",
            "HAZARD_ON_SHOULDER_MISSING_SIGN",
            "HAZARD_WEATHER",
            "HAZARD_WEATHER_FLOOD",
            "HAZARD_WEATHER_FOG",
            "HAZARD_WEATHER_FREEZING_RAIN",
            "HAZARD_WEATHER_HAIL",
            "HAZARD_WEATHER_HEAT_WAVE",
            "HAZARD_WEATHER_HEAVY_RAIN",
            "HAZARD_WEATHER_HEAVY_SNOW",
            "HAZARD_WEATHER_HURRICANE",
            "HAZARD_WEATHER_MONSOON",
            "HAZARD_WEATHER_TORNADO",
        }
    ),
    "ROAD_CLOSED": frozenset({"ROAD_CLOSED_CONSTRUCTION", "ROAD_CLOSED_EVENT", "ROAD_CLOSED_HAZARD"}),
    "POLICE": frozenset({"POLICE_VISIBLE", "POLICE_HIDING"}),
    "CHIT_CHAT": frozenset(),
    "JAM": frozenset({"JAM_HEAVY_TRAFFIC", "JAM_LIGHT_TRAFFIC", "JAM_MODERATE_TRAFFIC", "JAM_STAND_STILL_TRAFFIC"}),
}

LANE_CLOSED = "HAZARD_ON_ROAD_LANE_CLOSED"

_TYPE_OF: Mapping[EventType, str] = {
    EventType.CLOSURE: "ROAD_CLOSED",
    EventType.LANE_CLOSURE: "HAZARD",
    EventType.ROADWORKS: "CONSTRUCTION",
    EventType.ACCIDENT: "ACCIDENT",
    EventType.HAZARD: "HAZARD",
    EventType.WEATHER: "HAZARD",
    EventType.JAM: "JAM",
    EventType.POLICE: "POLICE",
}

_CLOSURE_SUBTYPE: Mapping[Cause, str] = {
    Cause.ROADWORKS: "ROAD_CLOSED_CONSTRUCTION",
    Cause.EVENT: "ROAD_CLOSED_EVENT",
    Cause.HAZARD: "ROAD_CLOSED_HAZARD",
    Cause.ACCIDENT: "ROAD_CLOSED_HAZARD",
}

_DEFAULT_SUBTYPE: Mapping[EventType, str] = {
    EventType.HAZARD: "HAZARD_ON_ROAD",
    EventType.WEATHER: "HAZARD_WEATHER",
}


@dataclass(frozen=True, slots=True)
class WazeKind:
    """A CIFS `type` and its optional `subtype`."""

    type: str
    subtype: str | None


def waze_kind(event: Event) -> WazeKind | None:
    """The CIFS type/subtype for `event`, or None when Waze has no type for it."""
    waze_type = _TYPE_OF.get(event.type)
    if waze_type is None:
        return None
    if event.type is EventType.LANE_CLOSURE:
        return WazeKind(waze_type, LANE_CLOSED)
    kept = event.subtype if event.subtype in SUBTYPES[waze_type] else None
    if kept is not None:
        return WazeKind(waze_type, kept)
    if event.type is EventType.CLOSURE:
        return WazeKind(waze_type, _CLOSURE_SUBTYPE.get(event.cause))
    return WazeKind(waze_type, _DEFAULT_SUBTYPE.get(event.type))
