"""Edge shapes and the lines built from them agree with shapely on the stored geometry; matching
without geometry gives the same results as matching with it."""

from __future__ import annotations

import dataclasses

import numpy as np
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geo import hmm
from geo.edgeshapes import EdgeShapes
from geo.matching import match_lines
from geo.polyline import part_length, part_line
from tests.geo.cases import lille

PROPS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
edges = st.integers(min_value=0, max_value=1469)


@given(edge=edges, reverse=st.booleans())
@PROPS
def test_a_shape_is_its_edge_in_travel_order(edge: int, reverse: bool) -> None:
    net = lille()
    shape = net.shapes.shape(edge, reverse)
    xy = net.edge_xy(edge)[::-1] if reverse else net.edge_xy(edge)
    lonlat = net.lonlat_rounded[net.offsets[edge] : net.offsets[edge + 1]]
    lonlat = lonlat[::-1] if reverse else lonlat
    assert shape.xy[0] == tuple(xy[0])
    assert shape.xy[-1] == tuple(xy[-1])
    assert shape.lonlat[0] == tuple(lonlat[0])
    assert shape.lonlat[-1] == tuple(lonlat[-1])
    assert len(shape.xy) == len(shape.lonlat) == len(shape.cum)
    assert abs(shape.length - shapely.LineString(xy).length) < 1e-6
    assert all(b > a for a, b in zip(shape.cum, shape.cum[1:], strict=False))  # no repeated vertex
    assert all(p != q for p, q in zip(shape.distinct, shape.distinct[1:], strict=False))
    assert set(shape.distinct) <= set(shape.lonlat)


def test_shapes_are_cached_and_the_cache_is_bounded() -> None:
    net = lille()
    shapes = EdgeShapes(net.xy, net.lonlat_rounded, net.lists.offsets, limit=3)
    first = shapes.shape(0, False)
    assert shapes.shape(0, False) is first
    for edge in range(1, 10):
        shapes.shape(edge, True)
    assert shapes.shape(0, False) == first  # rebuilt after the cache was emptied, equal


@given(seed=st.integers(min_value=0, max_value=2**31 - 1), both=st.booleans())
@PROPS
def test_the_road_line_lies_on_the_road_and_has_its_length(seed: int, both: bool) -> None:
    net = lille()
    rng = np.random.default_rng(seed)
    edge = int(rng.integers(net.n_edges))
    along = net.edge_xy(edge)
    layer = net.both_ways if both else net.directed
    line = shapely.LineString(along)
    pts = shapely.get_coordinates(shapely.line_interpolate_point(line, np.linspace(0.1, 0.9, 3), normalized=True))
    pts = pts + rng.normal(0.0, 2.0, pts.shape)
    for part in [p for parts in hmm.match_batch(net, layer, [pts], 40.0, 6) for p in parts]:
        states = hmm.part_states(layer, part)
        road = part_line(net, layer, part, states)
        assert abs(part_length(net, layer, part, states) - road.length) < 1e-9
        if len(road.xy) > 1:
            drawn = shapely.LineString(road.xy)
            assert abs(drawn.length - road.length) < 1e-6 * max(road.length, 1.0) + 1e-6
            network = shapely.union_all(net.geoms[[layer.lists.edge[s] for s in states]])
            assert max(shapely.distance(network, shapely.points(road.xy))) < 1e-6


@given(seed=st.integers(min_value=0, max_value=2**31 - 1))
@PROPS
def test_matching_without_geometry_changes_nothing_else(seed: int) -> None:
    net = lille()
    rng = np.random.default_rng(seed)
    lines = []
    for _ in range(4):
        edge = int(rng.integers(net.n_edges))
        lonlat = net.lonlat[net.offsets[edge] : net.offsets[edge + 1]]
        if len(lonlat) >= 2 and shapely.is_simple(shapely.LineString(lonlat)):
            lines.append(lonlat.tolist())
    directions = ["BOTH_DIRECTIONS" if i % 2 else "ONE_DIRECTION" for i in range(len(lines))]
    full = match_lines(net, lines, directions)  # type: ignore[arg-type]
    lean = match_lines(net, lines, directions, geometry=False)  # type: ignore[arg-type]
    for a, b in zip(full, lean, strict=True):
        if isinstance(a, Exception) or isinstance(b, Exception):
            assert type(a) is type(b)
            continue
        assert dataclasses.replace(b, geometry=a.geometry) == a
        assert b.geometry == [] or len(b.geometry) == len(a.geometry)
