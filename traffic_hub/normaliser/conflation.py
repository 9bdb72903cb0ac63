"""Conflation: which existing event, if any, an incoming report is about.

Two reports are the same real-world incident when they are near each other on the same road,
overlap in time and have compatible types. Our own closures coming back through Waze's partner feed
are exactly such reports: they fold into the closure instead of becoming a second event.

The result must not depend on the order in which reports arrive: a report that comes after an event
joins it, and a closure that comes after an incident event takes that event in (`absorbable`), by
the very same test (`_same_incident`). Times are compared as instants (microseconds since the epoch),
never by wall clock: Python compares two datetimes sharing a tzinfo by their local time, which is
wrong for an hour each autumn night when Europe/Paris falls back.

Traffic-regulation measures (issue 18): when both sides are measures, their types must also be of
one family (`_MEASURE_FAMILIES`): an order the national base relays and the closure MEL's team
posted for the same works (same place, overlapping time) are one event, but a speed limit and a
closure at the same place are two rules, as are two vehicle restrictions and a detour.
"""

from __future__ import annotations

import math
from array import array
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import shapely

from geo.names import core
from traffic_hub.model import Event, EventType, IncidentReport, Lifecycle, Measure, MeasureType, Normalised, Validity
from traffic_hub.model.geometry import lonlat_pairs
from traffic_hub.view import Decoded, Stored, encode, micros

NEAR_M = 60.0  # two geometries closer than this may be the same incident
CELL_DEG = 0.002  # grid cell for the spatial index (~150-220 m in MEL)
DECODED_KEPT = 4096  # decoded events an index keeps (~5.5 KiB each)

_FAMILIES: list[set[EventType]] = [
    {EventType.CLOSURE, EventType.LANE_CLOSURE, EventType.ROADWORKS},
    {EventType.ACCIDENT, EventType.HAZARD},
    {EventType.HAZARD, EventType.WEATHER},
    {EventType.JAM},
    {EventType.POLICE},
]


_MEASURE_FAMILIES: list[set[MeasureType]] = [
    {MeasureType.ROAD_CLOSED, MeasureType.LANE_CLOSED, MeasureType.ALTERNATE_TRAFFIC},  # closing all or some lanes
    {MeasureType.NO_OVERTAKING},
    {MeasureType.SPEED_LIMIT},
    {MeasureType.VEHICLE_RESTRICTION},
    {MeasureType.DETOUR},
]


def compatible(a: EventType, b: EventType) -> bool:
    return any(a in family and b in family for family in _FAMILIES)


def measures_compatible(a: Measure | None, b: Measure | None) -> bool:
    """Two measures may be one order only if their types are of one family; an incident (None) may match any."""
    if a is None or b is None:
        return True
    return _same_family(a.type, b.type)


def _same_family(a: MeasureType, b: MeasureType) -> bool:
    return any(a in family and b in family for family in _MEASURE_FAMILIES)


def kinds_match(a: EventType, a_measure: MeasureType | None, b: EventType, b_measure: MeasureType | None) -> bool:
    """Whether two events' kinds may be one incident: by measure family when both are measures (their event
    types, `roadworks` or `other` for most measures, say little), else by event-type family."""
    if a_measure is not None and b_measure is not None:
        return _same_family(a_measure, b_measure)
    return compatible(a, b)


def _measure_type(measure: Measure | None) -> MeasureType | None:
    return measure.type if measure is not None else None


def event_measure(event: Event) -> Measure | None:
    """The event's measure; a road-works closure's own when the event does not say it."""
    if event.measure is not None:
        return event.measure
    return event.closure.measure() if event.closure is not None else None


def _metric(points: list[tuple[float, float]], lat0: float) -> shapely.Geometry:
    """A local equirectangular projection in metres: good to a few cm over a few hundred metres."""
    kx = 111_320.0 * math.cos(math.radians(lat0))
    xy = [(lon * kx, lat * 110_540.0) for lon, lat in points]
    return shapely.Point(xy[0]) if len(xy) == 1 else shapely.LineString(xy)


