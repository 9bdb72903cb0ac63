"""Measures end to end against the real broker (issue 18): each type in through /api/v1/measures, out
through the open GeoJSON and CSV with its values, into Waze only when Waze can carry it (else withheld
with a true reason), with the closures' guarantees (idempotency, scope, If-Match) and detour warnings."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import xmlschema
from fastapi.testclient import TestClient
from lxml import etree

from tests.clock import paris_iso
from tests.integration.hubs import KEYS, auth, closure_body, running_hub, settings_for, wait_until, write_principals
from tests.kafkarun import run_name

pytestmark = pytest.mark.kafka

XSD = Path(__file__).resolve().parents[2] / "traffic_hub" / "feeds" / "schemas" / "cifsv2.xsd"
OTHER_LINE = [[3.0561, 50.6301], [3.0509, 50.6279]]  # the contract's example line, Lille centre
HGV_BAN = {"max_weight_t": 3.5, "kinds": ["heavy_goods_vehicle"], "except": ["deliveries", "emergency_services"]}


@pytest.fixture(scope="module")
def hub(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = settings_for(kafka_bootstrap, run_name("measures"), write_principals(tmp_path_factory.mktemp("m")))
    with running_hub(settings) as client:
        yield client


def measure(reference: str, kind: str, **values: Any) -> dict[str, Any]:
    return {**closure_body(reference), "type": kind, **values}


def post(hub: TestClient, body: dict[str, Any], key: str = KEYS.lille) -> Any:
    return hub.post("/api/v1/measures", json=body, headers=auth(key))


def geojson_features(hub: TestClient) -> dict[str, dict[str, Any]]:
    document = hub.get("/feeds/geojson/events.geojson").json()
    return {feature["id"]: feature for feature in document["features"]}


def csv_rows(hub: TestClient) -> dict[str, dict[str, str]]:
    text = hub.get("/feeds/geojson/events.csv").text
    return {row["id"]: row for row in csv.DictReader(io.StringIO(text, newline=""))}


def waze_ids(hub: TestClient) -> list[str]:
    root = etree.fromstring(hub.get("/feeds/waze/cifs.xml", headers=auth(KEYS.partner)).content)
    return [str(node.get("id")) for node in root.iter("incident")]


def test_each_type_goes_in_through_the_api_and_out_through_geojson_csv_and_waze(hub: TestClient) -> None:
    closed = post(hub, measure("M-ROAD", "road_closed"))
    assert closed.status_code == 201, closed.text
    road_id = closed.json()["id"]
    bodies = {
        "lane_closed": measure("M-LANE", "lane_closed", lanes={"closed": 1, "total": 2, "side": "RIGHT"}),
        "alternate_traffic": measure("M-ALT", "alternate_traffic", schedule={
            "daily": ["08:00-17:00"], "except": {"weekends": True, "public_holidays": True}}),
        "no_overtaking": measure("M-NOPASS", "no_overtaking"),
        "speed_limit": measure("M-SPEED", "speed_limit", speed_kmh=30),
        "vehicle_restriction": measure("M-HGV", "vehicle_restriction", vehicles=HGV_BAN),
        "detour": measure("M-DETOUR", "detour", detour_of=road_id,
                          geometry={"type": "LineString", "coordinates": OTHER_LINE}),
    }
    ids = {"road_closed": road_id}
    for kind, body in bodies.items():
        response = post(hub, body)
        assert response.status_code == 201, (kind, response.text)
        assert response.json()["type"] == kind
        assert response.headers["location"] == f"/api/v1/measures/{response.json()['id']}"
        ids[kind] = response.json()["id"]

    wait_until(lambda: set(ids.values()) <= set(geojson_features(hub)), timeout=10)
    features = geojson_features(hub)
    props = {kind: features[i]["properties"] for kind, i in ids.items()}
    assert {kind: p["measure"] for kind, p in props.items()} == {kind: kind for kind in ids}
    assert props["speed_limit"]["speed_kmh"] == 30
    assert props["vehicle_restriction"]["max_weight_t"] == 3.5
    assert props["vehicle_restriction"]["vehicle_kinds"] == "heavy_goods_vehicle"
    assert props["vehicle_restriction"]["vehicles_except"] == "deliveries, emergency_services"
    assert props["detour"]["detour_of"] == road_id
    assert props["lane_closed"]["lanes_closed"] == 1
    assert props["alternate_traffic"]["schedule"].endswith("except weekends, public holidays")
    assert all(feature["geometry"]["type"] == "LineString" for feature in features.values())
    rows = csv_rows(hub)
    assert rows[ids["speed_limit"]]["speed_kmh"] == "30"
    assert rows[ids["vehicle_restriction"]]["max_weight_t"] == "3.5"
    assert rows[ids["detour"]]["measure"] == "detour"

    # Waze carries the closure for all vehicles (and the lane closure as before); the rest, withheld with why
    wait_until(lambda: ids["road_closed"] in waze_ids(hub))
    cifs = hub.get("/feeds/waze/cifs.xml", headers=auth(KEYS.partner)).content
    xmlschema.XMLSchema(str(XSD)).validate(etree.fromstring(cifs))
    carried = waze_ids(hub)
    for kind in ("alternate_traffic", "no_overtaking", "speed_limit", "vehicle_restriction", "detour"):
        assert not any(i.startswith(ids[kind]) for i in carried), kind
    reasons = {kind: publication(hub, ids[kind])["waze"] for kind in bodies}
    assert reasons["speed_limit"] == {"status": "withheld",
                                      "reason": "Waze CIFS cannot carry a 30 km/h speed limit: it takes closures "
                                                "for all vehicles only"}
    assert "a 3.5 t limit" in reasons["vehicle_restriction"]["reason"]
    assert "alternating traffic" in reasons["alternate_traffic"]["reason"]
    assert "detour" in reasons["detour"]["reason"]
    assert publication(hub, ids["speed_limit"])["geojson"]["status"] == "published"


def publication(hub: TestClient, measure_id: str) -> dict[str, Any]:
    def caught_up() -> bool:
        pub = hub.get(f"/api/v1/measures/{measure_id}", headers=auth(KEYS.lille)).json()["publication"]
        return all(p["status"] != "pending" for p in pub.values())

    wait_until(caught_up)
    result: dict[str, Any] = hub.get(f"/api/v1/measures/{measure_id}", headers=auth(KEYS.lille)).json()["publication"]
    return result


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"type": "speed_limit", "speed_kmh": 0}, "speed_kmh"),
        ({"type": "speed_limit", "speed_kmh": 200}, "speed_kmh"),
        ({"type": "speed_limit"}, "speed_kmh"),
        ({"type": "road_closed", "speed_kmh": 30}, "speed_kmh"),
        ({"type": "vehicle_restriction", "vehicles": {"max_weight_t": -3.5}}, "vehicles.max_weight_t"),
        ({"type": "vehicle_restriction", "vehicles": {"kinds": ["spaceship"]}}, "vehicles.kinds.0"),
        ({"type": "vehicle_restriction", "vehicles": {"except": ["residents"]}}, "vehicles"),
        ({"type": "vehicle_restriction"}, "vehicles"),
        ({"type": "lane_closed"}, "lanes"),
        ({"type": "detour"}, "detour_of"),
        ({"type": "detour", "detour_of": "no-such-measure"}, "detour_of"),
        ({"type": "teleport"}, "type"),
        ({"type": "speed_limit", "speed_kmh": 30, "schedule": {"except": {"weekends": True}}}, "schedule"),
    ],
)
def test_bad_values_are_refused_naming_the_field(hub: TestClient, changes: dict[str, Any], field: str) -> None:
    response = post(hub, {**closure_body("M-BAD"), **changes})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["field"] == field
    items = hub.get("/api/v1/measures", headers=auth(KEYS.lille), params={"limit": 500}).json()["items"]
    assert all(item["reference"] != "M-BAD" for item in items)  # nothing written


def test_a_detour_must_go_around_a_closure_the_team_may_see(hub: TestClient) -> None:
    speed = post(hub, measure("M-SPEED-2", "speed_limit", speed_kmh=50)).json()["id"]
    response = post(hub, measure("M-DET-SPEED", "detour", detour_of=speed))
    assert response.status_code == 422
    assert response.json()["field"] == "detour_of"
    assert "speed_limit" in response.json()["detail"]
    lille = post(hub, measure("M-LIL", "road_closed"), key=KEYS.mel).json()["id"]  # MEL's team, in Lille
    in_roubaix = {"type": "LineString", "coordinates": [[3.1800, 50.6900], [3.1830, 50.6910]]}
    refused = post(hub, measure("M-DET-OTHER", "detour", detour_of=lille, geometry=in_roubaix), key=KEYS.roubaix)
    assert refused.status_code == 422, refused.text  # Roubaix's team cannot attach a detour to a Lille closure
    assert refused.json()["field"] == "detour_of"


def test_guarantees_of_closures_hold_for_measures(hub: TestClient) -> None:
    body = measure("M-GUARD", "speed_limit", speed_kmh=30)
    first = post(hub, body)
    again = post(hub, body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    changed = post(hub, {**body, "speed_kmh": 50})
    assert changed.status_code == 409
    assert changed.json()["differences"] == [{"field": "speed_kmh", "current": 30, "posted": 50}]
    mid = first.json()["id"]
    # another commune's team neither reads nor writes it
    assert hub.get(f"/api/v1/measures/{mid}", headers=auth(KEYS.roubaix)).status_code == 403
    assert hub.patch(f"/api/v1/measures/{mid}", json={"speed_kmh": 20}, headers=auth(KEYS.roubaix)).status_code == 403
    # If-Match
    url = f"/api/v1/measures/{mid}"
    stale = hub.patch(url, json={"speed_kmh": 20}, headers={**auth(KEYS.lille), "If-Match": '"9"'})
    assert stale.status_code == 412
    patched = hub.patch(url, json={"speed_kmh": 20}, headers={**auth(KEYS.lille), "If-Match": '"1"'})
    assert patched.status_code == 200, patched.text
    assert (patched.json()["speed_kmh"], patched.headers["etag"]) == (20, '"2"')
    bad = hub.patch(f"/api/v1/measures/{mid}", json={"speed_kmh": 0}, headers=auth(KEYS.lille))
    assert (bad.status_code, bad.json()["field"]) == (422, "speed_kmh")
    # a speed limit is not a closure: the closures API does not show it, nor can it overwrite it
    assert hub.get(f"/api/v1/closures/{mid}", headers=auth(KEYS.lille)).status_code == 404
    assert hub.put(f"/api/v1/closures/{mid}", json=closure_body("M-GUARD"), headers=auth(KEYS.lille)).status_code == 404
    closures = hub.get("/api/v1/closures", headers=auth(KEYS.lille), params={"limit": 500}).json()["items"]
    assert mid not in {c["id"] for c in closures}
    # and a closure is a measure
    cid = hub.post("/api/v1/closures", json=closure_body("M-PLAIN"), headers=auth(KEYS.lille)).json()["id"]
    as_measure = hub.get(f"/api/v1/measures/{cid}", headers=auth(KEYS.lille)).json()
    assert as_measure["type"] == "road_closed"
    assert "type" not in hub.get(f"/api/v1/closures/{cid}", headers=auth(KEYS.lille)).json()
    assert post(hub, {**closure_body("M-PLAIN"), "type": "road_closed"}).status_code == 200  # the same body
    # delete: it leaves the feeds
    wait_until(lambda: mid in geojson_features(hub))
    assert hub.delete(f"/api/v1/measures/{mid}", headers=auth(KEYS.lille)).status_code == 204
    wait_until(lambda: mid not in geojson_features(hub))
    assert hub.get(f"/api/v1/measures/{mid}", headers=auth(KEYS.lille)).json()["status"] == "cancelled"


def test_a_detour_through_a_current_closure_or_a_ban_on_its_vehicles_is_accepted_with_a_warning(
    hub: TestClient,
) -> None:
    around = post(hub, measure("M-AROUND", "road_closed")).json()["id"]
    blocking = post(hub, measure("M-BLOCK", "road_closed", geometry={"type": "LineString", "coordinates": OTHER_LINE}))
    ban = post(hub, measure("M-BAN", "vehicle_restriction", vehicles=HGV_BAN,
                            geometry={"type": "LineString", "coordinates": OTHER_LINE}))
    blocking_id, ban_id = blocking.json()["id"], ban.json()["id"]
    wait_until(lambda: {blocking_id, ban_id} <= set(geojson_features(hub)))
    route = {"type": "LineString", "coordinates": [[3.0575, 50.63068], *OTHER_LINE]}
    lorries = post(hub, measure("M-DET-HGV", "detour", detour_of=around, geometry=route,
                                vehicles={"kinds": ["heavy_goods_vehicle"]}))
    assert lorries.status_code == 201, lorries.text
    warned = {w["message"] for w in lorries.json()["warnings"] if w["code"] == "detour-conflict"}
    assert any(blocking_id in m for m in warned)
    assert any(ban_id in m and "vehicle restriction" in m for m in warned)
    cars = post(hub, measure("M-DET-CAR", "detour", detour_of=around, geometry=route,
                             vehicles={"kinds": ["car"]}, ends_at=paris_iso(20, "18:00")))
    messages = [w["message"] for w in cars.json()["warnings"] if w["code"] == "detour-conflict"]
    assert any(blocking_id in m for m in messages)
    assert not any(ban_id in m for m in messages)  # a lorry ban does not bar a detour for cars
