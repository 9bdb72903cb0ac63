"""The words every source and feed is translated through."""

from __future__ import annotations

from enum import StrEnum


class EventType(StrEnum):
    """What happens on the road. Each feed maps these to its own vocabulary."""

    CLOSURE = "closure"  # the road is closed to traffic (in the given direction)
    LANE_CLOSURE = "lane_closure"  # some lanes closed, traffic passes
    ROADWORKS = "roadworks"  # works on or beside the road, no closure known
    ACCIDENT = "accident"
    HAZARD = "hazard"
    JAM = "jam"
    WEATHER = "weather"
    POLICE = "police"
    OTHER = "other"


class Cause(StrEnum):
    ROADWORKS = "roadworks"
    EVENT = "event"
    HAZARD = "hazard"
    ACCIDENT = "accident"
    OTHER = "other"


class Direction(StrEnum):
    ONE_DIRECTION = "ONE_DIRECTION"  # in the order of the geometry's points
    BOTH_DIRECTIONS = "BOTH_DIRECTIONS"
    UNKNOWN = "UNKNOWN"


class Lifecycle(StrEnum):
    """What the sources said of the event's life; time decides planned vs active."""

    OPEN = "open"
    ENDED = "ended"
    CANCELLED = "cancelled"


class Status(StrEnum):
    """The status shown to people: lifecycle and validity combined at a moment."""

    PLANNED = "planned"
    ACTIVE = "active"
    ENDED = "ended"
    CANCELLED = "cancelled"
