"""/docs and /redoc render their operations in Chromium with every non-local request blocked.

What a sysadmin on a closed network sees: before, both pages stayed blank (assets from a CDN).
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, Route

from tests.browser.conftest import Console
from tests.browser.server import Served

pytestmark = [pytest.mark.browser, pytest.mark.kafka]


class Offline:
    """Aborts every request that leaves 127.0.0.1 and remembers it."""

    def __init__(self) -> None:
        self.blocked: list[str] = []

    def __call__(self, route: Route) -> None:
        if urlsplit(route.request.url).hostname in {"127.0.0.1", None}:
            route.continue_()
            return
        self.blocked.append(route.request.url)
        route.abort("internetdisconnected")


@pytest.fixture
def offline_page(browser: Browser) -> Iterator[tuple[Page, Offline, Console]]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    offline, console = Offline(), Console()
    context.route("**/*", offline)
    page = context.new_page()
    page.on("console", console.on_message)
    page.on("pageerror", console.on_error)
    yield page, offline, console
    context.close()


def test_swagger_ui_renders_the_operations_offline(hub: Served, offline_page: tuple[Page, Offline, Console]) -> None:
    page, offline, console = offline_page
    page.goto(f"{hub.url}/docs")
    page.wait_for_selector(".opblock", timeout=30_000)
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert any("/api/v1/closures" in p for p in paths), paths
    assert len(paths) >= 10
    assert offline.blocked == []
    assert console.errors == []


def test_redoc_renders_the_operations_offline(hub: Served, offline_page: tuple[Page, Offline, Console]) -> None:
    page, offline, console = offline_page
    page.goto(f"{hub.url}/redoc")
    page.wait_for_selector("[data-section-id^='tag/'], [data-section-id^='operation/']", timeout=30_000)
    operations = page.locator("[data-section-id^='operation/'], [data-section-id*='/operation/']").count()
    assert operations >= 10
    assert "closures" in page.locator(".menu-content").inner_text().lower()
    assert offline.blocked == []
    assert console.errors == []
