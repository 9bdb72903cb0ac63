"""/docs and /redoc work offline: their HTML names no external host and the hub serves every asset.

FastAPI's defaults load Swagger UI and ReDoc from cdn.jsdelivr.net (and a favicon and Google Fonts):
blank pages without internet. The assets now come from node_modules (package-lock.json).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from traffic_hub.auth import Principals
from traffic_hub.runtime import create_app
from traffic_hub.settings import Settings

URL = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|url\s*:\s*['"]([^'"]+)['"]|spec-url=["']([^"']+)["']""")
MEDIA = {".js": "text/javascript", ".css": "text/css", ".png": "image/png", ".json": "application/json"}


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(create_app(Settings(_env_file=None), Principals.of([])))  # no lifespan: no broker needed


def referenced(html: str) -> list[str]:
    return [next(g for g in m.groups() if g) for m in URL.finditer(html)]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_reference_no_external_host_and_every_asset_is_served(client: TestClient, page: str) -> None:
    response = client.get(page)
    assert response.status_code == 200
    html = response.text
    assert "cdn.jsdelivr.net" not in html
    assert "fonts.googleapis.com" not in html
    assert "fastapi.tiangolo.com" not in html
    urls = referenced(html)
    assert urls, html
    assert [u for u in urls if urlsplit(u).netloc or u.startswith("//")] == []
    assert re.findall(r"https?://", html) == []
    for url in urls:
        asset = client.get(url)
        assert asset.status_code == 200, url
        suffix = url[url.rfind(".") :]
        assert asset.headers["content-type"].startswith(MEDIA[suffix]), (url, asset.headers["content-type"])
        assert len(asset.content) > 0


def test_swagger_ui_does_not_call_the_online_validator(client: TestClient) -> None:
    assert '"validatorUrl": null' in client.get("/docs").text


def test_only_the_listed_assets_are_served(client: TestClient) -> None:
    assert client.get("/docs/static/package.json").status_code == 404
    assert client.get("/docs/static/..%2F..%2Fpackage.json").status_code == 404


def test_redoc_bundle_calls_no_third_party_for_its_logo(client: TestClient) -> None:
    bundle = client.get("/docs/static/redoc.standalone.js")
    assert bundle.status_code == 200
    assert b"cdn.redoc.ly/redoc/logo-mini.svg" not in bundle.content
    assert b"Redoc" in bundle.content
