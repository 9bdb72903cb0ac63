"""Detours checked against the road as it stands: what a team should hear before drivers are sent there.

Why: a detour posted by one team may run through a street another team (or the national base, or
a partner feed) has closed, or under a bridge a lorry ban forbids to the very lorries the detour is
for (issue 18; DiaLog users ask for lorry detours). The hub accepts the detour (the team knows its
ground and may be fixing the other side too) but answers with a `warnings` entry naming the
conflicting measure, so the mistake is seen at once rather than by a driver.

"Runs through" means the detour follows the other line for a while (at least `THROUGH_M`, or most of
a short one), not that it merely crosses it at a junction. Only measures in force at some time the
detour is (periods overlap) count. The work is CPU geometry: :func:`detour_warnings` runs in a thread
on a snapshot of events taken on the event loop (:func:`candidates`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import shapely

from geo.crs import Reprojector
from traffic_hub.model import ClosureState, Event, EventType, MeasureType
from traffic_hub.model.closure import ClosureWarning
from traffic_hub.model.geometry import LineString, MultiLineString
from traffic_hub.model.validity import ends_after
from traffic_hub.view import EventView, micros

THROUGH_M = 25.0
"""How far a detour must follow another measure's line to run through it (a junction crossing is less)."""
NEAR_M = 10.0
"""How close (either side of the detour) the other line must stay to count as followed."""
SHORT_SHARE = 0.8
"""A line shorter than THROUGH_M is run through when the detour follows this share of it."""


def candidates(view: EventView, detour: ClosureState, now: datetime) -> list[Event]:
    """Current events a detour may conflict with (decoded on the event loop, checked in a thread)."""
    at = micros(now)
    return [
        event for event in view.matching(lambda s: s.is_current(at) and not s.dismissed and s.id != detour.id)
        if _blocks_kind(event)
    ]


def _blocks_kind(event: Event) -> bool:
    measure = event.measure
    if measure is None:
        return event.type is EventType.CLOSURE
    return measure.type in (MeasureType.ROAD_CLOSED, MeasureType.VEHICLE_RESTRICTION)


def detour_warnings(detour: ClosureState, events: Iterable[Event], reprojector: Reprojector) -> list[ClosureWarning]:
    """One warning per current closure or restriction (banning the detour's vehicles) it runs through."""
    if detour.measure_type is not MeasureType.DETOUR or detour.geometry is None or detour.cancelled:
        return []
    route = shapely.LineString(reprojector.to_metric(detour.geometry.coordinates))
    corridor = route.buffer(NEAR_M, cap_style="flat")
    out: list[ClosureWarning] = []
    for event in sorted(events, key=lambda e: e.id):
        if event.id in (detour.id, detour.detour_of) or not _overlaps_in_time(detour, event):
            continue
        message = _conflict(detour, event)
        if message is None or not isinstance(event.geometry, LineString | MultiLineString):
            continue
        if _runs_through(corridor, event.geometry, reprojector):
            where = f" ({event.street})" if event.street else ""
            out.append(ClosureWarning(code="detour-conflict", field="geometry",
                                      message=f"the detour runs through {message} {event.id}{where}"))
    return out


def _conflict(detour: ClosureState, event: Event) -> str | None:
    """What `event` is to the detour ("the road closure", "the vehicle restriction ..."), or None."""
    measure = event.measure
    if measure is None or measure.type is MeasureType.ROAD_CLOSED:
        return "the road closure"
    vehicles = measure.vehicles
    if measure.type is MeasureType.VEHICLE_RESTRICTION and vehicles is not None and vehicles.bans(detour.vehicles):
        return "the vehicle restriction banning vehicles it carries,"
    return None


def _overlaps_in_time(detour: ClosureState, event: Event) -> bool:
    validity = event.validity
    if validity.ends_at is not None and not ends_after(detour.starts_at, validity.ends_at):
        return False
    return ends_after(validity.starts_at, detour.ends_at)


def _runs_through(corridor: shapely.Geometry, geometry: LineString | MultiLineString, reprojector: Reprojector) -> bool:
    parts = [geometry.coordinates] if isinstance(geometry, LineString) else geometry.coordinates
    for part in parts:
        line = shapely.LineString(reprojector.to_metric([(p[0], p[1]) for p in part]))
        shared = line.intersection(corridor).length
        if shared >= min(THROUGH_M, SHORT_SHARE * line.length) and shared > 0:
            return True
    return False
