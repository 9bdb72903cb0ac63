"""Issue 14 finding 5: commune scope gaps from the 25 m border tolerance, reproduced and closed.

(a) A closure 12 m outside MEL was accepted with `communes: []`, and an empty set passed every scope
check: any road-works team could read, change or delete it. (b) Lille could create a closure lying
wholly inside Villeneuve-d'Ascq (12 m from the border); then Lille got 403 on its own closure and
Villeneuve-d'Ascq could change it. Now one rule (geo.communes.Communes.in_scope) decides creating,
reading, listing, changing and deleting.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.integration.hubs import KEYS, auth, closure_body, running_hub, settings_for, write_principals
from tests.kafkarun import run_name

pytestmark = pytest.mark.kafka

NEAR_COMINES_OUTSIDE_MEL = [[3.014684, 50.772052], [3.014394, 50.772361]]  # 12 m outside the MEL border
IN_VILLENEUVE_NEAR_LILLE = [[3.120924, 50.631002], [3.121101, 50.630567]]  # wholly in 59009, 12 m from Lille
VILLENEUVE = "59009"


@pytest.fixture(scope="module")
def hub(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    principals = write_principals(tmp_path_factory.mktemp("scope"))
    settings = settings_for(kafka_bootstrap, run_name("scope"), principals)
    with running_hub(settings) as client:
        yield client


def line(coordinates: list[list[float]]) -> dict[str, Any]:
    return {"type": "LineString", "coordinates": coordinates}


def every_access(hub: TestClient, cid: str, key: str) -> dict[str, int]:
    url = f"/api/v1/closures/{cid}"
    return {
        "read": hub.get(url, headers=auth(key)).status_code,
        "patch": hub.patch(url, json={"description": "Détournement"}, headers=auth(key)).status_code,
        "put": hub.put(url, json=closure_body("X", description="Détournement"), headers=auth(key)).status_code,
        "delete": hub.delete(url, headers=auth(key)).status_code,
    }


@pytest.mark.parametrize("key", [KEYS.lille, KEYS.mel, KEYS.admin])
def test_a_closure_just_outside_mel_is_422_never_a_closure_of_no_commune(hub: TestClient, key: str) -> None:
    response = hub.post("/api/v1/closures", json=closure_body("OUTSIDE", geometry=line(NEAR_COMINES_OUTSIDE_MEL)),
                        headers=auth(key))
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "geometry"
    preview = hub.post("/api/v1/closures/preview", json=closure_body(geometry=line(NEAR_COMINES_OUTSIDE_MEL)),
                       headers=auth(key))
    assert preview.status_code == 422


def test_lille_cannot_create_a_closure_wholly_in_villeneuve_d_ascq(hub: TestClient) -> None:
    body = closure_body("LILLE-IN-VDA", geometry=line(IN_VILLENEUVE_NEAR_LILLE))
    response = hub.post("/api/v1/closures", json=body, headers=auth(KEYS.lille))
    assert response.status_code == 403, response.text
    assert "Villeneuve" in response.json()["detail"]
    assert hub.get("/api/v1/closures", headers=auth(KEYS.lille)).json()["items"] == []


def test_a_closure_in_villeneuve_d_ascq_is_villeneuve_s_and_never_lille_s(hub: TestClient) -> None:
    created = hub.post("/api/v1/closures", json=closure_body("VDA-BORDER", geometry=line(IN_VILLENEUVE_NEAR_LILLE)),
                       headers=auth(KEYS.villeneuve))
    assert created.status_code == 201, created.text
    closure = created.json()
    assert closure["communes"] == [VILLENEUVE]
    cid = closure["id"]
    assert every_access(hub, cid, KEYS.lille) == {"read": 403, "patch": 403, "put": 403, "delete": 403}
    assert every_access(hub, cid, KEYS.roubaix) == {"read": 403, "patch": 403, "put": 403, "delete": 403}
    assert hub.get("/api/v1/closures", headers=auth(KEYS.lille)).json()["items"] == []
    # the creating team keeps every right on it, by the same rule
    url = f"/api/v1/closures/{cid}"
    assert hub.get(url, headers=auth(KEYS.villeneuve)).status_code == 200
    patched = hub.patch(url, json={"description": "Détournement"}, headers=auth(KEYS.villeneuve))
    assert patched.status_code == 200
    assert [c["id"] for c in hub.get("/api/v1/closures", headers=auth(KEYS.villeneuve)).json()["items"]] == [cid]
    assert hub.delete(url, headers=auth(KEYS.villeneuve)).status_code == 204


def test_a_team_spanning_both_communes_may_act_on_it(hub: TestClient) -> None:
    created = hub.post("/api/v1/closures", json=closure_body("MEL-VDA", geometry=line(IN_VILLENEUVE_NEAR_LILLE)),
                       headers=auth(KEYS.mel))
    assert created.status_code == 201
    assert created.json()["communes"] == [VILLENEUVE]
    url = f"/api/v1/closures/{created.json()['id']}"
    assert hub.get(url, headers=auth(KEYS.villeneuve)).status_code == 200
    assert hub.get(url, headers=auth(KEYS.lille)).status_code == 403
    assert hub.delete(url, headers=auth(KEYS.mel)).status_code == 204
