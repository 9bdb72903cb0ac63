"""Measures on the map in a real browser (issue 18): a road-works team enters each kind of measure with
its values and draws a detour; operators see the types apart (list, details, filter)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2
import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import OpenPage
from tests.browser.server import Served
from tests.integration.hubs import KEYS, auth, closure_body

pytestmark = [pytest.mark.kafka, pytest.mark.browser]

NATIONALE = [[3.052176, 50.632626], [3.053887, 50.633345]]
LIBERTE = [[3.056671, 50.634531], [3.059300, 50.633090], [3.061908, 50.631649]]


def active(reference: str, **changes: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    times = {"starts_at": (now - timedelta(hours=1)).isoformat(), "ends_at": (now + timedelta(days=2)).isoformat()}
    return closure_body(reference, **{**times, **changes})


def post_measure(hub: Served, body: dict[str, Any], key: str = KEYS.lille) -> str:
    response = httpx2.post(f"{hub.url}/api/v1/measures", json=body, headers=auth(key), timeout=10)
    assert response.status_code in (200, 201), response.text
    measure_id: str = response.json()["id"]
    return measure_id


def mine(hub: Served, reference: str) -> dict[str, Any]:
    items = httpx2.get(f"{hub.url}/api/v1/measures", headers=auth(KEYS.lille), params={"limit": 500},
                       timeout=10).json()["items"]
    found: dict[str, Any] = next(item for item in items if item["reference"] == reference)
    return found


def enter_line(page: Page, coords: list[list[float]]) -> None:
    page.fill("#d-coords", "\n".join(f"{lon},{lat}" for lon, lat in coords))
    expect(page.locator("#draw-submit")).to_be_enabled(timeout=10_000)


def submit(page: Page) -> str:
    reference = page.input_value("#d-reference")
    page.fill("#d-description", f"Mesure {reference}")
    page.click("#draw-submit")
    expect(page.locator("#toast")).to_contain_text(reference, timeout=10_000)
    expect(page.locator("#closure-list")).to_contain_text(reference)
    return reference


def test_a_team_enters_each_measure_with_its_values_and_draws_a_detour(
    open_map: Any, hub: Served
) -> None:
    opened: OpenPage = open_map(KEYS.lille)
    page = opened.page
    expect(page.locator("#draw-side")).to_be_visible()
    # only the chosen type's fields show
    assert page.locator("#d-speed-box").is_hidden()
    page.select_option("#d-type", "speed_limit")
    expect(page.locator("#d-speed-box")).to_be_visible()
    assert page.locator("#d-vehicles-box").is_hidden()
    page.fill("#d-speed", "30")
    page.fill("#d-daily", "08:00-17:00")
    page.check("#d-except-weekends")
    page.check("#d-except-holidays")
    enter_line(page, NATIONALE)
    speed = mine(hub, submit(page))
    assert (speed["type"], speed["speed_kmh"]) == ("speed_limit", 30)
    assert speed["schedule"]["daily"] == ["08:00-17:00"]
    assert speed["schedule"]["except"] == {"weekends": True, "public_holidays": True, "dates": []}

    page.select_option("#d-type", "vehicle_restriction")
    expect(page.locator("#d-vehicles-box")).to_be_visible()
    page.fill("#d-max_weight_t", "3.5")
    page.select_option("#d-kinds", ["heavy_goods_vehicle", "hazardous_goods"])
    page.select_option("#d-critair", ["critair5"])
    page.select_option("#d-except", ["deliveries", "emergency_services"])
    enter_line(page, NATIONALE)
    ban = mine(hub, submit(page))
    assert ban["type"] == "vehicle_restriction"
    assert ban["vehicles"]["max_weight_t"] == 3.5
    assert ban["vehicles"]["kinds"] == ["heavy_goods_vehicle", "hazardous_goods"]
    assert sorted(ban["vehicles"]["except"]) == ["deliveries", "emergency_services"]

    for kind in ("alternate_traffic", "no_overtaking"):
        page.select_option("#d-type", kind)
        enter_line(page, NATIONALE)
        assert mine(hub, submit(page))["type"] == kind

    page.select_option("#d-type", "road_closed")
    enter_line(page, NATIONALE)
    closed = mine(hub, submit(page))
    # the detour: drawn like any line, attached to the closure it goes around
    page.select_option("#d-type", "detour")
    expect(page.locator("#d-detour-box")).to_be_visible()
    expect(page.locator("#d-vehicles-legend")).to_have_text("Véhicules concernés")
    page.select_option("#d-detour-of", closed["id"])
    enter_line(page, LIBERTE)
    detour = mine(hub, submit(page))
    assert (detour["type"], detour["detour_of"]) == ("detour", closed["id"])
    assert opened.console.errors == []


def test_operators_see_the_measure_types_apart(open_map: Any, hub: Served) -> None:
    speed = post_measure(hub, {**active("MAP-SPEED"), "type": "speed_limit", "speed_kmh": 30})
    ban = post_measure(hub, {**active("MAP-HGV", geometry={"type": "LineString", "coordinates": LIBERTE}),
                             "type": "vehicle_restriction",
                             "vehicles": {"max_height_m": 3.2, "kinds": ["bus"], "except": ["residents"]}})
    opened: OpenPage = open_map(KEYS.operator)
    page = opened.page
    page.wait_for_selector(f'#event-list li[data-id="{speed}"]', timeout=15_000)
    page.wait_for_selector(f'#event-list li[data-id="{ban}"]', timeout=15_000)
    expect(page.locator(f'#event-list li[data-id="{speed}"]')).to_contain_text("Limitation de vitesse")
    expect(page.locator(f'#event-list li[data-id="{ban}"]')).to_contain_text("Restriction par véhicule")
    page.click(f'#event-list li[data-id="{ban}"]')
    expect(page.locator("#details-measure")).to_contain_text("Hauteur > (m) 3.2")
    expect(page.locator("#details-measure")).to_contain_text("autocars et bus")
    expect(page.locator("#details-measure")).to_contain_text("sauf riverains")
    expect(page.locator("#details-publication")).to_contain_text("Waze CIFS cannot carry", timeout=10_000)
    page.select_option("#f-type", "speed_limit")
    expect(page.locator(f'#event-list li[data-id="{ban}"]')).to_have_count(0)
    expect(page.locator(f'#event-list li[data-id="{speed}"]')).to_have_count(1)
    assert opened.console.errors == []