class _Metres:
    """Distances from one geometry (projected once) to others, exactly as `distance_m` computes them."""

    def __init__(self, points: list[tuple[float, float]]) -> None:
        self._lat0 = points[0][1]
        self._kx = 111_320.0 * math.cos(math.radians(self._lat0))
        self._shape = _metric(points, self._lat0)

    def to(self, points: list[tuple[float, float]]) -> float:
        return float(shapely.distance(self._shape, _metric(points, self._lat0)))

    def to_packed(self, packed: list[bytes]) -> list[float]:
        """`to` of many geometries at once, each given as `_packed` lon/lat pairs: the same floats, bit
        for bit (the same products in float64, the same GEOS distance), in a few numpy and GEOS calls.

        Why: a closure's take-in looks at every event in the cells around it; in the write bench's
        10,000 events over central Lille that is hundreds per closure, and building one shapely
        geometry per candidate was 53 % of the decision stage (py-spy, 2026-12-07) and the largest
        cost of a POST across the hub. One vertex is a point, as in `_metric`."""
        lonlat = np.frombuffer(b"".join(packed), dtype=np.float64).reshape(-1, 2)
        counts = np.fromiter((len(p) // 16 for p in packed), dtype=np.intp, count=len(packed))
        xy = np.empty_like(lonlat)
        xy[:, 0] = lonlat[:, 0] * self._kx
        xy[:, 1] = lonlat[:, 1] * 110_540.0
        shapes = np.empty(len(packed), dtype=object)
        lines = counts > 1
        if lines.any():
            shapes[lines] = shapely.linestrings(
                xy[np.repeat(lines, counts)], indices=np.repeat(np.arange(int(lines.sum())), counts[lines])
            )
        if not lines.all():
            shapes[~lines] = shapely.points(xy[np.repeat(~lines, counts)])
        distances: list[float] = shapely.distance(self._shape, shapes).tolist()
        return distances


def distance_m(a: list[tuple[float, float]], b: list[tuple[float, float]]) -> float:
    return _Metres(a).to(b)


def _cells(points: Iterable[tuple[float, float]]) -> set[tuple[int, int]]:
    return {(math.floor(lon / CELL_DEG), math.floor(lat / CELL_DEG)) for lon, lat in points}


def _neighbours(cells: set[tuple[int, int]]) -> set[tuple[int, int]]:
    return {(x + dx, y + dy) for x, y in cells for dx in (-1, 0, 1) for dy in (-1, 0, 1)}


@dataclass(frozen=True)
class Match:
    event: Event
    reason: str


@dataclass(frozen=True, slots=True, eq=False)
class _Entry:
    """What matching reads of an event without decoding it; the event itself is `stored.raw`."""

    stored: Stored  # the view's record when the event came from there (its bytes are shared, not copied)
    type: EventType
    points: bytes  # lonlat_pairs(geometry), as float64 lon, lat, lon, lat...
    sources: tuple[str, ...]  # its `_source_key`s
    absorbable: bool  # an incident event a closure may take in (not a closure, not merged into another, placed,
    # with an incident report: the pipeline's take-in moves nothing out of any other event, so it is never decoded)
    measure: MeasureType | None = None  # the event's measure type (None: an incident)

    def lonlat(self) -> list[tuple[float, float]]:
        values = array("d")
        values.frombytes(self.points)
        return list(zip(values[0::2], values[1::2], strict=True))


@dataclass(slots=True)
class _Journal:
    """What a batch of decisions replaced, first value only: an event's entry (None: it was not indexed)
    and a source item's event (None: no event had it)."""

    entries: dict[str, _Entry | None] = field(default_factory=dict)
    sources: dict[str, str | None] = field(default_factory=dict)


def _source_key(source: str, source_id: str) -> str:
    return f"{source}\x1f{source_id}"  # one string, not a tuple of two: ~100k of them


def _packed(points: list[tuple[float, float]]) -> bytes:
    return array("d", [value for point in points for value in point]).tobytes()


class EventIndex:
    """Current events by source item and by place, for the normaliser's look-ups.

    Holds each event as its JSON (shared with the event view once the view has it) and the little
    matching needs; events are decoded only when asked for, or when they pass every test of
    `_same_incident` that does not need the whole event.
    """

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}
        self._by_source: dict[str, str] = {}
        self._grid: dict[tuple[int, int], list[str]] = defaultdict(list)
        # the absorbable events alone, by the same cells: a closure's take-in looks only at these (in a dense
        # view most events near a closure are closures, which it never takes in)
        self._absorbable_grid: dict[tuple[int, int], list[str]] = defaultdict(list)
        # the events decoded last: a decision decodes the events near a report, again and again where
        # reports are dense (the decision stage's main cost); records are immutable, so never stale
        self._decoded = Decoded(DECODED_KEPT)
        self._journal: _Journal | None = None  # what a batch changed, while `undo` may still put it back

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, event_id: str) -> Event | None:
        entry = self._entries.get(event_id)
        return self._decoded.get(entry.stored) if entry else None

    def records(self) -> list[Stored]:
        """Every indexed event's record (nothing decoded): what the normaliser has decided so far."""
        return [entry.stored for entry in self._entries.values()]

    def version(self, event_id: str) -> int | None:
        entry = self._entries.get(event_id)
        return entry.stored.version if entry else None

    def by_source(self, source: str, source_id: str) -> Event | None:
        event_id = self._by_source.get(_source_key(source, source_id))
        return self.get(event_id) if event_id else None

    def put(self, event_id: str, event: Event | None, raw: bytes | None = None) -> None:
        """Index `event` (None: forget it); `raw` is its JSON when the caller has it already."""
        if event is None:
            self._forget(event_id)
            return
        self.keep(Stored.of(event_id, event, raw if raw is not None else encode(event)), event)

    def keep(self, stored: Stored, event: Event) -> None:
        """Index `event`, whose record is `stored` (the view's: its bytes are then held once)."""
        self._forget(stored.id)
        # an event merged into another no longer speaks for its sources: their next reports go to the other
        sources = () if event.merged_into else tuple(_source_key(s.source, s.source_id) for s in event.sources)
        points = lonlat_pairs(event.geometry)
        absorbable = (
            event.closure is None and event.merged_into is None and event.normalised is not None
            and any(source.incident is not None for source in event.sources)
        )
        measure = _measure_type(event_measure(event))
        self._insert(_Entry(stored, event.type, _packed(points), sources, absorbable, measure), points)
        self._decoded.keep(stored, event)
        for key in sources:
            self._set_source(key, stored.id)

    def share(self, stored: Stored) -> bool:
        """Hold the view's record instead of ours when both are the same bytes; False when they differ."""
        entry = self._entries.get(stored.id)
        if entry is None or entry.stored.raw != stored.raw:
            return False
        if self._journal is not None:
            self._journal.entries.setdefault(stored.id, entry)
        self._entries[stored.id] = _Entry(
            stored, entry.type, entry.points, entry.sources, entry.absorbable, entry.measure
        )
        return True

    def begin(self) -> None:
        """Remember from now on what each change replaces, until `settle` (written) or `undo` (not written)."""
        self._journal = _Journal()

    def settle(self) -> None:
        """The changes since `begin` stay (their records were written)."""
        self._journal = None

    def undo(self) -> None:
        """Put back every event and source item as they were at `begin`.

        Why: a decision owner that may have been replaced holds a batch back unwritten (normaliser
        `Deciding._hold_back`); its index must then forget those decisions. Dropping the whole index and
        indexing the view again did that too, but cost a decode of every event (seconds at 100,000),
        under the very load that had delayed the heartbeats, so it fed on itself."""
        journal, self._journal = self._journal, None
        if journal is None:
            return
        for event_id, before in journal.entries.items():
            self._forget(event_id, sources=False)
            if before is not None:
                self._insert(before, before.lonlat())
        for key, owner in journal.sources.items():
            if owner is None:
                self._by_source.pop(key, None)
            else:
                self._by_source[key] = owner

    def _insert(self, entry: _Entry, points: list[tuple[float, float]]) -> None:
        event_id = entry.stored.id
        if self._journal is not None:
            self._journal.entries.setdefault(event_id, None)
        self._entries[event_id] = entry
        for cell in _cells(points):
            self._grid[cell].append(event_id)
            if entry.absorbable:
                self._absorbable_grid[cell].append(event_id)

    def _set_source(self, key: str, event_id: str | None) -> None:
        if self._journal is not None and key not in self._journal.sources:
            self._journal.sources[key] = self._by_source.get(key)
        if event_id is None:
            del self._by_source[key]
        else:
            self._by_source[key] = event_id

    def _forget(self, event_id: str, sources: bool = True) -> None:
        entry = self._entries.pop(event_id, None)
        if self._journal is not None:
            self._journal.entries.setdefault(event_id, entry)
        if entry is None:
            return
        for cell in _cells(entry.lonlat()):
            for grid in (self._grid, self._absorbable_grid) if entry.absorbable else (self._grid,):
                ids = grid[cell]
                ids.remove(event_id)
                if not ids:
                    del grid[cell]
        for key in entry.sources if sources else ():
            if self._by_source.get(key) == event_id:  # not a key another event took over since
                self._set_source(key, None)

    def _near(self, points: list[tuple[float, float]], absorbable: bool = False) -> list[str]:
        grid = self._absorbable_grid if absorbable else self._grid
        ids: set[str] = set()
        for cell in _neighbours(_cells(points)):
            ids.update(grid.get(cell, ()))
        return sorted(ids)

    def near(self, points: list[tuple[float, float]]) -> list[Event]:
        """The events with a vertex in the grid cells around `points` (by id)."""
        return [self._decoded.get(self._entries[i].stored) for i in self._near(points)]

    def find(self, report: IncidentReport, placement: Normalised, now: datetime) -> Match | None:
        """The closest current event this report is about, with the reason; None when it is new.

        Nearby events are ranked by what `_same_incident` computes without decoding (the same
        distance, to the bit), then decoded nearest first, ties in id order, until one passes every
        test: the event that a scan of every nearby event, keeping the strictly nearest, chooses.
        """
        points = lonlat_pairs(report.geometry)
        period = _Period.of(report.validity, now)
        kind = _measure_type(report.measure)
        chosen = [
            event_id for event_id in self._near(points)
            if period.may_match((entry := self._entries[event_id]).stored)
            and kinds_match(entry.type, entry.measure, report.type, kind)
        ]
        for _, event_id in self._ranked(points, chosen, NEAR_M):
            event = self._decoded.get(self._entries[event_id].stored)
            reason = _same_incident(event, report, placement, points, now)
            if reason is not None:
                return Match(event, reason[1])
        return None

    def absorbable(self, closure: Event, now: datetime) -> list[Event]:
        """The current incident events near `closure` that it may take in, nearest first, ties in id order.

        Only a pre-selection (by type, time and a distance with a metre to spare): whether the closure
        takes one in is `_same_incident`'s answer, as for a report that arrives after the closure.
        Closures never take in other closures (two teams' works stay two events), nor events an
        operator or a closure already merged into another, nor events with no placed incident report
        (the take-in moves incident reports: there would be nothing to move)."""
        points = lonlat_pairs(closure.geometry)
        period = _Period.of(closure.validity, now)
        kind = _measure_type(event_measure(closure))
        chosen = [
            event_id for event_id in self._near(points, absorbable=True)
            if (entry := self._entries[event_id]).absorbable and period.may_match(entry.stored)
            and kinds_match(entry.type, entry.measure, closure.type, kind)
        ]
        ranked = self._ranked(points, chosen, NEAR_M + 1.0)
        return [self._decoded.get(self._entries[event_id].stored) for _, event_id in ranked]

    def _ranked(self, points: list[tuple[float, float]], ids: list[str], within_m: float) -> list[tuple[float, str]]:
        """(distance, id) of the events `ids` within `within_m` of `points`, nearest first, ties in id order."""
        if not ids:
            return []
        distances = _Metres(points).to_packed([self._entries[event_id].points for event_id in ids])
        return sorted((d, event_id) for d, event_id in zip(distances, ids, strict=True) if d <= within_m)


