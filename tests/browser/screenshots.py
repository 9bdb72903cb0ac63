"""Regenerate the README screenshots from the Lille demo: `.venv/bin/python -m tests.browser.screenshots`.

Starts a demo hub (demo closures and replayed sample sources, own topics) on the local broker, opens
the map as the demo operator and as a road-works team drawing a closure, and writes to `docs/screenshots/`:
`map.png` (central Lille with street names, an event's details), `map-chooser.png` (a click on events
drawn side by side on one street), `map-communes.png` (the whole metropole with its communes) and
`drawing.png`.
"""

from __future__ import annotations

import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

from geo.communes import Communes
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.browser.server import serve
from traffic_hub.auth import DemoKey, Principals, Role, demo_principals
from traffic_hub.demo.sources import replay_configs
from traffic_hub.runtime import Role as HubRole
from traffic_hub.runtime import create_app
from traffic_hub.settings import KafkaSettings, Settings, bootstrap_servers

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "docs" / "screenshots"
# Rue Nationale, Lille: points along the street (OpenStreetMap way geometry)
DRAWN = [(3.050660, 50.631985), (3.052176, 50.632626), (3.053887, 50.633345)]


def _key(keys: list[DemoKey], name: str) -> str:
    return next(k.key for k in keys if k.principal.name == name)


def _map_idle(page: Page) -> None:
    page.wait_for_function("() => window.trafficHubMap && window.trafficHubMap.loaded()", timeout=20_000)
    page.wait_for_timeout(800)


def _operator_view(page: Page, url: str, key: str) -> None:
    page.goto(f"{url}/map/#key={key}")
    page.wait_for_function("() => document.querySelectorAll('#event-list li').length >= 5", timeout=30_000)
    _map_idle(page)
    page.locator("#event-list li", has_text="Rue Nationale").first.click()
    page.wait_for_timeout(600)
    lille_centre = [[3.0465, 50.6293], [3.0665, 50.6357]]
    page.evaluate("b => window.trafficHubMap.fitBounds(b, {padding: 10, duration: 0})", lille_centre)
    _map_idle(page)
    page.screenshot(path=str(OUT / "map.png"))


# the middle of the longest stretch where two events are drawn side by side (events with an offset)
SIDE_BY_SIDE = """async () => {
  const data = await window.trafficHubMap.getSource("events").getData();
  const lines = data.features.filter(f => f.properties.offset && f.geometry.type === "LineString");
  lines.sort((a, b) => b.geometry.coordinates.length - a.geometry.coordinates.length);
  const c = lines[0].geometry.coordinates;
  const [a, b] = [c[Math.floor((c.length - 1) / 2)], c[Math.floor((c.length - 1) / 2) + 1]];
  return [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2];
}"""


def _chooser_view(page: Page) -> None:
    page.click("#details-close")
    lon, lat = page.evaluate(SIDE_BY_SIDE)
    page.evaluate("c => window.trafficHubMap.jumpTo({center: c, zoom: 17.2})", [lon, lat])
    _map_idle(page)
    box = page.locator("#map").bounding_box()
    assert box is not None
    point = page.evaluate("c => window.trafficHubMap.project(c)", [lon, lat])
    page.mouse.click(box["x"] + point["x"], box["y"] + point["y"])
    page.wait_for_selector("#chooser", timeout=5_000)
    page.mouse.move(box["x"] + 20, box["y"] + 20)
    page.wait_for_timeout(400)
    page.screenshot(path=str(OUT / "map-chooser.png"))


def _communes_view(page: Page) -> None:
    page.keyboard.press("Escape")
    page.evaluate("() => window.trafficHubMap.jumpTo({center: [3.105, 50.665], zoom: 10.75})")
    _map_idle(page)
    page.screenshot(path=str(OUT / "map-communes.png"))


def _drawing_view(page: Page, url: str, key: str) -> None:
    page.goto(f"{url}/map/#key={key}")
    _map_idle(page)
    page.evaluate("() => window.trafficHubMap.jumpTo({center: [3.0522, 50.6327], zoom: 16.8})")
    _map_idle(page)
    box = page.locator("#map").bounding_box()
    assert box is not None
    for lon, lat in DRAWN:
        point = page.evaluate("([lon, lat]) => window.trafficHubMap.project([lon, lat])", [lon, lat])
        page.mouse.click(box["x"] + point["x"], box["y"] + point["y"])
    page.fill("#d-description", "Remplacement des bordures, chaussée fermée")
    page.check("#d-lanes-on")
    page.fill("#d-day-monday", "08:00-17:00")
    page.fill("#d-day-tuesday", "08:00-17:00")
    page.wait_for_selector("#match-street", timeout=10_000)
    _map_idle(page)
    page.screenshot(path=str(OUT / "drawing.png"))


def main(bootstrap: str | None = None) -> None:
    bootstrap = bootstrap or bootstrap_servers()  # the local broker, wherever TRAFFIC_HUB_KAFKA_PORT puts it
    OUT.mkdir(parents=True, exist_ok=True)
    prefix = f"screens-{uuid.uuid4().hex[:8]}"
    keys = demo_principals({c.insee for c in Communes.load()})
    settings = Settings(kafka=KafkaSettings(bootstrap_servers=bootstrap), topic_prefix=prefix, instance=prefix,
                        demo=True)
    connectors = replay_configs(datetime.now(UTC), Path(tempfile.mkdtemp(prefix="screens-")))
    app = create_app(settings, Principals.of([k.principal for k in keys]),
                     {HubRole.API, HubRole.NORMALISER, HubRole.CONNECTORS}, keys, connectors)
    with serve(app) as hub, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(locale="fr-FR", timezone_id="Europe/Paris",
                                      viewport={"width": 1440, "height": 860})
        operator = next(k for k in keys if k.principal.role is Role.OPERATOR)
        page = context.new_page()
        _operator_view(page, hub.url, operator.key)
        _chooser_view(page)
        _communes_view(page)
        _drawing_view(context.new_page(), hub.url, _key(keys, "demo-voirie-lille"))
        browser.close()
    print(f"wrote map.png, map-chooser.png, map-communes.png and drawing.png in {OUT}")


if __name__ == "__main__":
    main()
