"""Catalogue of awkward map-matching cases on the bundled real Lille network (OSM 2017, ODbL).

Every coordinate below was read off the bundled network file; edge ids follow the scheme
``"{way}:{from node}:{to node}"`` documented in :mod:`geo.build`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import numpy.typing as npt
import shapely

from geo import hmm
from geo.network import RoadNetwork

LonLat = tuple[float, float]


@cache
def lille() -> RoadNetwork:
    """The bundled network, loaded once per test session."""
    return RoadNetwork.default().warm()


@dataclass(frozen=True)
class Case:
    """A named awkward situation and what matching must do with it."""

    name: str
    why: str


# Divided boulevard: two one-way carriageways 33 m apart (Avenue du Peuple Belge), with a
# two-way residential lane of the same name between them.
DIVIDED = Case("divided boulevard", "a point on one carriageway, direction unknown → both carriageways")
PEUPLE_BELGE_A = "118086276:10000005214:10000004325"
PEUPLE_BELGE_B = "136675737:10000004275:10000004321"
PEUPLE_BELGE_ON_A: LonLat = (3.0627042, 50.6434401)

# Parallel streets 30 m apart with different names (Square Daubenton / Square du Ramponneau).
PARALLEL = Case("parallel streets", "a trace along one of two close parallel streets stays on it")
DAUBENTON = "86444419:10000004731:10000004785"
RAMPONNEAU = "115202962:10000004799:10000004765"

# One-way street (Rue du Molinel, one carriageway only).
ONE_WAY = Case("one-way street", "a closure drawn against a one-way street is published in its direction")
MOLINEL = "167980923:10000000608:10000000153"

# Roundabout on Rue de Lille (four one-way edges, way 221328251).
ROUNDABOUT = Case("roundabout", "a trace around the roundabout follows it in its own direction")
ROUNDABOUT_EDGES = (
    "221328251:10000003728:10000003697",
    "221328251:10000003697:10000003696",
    "221328251:10000003696:10000003741",
    "221328251:10000003741:10000003728",
)

# A line across a block: Rue de Solferino to Rue Léon Gambetta, straight through the buildings.
ACROSS_BLOCK = Case("line across a block", "matched along streets, with a lower confidence than a line on a street")
SOLFERINO_GAMBETTA = ((3.0533745, 50.6319944), (3.0539409, 50.6291641))

# Street + cross streets.
SOLFERINO = ("Rue de Solférino", "R. Nationale", "rue massena")

REVERSED = Case("reversed point order", "ONE_DIRECTION follows the point order: reversing it gives the twin edges")

CATALOGUE = (DIVIDED, PARALLEL, ONE_WAY, ROUNDABOUT, ACROSS_BLOCK, REVERSED)


def edge_lonlat(net: RoadNetwork, edge_id: str) -> list[LonLat]:
    """Lon/lat vertices of an edge, in its travel order."""
    return [(x, y) for x, y in net.edge_lonlat(net.edge(edge_id)).tolist()]


def route_xy(net: RoadNetwork, a: int, b: int) -> npt.NDArray[np.float64] | None:
    """Metric geometry of the shortest directed route between two junctions (None if none)."""
    states = net.directed.state_path(a, b, 4000.0)
    if not states:
        return None
    xy = np.vstack([hmm.state_xy(net, net.directed, s) for s in states])
    return xy[np.r_[True, np.any(np.abs(np.diff(xy, axis=0)) > 1e-9, axis=1)]]


def sample(xy: npt.NDArray[np.float64], every_m: float) -> npt.NDArray[np.float64]:
    """Points every ``every_m`` metres along a polyline, end included."""
    line = shapely.LineString(xy)
    at = np.r_[np.arange(0.0, line.length, every_m), line.length]
    return shapely.get_coordinates(shapely.line_interpolate_point(line, at))
