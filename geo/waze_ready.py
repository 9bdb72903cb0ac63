"""Split a matched closure into Waze-ready runs: one street name, junction to junction, 35 m–10 km.

A run is a chain of whole edges (a closure of part of a block closes the block between its
junctions) carrying one street name, in travel direction; a one-way street's run always follows
the street's own direction. Whatever cannot be made Waze-ready is returned as a reason and
withheld from the Waze feed only (the other feeds still carry the closure).

Rules, in order:
* edges the input covers for less than :data:`MIN_SPILL_M` (and less than half of the edge) at
  either end of the path are noise at a junction and are dropped;
* runs break where the name changes, where the path is not continuous, and where a street
  switches between one-way and two-way;
* unnamed roads, runs shorter than :data:`MIN_RUN_M`, and single edges longer than
  :data:`MAX_RUN_M` are withheld; longer runs are cut at junctions into pieces ≤ :data:`MAX_RUN_M`.
"""

from __future__ import annotations

from dataclasses import dataclass

from geo.matching import Direction, MatchResult
from geo.network import RoadNetwork

MIN_RUN_M = 35.0
MAX_RUN_M = 10_000.0
MIN_SPILL_M = 15.0

Hop = tuple[int, bool, float]  # edge, travelled against its direction, metres covered


@dataclass(frozen=True)
class WazeRun:
    """One Waze CIFS incident's worth of a closure."""

    street: str
    polyline: list[tuple[float, float]]
    length_m: float
    edge_ids: tuple[str, ...]
    direction: Direction


@dataclass(frozen=True)
class _Edges:
    """The attributes of a closure's path edges (and their twins) as plain dicts: a handful of
    edges, where Python lookups are faster than numpy element access."""

    name: dict[int, str]
    length: dict[int, float]
    twin: dict[int, int]
    ends: dict[int, tuple[int, int]]
    span: dict[int, range]  # vertex rows
    ids: dict[int, str]  # edge ids, twins included

    @classmethod
    def of(cls, net: RoadNetwork, edges: list[int]) -> _Edges:
        lists = net.lists
        twins = [lists.twin[e] for e in edges]
        ids = edges + [t for t in twins if t >= 0]
        return cls(
            {e: lists.name[e] for e in edges},
            {e: lists.length[e] for e in edges},
            dict(zip(edges, twins, strict=True)),
            {e: (lists.u[e], lists.v[e]) for e in edges},
            {e: range(lists.offsets[e], lists.offsets[e + 1]) for e in edges},
            {e: lists.edge_ids[e] for e in ids},
        )


def _hops(net: RoadNetwork, match: MatchResult) -> tuple[list[Hop], _Edges]:
    hops = [
        (net.edge(eid), against, cover)
        for eid, against, cover in zip(
            match.path, match.against or (False,) * len(match.path), match.covered_m, strict=False
        )
    ]
    info = _Edges.of(net, [e for e, _, _ in hops])
    lo, hi = 0, len(hops)
    while lo < hi and _spill(info, hops[lo]):
        lo += 1
    while hi > lo and _spill(info, hops[hi - 1]):
        hi -= 1
    return hops[lo:hi], info


def _spill(info: _Edges, hop: Hop) -> bool:
    edge, _, cover = hop
    return cover < MIN_SPILL_M and cover < 0.5 * info.length[edge]


def _ends(info: _Edges, hop: Hop) -> tuple[int, int]:
    edge, against, _ = hop
    a, b = info.ends[edge]
    return (b, a) if against else (a, b)


def _groups(info: _Edges, hops: list[Hop]) -> list[list[Hop]]:
    groups: list[list[Hop]] = []
    for hop in hops:
        if groups:
            prev = groups[-1][-1]
            same = (
                info.name[prev[0]] == info.name[hop[0]]
                and _ends(info, prev)[1] == _ends(info, hop)[0]
                and (info.twin[prev[0]] < 0) == (info.twin[hop[0]] < 0)
            )
            if same:
                groups[-1].append(hop)
                continue
        groups.append([hop])
    return groups


def _split_long(info: _Edges, group: list[Hop]) -> list[list[Hop]]:
    pieces: list[list[Hop]] = [[]]
    total = 0.0
    for hop in group:
        length = info.length[hop[0]]
        if pieces[-1] and total + length > MAX_RUN_M:
            pieces.append([])
            total = 0.0
        pieces[-1].append(hop)
        total += length
    return pieces


def _polylines(net: RoadNetwork, info: _Edges, groups: list[list[Hop]]) -> list[list[tuple[float, float]]]:
    """Stored lon/lat vertices of each run's edges in travel order, rounded, repeats dropped."""
    points = net.lonlat_points
    out: list[list[tuple[float, float]]] = []
    for group in groups:
        line: list[tuple[float, float]] = []
        for e, against, _ in group:
            span = info.span[e]
            vertices = points[span.start : span.stop]
            for point in reversed(vertices) if against else vertices:
                if not line or point != line[-1]:
                    line.append(point)
        out.append(line)
    return out


def _travel_order(info: _Edges, group: list[Hop]) -> list[Hop]:
    """A one-way street's run follows the street's own direction."""
    if info.twin[group[0][0]] < 0 and group[0][1]:
        return [(e, False, c) for e, _, c in reversed(group)]
    return group


def _run(info: _Edges, group: list[Hop], polyline: list[tuple[float, float]], direction: Direction) -> WazeRun:
    oneway = info.twin[group[0][0]] < 0
    edges = [e for e, _, _ in group]
    if direction == "BOTH_DIRECTIONS" and not oneway:
        edges += [info.twin[e] for e in edges]
    return WazeRun(
        street=info.name[group[0][0]],
        polyline=polyline,
        length_m=round(sum(info.length[e] for e, _, _ in group), 2),
        edge_ids=tuple(info.ids[e] for e in edges),
        direction="ONE_DIRECTION" if oneway else direction,
    )


def _withhold(info: _Edges, group: list[Hop]) -> str | None:
    name = info.name[group[0][0]]
    length = sum(info.length[e] for e, _, _ in group)
    if not name:
        return f"{length:.0f} m of unnamed road: a Waze closure needs a street name"
    if length < MIN_RUN_M:
        return f"the run on {name} is {length:.0f} m long, shorter than Waze's {MIN_RUN_M:.0f} m minimum"
    if length > MAX_RUN_M:
        return f"a single piece of {name} is {length / 1000:.1f} km long, over Waze's {MAX_RUN_M / 1000:.0f} km maximum"
    return None


def waze_runs(net: RoadNetwork, match: MatchResult) -> tuple[list[WazeRun], list[str]]:
    """Waze-ready runs of a matched closure, and the reasons for whatever was withheld."""
    if not match.path:
        return [], [match.unmatched_reason or "the closure is not on the road network"]
    pieces: list[list[Hop]] = []
    reasons: list[str] = []
    hops, info = _hops(net, match)
    for group in _groups(info, hops):
        for piece in _split_long(info, group):
            reason = _withhold(info, piece)
            if reason is None:
                pieces.append(_travel_order(info, piece))
            else:
                reasons.append(reason)
    lines = _polylines(net, info, pieces)
    runs = [_run(info, piece, line, match.direction) for piece, line in zip(pieces, lines, strict=True)]
    if not runs and not reasons:
        reasons.append("the closure covers too little of any road to be a Waze incident")
    return runs, reasons
