"""Network build and load, on the bundled real Lille extract."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from geo.build import build_network, oneway_of
from geo.errors import GeoError
from geo.network import RoadNetwork
from tests.geo.cases import lille

DATA = Path(__file__).resolve().parents[2] / "geo" / "data"
SUMO = Path(__file__).resolve().parents[1] / "fixtures" / "sumo" / "lille_ways_directions.csv"


@pytest.fixture(scope="module")
def rebuilt(tmp_path_factory: pytest.TempPathFactory) -> RoadNetwork:
    out = tmp_path_factory.mktemp("net") / "lille.network.arrow"
    stats = build_network(DATA / "lille_centre_2017_roads.osm.pbf", out, progress=False)
    assert stats.edges == 1470
    assert stats.ways == 739
    assert 100.0 < stats.length_km < 125.0
    return RoadNetwork.load(out)


def test_rebuild_reproduces_the_bundled_file(rebuilt: RoadNetwork) -> None:
    bundled = lille()
    assert rebuilt.edge_ids.tolist() == bundled.edge_ids.tolist()
    assert np.allclose(rebuilt.length, bundled.length)
    assert rebuilt.commune.tolist() == bundled.commune.tolist()


def test_edge_ids_are_unique_and_encode_way_and_nodes() -> None:
    net = lille()
    assert len(set(net.edge_ids.tolist())) == net.n_edges
    for i in range(net.n_edges):
        way, u, v = str(net.edge_ids[i]).split(":")[:3]
        assert (int(way), int(u), int(v)) == (net.way_id[i], net.osm_u[i], net.osm_v[i])


def test_twins_are_the_same_piece_reversed() -> None:
    net = lille()
    pairs = np.flatnonzero(net.twin >= 0)
    assert len(pairs) > 600
    for i in pairs.tolist():
        j = int(net.twin[i])
        assert net.twin[j] == i
        assert np.array_equal(net.edge_xy(i)[::-1], net.edge_xy(j))
        assert net.edge_ids[j] == f"{net.way_id[i]}:{net.osm_v[i]}:{net.osm_u[i]}"


def test_geometry_starts_and_ends_at_its_junctions() -> None:
    net = lille()
    starts = net.xy[net.offsets[:-1]]
    ends = net.xy[net.offsets[1:] - 1]
    assert np.allclose(starts, net.node_xy[net.u])
    assert np.allclose(ends, net.node_xy[net.v])
    seg = np.hypot(*np.diff(net.xy, axis=0).T)
    inner = np.ones(len(seg), dtype=bool)
    inner[net.offsets[1:-1] - 1] = False
    assert np.allclose(np.add.reduceat(np.where(inner, seg, 0.0), net.offsets[:-1])[: net.n_edges], net.length)


def test_every_edge_has_a_commune_mostly_lille() -> None:
    net = lille()
    communes = net.commune.tolist()
    assert all(communes)
    assert communes.count("59350") / len(communes) > 0.9


def test_oneway_flags_agree_with_the_independent_sumo_network() -> None:
    net = lille()
    agree = total = 0
    with SUMO.open() as fh:
        for row in csv.DictReader(fh):
            edges = np.flatnonzero(net.way_id == int(row["osm_way_id"]))
            ours_two_way = bool((net.twin[edges] >= 0).any())
            sumo_two_way = row["forward"] == "1" and row["backward"] == "1"
            total += 1
            agree += ours_two_way == sumo_two_way
    assert total > 300
    assert agree / total > 0.85


def test_oneway_tags() -> None:
    assert oneway_of({"highway": "residential", "oneway": "yes"}) == 1  # type: ignore[arg-type]
    assert oneway_of({"highway": "residential", "oneway": "-1"}) == -1  # type: ignore[arg-type]
    assert oneway_of({"highway": "residential", "junction": "roundabout"}) == 1  # type: ignore[arg-type]
    assert oneway_of({"highway": "motorway"}) == 1  # type: ignore[arg-type]
    assert oneway_of({"highway": "motorway", "oneway": "no"}) == 0  # type: ignore[arg-type]
    assert oneway_of({"highway": "residential"}) == 0  # type: ignore[arg-type]


def test_loading_something_else_is_a_clear_error(tmp_path: Path) -> None:
    bogus = tmp_path / "x.arrow"
    import pyarrow as pa
    import pyarrow.feather as feather

    feather.write_feather(pa.table({"a": [1]}), str(bogus))
    with pytest.raises(GeoError) as err:
        RoadNetwork.load(bogus)
    assert err.value.code == "bad-network"


def test_unknown_edge_is_named() -> None:
    with pytest.raises(GeoError, match="nope"):
        lille().edge("nope")
