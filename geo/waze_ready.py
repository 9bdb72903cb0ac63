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

import numpy as np

from geo.hmm import dedupe
from geo.matching import Direction, MatchResult
from geo.network import RoadNetwork

MIN_RUN_M = 35.0
MAX_RUN_M = 10_000.0
MIN_SPILL_M = 15.0
DECIMALS = 7

Hop = tuple[int, bool, float]  # edge, travelled against its direction, metres covered


@dataclass(frozen=True)
class WazeRun:
    """One Waze CIFS incident's worth of a closure."""

    street: str
    polyline: list[tuple[float, float]]
    length_m: float
    edge_ids: tuple[str, ...]
    direction: Direction


def _hops(net: RoadNetwork, match: MatchResult) -> list[Hop]:
    hops = [
        (net.edge(eid), against, cover)
        for eid, against, cover in zip(
            match.path, match.against or (False,) * len(match.path), match.covered_m, strict=False
        )
    ]
    while hops and _spill(net, hops[0]):
        hops = hops[1:]
    while hops and _spill(net, hops[-1]):
        hops = hops[:-1]
    return hops


def _spill(net: RoadNetwork, hop: Hop) -> bool:
    edge, _, cover = hop
    return cover < MIN_SPILL_M and cover < 0.5 * float(net.length[edge])


def _ends(net: RoadNetwork, hop: Hop) -> tuple[int, int]:
    edge, against, _ = hop
    a, b = int(net.u[edge]), int(net.v[edge])
    return (b, a) if against else (a, b)


def _groups(net: RoadNetwork, hops: list[Hop]) -> list[list[Hop]]:
    groups: list[list[Hop]] = []
    for hop in hops:
        if groups:
            prev = groups[-1][-1]
            same = (
                net.name[prev[0]] == net.name[hop[0]]
                and _ends(net, prev)[1] == _ends(net, hop)[0]
                and (net.twin[prev[0]] < 0) == (net.twin[hop[0]] < 0)
            )
            if same:
                groups[-1].append(hop)
                continue
        groups.append([hop])
    return groups


def _split_long(net: RoadNetwork, group: list[Hop]) -> list[list[Hop]]:
    pieces: list[list[Hop]] = [[]]
    total = 0.0
    for hop in group:
        length = float(net.length[hop[0]])
        if pieces[-1] and total + length > MAX_RUN_M:
            pieces.append([])
            total = 0.0
        pieces[-1].append(hop)
        total += length
    return pieces


def _polyline(net: RoadNetwork, group: list[Hop]) -> list[tuple[float, float]]:
    parts = [net.edge_lonlat(e)[::-1] if against else net.edge_lonlat(e) for e, against, _ in group]
    rounded = np.asarray(np.round(np.vstack(parts), DECIMALS), dtype=np.float64)
    ll = dedupe(rounded, eps=0.0)
    return [(x, y) for x, y in ll.tolist()]


def _run(net: RoadNetwork, group: list[Hop], direction: Direction) -> WazeRun:
    oneway = bool(net.twin[group[0][0]] < 0)
    if oneway and group[0][1]:
        group = [(e, False, c) for e, _, c in reversed(group)]
    edges = [e for e, _, _ in group]
    if direction == "BOTH_DIRECTIONS" and not oneway:
        edges += [int(net.twin[e]) for e in edges]
    return WazeRun(
        street=str(net.name[group[0][0]]),
        polyline=_polyline(net, group),
        length_m=round(float(sum(net.length[e] for e, _, _ in group)), 2),
        edge_ids=tuple(str(net.edge_ids[e]) for e in edges),
        direction="ONE_DIRECTION" if oneway else direction,
    )


def _withhold(net: RoadNetwork, group: list[Hop]) -> str | None:
    name = str(net.name[group[0][0]])
    length = float(sum(net.length[e] for e, _, _ in group))
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
    runs: list[WazeRun] = []
    reasons: list[str] = []
    for group in _groups(net, _hops(net, match)):
        for piece in _split_long(net, group):
            reason = _withhold(net, piece)
            if reason is None:
                runs.append(_run(net, piece, match.direction))
            else:
                reasons.append(reason)
    if not runs and not reasons:
        reasons.append("the closure covers too little of any road to be a Waze incident")
    return runs, reasons
