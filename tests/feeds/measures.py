"""One Lille event per measure type (and the national base's own), for the feed tests of measures.

Built on `tests.feeds.events` (real OSM ways of central Lille); each measure carries the values its
type takes, as the measures API or the `dialog` connector would give them.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from tests.feeds import events as ev
from traffic_hub.model import (
    CritAir,
    Event,
    EventType,
    Exemption,
    Measure,
    MeasureType,
    Schedule,
    SourceReport,
    VehicleKind,
    Vehicles,
)
from traffic_hub.model.validity import ScheduleExceptions

LORRIES = Vehicles(
    max_weight_t=3.5,
    kinds=[VehicleKind.HEAVY_GOODS_VEHICLE, VehicleKind.HAZARDOUS_GOODS],
    except_=[Exemption.EMERGENCY_SERVICES, Exemption.RESIDENTS, Exemption.DELIVERIES],
)
LOW_BRIDGE = Vehicles(max_height_m=3.2)
DIRTY_ENGINES = Vehicles(critair=[CritAir.CRITAIR_4, CritAir.CRITAIR_5], except_=[Exemption.LOCAL_ACCESS])
OVERSIZE = Vehicles(max_width_m=2.5, max_length_m=12.0, max_axle_load_t=10.0, kinds=[VehicleKind.ABNORMAL_LOAD])

_EVENT_TYPES = {
    MeasureType.ROAD_CLOSED: EventType.CLOSURE,
    MeasureType.LANE_CLOSED: EventType.LANE_CLOSURE,
    MeasureType.ALTERNATE_TRAFFIC: EventType.LANE_CLOSURE,
}


def measure_event(event_id: str, now: datetime, measure: Measure, **changes: object) -> Event:
    """A road-works team's measure on Rue Nationale, started an hour ago, for three days."""
    lanes = {"closed": 1, "total": 2, "side": "RIGHT"} if measure.type is MeasureType.LANE_CLOSED else None
    event = ev.make_event(
        event_id,
        now,
        segments=[ev.segment(ev.RUE_NATIONALE_WEST)],
        event_type=_EVENT_TYPES.get(measure.type, EventType.ROADWORKS),
        description=f"Arrêté de circulation : {measure.type.value}",
        lanes=lanes,
    )
    return event.model_copy(update={"measure": measure, **changes})


def every_measure(now: datetime) -> list[Event]:
    """One event per measure type and per kind of vehicle restriction."""
    weekdays = Schedule(daily=["08:00-17:00"], except_=ScheduleExceptions(weekends=True, public_holidays=True))
    closed = measure_event("m-road-closed", now, Measure(type=MeasureType.ROAD_CLOSED))
    return [
        closed,
        measure_event("m-lane-closed", now, Measure(type=MeasureType.LANE_CLOSED)),
        measure_event("m-alternate", now, Measure(type=MeasureType.ALTERNATE_TRAFFIC)),
        measure_event("m-no-overtaking", now, Measure(type=MeasureType.NO_OVERTAKING)),
        measure_event(
            "m-speed-30",
            now,
            Measure(type=MeasureType.SPEED_LIMIT, speed_kmh=30),
            validity=closed.validity.model_copy(update={"schedule": weekdays}),
        ),
        measure_event("m-lorries", now, Measure(type=MeasureType.VEHICLE_RESTRICTION, vehicles=LORRIES)),
        measure_event("m-low-bridge", now, Measure(type=MeasureType.VEHICLE_RESTRICTION, vehicles=LOW_BRIDGE)),
        measure_event("m-critair", now, Measure(type=MeasureType.VEHICLE_RESTRICTION, vehicles=DIRTY_ENGINES)),
        measure_event("m-oversize", now, Measure(type=MeasureType.VEHICLE_RESTRICTION, vehicles=OVERSIZE)),
        measure_event(
            "m-detour",
            now,
            Measure(type=MeasureType.DETOUR, detour_of="m-road-closed"),
            geometry=ev.make_event("x", now, segments=[ev.segment(ev.RUE_NATIONALE_EAST)]).geometry,
        ),
    ]


def from_national_base(event: Event, *, also_team: bool = False) -> Event:
    """`event` as the `dialog` connector reports it (and a road-works team too when `also_team`)."""
    received = event.created_at + timedelta(minutes=5)
    dialog = SourceReport(
        source="dialog",
        source_id=f"{event.id}/1",
        kind="dialog-regulation",
        received_at=received,
        said={"issuing_authority": "Lille", "regulation_id": "2026-042"},
    )
    sources = [*event.sources, dialog] if also_team else [dialog]
    return event.model_copy(update={"sources": sources})
