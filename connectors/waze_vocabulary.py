"""Waze's type/subtype vocabulary (partner-feed alerts and CIFS incidents share it) → canonical words."""

from __future__ import annotations

from traffic_hub.model import Cause, Direction, EventType

_WEATHER_PREFIX = "HAZARD_WEATHER"
DIRECTIONS = {"ONE_DIRECTION": Direction.ONE_DIRECTION, "BOTH_DIRECTIONS": Direction.BOTH_DIRECTIONS}

# Waze alert type → canonical type and cause; a subtype rule below may refine it.
ALERT_TYPES: dict[str, tuple[EventType, Cause]] = {
    "ACCIDENT": (EventType.ACCIDENT, Cause.ACCIDENT),
    "JAM": (EventType.JAM, Cause.OTHER),
    "WEATHERHAZARD": (EventType.HAZARD, Cause.HAZARD),
    "HAZARD": (EventType.HAZARD, Cause.HAZARD),
    "ROAD_CLOSED": (EventType.CLOSURE, Cause.OTHER),
    "CONSTRUCTION": (EventType.ROADWORKS, Cause.ROADWORKS),
    "POLICE": (EventType.POLICE, Cause.OTHER),
    "MISC": (EventType.OTHER, Cause.OTHER),
    "CHIT_CHAT": (EventType.OTHER, Cause.OTHER),
}
SUBTYPES: dict[str, tuple[EventType, Cause]] = {
    "ROAD_CLOSED_CONSTRUCTION": (EventType.CLOSURE, Cause.ROADWORKS),
    "ROAD_CLOSED_EVENT": (EventType.CLOSURE, Cause.EVENT),
    "ROAD_CLOSED_HAZARD": (EventType.CLOSURE, Cause.HAZARD),
    "HAZARD_ON_ROAD_CONSTRUCTION": (EventType.ROADWORKS, Cause.ROADWORKS),
    "HAZARD_ON_ROAD_LANE_CLOSED": (EventType.LANE_CLOSURE, Cause.HAZARD),
}


def alert_type(waze_type: str, subtype: str | None) -> tuple[EventType, Cause]:
    """The canonical (type, cause) of a Waze alert type and subtype."""
    if subtype and subtype.startswith(_WEATHER_PREFIX):
        return EventType.WEATHER, Cause.HAZARD
    if subtype and subtype in SUBTYPES:
        event_type, cause = SUBTYPES[subtype]
        return event_type, Cause.ROADWORKS if waze_type == "CONSTRUCTION" else cause
    return ALERT_TYPES.get(waze_type, (EventType.OTHER, Cause.OTHER))
