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
    assert closure["publication"] == {"waze": published, "datex2": published, "wzdx": published, "geojson": published}


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


def test_inside_mel_but_off_the_network_is_accepted_unmatched_and_withheld_from_waze(hub: TestClient) -> None:
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
    assert "road network" in str(normalised["reason"])
    publication = closure["publication"]
    assert isinstance(publication, dict)
    assert publication["waze"]["status"] == "withheld"
    assert "road network" in publication["waze"]["reason"]


def test_self_crossing_line_is_422(hub: TestClient) -> None:
    loop = [[3.0520, 50.6320], [3.0540, 50.6335], [3.0540, 50.6320], [3.0520, 50.6335]]
    response = hub.post(
        "/api/v1/closures",
        json=closure_body("LILLE-LOOP", geometry={"type": "LineString", "coordinates": loop}),
        headers=auth(KEYS.lille),
    )
    assert response.status_code == 422
    assert "cross" in response.json()["detail"]
