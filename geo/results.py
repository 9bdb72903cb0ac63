"""What a match says: the result type every matcher returns, and how one is built from states.

Why its own module: the HMM matcher (:mod:`geo.matching`) and the OpenLR decoder (:mod:`geo.olr`)
both build results from travelled states; with the type here, each imports it and neither imports
the other's internals (the matcher re-exports the OpenLR entry point).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from geo.arrays import FloatArray
from geo.network import RoadNetwork
from geo.polyline import Polyline
from geo.routing import Layer

__all__ = ["Direction", "MatchResult", "result_from_states", "unmatched"]

Direction = Literal["ONE_DIRECTION", "BOTH_DIRECTIONS"]


@dataclass(frozen=True)
class MatchResult:
    """Where an input geometry lies on the road network.

    ``path`` lists the edges travelled, in travel order (``against[i]`` is true when a one-way
    edge was travelled against its direction, possible only for ``BOTH_DIRECTIONS``);
    ``edge_ids`` lists every directed edge affected (the path, then the opposite carriageway of
    each piece when ``BOTH_DIRECTIONS``). ``geometry`` is lon/lat on the road, in travel order
    (empty when it was not asked for, see :func:`match_lines`).
    ``covered_m[i]`` is how much of path edge ``i`` the input actually covers (partial at the
    ends of a drawn line, whole in between).
    """

    edge_ids: tuple[str, ...]
    street: str | None
    streets: tuple[str, ...]
    commune: str | None
    direction: Direction
    geometry: list[tuple[float, float]]
    matched_share: float
    confidence: float
    unmatched_reason: str | None
    path: tuple[str, ...] = ()
    against: tuple[bool, ...] = ()
    covered_m: tuple[float, ...] = ()
    length_m: float = 0.0
    rows: tuple[int, ...] = field(default=(), compare=False, repr=False)
    """Network rows of ``path`` (empty when the result was built from edge ids only)."""

    @property
    def matched(self) -> bool:
        """True when at least part of the input was matched."""
        return bool(self.edge_ids)


def unmatched(reason: str, direction: Direction = "BOTH_DIRECTIONS") -> MatchResult:
    """A result for input that lies on no road of the network."""
    return MatchResult((), None, (), None, direction, [], 0.0, 0.0, reason)


def _by_length(values: Sequence[str], lengths: Sequence[float]) -> str | None:
    weight: dict[str, float] = {}
    for value, length in zip(values, lengths, strict=True):
        if value:
            weight[value] = weight.get(value, 0.0) + length
    if len(weight) <= 1:
        return next(iter(weight), None)
    return max(sorted(weight), key=weight.__getitem__)


def _unique(values: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys([v for v in values if v]))


def _length(xy: FloatArray | Polyline) -> float:
    if isinstance(xy, Polyline):
        return round(xy.length, 2)
    return round(float(np.hypot(np.diff(xy[:, 0]), np.diff(xy[:, 1])).sum()), 2) if len(xy) > 1 else 0.0


def _lonlat(net: RoadNetwork, xy: FloatArray) -> list[tuple[float, float]]:
    ll = np.round(net.reprojector.from_metric(xy), 7)
    return list(zip(ll[:, 0].tolist(), ll[:, 1].tolist(), strict=True))


def result_from_states(
    net: RoadNetwork,
    layer: Layer,
    states: Sequence[int],
    xy: FloatArray | Polyline,
    direction: Direction,
    *,
    share: float,
    confidence: float,
    reason: str | None = None,
    covered: Sequence[float] | None = None,
) -> MatchResult:
    """Assemble a :class:`MatchResult` from travelled states and their road geometry (metres, or a
    :class:`Polyline` that already carries its lon/lat)."""
    lists, state_edge, state_reverse = net.lists, layer.lists.edge, layer.lists.reverse
    twin, ids = lists.twin, lists.edge_ids
    edges = [state_edge[s] for s in states]
    against = tuple([state_reverse[s] for s in states])
    twins = [twin[e] for e in edges]
    if not any(against) and max(twins, default=-1) < 0:
        direction = "ONE_DIRECTION"
    affected = list(dict.fromkeys(edges))
    if direction == "BOTH_DIRECTIONS":
        affected = list(dict.fromkeys(affected + [t for t in twins if t >= 0]))
    length, name = lists.length, lists.name
    lengths = [length[e] for e in edges]
    names = [name[e] for e in edges]
    commune = lists.commune
    return MatchResult(
        edge_ids=tuple([ids[e] for e in affected]),
        street=_by_length(names, lengths),
        streets=_unique(names),
        commune=_by_length([commune[e] for e in edges], lengths),
        direction=direction,
        geometry=xy.lonlat if isinstance(xy, Polyline) else _lonlat(net, xy),
        matched_share=round(share, 4),
        confidence=round(confidence, 4),
        unmatched_reason=reason,
        path=tuple([ids[e] for e in edges]),
        against=against,
        covered_m=tuple(covered) if covered is not None else tuple(lengths),
        length_m=_length(xy),
        rows=tuple(edges),
    )
