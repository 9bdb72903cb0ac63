"""Browser fixtures: Debian's Chromium driven by Playwright, and a real hub on a free port."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

from tests.browser.server import Served, serve
from tests.integration.hubs import write_principals
from tests.kafkarun import run_name
from traffic_hub.auth import Principals
from traffic_hub.runtime import Role, create_app
from traffic_hub.settings import KafkaSettings, Settings

CHROMIUM = "/usr/bin/chromium"
# WebGL through SwiftShader (software), so MapLibre renders on machines without a GPU
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
]


@pytest.fixture(scope="module")  # Playwright runs an event loop: let it end with the module
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def hub(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One hub (API + normaliser, own topics) for the module's tests."""
    directory = tmp_path_factory.mktemp("browser-hub")
    prefix = run_name("browser")
    settings = Settings(
        kafka=KafkaSettings(bootstrap_servers=kafka_bootstrap),
        topic_prefix=prefix,
        auth_file=write_principals(directory),
        instance=prefix,
    )
    assert settings.auth_file is not None
    app = create_app(settings, Principals.load(settings.auth_file), {Role.API, Role.NORMALISER})
    with serve(app) as served:
        yield served


@dataclass
class Console:
    """What the page said on its console and every uncaught error."""

    errors: list[str] = field(default_factory=list)

    def on_message(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"{message.text} @ {message.location}")

    def on_error(self, error: Exception) -> None:
        self.errors.append(f"uncaught: {error}")


@dataclass
class OpenPage:
    page: Page
    console: Console


@pytest.fixture
def open_map(browser: Browser, hub: Served) -> Iterator[Callable[[str], OpenPage]]:
    """Open `/map/#key=…` in a fresh context (French locale, Paris time) and wait until it is live."""
    contexts = []

    def opener(key: str) -> OpenPage:
        context = browser.new_context(
            locale="fr-FR", timezone_id="Europe/Paris", viewport={"width": 1200, "height": 760}
        )
        contexts.append(context)
        page = context.new_page()
        console = Console()
        page.on("console", console.on_message)
        page.on("pageerror", console.on_error)
        page.goto(f"{hub.url}/map/#key={key}")
        page.wait_for_selector("body[data-map]", timeout=15_000)
        return OpenPage(page, console)

    yield opener
    for context in contexts:
        context.close()
