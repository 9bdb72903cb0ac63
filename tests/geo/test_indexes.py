"""The matcher's fast indexes agree with the slow, obvious answers (shapely, plain Dijkstra)."""

from __future__ import annotations

import numpy as np
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.sparse.csgraph import dijkstra

from geo.pathrows import DenseRows, SparseRows
from tests.geo.cases import lille

PROPS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@given(
    x=st.floats(min_value=-200.0, max_value=3200.0),
    y=st.floats(min_value=-200.0, max_value=3200.0),
    radius=st.sampled_from([10.0, 40.0, 75.0]),
)
@PROPS
def test_the_segment_grid_finds_what_shapely_finds(x: float, y: float, radius: float) -> None:
    net = lille()
    lo = net.xy.min(axis=0)
    pts = np.asarray([[lo[0] + x, lo[1] + y], [lo[0] + y, lo[1] + x]])
    near = net.grid.query(pts, radius)
    for i in range(len(pts)):
        point = shapely.Point(pts[i])
        hits = net.segments[net.tree.query(point, predicate="dwithin", distance=radius)]
        mine = near.point == i
        assert sorted(near.edge[mine].tolist()) == sorted(hits.tolist())
        lines = net.geoms[near.edge[mine]]
        dist = np.asarray(shapely.distance(lines, point), dtype=np.float64)
        offset = np.asarray(shapely.line_locate_point(lines, point), dtype=np.float64)
        np.testing.assert_allclose(near.dist[mine], dist, atol=1e-6)
        np.testing.assert_allclose(near.offset[mine], offset, atol=1e-6)
        assert np.all(np.diff(near.dist[mine]) >= 0)


def test_dense_and_sparse_rows_give_scipy_distances() -> None:
    layer = lille().directed
    rng = np.random.default_rng(3)
    src = rng.integers(0, layer.n_nodes, 400)
    dst = rng.integers(0, layer.n_nodes, 400)
    limit = np.where(rng.random(400) < 0.5, 1500.0, 3000.0)
    sources = np.unique(src)
    full = dijkstra(layer.graph, directed=True, indices=sources)
    want = full[np.searchsorted(sources, src), dst]
    want[want > limit] = np.inf
    for rows in (DenseRows(layer.graph), SparseRows(layer.graph)):
        np.testing.assert_allclose(rows.distances(src, dst, limit), want, rtol=1e-6)
        a, b = int(src[0]), int(dst[0])
        path = rows.node_path(a, b, 20_000.0)
        if np.isfinite(full[np.searchsorted(sources, a), b]) and a != b:
            assert path[0] == a
            assert path[-1] == b
