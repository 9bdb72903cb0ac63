"""Where a closure sits on the road: the placement the normaliser attaches to its event.

`Placer` is what the normaliser needs from the geo side; `NetworkPlacer` maps closures and incidents
onto the road network and splits them into Waze-ready runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np

from geo.communes import bundled_names
from geo.errors import GeoError
from geo.matching import MatchResult, decode_openlr, match_line, match_lines, match_point
from geo.network import RoadNetwork
from geo.waze_ready import waze_runs
from traffic_hub.model import ClosureState, Direction, IncidentReport, Normalised, Segment
from traffic_hub.model.geometry import lonlat_pairs


@dataclass(frozen=True)
class Placement:
    normalised: Normalised
    segments: list[Segment] = field(default_factory=list)
    withheld: list[str] = field(default_factory=list)  # why parts could not become single-street segments


class Placer(Protocol):
    def place_closure(self, closure: ClosureState) -> Placement: ...

    def place_closures(self, closures: Sequence[ClosureState]) -> list[Placement]: ...

    def place_incident(self, report: IncidentReport) -> Placement: ...


POINT_NOT_FOR_WAZE = "a point, not a stretch of road: Waze needs a line of 35 m to 10 km"
LOAD_MEL_NETWORK = (
    "load a network that covers MEL: traffic-hub network fetch -o mel.network.arrow (downloads the current "
    "OpenStreetMap extract, keeps the 95 communes; offline: traffic-hub network build EXTRACT.osm.pbf "
    "-o mel.network.arrow), then run the hub with TRAFFIC_HUB_NETWORK=mel.network.arrow"
)


def not_covered(communes: Sequence[str], names: Mapping[str, str]) -> str:
    """The true reason when a place lies beyond the loaded network, and how to fix it."""
    where = ", ".join(f"commune {names.get(code, code)}, {code}" for code in communes)
    return f"the loaded road network does not cover this place{f' ({where})' if where else ''}; {LOAD_MEL_NETWORK}"


class NetworkPlacer:
    """Closures mapped onto the road network, split into Waze-ready single-street runs."""

    def __init__(self, network: RoadNetwork, names: Mapping[str, str] | None = None) -> None:
        self._net = network
        self._names = names if names is not None else bundled_names()

    def place_closure(self, closure: ClosureState) -> Placement:
        if closure.geometry is None:
            return Placement(Normalised(matched=False, confidence=0.0, reason="no geometry"), [], ["no geometry"])
        match = match_lines(self._net, [lonlat_pairs(closure.geometry)], [_direction(closure)], geometry=False)[0]
        return self._placed(closure, match)

    def place_closures(self, closures: Sequence[ClosureState]) -> list[Placement]:
        """:meth:`place_closure` of each closure, in order, with the lines matched all together.

        Why: matching one closure's few vertices is mostly the fixed cost of a few hundred small
        numpy calls, which a batch shares (a Kafka poll brings up to 500 reports). A closure whose
        placement fails in the batch is placed again on its own, where it fails as it would alone."""
        drawn = [i for i, closure in enumerate(closures) if closure.geometry is not None]
        lines = [lonlat_pairs(g) for i in drawn if (g := closures[i].geometry) is not None]
        matches = match_lines(self._net, lines, [_direction(closures[i]) for i in drawn], geometry=False)
        found = dict(zip(drawn, matches, strict=True))
        out: list[Placement] = []
        for i, closure in enumerate(closures):
            match = found.get(i)
            try:
                out.append(self.place_closure(closure) if match is None else self._placed(closure, match))
            except Exception:  # whatever it was, placed alone it fails (or not) as one-by-one would
                out.append(self.place_closure(closure))
        return out

    def _placed(self, closure: ClosureState, match: MatchResult | GeoError) -> Placement:
        if isinstance(match, GeoError) or not match.matched:
            reason = self._beyond(closure) or (
                f"not placed on the road network: {match.reason}" if isinstance(match, GeoError)
                else f"not on the road network ({match.unmatched_reason}); withheld from Waze"
            )
            return Placement(_unmatched(closure, reason), [], [reason])
        segments, withheld = self._segments(match)
        return Placement(_normalised(closure, match), segments, withheld)

    def place_incident(self, report: IncidentReport) -> Placement:
        coords = lonlat_pairs(report.geometry)
        try:
            if report.openlr:
                match, method = decode_openlr(self._net, report.openlr), "openlr"
            elif len(coords) == 1:
                lon, lat = coords[0]
                match, method = match_point(self._net, lon, lat, name=report.street), "point"
            else:
                one_way = report.direction is Direction.ONE_DIRECTION
                match = match_line(self._net, coords, direction="ONE_DIRECTION" if one_way else "BOTH_DIRECTIONS")
                method = "line"
        except GeoError as exc:
            reason = self._beyond_points(coords, []) or f"not placed on the road network: {exc.reason}"
            return Placement(_incident_unmatched(report, reason), [], [reason])
        if not match.matched:
            reason = self._beyond_points(coords, []) or f"not on the road network ({match.unmatched_reason})"
            return Placement(_incident_unmatched(report, reason), [], [reason])
        normalised = _from_match(match, method, None)
        if method == "point":
            return Placement(normalised, [], [POINT_NOT_FOR_WAZE])
        segments, withheld = self._segments(match)
        return Placement(normalised, segments, withheld)

    def _beyond(self, closure: ClosureState) -> str | None:
        """The coverage reason when the closure lies (partly) beyond the loaded network, else None."""
        if closure.geometry is None:
            return None
        return self._beyond_points(lonlat_pairs(closure.geometry), closure.communes)

    def _beyond_points(self, lonlat: Sequence[tuple[float, float]], communes: Sequence[str]) -> str | None:
        if not lonlat or self._net.covers(self._net.reprojector.to_metric(np.asarray(lonlat, dtype=np.float64))):
            return None
        missing = [code for code in communes if code not in self._net.communes_covered]
        return not_covered(missing or communes, self._names)

    def _segments(self, match: MatchResult) -> tuple[list[Segment], list[str]]:
        runs, withheld = waze_runs(self._net, match)
        segments = [
            Segment(street=run.street, coordinates=run.polyline, length_m=run.length_m, edge_ids=list(run.edge_ids))
            for run in runs
        ]
        return segments, withheld


def _direction(closure: ClosureState) -> Literal["ONE_DIRECTION", "BOTH_DIRECTIONS"]:
    return "ONE_DIRECTION" if closure.direction is Direction.ONE_DIRECTION else "BOTH_DIRECTIONS"


def _unmatched(closure: ClosureState, reason: str) -> Normalised:
    return Normalised(
        matched=False,
        street=closure.street,
        commune=closure.communes[0] if closure.communes else None,
        communes=closure.communes,
        direction=closure.direction,
        confidence=0.0,
        reason=reason,
        method="line",
    )


def _normalised(closure: ClosureState, match: MatchResult) -> Normalised:
    return _from_match(match, "line", closure.communes[0] if closure.communes else None, list(closure.communes))


def _from_match(
    match: MatchResult, method: str, fallback_commune: str | None, communes: list[str] | None = None
) -> Normalised:
    return Normalised(
        matched=True,
        street=match.street,
        edge_ids=list(match.edge_ids),
        commune=match.commune or fallback_commune,
        communes=communes if communes is not None else ([match.commune] if match.commune else []),
        direction=Direction(match.direction),
        confidence=round(min(max(match.confidence, 0.0), 1.0), 3),
        matched_share=round(min(max(match.matched_share, 0.0), 1.0), 3),
        reason=match.unmatched_reason,
        method=method,
    )


def _incident_unmatched(report: IncidentReport, reason: str) -> Normalised:
    return Normalised(
        matched=False, street=report.street, direction=report.direction, confidence=0.0, reason=reason, method="none"
    )
