"""Conflation of measures: an order relayed by the national base joins the team's own measure of the same
family at the same place and time; a different rule at the same place stays its own event."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.feeds import events as ev
from tests.feeds import measures as ms
from traffic_hub.model import (
    EventType,
    IncidentReport,
    Measure,
    MeasureType,
    Normalised,
    Validity,
    VehicleKind,
    Vehicles,
)
from traffic_hub.normaliser.conflation import EventIndex, same_incident

NOW = ev.WINTER_NOW
LORRIES = Vehicles(max_weight_t=7.5, kinds=[VehicleKind.HEAVY_GOODS_VEHICLE])
EVENT_TYPES = {
    MeasureType.ROAD_CLOSED: EventType.CLOSURE,
    MeasureType.LANE_CLOSED: EventType.LANE_CLOSURE,
    MeasureType.ALTERNATE_TRAFFIC: EventType.LANE_CLOSURE,
}


def order(measure: Measure, *, days: int = 10) -> IncidentReport:
    """The national base's order for Rue Nationale, as the `dialog` connector reports it."""
    team = ms.every_measure(NOW)[0]
    return IncidentReport(
        source="dialog",
        kind="dialog-regulation",
        source_id="order-1/1",
        type=EVENT_TYPES.get(measure.type, EventType.OTHER),
        subtype=measure.type.value,
        description="Arrêté",
        geometry=team.geometry,
        street=team.street,
        validity=Validity(starts_at=NOW - timedelta(days=1), ends_at=NOW + timedelta(days=days)),
        measure=measure,
    )


PLACED = Normalised(matched=True, street="Rue Nationale", confidence=1.0)


@pytest.mark.parametrize(
    ("team", "relayed", "same"),
    [
        (Measure(type=MeasureType.ROAD_CLOSED), Measure(type=MeasureType.ROAD_CLOSED), True),
        (Measure(type=MeasureType.LANE_CLOSED), Measure(type=MeasureType.ALTERNATE_TRAFFIC), True),
        (
            Measure(type=MeasureType.SPEED_LIMIT, speed_kmh=30),
            Measure(type=MeasureType.SPEED_LIMIT, speed_kmh=30),
            True,
        ),
        (
            Measure(type=MeasureType.VEHICLE_RESTRICTION, vehicles=LORRIES),
            Measure(type=MeasureType.VEHICLE_RESTRICTION, vehicles=LORRIES),
            True,
        ),
        (Measure(type=MeasureType.ROAD_CLOSED), Measure(type=MeasureType.SPEED_LIMIT, speed_kmh=30), False),
        (Measure(type=MeasureType.SPEED_LIMIT, speed_kmh=30), Measure(type=MeasureType.NO_OVERTAKING), False),
        (Measure(type=MeasureType.ROAD_CLOSED), Measure(type=MeasureType.VEHICLE_RESTRICTION, vehicles=LORRIES), False),
    ],
)
def test_same_place_and_time_conflates_within_a_family_of_measures(team: Measure, relayed: Measure, same: bool) -> None:
    event = ms.measure_event("team-1", NOW, team)
    event = event.model_copy(update={"type": EVENT_TYPES.get(team.type, EventType.OTHER)})
    report = order(relayed)
    index = EventIndex()
    index.put(event.id, event)
    found = index.find(report, PLACED, NOW)
    assert (found is not None) is same
    assert (same_incident(event, report, PLACED, NOW) is not None) is same
    if found is not None:
        assert f"{team.type.value} and {relayed.type.value}" in found.reason


def test_an_order_that_does_not_overlap_in_time_is_another_event() -> None:
    event = ms.measure_event("team-1", NOW, Measure(type=MeasureType.ROAD_CLOSED))
    later = order(Measure(type=MeasureType.ROAD_CLOSED)).model_copy(
        update={"validity": Validity(starts_at=NOW + timedelta(days=30), ends_at=NOW + timedelta(days=40))}
    )
    assert same_incident(event, later, PLACED, NOW) is None
