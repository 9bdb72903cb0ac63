"""The reason an item is withheld is true: beyond the loaded road network, say so (not "no road here")."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from geo.network import RoadNetwork
from traffic_hub.model import ClosureState, EventType, IncidentReport, LineString, Validity
from traffic_hub.normaliser.placement import NetworkPlacer

NOW = datetime.now(UTC)
ROUBAIX_GRAND_RUE = [[3.1760, 50.6912], [3.1795, 50.6925]]
VAUBAN_LAWN = [[3.04655, 50.63775], [3.04745, 50.63805]]  # inside central Lille's network, off the roads


@pytest.fixture(scope="module")
def network() -> RoadNetwork:
    return RoadNetwork.default().warm()


def closure(coordinates: list[list[float]], communes: list[str]) -> ClosureState:
    return ClosureState.model_validate({
        "id": "c1", "reference": "R", "owner": "t", "owner_communes": communes, "communes": communes,
        "description": "Travaux", "geometry": {"type": "LineString", "coordinates": coordinates},
        "starts_at": NOW, "ends_at": NOW + timedelta(days=1), "version": 1, "created_at": NOW, "updated_at": NOW,
    })


def test_the_network_knows_where_it_has_roads(network: RoadNetwork) -> None:
    metric = network.reprojector.to_metric
    assert not network.covers(metric(np.array(ROUBAIX_GRAND_RUE)))
    assert network.covers(metric(np.array(VAUBAN_LAWN)))
    assert "59350" in network.communes_covered
    assert "59512" not in network.communes_covered


def test_a_closure_beyond_the_network_names_the_commune_and_the_fix(network: RoadNetwork) -> None:
    placement = NetworkPlacer(network).place_closure(closure(ROUBAIX_GRAND_RUE, ["59512"]))
    (reason,) = placement.withheld
    assert reason.startswith("the loaded road network does not cover this place (commune Roubaix, 59512); ")
    assert "traffic-hub network build" in reason
    assert "TRAFFIC_HUB_NETWORK" in reason
    assert placement.normalised.reason == reason


def test_off_the_roads_inside_the_network_keeps_the_matching_reason(network: RoadNetwork) -> None:
    placement = NetworkPlacer(network).place_closure(closure(VAUBAN_LAWN, ["59350"]))
    assert "within 40 m" in placement.withheld[0]
    both = [closure(ROUBAIX_GRAND_RUE, ["59512"]), closure(VAUBAN_LAWN, ["59350"])]
    batch = NetworkPlacer(network).place_closures(both)
    assert "does not cover" in batch[0].withheld[0]
    assert "within 40 m" in batch[1].withheld[0]


def test_an_incident_beyond_the_network_says_so_too(network: RoadNetwork) -> None:
    report = IncidentReport(
        source="waze-mel", kind="waze-jam", source_id="j1", type=EventType.JAM, description="Bouchon",
        geometry=LineString(type="LineString", coordinates=ROUBAIX_GRAND_RUE), validity=Validity(starts_at=NOW),
    )
    placement = NetworkPlacer(network).place_incident(report)
    assert placement.withheld[0].startswith("the loaded road network does not cover this place; ")
