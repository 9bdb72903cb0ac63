"""A closure report becomes a canonical event (pure)."""

from __future__ import annotations

from datetime import datetime

from traffic_hub.model import ClosureState, Event, EventType, Lifecycle, SourceReport
from traffic_hub.model.vocabulary import Cause
from traffic_hub.normaliser.placement import Placement

_WAZE_CLOSED_SUBTYPE = {
    Cause.ROADWORKS: "ROAD_CLOSED_CONSTRUCTION",
    Cause.EVENT: "ROAD_CLOSED_EVENT",
    Cause.HAZARD: "ROAD_CLOSED_HAZARD",
    Cause.ACCIDENT: "ROAD_CLOSED_HAZARD",
}


def closure_event(closure: ClosureState, placement: Placement, received_at: datetime) -> Event:
    lane_closure = closure.lanes is not None and not closure.lanes.full
    return Event(
        id=closure.id,
        type=EventType.LANE_CLOSURE if lane_closure else EventType.CLOSURE,
        subtype=None if lane_closure else _WAZE_CLOSED_SUBTYPE.get(closure.cause),
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
        created_at=closure.created_at,
        updated_at=closure.updated_at,
    )


def _provenance(closure: ClosureState, received_at: datetime) -> SourceReport:
    return SourceReport(
        source=f"roadworks:{closure.owner}",
        source_id=closure.reference,
        kind="closure",
        received_at=received_at,
        observed_at=closure.updated_at,
        said={
            "description": closure.description,
            "street": closure.street,
            "from_street": closure.from_street,
            "to_street": closure.to_street,
            "starts_at": closure.starts_at.isoformat(),
            "ends_at": closure.ends_at.isoformat(),
            "version": closure.version,
            "cancelled": closure.cancelled,
        },
    )
