"""The report stream of the normaliser equivalence test, and the canonical form its events are compared in.

Two parts, each cut into phases (the test waits for the normalisers to be idle between phases):

- The recorded Lille samples (Waze partner feed, CIFS, DATEX II, WZDx, polled twice) and the team's
  closure on Rue Nationale in two versions, as `tests/test_conflation_order.py` builds them; moved in
  time so that their reception is a few minutes ago (`shifted`), since real processes read the clock.
- A generated stream dense in near-duplicates: at each of `SITES` places on the network, one incident
  reported once by each of four sources (Waze, DATEX II, WZDx, CIFS) a few metres apart, every report
  of one incident on another partition of the reports topic; road works that a team's closure then
  takes in; crashes that every source ends (and one source reopens, for half of them); hazards that
  one source ends.

Why phases: which events exist must not depend on the interleaving of partitions, or 1 and 3
normalisers could differ for no fault of theirs. Within a phase every outcome is independent of the
order of arrival (one report per source and incident; sites far apart; a closure comes after the
reports it takes in; an end after its report). `tests/test_equivalence_stream.py` checks that premise
in-process over random interleavings.
"""

from __future__ import annotations

import json
import math
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import shapely

from geo.network import RoadNetwork
from tests.connectors.sources import RECEIVED
from tests.test_conflation_order import POLLS, closure, closure_item, incident_item
from traffic_hub.model import Event, EventType, IncidentReport, Point, Validity
from traffic_hub.model.geometry import LineString, lonlat_pairs

PARTITIONS = 6  # of the reports topic: the four reports of one incident land on four of them
SITES = 24
# (source, kind) of the four sources of every generated incident, strongest word first
SOURCES = (
    ("datex-mel", "datex2-record"),
    ("cifs-mel", "cifs"),
    ("wzdx-mel", "wzdx-feature"),
    ("waze-mel", "waze-alert"),
)
SAMPLES_AT = (3.049, 3.064, 50.630, 50.636)  # lon/lat box of the Lille samples: generated sites keep away
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")


@dataclass(frozen=True)
class Item:
    """One report to write: its key, its bytes, the partition it goes to."""

    key: str
    raw: bytes
    partition: int


Phase = list[Item]


def phases(network: RoadNetwork, now: datetime) -> list[Phase]:
    """The whole stream, phase by phase, as of `now` (the real clock when the test starts)."""
    lille = _lille(now)
    generated = _generated(network, now)
    return [a + b for a, b in zip(lille, generated, strict=True)]


# --- the Lille samples ----------------------------------------------------------------------------


def _lille(now: datetime) -> list[Phase]:
    """Poll 0 (A); the closure's first version (B); poll 1 and the closure's second version (C); nothing (D)."""
    shift = now - (RECEIVED + timedelta(minutes=5))  # as the order test's clock: five minutes after reception
    first_poll, closure_versions, second_poll = [], [], []
    for sequence in POLLS:
        items = [Item(key, shifted(raw, shift), _hashed(key)) for key, raw in sequence]
        if b'"kind":"closure"' in sequence[0][1]:
            closure_versions = items
        else:
            first_poll.append(items[0])
            second_poll.extend(items[1:])
    return [first_poll, closure_versions[:1], second_poll + closure_versions[1:], []]


def shifted(raw: bytes, by: timedelta) -> bytes:
    """The report with every date and time in it moved by `by` (the source's own fields too)."""
    return json.dumps(_shift(json.loads(raw), by), ensure_ascii=False).encode()


def _shift(value: Any, by: timedelta) -> Any:
    if isinstance(value, dict):
        return {k: _shift(v, by) for k, v in value.items()}
    if isinstance(value, list):
        return [_shift(v, by) for v in value]
    if isinstance(value, str) and _ISO.match(value):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value
        return (moment + by).isoformat() if moment.tzinfo is not None else value
    return value


def _hashed(key: str) -> int:
    return zlib.crc32(key.encode()) % PARTITIONS  # one key, one partition: its reports stay in order


# --- the generated stream -------------------------------------------------------------------------


@dataclass(frozen=True)
class Site:
    number: int
    street: str
    points: list[tuple[float, float]]  # lon/lat along one edge, middle first

    @property
    def kind(self) -> str:
        return ("works", "crash", "hazard")[self.number % 3]


def sites(network: RoadNetwork, count: int = SITES) -> list[Site]:
    """`count` named edges of 100 m or more, 300 m apart at least, away from the Lille samples."""
    chosen: list[Site] = []
    mids: list[tuple[float, float]] = []
    for edge in np.argsort(-network.length, kind="stable"):
        name = network.name[edge]
        start, end = network.offsets[edge], network.offsets[edge + 1]
        lonlat = [(float(x), float(y)) for x, y in network.lonlat[start:end]]
        xy = network.xy[start:end]
        if not name or network.length[edge] < 100 or len(lonlat) < 2:
            continue
        points = _around(network, xy)
        middle = points[0]
        if SAMPLES_AT[0] <= middle[0] <= SAMPLES_AT[1] and SAMPLES_AT[2] <= middle[1] <= SAMPLES_AT[3]:
            continue
        mid_xy = shapely.line_interpolate_point(shapely.LineString(xy), 0.5, normalized=True)
        if any(math.dist((mid_xy.x, mid_xy.y), other) < 300 for other in mids):
            continue
        mids.append((mid_xy.x, mid_xy.y))
        chosen.append(Site(len(chosen), str(name), points))
        if len(chosen) == count:
            return chosen
    raise AssertionError(f"only {len(chosen)} sites on the network")


