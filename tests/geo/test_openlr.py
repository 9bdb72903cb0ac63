"""OpenLR line references decoded onto the Lille network (references encoded here with ``openlr``)."""

from __future__ import annotations

import itertools

import numpy as np
import openlr
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from geo import hmm
from geo.errors import GeoError
from geo.matching import decode_openlr, match_street
from geo.network import RoadNetwork
from tests.geo import cases
from tests.geo.cases import lille

FRC = {"primary": 2, "secondary": 3, "tertiary": 4, "residential": 5, "living_street": 6, "service": 7}


def _lrp(
    net: RoadNetwork, xy: np.ndarray, edge: int, dnp: float, *, last: bool = False
) -> openlr.LocationReferencePoint:
    ahead = xy[::-1] if last else xy
    at = hmm.cut(ahead, 0.0, 20.0)
    dx, dy = at[-1] - at[0]
    lon, lat = net.reprojector.from_metric(ahead[:1])[0]
    frc = openlr.FRC(FRC.get(str(net.highway[edge]), 5))
    fow = openlr.FOW.ROUNDABOUT if net.roundabout[edge] else openlr.FOW.SINGLE_CARRIAGEWAY
    return openlr.LocationReferencePoint(
        float(lon), float(lat), frc, fow, float(np.degrees(np.arctan2(dx, dy)) % 360), frc, dnp
    )


def encode(net: RoadNetwork, edge_ids: list[str]) -> str:
    """A two-point OpenLR line reference of a path of edges."""
    edges = [net.edge(e) for e in edge_ids]
    xy = hmm.dedupe(np.vstack([net.edge_xy(e) for e in edges]))
    length = float(hmm.cumlen(xy)[-1])
    first = _lrp(net, xy, edges[0], length)
    last = _lrp(net, xy, edges[-1], 0.0, last=True)
    ref = openlr.LineLocationReference([first, last], 0.0, 0.0)
    encoded: str = openlr.binary_encode(ref)
    return encoded


def test_a_street_stretch_round_trips() -> None:
    net = lille()
    path = list(match_street(net, *cases.SOLFERINO).path)
    result = decode_openlr(net, encode(net, path))
    assert result.matched
    assert result.direction == "ONE_DIRECTION"
    assert result.path == tuple(path)
    assert result.street == "Rue de Solferino"


@given(a=st.integers(min_value=0, max_value=10_000), b=st.integers(min_value=0, max_value=10_000))
@settings(max_examples=30, deadline=None)
def test_decoded_paths_cover_the_encoded_route(a: int, b: int) -> None:
    net = lille()
    states = net.directed.state_path(a % net.n_nodes, b % net.n_nodes, 3000.0)
    assume(len(states) >= 2 and sum(float(net.length[s]) for s in states) > 150)
    path = [str(net.edge_ids[s]) for s in states]
    ref = encode(net, path)
    result = decode_openlr(net, ref)
    if not result.matched:
        assert result.unmatched_reason is not None
        return
    first = openlr.binary_decode(ref).points[0]
    on_road = net.reprojector.to_metric(np.asarray(result.geometry))
    assert float(hmm.cumlen(on_road)[-1]) == pytest.approx(result.length_m, abs=0.05)
    edges = [net.edge(e) for e in result.path]
    assert all(net.v[a] == net.u[b] for a, b in itertools.pairwise(edges))  # one connected path
    assert abs(result.length_m - first.dnp) < 0.35 * first.dnp + 100.0  # the decoder's length tolerance
    assert all(
        net.twin[net.edge(e)] >= 0 or not against for e, against in zip(result.path, result.against, strict=True)
    )


@pytest.mark.parametrize("ref", ["not base64!!", "AAAA", ""])
def test_malformed_reference_is_a_clear_error(ref: str) -> None:
    with pytest.raises(GeoError) as err:
        decode_openlr(lille(), ref)
    assert err.value.code == "bad-openlr"