@dataclass(frozen=True, slots=True)
class _Period:
    """A report's period, and now, as `micros`: to run `_same_incident`'s time tests on records."""

    now: int
    starts: int
    ends: int | None

    @classmethod
    def of(cls, validity: Validity, now: datetime) -> _Period:
        return cls(micros(now), *_span(validity))

    def may_match(self, event: Stored) -> bool:
        """False when `_same_incident` says None: the event is not current, or does not overlap (`_overlap`)."""
        if not event.is_current(self.now):
            return False
        return (event.ends is None or self.starts < event.ends) and (self.ends is None or event.starts < self.ends)


def same_incident(event: Event, report: IncidentReport, placement: Normalised, now: datetime) -> str | None:
    """Why `report` (placed at `placement`) is about `event`; None when it is not."""
    found = _same_incident(event, report, placement, lonlat_pairs(report.geometry), now)
    return found[1] if found else None


def is_current(event: Event, now: datetime) -> bool:
    """`Event.is_current`, with the end time and `now` compared as instants."""
    ends = event.validity.ends_at
    return event.lifecycle is Lifecycle.OPEN and (ends is None or micros(now) < micros(ends))


def _same_incident(
    event: Event, report: IncidentReport, placement: Normalised, points: list[tuple[float, float]], now: datetime
) -> tuple[float, str] | None:
    mine = _measure_type(event_measure(event))
    if not is_current(event, now) or not kinds_match(event.type, mine, report.type, _measure_type(report.measure)):
        return None
    if any(s.source == report.source for s in event.sources if s.active):
        return None  # one source never reports the same incident twice under two ids
    if not _overlap(event.validity, report.validity):
        return None
    distance = distance_m(points, lonlat_pairs(event.geometry))
    if distance > NEAR_M:
        return None
    road = _same_road(event, report, placement)
    if road is None:
        return None
    kind = "an echo of our own closure" if event.closure is not None and report.kind.startswith("waze") else None
    what = f"{mine or event.type.value} and {report.measure.type if report.measure else report.type.value}"
    why = f"{distance:.0f} m apart {road}, {what}, overlapping in time"
    return distance, f"{why}: {kind}" if kind else why


def _overlap(a: Validity, b: Validity) -> bool:
    """The two periods share an instant (compared as instants, see the module's docstring)."""
    (a_start, a_end), (b_start, b_end) = _span(a), _span(b)
    return (a_end is None or b_start < a_end) and (b_end is None or a_start < b_end)


def _span(validity: Validity) -> tuple[int, int | None]:
    """The period as `micros`: start, and end (None: open-ended)."""
    ends = validity.ends_at
    return micros(validity.starts_at), None if ends is None else micros(ends)


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