def _around(network: RoadNetwork, xy: Any) -> list[tuple[float, float]]:
    """Four points along the edge, 8 m apart, around its middle (38 m from either end at least)."""
    line = shapely.LineString(np.asarray(xy, dtype=np.float64))
    half = line.length / 2
    metric = shapely.get_coordinates(shapely.line_interpolate_point(line, [half - 12, half - 4, half + 4, half + 12]))
    return [(float(lon), float(lat)) for lon, lat in network.reprojector.from_metric(metric)]


def _generated(network: RoadNetwork, now: datetime) -> list[Phase]:
    found = sites(network)
    a, b, c, d = [], [], [], []
    for site in found:
        for j in range(len(SOURCES)):
            partition = (site.number + j) % PARTITIONS  # one incident's reports on four partitions
            a.append(_report(site, j, now, partition, received=now - timedelta(minutes=4)))
            ends = site.kind == "crash" or (site.kind == "hazard" and SOURCES[j][0] == "waze-mel")
            if ends:
                c.append(_report(site, j, now, partition, received=now - timedelta(minutes=2), ended=True))
        if site.kind == "crash" and site.number % 2:  # DATEX II says it again: the event opens again
            d.append(_report(site, 0, now, site.number % PARTITIONS, received=now - timedelta(minutes=1)))
        if site.kind == "works":
            b.append(_closure(site, now))
    return [a, b, c, d]


def _report(site: Site, j: int, now: datetime, partition: int, received: datetime, ended: bool = False) -> Item:
    source, kind = SOURCES[j]
    works = site.kind == "works"
    kinds = {
        "works": EventType.CLOSURE if source == "waze-mel" else EventType.ROADWORKS,
        "crash": EventType.ACCIDENT,
        "hazard": EventType.HAZARD if j % 2 else EventType.ACCIDENT,
    }
    point = site.points[j]
    geometry = (
        LineString(type="LineString", coordinates=[list(site.points[1]), list(site.points[2])])
        if kind == "wzdx-feature"
        else Point(type="Point", coordinates=list(point))
    )
    incident = IncidentReport(
        source=source,
        kind=kind,
        source_id=f"EQ-{site.number}-{source}",
        type=kinds[site.kind],
        subtype="ROAD_CLOSED_CONSTRUCTION" if works and source == "waze-mel" else None,
        description=f"{site.kind} on {site.street} ({source})",
        geometry=geometry,
        street=site.street,
        validity=Validity(starts_at=now - timedelta(minutes=30), ends_at=now + timedelta(hours=3) if works else None),
        ended=ended,
        observed_at=received,
    )
    key, raw = incident_item(incident, received)
    return Item(key, raw, partition)


def _closure(site: Site, now: datetime) -> Item:
    line = [list(p) for p in site.points]
    state = closure(line, now - timedelta(hours=1), now + timedelta(days=5), street=site.street,
                    id=f"eq-closure-{site.number}", reference=f"EQ-{site.number}")  # fmt: skip
    key, raw = closure_item(state, now - timedelta(minutes=3))
    return Item(key, raw, site.number % PARTITIONS)


# --- comparing events, ids aside ------------------------------------------------------------------


def canonical(events: dict[str, Event]) -> list[str]:
    """The events as partners and operators see them, ids and times of writing aside, sorted.

    An event merged into another names the other by its canonical form. Reasons for matching are
    left out: the first report of an incident has none and the others one, whichever came first."""
    return sorted(_form(event, events, 0) for event in events.values())


def _form(event: Event, events: dict[str, Event], depth: int) -> str:
    into = events.get(event.merged_into) if event.merged_into else None
    body = {
        "type": event.type.value,
        "subtype": event.subtype,
        "description": event.description,
        "street": event.street,
        "commune": event.commune,
        "lifecycle": event.lifecycle.value,
        "verification": event.verification,
        "ended_by": event.ended_by,
        "geometry": [[round(x, 6), round(y, 6)] for x, y in lonlat_pairs(event.geometry)],
        "validity": [event.validity.starts_at.isoformat(), str(event.validity.ends_at)],
        "sources": sorted([s.source, s.source_id, s.kind, s.active] for s in event.sources),
        "closure": [event.closure.reference, event.closure.version] if event.closure else None,
        "normalised": [event.normalised.street, sorted(event.normalised.edge_ids)] if event.normalised else None,
        "segments": len(event.segments),
        "merged_into": (_form(into, events, depth + 1) if into and depth < 3 else event.merged_into and "?"),
    }
    return json.dumps(body, sort_keys=True, ensure_ascii=False)


def last_values(records: Iterator[tuple[bytes, bytes | None]]) -> dict[str, Event]:
    """The events topic as compaction leaves it: each key's last value, tombstones removing it."""
    out: dict[str, Event] = {}
    for key, value in records:
        if value is None:
            out.pop(key.decode(), None)
        else:
            out[key.decode()] = Event.model_validate_json(value)
    return out
