"""Street + from_street + to_street → the stretch of that street between the two junctions."""

from __future__ import annotations

import itertools

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from geo.arrays import IntArray
from geo.errors import GeoError
from geo.names import core, normalise
from geo.network import RoadNetwork

NEAR_JUNCTION_M = 30.0


def street_edges(net: RoadNetwork, name: str, field: str, commune: str | None) -> IntArray:
    """Edges carrying ``name`` (normalised, then without its type word); GeoError naming ``field``."""
    if not normalise(name):
        raise GeoError("street-not-found", f"{field} is blank")
    mask = net.name_keys == normalise(name)
    if not mask.any():
        mask = net.core_keys == core(name)
    if commune is not None:
        mask &= net.commune == commune
    if not mask.any():
        where = f" in commune {commune}" if commune is not None else ""
        raise GeoError("street-not-found", f"{field} {name!r} is not on the road network{where}")
    return np.flatnonzero(mask).astype(np.int64)


def _nodes(net: RoadNetwork, edges: IntArray) -> IntArray:
    return np.unique(np.concatenate([net.u[edges], net.v[edges]]))


def junctions(
    net: RoadNetwork, street: IntArray, cross: IntArray, field: str, names: tuple[str, str]
) -> tuple[IntArray, bool]:
    """Nodes where the cross street meets the street (exact, else the nearest within 30 m)."""
    on_street, on_cross = _nodes(net, street), _nodes(net, cross)
    shared = np.intersect1d(on_street, on_cross)
    if len(shared):
        return shared, True
    gap = np.hypot(*(net.node_xy[on_street][:, None, :] - net.node_xy[on_cross][None, :, :]).transpose(2, 0, 1))
    best = np.unravel_index(int(np.argmin(gap)), gap.shape)
    if gap[best] > NEAR_JUNCTION_M:
        raise GeoError("no-junction", f"{field} {names[1]!r} does not meet street {names[0]!r}")
    return on_street[[best[0]]], False


def _graph(net: RoadNetwork, edges: IntArray) -> csr_matrix:
    a = np.concatenate([net.u[edges], net.v[edges]])
    b = np.concatenate([net.v[edges], net.u[edges]])
    w = np.concatenate([net.length[edges], net.length[edges]])
    order = np.lexsort((w, b, a))
    first = np.r_[True, (a[order][1:] != a[order][:-1]) | (b[order][1:] != b[order][:-1])]
    keep = order[first]
    return csr_matrix((np.maximum(w[keep], 0.01), (a[keep], b[keep])), shape=(net.n_nodes, net.n_nodes))


def stretch(net: RoadNetwork, edges: IntArray, start: IntArray, end: IntArray, street: str) -> list[int]:
    """Junctions along the street from the best start junction to the best end junction."""
    dist, pred = dijkstra(_graph(net, edges), directed=True, indices=start, return_predecessors=True)
    sub = dist[:, end]
    sub[start[:, None] == end[None, :]] = np.inf
    i, j = np.unravel_index(int(np.argmin(sub)), sub.shape)
    if not np.isfinite(sub[i, j]):
        raise GeoError("no-path", f"the two cross streets are not connected along street {street!r}")
    node, path = int(end[j]), [int(end[j])]
    while node != int(start[i]):
        node = int(pred[i, node])
        path.append(node)
    return path[::-1]


def path_edges(net: RoadNetwork, edges: IntArray, nodes: list[int]) -> list[tuple[int, bool]]:
    """(edge, travelled against its direction) for each hop of a junction path."""
    by_pair: dict[tuple[int, int], int] = {}
    for e in sorted(edges.tolist(), key=lambda e: float(net.length[e])):
        by_pair.setdefault((int(net.u[e]), int(net.v[e])), e)
    hops: list[tuple[int, bool]] = []
    for a, b in itertools.pairwise(nodes):
        forward = by_pair.get((a, b))
        hops.append((forward, False) if forward is not None else (by_pair[(b, a)], True))
    return hops
