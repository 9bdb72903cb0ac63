"""Every role × every route × in and out of the commune: who may do what (contract §2).

The policy table below must name every route the application has: a new route without a policy
fails this test instead of being silently open.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.integration.hubs import KEYS, auth, closure_body, running_hub, settings_for, wait_until, write_principals
from tests.kafkarun import run_name

pytestmark = pytest.mark.kafka

ROADWORKS, PARTNER, OPERATOR, ADMIN = "roadworks", "partner", "operator", "admin"
WRITE = {ROADWORKS, ADMIN}
READ_CLOSURES = {ROADWORKS, OPERATOR, ADMIN}
OPS = {OPERATOR, ADMIN}
FEEDS = {PARTNER, OPERATOR, ADMIN}
EVERYONE = {ROADWORKS, PARTNER, OPERATOR, ADMIN}
PUBLIC = None

POLICY: dict[tuple[str, str], set[str] | None] = {
    ("POST", "/api/v1/closures"): WRITE,
    ("POST", "/api/v1/closures/preview"): WRITE,
    ("GET", "/api/v1/closures"): READ_CLOSURES,
    ("GET", "/api/v1/closures/{closure_id}"): READ_CLOSURES,
    ("PUT", "/api/v1/closures/{closure_id}"): WRITE,
    ("PATCH", "/api/v1/closures/{closure_id}"): WRITE,
    ("DELETE", "/api/v1/closures/{closure_id}"): WRITE,
    ("POST", "/api/v1/measures"): WRITE,
    ("GET", "/api/v1/measures"): READ_CLOSURES,
    ("GET", "/api/v1/measures/{measure_id}"): READ_CLOSURES,
    ("PUT", "/api/v1/measures/{measure_id}"): WRITE,
    ("PATCH", "/api/v1/measures/{measure_id}"): WRITE,
    ("DELETE", "/api/v1/measures/{measure_id}"): WRITE,
    ("GET", "/api/v1/events"): OPS,
    ("GET", "/api/v1/events/{event_id}"): OPS,
    ("POST", "/api/v1/events/{event_id}/actions"): OPS,
    ("GET", "/api/v1/events/stream"): FEEDS,
    ("GET", "/api/v1/connectors"): OPS,
    ("GET", "/api/v1/whoami"): EVERYONE,
    ("GET", "/feeds/waze/cifs.xml"): FEEDS,
    ("GET", "/feeds/waze/cifs.json"): FEEDS,
    ("GET", "/feeds/datex2/v3/situations.xml"): FEEDS,
    ("GET", "/feeds/datex2/v3/regulations.xml"): FEEDS,
    ("GET", "/feeds/datex2/v2/situations.xml"): FEEDS,
    ("GET", "/feeds/wzdx/v4.2/workzones.geojson"): FEEDS,
    ("GET", "/feeds/geojson/events.geojson"): PUBLIC,
    ("GET", "/feeds/geojson/events.csv"): PUBLIC,
    ("GET", "/api/v1/network.geojson"): PUBLIC,
    ("GET", "/api/v1/communes.geojson"): PUBLIC,
    ("GET", "/map"): PUBLIC,
    ("GET", "/map/"): PUBLIC,
    ("GET", "/map/config.json"): PUBLIC,
    ("GET", "/map/static/{name}"): PUBLIC,
    ("GET", "/map/vendor/{name}"): PUBLIC,
    ("GET", "/map/fonts/{stack}/{name}"): PUBLIC,
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    ("GET", "/api/v1/closures/{closure_id}/history"): READ_CLOSURES,
    ("GET", "/api/v1/measures/{measure_id}/history"): READ_CLOSURES,
    ("GET", "/api/v1/events/{event_id}/history"): OPS,
    ("GET", "/api/v1/history/events"): OPS,
    ("GET", "/feeds/opendata/history/index.json"): PUBLIC,
    ("GET", "/feeds/opendata/history/{name}"): PUBLIC,
    ("GET", "/metrics"): {ADMIN},  # Prometheus scrapes the loopback listener (issue 14, finding 10)
    # analytics (issue 19): a team's scope is checked against the archive (tests/archive/test_analytics_api.py)
    ("GET", "/api/v1/analytics/incidents"): READ_CLOSURES,
    ("GET", "/api/v1/analytics/durations"): READ_CLOSURES,
    ("GET", "/api/v1/analytics/jams"): OPS,
    ("GET", "/api/v1/analytics/closures/impact"): READ_CLOSURES,
    ("GET", "/api/v1/analytics/closures/{closure_id}/impact"): READ_CLOSURES,
    ("GET", "/api/v1/analytics/closures/{closure_id}/reality-check"): READ_CLOSURES,
    ("GET", "/api/v1/analytics/reality-check"): READ_CLOSURES,
}
CALLERS = {ROADWORKS: KEYS.lille, PARTNER: KEYS.partner, OPERATOR: KEYS.operator, ADMIN: KEYS.admin}


@pytest.fixture(scope="module")
def world(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, str]]:
    tmp = tmp_path_factory.mktemp("auth")
    settings = settings_for(kafka_bootstrap, run_name("auth"), write_principals(tmp))
    with running_hub(settings) as hub:
        cid = hub.post("/api/v1/closures", json=closure_body("AUTH-1"), headers=auth(KEYS.lille)).json()["id"]
        wait_until(lambda: hub.get(f"/api/v1/events/{cid}", headers=auth(KEYS.admin)).status_code == 200)
        yield hub, cid


def app_routes(hub: TestClient) -> set[tuple[str, str]]:
    out: set[tuple[str, str]] = set()
    app: FastAPI = hub.app  # type: ignore[assignment]
    routes = list(app.routes)
    while routes:
        route = routes.pop()
        included = getattr(route, "original_router", None)  # FastAPI keeps included routers whole
        if included is not None:
            routes.extend(included.routes)
            continue
        methods: set[str] = getattr(route, "methods", None) or set()
        out |= {(method, getattr(route, "path", "")) for method in methods if method != "HEAD"}
    return {r for r in out if not r[1].startswith("/docs") and r[1] not in ("/openapi.json", "/redoc")}


def call(hub: TestClient, method: str, path: str, cid: str, key: str | None) -> int:
    url = path.replace("{closure_id}", cid).replace("{event_id}", cid).replace("{name}", "app.js")
    url = url.replace("{measure_id}", cid)  # a closure is a measure
    headers = auth(key) if key else {}
    body: dict[str, Any] | None = None
    if method in ("POST", "PUT"):
        body = closure_body("AUTH-1") | ({"type": "road_closed"} if "/measures" in path else {})
    if method == "PATCH":
        body = {"description": "Travaux"}
    if path.endswith("/actions"):
        body = {"action": "confirm"}
    if path.endswith("/stream"):
        with hub.stream(method, url, headers=headers) as response:
            return response.status_code
    return hub.request(method, url, headers=headers, json=body).status_code


def test_every_route_has_a_policy(world: tuple[TestClient, str]) -> None:
    hub, _ = world
    assert app_routes(hub) == set(POLICY)


@pytest.mark.parametrize(("method", "path"), sorted(POLICY))
def test_roles_on_every_route(world: tuple[TestClient, str], method: str, path: str) -> None:
    hub, cid = world
    allowed = POLICY[(method, path)]
    no_key = call(hub, method, path, cid, None)
    if allowed is PUBLIC:
        assert no_key not in (401, 403)
        return
    assert no_key == 401
    assert call(hub, method, path, cid, "not-a-key") == 401
    for role, key in CALLERS.items():
        if method == "DELETE" and role in allowed:
            continue  # deleting would cancel the shared closure; checked in the commune test
        status = call(hub, method, path, cid, key)
        if role in allowed:
            assert status not in (401, 403), (role, status)
        else:
            assert status == 403, (role, status)


@pytest.mark.parametrize(
    ("method", "path"),
    [(m, p) for (m, p), allowed in sorted(POLICY.items())
     if allowed and ROADWORKS in allowed and ("closures" in p or "measures" in p) and "analytics" not in p],
)
def test_a_team_outside_the_commune_is_refused(world: tuple[TestClient, str], method: str, path: str) -> None:
    hub, cid = world
    status = call(hub, method, path, cid, KEYS.roubaix)
    if path in ("/api/v1/closures", "/api/v1/measures") and method == "GET":
        assert status == 200  # lists only its own closures
        assert hub.get(path, headers=auth(KEYS.roubaix)).json()["items"] == []
    else:
        assert status == 403
