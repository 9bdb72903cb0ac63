"""Map matching: point, polyline, street + cross streets → edges of the road network.

Every function is pure and deterministic over an immutable :class:`RoadNetwork`; none touches an
event loop, so the service runs them in a thread pool. Results are partial rather than refused:
what could not be matched is reported in ``matched_share`` and ``unmatched_reason``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import shapely

from geo import hmm
from geo import street as st
from geo.arrays import FloatArray
from geo.errors import GeoError
from geo.names import normalise
from geo.network import RoadNetwork
from geo.olr import decode_openlr
from geo.polyline import Polyline, part_length, part_line, states_line
from geo.results import Direction, MatchResult, result_from_states, unmatched
from geo.routing import Layer
from geo.shapes import lines_from_coords

__all__ = [
    "Direction",
    "MatchResult",
    "check_lines",
    "decode_openlr",
    "match_line",
    "match_lines",
    "match_point",
    "match_street",
    "match_trace",
    "match_traces",
    "result_from_states",
    "unmatched",
]

MEL_BBOX = (2.79, 50.49, 3.30, 50.80)
"""Rough lon/lat box of the Métropole Européenne de Lille (to recognise [lat, lon] input)."""
DIVIDED_M = 40.0
"""How far the other carriageway of a divided road is looked for around a point."""
NO_ROAD = "no drivable road of the network within {radius:g} m"


# -------------------------------------------------------------------- polylines
def match_trace(
    net: RoadNetwork,
    xy: FloatArray,
    *,
    direction: Direction = "ONE_DIRECTION",
    radius_m: float = 40.0,
    k: int = 6,
) -> MatchResult:
    """HMM-match points already in network metres (no validation: GPS traces, benchmarks)."""
    return match_traces(net, [xy], direction=direction, radius_m=radius_m, k=k)[0]


def match_traces(
    net: RoadNetwork,
    traces: Sequence[FloatArray],
    *,
    direction: Direction = "ONE_DIRECTION",
    radius_m: float = 40.0,
    k: int = 6,
) -> list[MatchResult]:
    """:func:`match_trace` for many traces at once (one vectorised Viterbi pass per batch)."""
    return _match_batch(net, traces, direction, radius_m, k, drawn=False, geometry=True)


def _match_batch(
    net: RoadNetwork,
    traces: Sequence[FloatArray],
    direction: Direction,
    radius_m: float,
    k: int,
    *,
    drawn: bool,
    geometry: bool,
) -> list[MatchResult]:
    layer = net.directed if direction == "ONE_DIRECTION" else net.both_ways
    found = hmm.match_batch(net, layer, list(traces), radius_m, k)
    return [
        _assemble(net, layer, xy, parts, direction, radius_m, drawn=drawn, geometry=geometry)
        for xy, parts in zip(traces, found, strict=True)
    ]


def _assemble(
    net: RoadNetwork,
    layer: Layer,
    xy: FloatArray,
    parts: list[list[hmm.Step]],
    direction: Direction,
    radius_m: float,
    *,
    drawn: bool = False,
    geometry: bool = True,
) -> MatchResult:
    """The result of one trace's matched parts; with ``drawn``, the confidence also falls with the
    difference between the drawn length and the road length (see :func:`_detour`); without
    ``geometry``, the road line of a one-part match is measured but not built."""
    if not parts:
        return unmatched(NO_ROAD.format(radius=radius_m), direction)
    states: list[int] = []
    lines: list[Polyline] = []
    covered: list[float] = []
    for part in parts:
        part_states = hmm.part_states(layer, part)
        cover = hmm.part_cover(layer, part, part_states)
        if geometry or len(parts) > 1:
            lines.append(part_line(net, layer, part, part_states))
        else:
            lines.append(Polyline([], [], part_length(net, layer, part, part_states)))
        lo, hi = _trim(cover, _end_u_turns(layer, part_states))
        states.extend(part_states[lo:hi])
        covered.extend(cover[lo:hi])
    steps = [s for part in parts for s in part]
    share = len(steps) / len(xy)
    sigma = hmm.SIGMA_M
    fit = math.fsum([math.exp(-0.5 * (dist / sigma) ** 2) for _, _, _, dist in steps]) / len(steps)
    confidence = share * (0.5 + 0.5 * fit) / len(parts)
    reason = None
    if share < 1.0 or len(parts) > 1:
        reason = f"{len(xy) - len(steps)} of {len(xy)} points off the network; matched in {len(parts)} part(s)"
    line = Polyline.join(lines)
    if drawn and states:
        confidence = _detour(round(confidence, 4), round(line.length, 2), xy)
    return result_from_states(
        net,
        layer,
        states,
        line,
        direction,
        share=share,
        confidence=confidence,
        reason=reason,
        covered=covered,
    )


def _trim(cover: list[float], turns: tuple[bool, bool] = (False, False), eps: float = 0.5) -> tuple[int, int]:
    """Drop end states a part only touches at a junction (covered for less than ``eps`` metres), and
    an end state that only turns back onto its neighbour's twin within the HMM's reverse tolerance
    (``turns``: first, last; a point a metre or two past a dead end's end is "moved back a little",
    as on one edge, not "went round and came back": found by the idempotence property, 295 → 1)."""
    lo, hi = 0, len(cover)
    if turns[0] and hi - lo > 1 and cover[lo] <= hmm.REVERSE_TOLERANCE_M:
        lo += 1
    if turns[1] and hi - lo > 1 and cover[hi - 1] <= hmm.REVERSE_TOLERANCE_M:
        hi -= 1
    while hi - lo > 1 and cover[lo] < eps:
        lo += 1
    while hi - lo > 1 and cover[hi - 1] < eps:
        hi -= 1
    return lo, hi


def _end_u_turns(layer: Layer, states: list[int]) -> tuple[bool, bool]:
    """Whether the first (last) state goes back along the second (second to last) one."""
    if len(states) < 2:
        return False, False
    u, v = layer.lists.u, layer.lists.v

    def back(a: int, b: int) -> bool:
        return u[a] == v[b] and v[a] == u[b]

    return back(states[0], states[1]), back(states[-1], states[-2])


def check_lines(net: RoadNetwork, lines: Sequence[Sequence[Sequence[float]]]) -> list[shapely.LineString | GeoError]:
    """Validate lon/lat lines (NaN, too few points, self-crossing, degenerate, lat/lon order): each
    line, or its ``GeoError``."""
    lo_lon, lo_lat, hi_lon, hi_lat = net.bbox_lonlat
    box = (min(lo_lon, MEL_BBOX[0]), min(lo_lat, MEL_BBOX[1]), max(hi_lon, MEL_BBOX[2]), max(hi_lat, MEL_BBOX[3]))
    return lines_from_coords(lines, swapped_in=box)


def match_line(
    net: RoadNetwork,
    coords_lonlat: Sequence[Sequence[float]],
    *,
    direction: Direction = "BOTH_DIRECTIONS",
    radius_m: float = 40.0,
    crs: str = "EPSG:4326",
) -> MatchResult:
    """The sequence of edges a drawn line follows (``ONE_DIRECTION`` follows the point order).

    ``coords_lonlat`` may be given in another CRS (EPSG:2154 Lambert-93, EPSG:3950 CC50) with
    ``crs``. Raises ``GeoError`` for unusable geometry (see :func:`check_lines`)."""
    if crs != "EPSG:4326":
        coords_lonlat = net.reprojector.to_wgs84(coords_lonlat, crs)
    result = match_lines(net, [coords_lonlat], [direction], radius_m=radius_m)[0]
    if isinstance(result, GeoError):
        raise result
    return result


def match_lines(
    net: RoadNetwork,
    lines: Sequence[Sequence[Sequence[float]]],
    directions: Sequence[Direction],
    *,
    radius_m: float = 40.0,
    geometry: bool = True,
) -> list[MatchResult | GeoError]:
    """:func:`match_line` for many lon/lat lines at once, each result (or its ``GeoError``) in order.

    Why: a closure's line has a handful of vertices, so matching it alone is mostly the fixed cost
    of a few hundred small numpy calls; lines matched together share one reprojection, one
    candidate search and one Viterbi pass per direction. Results equal :func:`match_line`'s.
    Without ``geometry``, results leave ``geometry`` empty (unless matched in several parts):
    placing a closure needs its edges and runs, not the road line under it, which is a fifth of
    the cost of a result."""
    out: list[MatchResult | GeoError] = [GeoError("internal", "not matched")] * len(lines)
    valid: list[int] = []
    coords: list[FloatArray] = []
    for i, line in enumerate(check_lines(net, lines)):
        if isinstance(line, GeoError):
            out[i] = line
            continue
        coords.append(shapely.get_coordinates(line))
        valid.append(i)
    if not valid:
        return out
    xy_all = net.reprojector.to_metric(np.vstack(coords) if len(coords) > 1 else coords[0])
    ends = list(itertools.accumulate(len(c) for c in coords))
    xys = {i: xy_all[lo:hi] for i, lo, hi in zip(valid, [0, *ends[:-1]], ends, strict=True)}
    for direction in ("ONE_DIRECTION", "BOTH_DIRECTIONS"):
        mine = [i for i in valid if directions[i] == direction]
        if mine:
            found = _match_batch(net, [xys[i] for i in mine], direction, radius_m, 6, drawn=True, geometry=geometry)
            for i, result in zip(mine, found, strict=True):
                out[i] = result
    return out


def _detour(confidence: float, road_m: float, xy: FloatArray) -> float:
    """``confidence`` lowered for a match whose road length differs from the drawn length."""
    if road_m <= 0:
        return confidence
    drawn = math.fsum(math.dist(a, b) for a, b in itertools.pairwise(xy.tolist()))
    detour = min(drawn, road_m) / max(drawn, road_m)
    return round(confidence * math.sqrt(detour), 4)


def _with(result: MatchResult, **changes: object) -> MatchResult:
    return replace(result, **changes)  # type: ignore[arg-type]


# -------------------------------------------------------------------- points
def _bearing_at(xy: FloatArray, offset: float) -> float:
    cum = hmm.cumlen(xy)
    i = int(np.clip(np.searchsorted(cum, offset, side="right") - 1, 0, len(xy) - 2))
    dx, dy = xy[i + 1] - xy[i]
    return float(np.degrees(np.arctan2(dx, dy)) % 360.0)


def _angle(a: float, b: float) -> float:
    return abs((a - b + 180.0) % 360.0 - 180.0)


def _point_scores(
    net: RoadNetwork, cands: hmm.Candidates, bearings: list[float], bearing: float | None, name: str | None
) -> FloatArray:
    score = cands.dist.copy()
    if bearing is not None:
        score += np.asarray([_angle(b, bearing) for b in bearings]) * 0.5
    if name:
        key = normalise(name)
        score += np.where(net.name_keys[cands.state] == key, 0.0, 15.0)
    return score


def _divided_twin(net: RoadNetwork, cands: hmm.Candidates, bearings: list[float], best: int) -> int | None:
    """The opposite carriageway of a divided road near the point, if any."""
    e = int(cands.state[best])
    if net.twin[e] >= 0:
        return None
    for i in np.argsort(cands.dist):
        o = int(cands.state[i])
        same = net.name_keys[o] == net.name_keys[e] if net.name_keys[e] else net.highway[o] == net.highway[e]
        if o != e and net.twin[o] < 0 and same and _angle(bearings[i], bearings[best]) > 135.0:
            return o
    return None


def match_point(
    net: RoadNetwork,
    lon: float,
    lat: float,
    *,
    bearing: float | None = None,
    name: str | None = None,
    radius_m: float = 30.0,
) -> MatchResult:
    """The edge a point is on; both carriageways when the direction is unknown."""
    if not (np.isfinite(lon) and np.isfinite(lat)):
        raise GeoError("not-finite", "the point has a NaN or infinite coordinate")
    pt = net.reprojector.to_metric(np.asarray([[lon, lat]]))
    layer = net.directed
    cands = hmm.candidates(net, layer, pt, max(radius_m, DIVIDED_M), 8)
    if not (cands.dist <= radius_m).any():
        return unmatched(NO_ROAD.format(radius=radius_m), "ONE_DIRECTION" if bearing is not None else "BOTH_DIRECTIONS")
    bearings = [
        _bearing_at(hmm.state_xy(net, layer, int(s)), float(t)) for s, t in zip(cands.state, cands.offset, strict=True)
    ]
    scores = _point_scores(net, cands, bearings, bearing, name)
    best = int(np.argmin(np.where(cands.dist <= radius_m, scores, np.inf)))
    state, offset = int(cands.state[best]), float(cands.offset[best])
    on_road = hmm.cut(hmm.state_xy(net, layer, state), offset, offset)[:1]
    direction: Direction = "ONE_DIRECTION" if bearing is not None else "BOTH_DIRECTIONS"
    confidence = _point_confidence(cands.dist[best], radius_m)
    result = result_from_states(
        net, layer, [state], on_road, direction, share=1.0, confidence=confidence, covered=[0.0]
    )
    other = _divided_twin(net, cands, bearings, best) if bearing is None else None
    if other is not None:
        result = _with(result, edge_ids=(*result.edge_ids, str(net.edge_ids[other])), direction="BOTH_DIRECTIONS")
    if bearing is not None:
        result = _with(result, edge_ids=(str(net.edge_ids[state]),))
    return result


def _point_confidence(dist: float, radius: float) -> float:
    return max(0.0, 1.0 - float(dist) / (radius * 2.0))


# -------------------------------------------------------------------- street + cross streets
def match_street(
    net: RoadNetwork, street: str, from_street: str, to_street: str, *, commune: str | None = None
) -> MatchResult:
    """The stretch of ``street`` between its junctions with ``from_street`` and ``to_street``.

    Raises ``GeoError`` ``street-not-found`` / ``no-junction`` / ``no-path`` naming the field.
    A one-way street is returned in its own direction (which may run from ``to_street``)."""
    on = st.street_edges(net, street, "street", commune)
    start, exact_a = st.junctions(
        net, on, st.street_edges(net, from_street, "from_street", commune), "from_street", (street, from_street)
    )
    end, exact_b = st.junctions(
        net, on, st.street_edges(net, to_street, "to_street", commune), "to_street", (street, to_street)
    )
    hops = st.path_edges(net, on, st.stretch(net, on, start, end, street))
    if all(against for _, against in hops):
        hops = [(e, False) for e, _ in reversed(hops)]
    layer = net.both_ways
    states = [int(layer.back_state[e]) if against else e for e, against in hops]
    confidence = 1.0 if exact_a and exact_b else 0.8
    line = states_line(net, layer, states)
    return result_from_states(net, layer, states, line, "BOTH_DIRECTIONS", share=1.0, confidence=confidence)

