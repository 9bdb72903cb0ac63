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
from geo.network import EdgeLists, RoadNetwork

MIN_RUN_M = 35.0
MAX_RUN_M = 10_000.0
MIN_SPILL_M = 15.0

Hop = tuple[int, bool, float]  # edge row, travelled against its direction, metres covered


@dataclass(frozen=True)
class WazeRun:
    """One Waze CIFS incident's worth of a closure."""

    street: str
    polyline: list[tuple[float, float]]
    length_m: float
    edge_ids: tuple[str, ...]
    direction: Direction


def _hops(net: RoadNetwork, match: MatchResult) -> list[Hop]:
    rows = match.rows or tuple(net.edge(eid) for eid in match.path)
    against = match.against or (False,) * len(rows)
    hops = list(zip(rows, against, match.covered_m, strict=False))
    length = net.lists.length
    lo, hi = 0, len(hops)
    while lo < hi and _spill(length, hops[lo]):
        lo += 1
    while hi > lo and _spill(length, hops[hi - 1]):
        hi -= 1
    return hops[lo:hi]


def _spill(length: list[float], hop: Hop) -> bool:
    edge, _, cover = hop
    return cover < MIN_SPILL_M and cover < 0.5 * length[edge]


def _groups(lists: EdgeLists, hops: list[Hop]) -> list[list[Hop]]:
    """Hops split where the name changes, the path jumps, or one-way and two-way meet."""
    name, twin, u, v = lists.name, lists.twin, lists.u, lists.v
    groups: list[list[Hop]] = []
    end = -1  # node where the previous hop ended
    for hop in hops:
        edge, against, _ = hop
        start, stop = (v[edge], u[edge]) if against else (u[edge], v[edge])
        if groups:
            prev = groups[-1][-1][0]
            if name[prev] == name[edge] and end == start and (twin[prev] < 0) == (twin[edge] < 0):
                groups[-1].append(hop)
                end = stop
                continue
        groups.append([hop])
        end = stop
    return groups


def _split_long(length: list[float], group: list[Hop]) -> list[tuple[list[Hop], float]]:
    """Pieces of at most MAX_RUN_M (cut at junctions), each with its length."""
    pieces: list[tuple[list[Hop], float]] = []
    piece: list[Hop] = []
    total = 0.0
    for hop in group:
        edge_length = length[hop[0]]
        if piece and total + edge_length > MAX_RUN_M:
            pieces.append((piece, total))
            piece, total = [], 0.0
        piece.append(hop)
        total += edge_length
    pieces.append((piece, total))
    return pieces


def _polyline(net: RoadNetwork, piece: list[Hop]) -> list[tuple[float, float]]:
    """Published lon/lat vertices of a run's edges in travel order, repeats dropped."""
    shape = net.shapes.shape
    line: list[tuple[float, float]] = []
    for edge, against, _ in piece:
        points = shape(edge, against).distinct
        line += points[1:] if line and points[0] == line[-1] else points
    return line


def _travel_order(twin: list[int], piece: list[Hop]) -> list[Hop]:
    """A one-way street's run follows the street's own direction."""
    if twin[piece[0][0]] < 0 and piece[0][1]:
        return [(e, False, c) for e, _, c in reversed(piece)]
    return piece


def _run(net: RoadNetwork, piece: list[Hop], length: float, direction: Direction) -> WazeRun:
    lists = net.lists
    twin, ids = lists.twin, lists.edge_ids
    oneway = twin[piece[0][0]] < 0
    edges = [e for e, _, _ in piece]
    if direction == "BOTH_DIRECTIONS" and not oneway:
        edges += [twin[e] for e in edges]
    return WazeRun(
        street=lists.name[piece[0][0]],
        polyline=_polyline(net, piece),
        length_m=round(length, 2),
        edge_ids=tuple([ids[e] for e in edges]),
        direction="ONE_DIRECTION" if oneway else direction,
    )


def _withhold(name: str, length: float) -> str | None:
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
    lists = net.lists
    runs: list[WazeRun] = []
    reasons: list[str] = []
    for group in _groups(lists, _hops(net, match)):
        for piece, length in _split_long(lists.length, group):
            reason = _withhold(lists.name[piece[0][0]], length)
            if reason is None:
                runs.append(_run(net, _travel_order(lists.twin, piece), length, match.direction))
            else:
                reasons.append(reason)
    if not runs and not reasons:
        reasons.append("the closure covers too little of any road to be a Waze incident")
    return runs, reasons
