"""A closure or measure report becomes a canonical event (pure).

The event's `type` stays in the vocabulary every feed already knows; `measure` keeps the exact
measure type and its values for the feeds that can carry them (issue 18). Alternating traffic is a
lane closure on the road (one lane left for both directions in turn); a speed limit, no-overtaking
rule or vehicle restriction ordered for works is road works where traffic passes (`roadworks`), for
another cause `other`; a detour is `other` (a route, not an incident: conflation never merges reports
into it, and a feed that does not read `measure` leaves it out).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from traffic_hub.model import ClosureState, Event, EventType, Lifecycle, MeasureType, SourceReport
from traffic_hub.model.vocabulary import Cause
from traffic_hub.normaliser.placement import Placement

_WAZE_CLOSED_SUBTYPE = {
    Cause.ROADWORKS: "ROAD_CLOSED_CONSTRUCTION",
    Cause.EVENT: "ROAD_CLOSED_EVENT",
    Cause.HAZARD: "ROAD_CLOSED_HAZARD",
    Cause.ACCIDENT: "ROAD_CLOSED_HAZARD",
}
EVENT_TYPE = {
    MeasureType.ROAD_CLOSED: EventType.CLOSURE,
    MeasureType.LANE_CLOSED: EventType.LANE_CLOSURE,
    MeasureType.ALTERNATE_TRAFFIC: EventType.LANE_CLOSURE,
    MeasureType.DETOUR: EventType.OTHER,
}
"""The event type of a measure type; the others are `roadworks` (cause roadworks) or `other`."""


def event_type(kind: MeasureType, cause: Cause) -> EventType:
    """The event type partners' vocabularies know for a measure (see the module docstring)."""
    if kind in EVENT_TYPE:
        return EVENT_TYPE[kind]
    return EventType.ROADWORKS if cause is Cause.ROADWORKS else EventType.OTHER


def closure_event(closure: ClosureState, placement: Placement, received_at: datetime) -> Event:
    measure = closure.measure()
    kind = event_type(measure.type, closure.cause)
    return Event(
        id=closure.id,
        type=kind,
        subtype=_WAZE_CLOSED_SUBTYPE.get(closure.cause) if kind is EventType.CLOSURE else None,
        cause=closure.cause,
        description=closure.description,
        geometry=closure.geometry,  # resolved by the API before writing
        direction=closure.direction,
        street=closure.street or placement.normalised.street,
        commune=placement.normalised.commune or (closure.communes[0] if closure.communes else None),
        validity=closure.validity(),
        lanes=closure.lanes.model_dump() if closure.lanes else None,
        lifecycle=Lifecycle.CANCELLED if closure.cancelled else Lifecycle.OPEN,
        version=closure.version,
        sources=[_provenance(closure, received_at)],
        normalised=placement.normalised,
        segments=placement.segments,
        segments_withheld=placement.withheld,
        closure=closure,
        measure=measure,
        created_at=closure.created_at,
        updated_at=closure.updated_at,
    )


def _provenance(closure: ClosureState, received_at: datetime) -> SourceReport:
    said: dict[str, Any] = {
        "description": closure.description,
        "street": closure.street,
        "from_street": closure.from_street,
        "to_street": closure.to_street,
        "starts_at": closure.starts_at.isoformat(),
        "ends_at": closure.ends_at.isoformat(),
        "version": closure.version,
        "cancelled": closure.cancelled,
    }
    if closure.measure_type not in (MeasureType.ROAD_CLOSED, MeasureType.LANE_CLOSED):
        said["measure"] = closure.measure().model_dump(mode="json", exclude_none=True)
    return SourceReport(
        source=f"roadworks:{closure.owner}",
        source_id=closure.reference,
        kind="closure",
        received_at=received_at,
        observed_at=closure.updated_at,
        said=said,
    )
