"""Conflation: which existing event, if any, an incoming report is about.

Two reports are the same real-world incident when they are near each other on the same road,
overlap in time and have compatible types. Our own closures coming back through Waze's partner feed
are exactly such reports: they fold into the closure instead of becoming a second event.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import shapely

from geo.names import core
from traffic_hub.model import Event, EventType, IncidentReport, Normalised
from traffic_hub.model.geometry import lonlat_pairs

NEAR_M = 60.0  # two geometries closer than this may be the same incident
CELL_DEG = 0.002  # grid cell for the spatial index (~150-220 m in MEL)

_FAMILIES: list[set[EventType]] = [
    {EventType.CLOSURE, EventType.LANE_CLOSURE, EventType.ROADWORKS},
    {EventType.ACCIDENT, EventType.HAZARD},
    {EventType.HAZARD, EventType.WEATHER},
    {EventType.JAM},
    {EventType.POLICE},
]


def compatible(a: EventType, b: EventType) -> bool:
    return any(a in family and b in family for family in _FAMILIES)


def _metric(points: list[tuple[float, float]], lat0: float) -> shapely.Geometry:
    """A local equirectangular projection in metres: good to a few cm over a few hundred metres."""
    kx = 111_320.0 * math.cos(math.radians(lat0))
    xy = [(lon * kx, lat * 110_540.0) for lon, lat in points]
    return shapely.Point(xy[0]) if len(xy) == 1 else shapely.LineString(xy)


def distance_m(a: list[tuple[float, float]], b: list[tuple[float, float]]) -> float:
    lat0 = a[0][1]
    return float(shapely.distance(_metric(a, lat0), _metric(b, lat0)))


def _cells(points: Iterable[tuple[float, float]]) -> set[tuple[int, int]]:
    return {(math.floor(lon / CELL_DEG), math.floor(lat / CELL_DEG)) for lon, lat in points}


def _neighbours(cells: set[tuple[int, int]]) -> set[tuple[int, int]]:
    return {(x + dx, y + dy) for x, y in cells for dx in (-1, 0, 1) for dy in (-1, 0, 1)}


@dataclass(frozen=True)
class Match:
    event: Event
    reason: str


class EventIndex:
    """Current events by source item and by place, for the normaliser's look-ups."""

    def __init__(self) -> None:
        self._events: dict[str, Event] = {}
        self._by_source: dict[tuple[str, str], str] = {}
        self._grid: dict[tuple[int, int], set[str]] = defaultdict(set)
        self._cells: dict[str, set[tuple[int, int]]] = {}

    def get(self, event_id: str) -> Event | None:
        return self._events.get(event_id)

    def by_source(self, source: str, source_id: str) -> Event | None:
        event_id = self._by_source.get((source, source_id))
        return self._events.get(event_id) if event_id else None

    def put(self, event_id: str, event: Event | None) -> None:
        previous = self._events.pop(event_id, None)
        for cell in self._cells.pop(event_id, set()):
            self._grid[cell].discard(event_id)
        if previous is not None:
            for s in previous.sources:
                self._by_source.pop((s.source, s.source_id), None)
        if event is None:
            return
        self._events[event_id] = event
        for s in event.sources:
            self._by_source[(s.source, s.source_id)] = event_id
        cells = _cells(lonlat_pairs(event.geometry))
        self._cells[event_id] = cells
        for cell in cells:
            self._grid[cell].add(event_id)

    def near(self, points: list[tuple[float, float]]) -> list[Event]:
        ids: set[str] = set()
        for cell in _neighbours(_cells(points)):
            ids |= self._grid.get(cell, set())
        return [self._events[i] for i in sorted(ids)]

    def find(self, report: IncidentReport, placement: Normalised, now: datetime) -> Match | None:
        """The closest current event this report is about, with the reason; None when it is new."""
        points = lonlat_pairs(report.geometry)
        best: tuple[float, Match] | None = None
        for event in self.near(points):
            reason = _same_incident(event, report, placement, points, now)
            if reason is None:
                continue
            distance, why = reason
            if best is None or distance < best[0]:
                best = (distance, Match(event, why))
        return best[1] if best else None


def _same_incident(
    event: Event, report: IncidentReport, placement: Normalised, points: list[tuple[float, float]], now: datetime
) -> tuple[float, str] | None:
    if not event.is_current(now) or not compatible(event.type, report.type):
        return None
    if any(s.source == report.source for s in event.sources if s.active):
        return None  # one source never reports the same incident twice under two ids
    if not _overlap(event, report):
        return None
    distance = distance_m(points, lonlat_pairs(event.geometry))
    if distance > NEAR_M:
        return None
    road = _same_road(event, report, placement)
    if road is None:
        return None
    kind = "an echo of our own closure" if event.closure is not None and report.kind.startswith("waze") else None
    what = f"{event.type.value} and {report.type.value}"
    why = f"{distance:.0f} m apart {road}, {what}, overlapping in time"
    return distance, f"{why}: {kind}" if kind else why


def _overlap(event: Event, report: IncidentReport) -> bool:
    a, b = event.validity, report.validity
    a_end, b_end = a.ends_at, b.ends_at
    return (a_end is None or b.starts_at < a_end) and (b_end is None or a.starts_at < b_end)


def _same_road(event: Event, report: IncidentReport, placement: Normalised) -> str | None:
    """'on <street>' when both are on the same road (shared edges or the same street name)."""
    shared = set(placement.edge_ids) & set(event.normalised.edge_ids if event.normalised else [])
    street = placement.street or report.street
    if shared:
        return f"on {street or 'the same road segment'}"
    if street and event.street and core(street) == core(event.street):
        return f"on {event.street}"
    if not (street and event.street):
        return "on the same road (no street name to compare)"
    return None
