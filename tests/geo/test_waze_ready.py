"""Splitting matched closures into Waze-ready runs."""

from __future__ import annotations

import numpy as np
import shapely
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from geo.errors import GeoError
from geo.matching import MatchResult, match_line, match_street, unmatched
from geo.waze_ready import MAX_RUN_M, MIN_RUN_M, waze_runs
from tests.geo import cases
from tests.geo.cases import lille


def _decimals(value: float) -> int:
    text = repr(value)
    return len(text.split(".")[1]) if "." in text else 0


def test_one_street_gives_one_run_junction_to_junction() -> None:
    net = lille()
    match = match_street(net, *cases.SOLFERINO)
    runs, withheld = waze_runs(net, match)
    assert withheld == []
    assert len(runs) == 1
    run = runs[0]
    assert run.street == "Rue de Solferino"
    assert run.length_m == match.length_m
    assert run.polyline[0] == match.geometry[0]
    assert run.polyline[-1] == match.geometry[-1]
    assert set(run.edge_ids) == set(match.edge_ids)


def test_a_line_over_two_streets_gives_one_run_per_street() -> None:
    net = lille()
    stretch = match_street(net, *cases.SOLFERINO)
    corner = net.v[net.edge(stretch.path[-1])] if not stretch.against[-1] else net.u[net.edge(stretch.path[-1])]
    onwards = [e for e in np.flatnonzero(net.u == corner) if net.name[e] == "Rue Masséna" and net.length[e] > 50]
    assert onwards
    beyond = net.edge_lonlat(int(onwards[0]))[-1].tolist()
    match = match_line(net, [stretch.geometry[0], stretch.geometry[-1], beyond], direction="ONE_DIRECTION")
    runs, withheld = waze_runs(net, match)
    assert [r.street for r in runs] == ["Rue de Solferino", "Rue Masséna"]
    assert withheld == []
    assert runs[0].polyline[-1] == runs[1].polyline[0]


def test_one_way_drawn_backwards_is_published_in_its_direction() -> None:
    net = lille()
    against = cases.edge_lonlat(net, cases.MOLINEL)[::-1]
    runs, withheld = waze_runs(net, match_line(net, [against[0], against[-1]]))
    assert withheld == []
    assert len(runs) == 1
    assert runs[0].direction == "ONE_DIRECTION"
    assert runs[0].polyline == [(round(x, 7), round(y, 7)) for x, y in cases.edge_lonlat(net, cases.MOLINEL)]
    assert runs[0].edge_ids == (cases.MOLINEL,)


def test_unnamed_and_too_short_pieces_are_withheld_with_reasons() -> None:
    net = lille()
    unnamed = int(np.flatnonzero((net.name == "") & (net.length > 60))[0])
    short = int(np.flatnonzero((net.name != "") & (net.length < 20))[0])
    for edge, word in ((unnamed, "unnamed"), (short, "shorter")):
        match = MatchResult(
            (str(net.edge_ids[edge]),),
            None,
            (),
            None,
            "BOTH_DIRECTIONS",
            [],
            1.0,
            1.0,
            None,
            path=(str(net.edge_ids[edge]),),
            against=(False,),
            covered_m=(float(net.length[edge]),),
        )
        runs, withheld = waze_runs(net, match)
        assert runs == []
        assert len(withheld) == 1
        assert word in withheld[0]


def test_unmatched_closure_is_withheld_with_its_reason() -> None:
    runs, withheld = waze_runs(lille(), unmatched("no drivable road of the network within 40 m"))
    assert runs == []
    assert withheld == ["no drivable road of the network within 40 m"]


@given(a=st.integers(min_value=0, max_value=10_000), b=st.integers(min_value=0, max_value=10_000))
@settings(max_examples=40, deadline=None)
def test_runs_are_waze_ready(a: int, b: int) -> None:
    net = lille()
    xy = cases.route_xy(net, a % net.n_nodes, b % net.n_nodes)
    assume(xy is not None)
    assert xy is not None
    line = net.reprojector.from_metric(cases.sample(xy, 40.0)).tolist()
    try:
        match = match_line(net, line, direction="ONE_DIRECTION")
    except GeoError as err:
        assume(err.code != "self-crossing")
        raise
    runs, withheld = waze_runs(net, match)
    for run in runs:
        assert run.street
        assert MIN_RUN_M <= run.length_m <= MAX_RUN_M
        assert all(_decimals(x) <= 7 and _decimals(y) <= 7 for x, y in run.polyline)
        assert shapely.LineString(run.polyline).length > 0
        edges = [net.edge(e) for e in run.edge_ids]
        assert {str(net.name[e]) for e in edges} == {run.street}
        first = net.edge_lonlat(edges[0])[0]
        assert np.allclose(run.polyline[0], first, atol=1e-7)
        if run.direction == "ONE_DIRECTION":
            assert all(not net.roundabout[e] or net.twin[e] < 0 for e in edges)
    assert all(isinstance(reason, str) and reason for reason in withheld)
