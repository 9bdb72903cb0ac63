"""The compiled matcher (geo/compiled.py) equals the numpy matcher it replaces on the hot path: same
candidates (order, offsets, distances), same HMM parts on the bench's recorded traces, for both
routing layers, alone and in batches, across breaks; the dense table is scipy's, bounded like the
HMM's longest route; and without numba the layer falls back to the numpy matcher."""

from __future__ import annotations

import dataclasses
import logging
import sys

import numpy as np
import pytest
from scipy.sparse.csgraph import dijkstra

from geo import hmm, pathrows
from geo.arrays import FloatArray
from geo.matching import Direction, match_lines, match_trace
from geo.network import RoadNetwork
from geo.pathrows import DEFAULT_LIMIT_M, DenseRows
from geo.routing import Layer
from loadtests.bench_matching import grid_network, make_closures, make_traces
from tests.geo.cases import lille


def _numpy(layer: Layer) -> Layer:
    """The same layer matched by the numpy reference (no kernels)."""
    return dataclasses.replace(layer, rows=DenseRows(layer.graph, compiled=False))


def _traces(net: RoadNetwork, seed: int) -> list[FloatArray]:
    traces = [xy for _, xy in make_traces(net, 20, seed=seed)]
    off = np.vstack([traces[3][:3], traces[3][:3] + 5_000.0, traces[3][3:]])  # points off the network
    return [*traces, np.vstack(traces[:3]), off, traces[4][:1]]


def _same_candidates(a: hmm.Candidates, b: hmm.Candidates) -> None:
    for name in ("point", "state", "offset", "dist"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


@pytest.mark.parametrize(("radius", "k"), [(5.0, 6), (40.0, 6), (40.0, 1), (30.0, 8), (100.0, 6)])
def test_compiled_candidates_equal_the_numpy_search_on_lille(radius: float, k: int) -> None:
    net = lille()
    rng = np.random.default_rng(int(radius) * 10 + k)
    lo, hi = net.xy.min(axis=0) - 100.0, net.xy.max(axis=0) + 100.0
    pts = np.vstack([rng.uniform(lo, hi, (400, 2)), *_traces(net, 3)])
    for layer in (net.directed, net.both_ways):
        assert layer.rows.kernels is not None
        _same_candidates(hmm.candidates(net, layer, pts, radius, k), hmm.candidates_numpy(net, layer, pts, radius, k))


def test_compiled_candidates_equal_the_numpy_search_on_a_metro_scale_layer(monkeypatch: pytest.MonkeyPatch) -> None:
    net = RoadNetwork.from_table(grid_network(40))
    monkeypatch.setattr(pathrows, "DENSE_MAX_NODES", 100)
    monkeypatch.setattr("geo.routing.DENSE_MAX_NODES", 100)
    layer = Layer.directed(net.u, net.v, net.length, net.n_nodes, net.node_xy)
    assert layer.rows.kernels is not None
    pts = np.vstack(_traces(net, 4))
    _same_candidates(hmm.candidates(net, layer, pts, 40.0, 6), hmm.candidates_numpy(net, layer, pts, 40.0, 6))


@pytest.mark.parametrize("limit", [None, 60.0])
def test_the_table_hmm_matches_like_the_numpy_pass_on_recorded_traces(
    monkeypatch: pytest.MonkeyPatch, limit: float | None
) -> None:
    """Identical parts, states and offsets, for single traces and batches; with a 60 m route limit,
    across the breaks it causes."""
    net = lille()
    if limit is not None:
        monkeypatch.setattr(hmm, "DEFAULT_LIMIT_M", limit)
        monkeypatch.setattr(hmm, "LIMIT_TIERS", (limit,))
    traces = _traces(net, 5)
    for layer in (net.directed, net.both_ways):
        reference = _numpy(layer)
        got = hmm.match_batch(net, layer, traces, 40.0, 6)
        assert got == hmm.match_batch(net, reference, traces, 40.0, 6)
        alone = [hmm.match_steps(net, layer, xy, 40.0, 6) for xy in traces]
        assert alone == [hmm.match_steps(net, reference, xy, 40.0, 6) for xy in traces]
        assert any(len(parts) > 1 for parts in got) == (limit is not None)


def test_results_equal_the_numpy_matcher_for_traces_and_closures(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whole results (edges, geometry, confidence): traces one way, drawn closures both ways."""
    net = lille()
    traces = _traces(net, 8)
    closures = make_closures(net, 30, seed=9)
    directions: list[Direction] = ["ONE_DIRECTION", "BOTH_DIRECTIONS"] * 15
    compiled = [match_trace(net, xy) for xy in traces], match_lines(net, closures, directions)
    monkeypatch.setitem(net.__dict__, "directed", _numpy(net.directed))  # the cached layers, for this test
    monkeypatch.setitem(net.__dict__, "both_ways", _numpy(net.both_ways))
    assert net.directed.rows.kernels is None
    reference = [match_trace(net, xy) for xy in traces], match_lines(net, closures, directions)
    assert compiled == reference


def test_the_dense_table_is_scipys_up_to_the_longest_route_the_hmm_asks_for() -> None:
    assert pathrows.TABLE_LIMIT_M >= hmm.MAX_ROUTE_M
    layer = lille().directed
    assert isinstance(layer.rows, DenseRows)
    want = dijkstra(layer.graph, directed=True, limit=pathrows.TABLE_LIMIT_M).astype(np.float32)
    np.testing.assert_array_equal(layer.rows.table, want)


def test_without_numba_a_layer_matches_with_numpy(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "geo.compiled", None)  # `import geo.compiled` raises ImportError
    net = lille()
    with caplog.at_level(logging.WARNING, logger="geo.pathrows"):
        layer = Layer.directed(net.u, net.v, net.length, net.n_nodes, net.node_xy)
    assert layer.rows.kernels is None
    assert "compiled matcher unavailable" in caplog.text
    xy = make_traces(net, 1, seed=11)[0][1]
    assert hmm.match_steps(net, layer, xy, 40.0, 6) == hmm.match_steps(net, net.directed, xy, 40.0, 6)


def test_compiled_groups_equal_the_numpy_layout() -> None:
    """The groups the metro-scale kernel walks (geo/bounded.py), laid out compiled or in numpy."""
    net = lille()
    traces = _traces(net, 6)
    pts = np.vstack(traces)
    trace_of = np.repeat(np.arange(len(traces)), [len(t) for t in traces])
    c = hmm.candidates(net, net.directed, pts, 40.0, 6)
    tiers = np.asarray(hmm.LIMIT_TIERS)
    kernels = net.directed.rows.kernels
    assert kernels is not None
    got = kernels.groups(c.point, trace_of, pts, tiers, DEFAULT_LIMIT_M / 3, DEFAULT_LIMIT_M)
    for mine, theirs in zip(got, hmm._groups_numpy(c, pts, trace_of, tiers), strict=True):
        np.testing.assert_array_equal(mine, theirs)
