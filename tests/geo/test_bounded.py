"""Routing bounded by the search ball (issue 17): targeted searches agree with scipy's Dijkstra, the
metro-scale layer keeps no rows, and the path cache stays within its byte budget."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pyarrow as pa
import pytest
from scipy.sparse.csgraph import dijkstra

from geo import hmm, routing
from geo.network import RoadNetwork
from geo.pathrows import BoundedRows, DenseRows
from geo.routing import Layer
from loadtests.bench_matching import grid_network, make_traces
from tests.geo.cases import lille


def _grid(side: int) -> RoadNetwork:
    table: pa.Table = grid_network(side)
    return RoadNetwork.from_table(table)


def test_targeted_search_gives_scipy_distances_and_paths_on_a_one_way_city() -> None:
    layer = lille().directed
    rng = np.random.default_rng(17)
    src = rng.integers(0, layer.n_nodes, 600)
    dst = rng.integers(0, layer.n_nodes, 600)
    limit = rng.choice([300.0, 1500.0, 6000.0], 600)
    sources = np.unique(src)
    full = dijkstra(layer.graph, directed=True, indices=sources)
    want = full[np.searchsorted(sources, src), dst]
    want[want > limit] = np.inf
    rows = BoundedRows(layer.graph)
    np.testing.assert_allclose(rows.distances(src, dst, limit), want, rtol=1e-9)
    for a, b in zip(src[:50].tolist(), dst[:50].tolist(), strict=True):
        path = rows.node_path(a, b, 20_000.0)
        d = full[np.searchsorted(sources, a), b]
        if not np.isfinite(d):
            assert path == []
            continue
        assert path[0] == a
        assert path[-1] == b
        hops = sum(float(layer.graph[x, y]) for x, y in itertools.pairwise(path))
        assert hops == pytest.approx(d)


def test_a_path_beyond_the_limit_is_not_returned() -> None:
    layer = lille().directed
    rows = BoundedRows(layer.graph)
    full = dijkstra(layer.graph, directed=True, indices=[0])[0]
    far = int(np.argmax(np.where(np.isfinite(full), full, -1.0)))
    assert rows.node_path(0, far, float(full[far]) - 1.0) == []
    assert rows.node_path(0, far, float(full[far]) + 1.0)[-1] == far
    assert rows.distances(np.asarray([0]), np.asarray([far]), float(full[far]) - 1.0)[0] == np.inf


def test_a_metro_scale_layer_routes_by_targeted_search_and_agrees_with_dense_rows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    net = _grid(30)
    dense = net.directed
    assert isinstance(dense.rows, DenseRows)
    monkeypatch.setattr(routing, "DENSE_MAX_NODES", 100)
    big = Layer.directed(net.u, net.v, net.length, net.n_nodes, net.node_xy)
    assert isinstance(big.rows, BoundedRows)
    assert big.rows.csr.alpha > 0.9  # goal-directed: edge lengths are never shorter than their chords
    rng = np.random.default_rng(5)
    src = rng.integers(0, net.n_nodes, 300)
    dst = rng.integers(0, net.n_nodes, 300)
    np.testing.assert_allclose(big.distances(src, dst), dense.distances(src, dst), rtol=1e-6)
    for a, b in zip(src[:20].tolist(), dst[:20].tolist(), strict=True):
        assert big.state_path(a, b, 6000.0) == dense.state_path(a, b, 6000.0)


def test_the_path_cache_is_an_lru_within_its_byte_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    net = _grid(20)
    layer = Layer.directed(net.u, net.v, net.length, net.n_nodes)
    monkeypatch.setattr(routing, "PATH_CACHE_BYTES", 4_000)
    rng = np.random.default_rng(9)
    pairs = rng.integers(0, net.n_nodes, (200, 2)).tolist()
    for a, b in pairs:
        layer.state_path(a, b, 6000.0)
        assert layer.cache_bytes <= 4_000
    assert layer.cache_bytes > 0
    a, b = pairs[-1]
    assert (a, b) in layer._paths  # the most recent is kept, the oldest went first
    assert (pairs[0][0], pairs[0][1]) not in layer._paths
    layer.forget()
    assert layer.cache_bytes == 0


def test_goal_directed_search_is_exact_and_falls_back_when_an_edge_is_shorter_than_its_chord() -> None:
    net = lille()
    layer = net.directed
    rng = np.random.default_rng(23)
    src = rng.integers(0, layer.n_nodes, 800)
    dst = rng.integers(0, layer.n_nodes, 800)
    limit = rng.choice([300.0, 1500.0, 6000.0], 800)
    sources = np.unique(src)
    want = dijkstra(layer.graph, directed=True, indices=sources)[np.searchsorted(sources, src), dst]
    want[want > limit] = np.inf
    guided = BoundedRows(layer.graph, net.node_xy)
    assert guided.csr.alpha > 0.5
    np.testing.assert_allclose(guided.distances(src, dst, limit), want, rtol=1e-9)
    squeezed = layer.graph.copy()
    squeezed.data = squeezed.data * 0.3  # "lengths" far below the straight distances
    assert BoundedRows(squeezed, net.node_xy).csr.alpha < 0.5  # estimate off: plain Dijkstra


@pytest.mark.parametrize("limit", [None, 60.0])
def test_the_compiled_hmm_matches_like_the_numpy_pass_on_a_one_way_city(
    monkeypatch: pytest.MonkeyPatch, limit: float | None
) -> None:
    """Same layer and rows (targeted search), HMM by the compiled kernel or by the numpy forward
    pass: identical parts, states and offsets, for single traces and batches; with a 60 m route
    limit, across the breaks it causes. (Against dense rows, exact ties may break differently:
    those keep float32 distances.)"""
    net = lille()
    if limit is not None:
        monkeypatch.setattr(hmm, "DEFAULT_LIMIT_M", limit)
        monkeypatch.setattr(hmm, "LIMIT_TIERS", (limit,))
    for base in (net.directed, net.both_ways):
        layer = dataclasses.replace(base, rows=BoundedRows(base.graph, net.node_xy))
        traces = [xy for _, xy in make_traces(net, 25, seed=5)]
        off = np.vstack([traces[3][:3], traces[3][:3] + 5_000.0, traces[3][3:]])  # points off the network
        traces += [np.vstack(traces[:3]), off, traces[4][:1]]
        got = hmm.match_batch(net, layer, traces, 40.0, 6)
        alone = [hmm.match_steps(net, layer, xy, 40.0, 6) for xy in traces[-4:]]
        with monkeypatch.context() as m:
            m.setattr(hmm, "BoundedRows", type("NotBounded", (), {}))  # isinstance fails: the numpy pass
            assert got == hmm.match_batch(net, layer, traces, 40.0, 6)
            assert alone == [hmm.match_steps(net, layer, xy, 40.0, 6) for xy in traces[-4:]]
        assert any(len(parts) > 1 for parts in got) == (limit is not None)
