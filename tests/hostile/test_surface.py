"""What the public port shows a stranger (issue 14, findings 9, 10 and the JSON half of 11), on a real hub.

- Every response carries a strict Content-Security-Policy, nosniff, no referrer and no framing.
- `/metrics` (principal and connector names) is not public: Prometheus scrapes a separate loopback
  listener; on the public port only an admin key reads it.
- A JSON body nested deeper than the parser goes is invalid input: 422 with a problem naming the body.
"""

from __future__ import annotations

import base64
import hashlib
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from fastapi.testclient import TestClient

from tests.conftest import free_port
from tests.integration.hubs import KEYS, auth, running_hub, settings_for, wait_until, write_principals
from tests.kafkarun import run_name
from traffic_hub.api.secheaders import content_security_policy, inline_script_hashes
from traffic_hub.settings import MetricsSettings

pytestmark = pytest.mark.kafka

SECURITY = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}


@pytest.fixture(scope="module")
def metrics_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def hub(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory, metrics_port: int) -> Iterator[TestClient]:
    tmp: Path = tmp_path_factory.mktemp("surface")
    settings = settings_for(
        kafka_bootstrap, run_name("surface"), write_principals(tmp), metrics=MetricsSettings(port=metrics_port)
    )
    with running_hub(settings) as client:
        yield client


@pytest.mark.parametrize(
    ("path", "key"),
    [
        ("/healthz", None),
        ("/map/", None),
        ("/map/static/app.js", None),
        ("/feeds/geojson/events.csv", None),  # the feed fast path (ASGI)
        ("/feeds/waze/cifs.xml", KEYS.partner),
        ("/feeds/waze/cifs.xml", None),  # 401 problem
        ("/api/v1/closures", KEYS.lille),
        ("/api/v1/nothing-here", None),  # 404
        ("/openapi.json", None),
    ],
)
def test_every_response_carries_the_security_headers(hub: TestClient, path: str, key: str | None) -> None:
    response = hub.get(path, headers=auth(key) if key else {})
    for name, value in SECURITY.items():
        assert response.headers.get(name) == value, (path, name)
    policy = response.headers["content-security-policy"]
    assert response.headers.get_list("content-security-policy") == [policy]  # once, not twice
    directives = {d.split()[0]: d.split()[1:] for d in policy.split("; ")}
    assert directives["default-src"] == ["'self'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert directives["object-src"] == ["'none'"]
    assert directives["base-uri"] == ["'none'"]
    assert directives["script-src"] == ["'self'"]  # no inline script, no eval, no CDN
    assert "blob:" in directives["worker-src"]  # MapLibre's workers


def test_the_tile_server_is_allowed_when_configured() -> None:
    policy = content_security_policy("https://tiles.example.org/osm/{z}/{x}/{y}.png")
    directives = {d.split()[0]: d.split()[1:] for d in policy.split("; ")}
    assert "https://tiles.example.org" in directives["img-src"]
    assert "https://tiles.example.org" in directives["connect-src"]
    assert "https://tiles.example.org" not in directives["script-src"]
    assert "example" not in content_security_policy(None)


def test_metrics_are_not_public(hub: TestClient) -> None:
    assert hub.get("/metrics").status_code == 401
    assert hub.get("/metrics", headers=auth(KEYS.partner)).status_code == 403
    assert hub.get("/metrics", headers=auth(KEYS.operator)).status_code == 403
    response = hub.get("/metrics", headers=auth(KEYS.admin))
    assert response.status_code == 200
    assert "traffic_hub_view_events" in response.text


def test_prometheus_scrapes_the_loopback_listener(hub: TestClient, metrics_port: int) -> None:
    hub.get("/feeds/waze/cifs.xml", headers=auth(KEYS.partner))
    url = f"http://127.0.0.1:{metrics_port}"
    response = httpx2.get(f"{url}/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert 'traffic_hub_feed_requests_total{feed="waze/cifs.xml",partner="waze"' in response.text
    assert httpx2.get(f"{url}/", timeout=10).status_code == 404
    assert httpx2.get(f"{url}/api/v1/closures", timeout=10).status_code == 404
    assert httpx2.post(f"{url}/metrics", timeout=10).status_code == 405
    with socket.create_connection(("127.0.0.1", metrics_port), timeout=10) as idle:  # a stray client is cut
        idle.settimeout(15)
        assert idle.recv(1) == b""


def test_a_taken_metrics_port_costs_the_metrics_not_the_hub(
    kafka_bootstrap: str, tmp_path: Path, metrics_port: int, hub: TestClient
) -> None:
    settings = settings_for(
        kafka_bootstrap, run_name("surface2"), write_principals(tmp_path), metrics=MetricsSettings(port=metrics_port)
    )
    with running_hub(settings) as second:  # the first hub holds the port
        assert second.get("/healthz").status_code == 200
        wait_until(lambda: second.get("/readyz").status_code == 200)


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 50_000 + b"]" * 50_000,
        b'{"reference": ' + b'{"a": ' * 20_000 + b"1" + b"}" * 20_000 + b"}",
    ],
)
def test_a_deeply_nested_body_is_422_naming_the_body(hub: TestClient, body: bytes) -> None:
    headers = auth(KEYS.lille) | {"Content-Type": "application/json"}
    response = hub.post("/api/v1/closures", content=body, headers=headers)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["field"] == "body"
    assert "nested too deeply" in problem["detail"]
    assert problem["errors"] == [{"field": "body", "message": "the JSON body is nested too deeply"}]


def test_a_body_that_is_not_utf8_is_422_naming_the_body(hub: TestClient) -> None:
    headers = auth(KEYS.lille) | {"Content-Type": "application/json"}
    response = hub.post("/api/v1/closures", content=b'{"reference": "\xff\xfe"}', headers=headers)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "body"


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_the_documentation_pages_may_run_exactly_their_own_inline_scripts(hub: TestClient, path: str) -> None:
    response = hub.get(path)
    assert response.status_code == 200
    policy = response.headers["content-security-policy"]
    directives = {d.split()[0]: d.split()[1:] for d in policy.split("; ")}
    expected = [f"'sha256-{digest}'" for digest in inline_script_hashes(response.content)]
    assert directives["script-src"] == ["'self'", *expected]
    assert "'unsafe-inline'" not in directives["script-src"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert response.headers["x-content-type-options"] == "nosniff"


def test_inline_script_hashes() -> None:
    page = b'<script src="/a.js"></script><script>alert(1)</script><SCRIPT type="module">x()</SCRIPT>'
    assert inline_script_hashes(page) == (
        "bhHHL3z2vDgxUt0W3dWQOrprscmda2Y5pLsLg4GF+pI=",  # printf 'alert(1)' | sha256sum (base64)
        base64.b64encode(hashlib.sha256(b"x()").digest()).decode(),
    )
