"""Closures placed on the real Lille road network (issue 3 through the API)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.integration.hubs import KEYS, auth, closure_body, running_hub, settings_for, wait_until, write_principals

pytestmark = pytest.mark.kafka


@pytest.fixture
def hub(kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> Iterator[TestClient]:
    with running_hub(settings_for(kafka_bootstrap, topic_prefix, write_principals(tmp_path))) as client:
        yield client


def normalised_closure(hub: TestClient, cid: str, key: str = KEYS.lille) -> dict[str, object]:
    def done() -> bool:
        return hub.get(f"/api/v1/closures/{cid}", headers=auth(key)).json()["normalised"] is not None

    wait_until(done)
    body: dict[str, object] = hub.get(f"/api/v1/closures/{cid}", headers=auth(key)).json()
    return body


def test_street_between_cross_streets_is_resolved_on_the_network(hub: TestClient) -> None:
    names = {"street": "Rue de Solferino", "from_street": "Rue Nationale", "to_street": "Rue Masséna"}
    body = closure_body("LILLE-SOLFERINO", geometry=None, **names)
    created = hub.post("/api/v1/closures", json=body, headers=auth(KEYS.lille))
    assert created.status_code == 201, created.text
    assert len(created.json()["geometry"]["coordinates"]) >= 2
    closure = normalised_closure(hub, created.json()["id"])
    normalised = closure["normalised"]
    assert isinstance(normalised, dict)
    assert normalised["street"] == "Rue de Solferino"
    published = {"status": "published", "reason": None}
    feeds = ("waze", "datex2", "datex2-regulations", "wzdx", "geojson")
    assert closure["publication"] == dict.fromkeys(feeds, published)


@pytest.mark.parametrize(
    ("names", "field"),
    [
        (("Rue Imaginaire", "Rue Nationale", "Rue Masséna"), "street"),
        (("Rue de Solferino", "Rue Imaginaire", "Rue Masséna"), "from_street"),
        (("Rue de Solferino", "Rue Nationale", "Rue Inventée"), "to_street"),
    ],
)
def test_unknown_street_names_are_422_naming_the_field(
    hub: TestClient, names: tuple[str, str, str], field: str
) -> None:
    street, from_street, to_street = names
    body = closure_body("LILLE-X", geometry=None, street=street, from_street=from_street, to_street=to_street)
    response = hub.post("/api/v1/closures", json=body, headers=auth(KEYS.lille))
    assert response.status_code == 422
    assert response.json()["field"] == field


def test_a_place_beyond_the_loaded_network_is_withheld_saying_so_and_how_to_fix_it(hub: TestClient) -> None:
    """A Roubaix closure on a real street (Grand-Rue): the bundled network covers central Lille only.
    The reason used to be "no drivable road of the network within 40 m", which is false."""
    body = closure_body(
        "ROUBAIX-1",
        street="Grand-Rue",
        geometry={"type": "LineString", "coordinates": [[3.1760, 50.6912], [3.1795, 50.6925]]},
    )
    created = hub.post("/api/v1/closures", json=body, headers=auth(KEYS.roubaix))
    assert created.status_code == 201
    closure = normalised_closure(hub, created.json()["id"], KEYS.roubaix)
    normalised = closure["normalised"]
    assert isinstance(normalised, dict)
    assert normalised["matched"] is False
    truth = "the loaded road network does not cover this place (commune Roubaix, 59512)"
    assert str(normalised["reason"]).startswith(truth)
    assert "traffic-hub network build" in str(normalised["reason"])
    assert "within 40 m" not in str(normalised["reason"])
    publication = closure["publication"]
    assert isinstance(publication, dict)
    assert publication["waze"]["status"] == "withheld"
    assert publication["waze"]["reason"].startswith(truth)
    preview = hub.post("/api/v1/closures/preview", json=body, headers=auth(KEYS.roubaix)).json()
    assert preview["withheld"][0].startswith(truth)


def test_off_the_roads_inside_the_network_keeps_the_matching_reason(hub: TestClient) -> None:
    # the lawn of the Jardin Vauban, inside the network's extent: the network does cover the place
    lawn = {"type": "LineString", "coordinates": [[3.04655, 50.63775], [3.04745, 50.63805]]}
    created = hub.post("/api/v1/closures", json=closure_body("LILLE-PARC", geometry=lawn), headers=auth(KEYS.lille))
    assert created.status_code == 201, created.text
    reason = str(normalised_closure(hub, created.json()["id"])["normalised"]["reason"])  # type: ignore[index]
    assert "no drivable road of the network within 40 m" in reason
    assert "does not cover" not in reason


def test_self_crossing_line_is_422(hub: TestClient) -> None:
    loop = [[3.0520, 50.6320], [3.0540, 50.6335], [3.0540, 50.6320], [3.0520, 50.6335]]
    response = hub.post(
        "/api/v1/closures",
        json=closure_body("LILLE-LOOP", geometry={"type": "LineString", "coordinates": loop}),
        headers=auth(KEYS.lille),
    )
    assert response.status_code == 422
    assert "cross" in response.json()["detail"]
