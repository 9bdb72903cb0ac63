"""The analytics page and the day replay in Chromium, on a hub over the real archive database.

The analytics page reads the seeded archive through the real routes; with `UPDATE_SCREENSHOTS=1` the
test also rewrites the README's screenshot (docs/analytics.png), else it writes it to a temporary
directory. The replay's endpoint (`/api/v1/history/events?at=`) is built by another branch (d-history):
until it is merged, the test answers it in the browser with its shape (a GeoJSON FeatureCollection of
the events as they were at `at`, `next` a cursor), and checks what the slider asks and shows.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Browser, Page, Route

from tests.archive.analytics_seed import PARIS, SOLFERINO, event, jam, local, monday_of_last_week
from tests.archive.conftest import database_cluster, database_url  # noqa: F401 - the real database's fixtures
from tests.archive.test_analytics import _closure_now, _weekday_closure
from tests.browser.server import Served, serve
from tests.integration.hubs import KEYS, settings_for, write_principals
from tests.kafkarun import run_name
from traffic_hub.auth import Principals
from traffic_hub.model.vocabulary import EventType, Lifecycle
from traffic_hub.runtime import Role, create_app

pytestmark = [pytest.mark.browser, pytest.mark.kafka, pytest.mark.db]
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "docs" / "analytics.png"


@pytest.fixture
def archive_hub(kafka_bootstrap: str, tmp_path: Path, database_url: str) -> Iterator[Served]:  # noqa: F811
    """A hub whose archive holds last week's closure with its jams, a flagged closure and some incidents."""
    now = datetime.now(UTC)
    week = monday_of_last_week(now)
    archive = _weekday_closure(week)
    archive.events.append(_closure_now("flagged", now))
    archive.reports += [jam("flow", now - timedelta(hours=4 - n), SOLFERINO, 30, 300, speed=25) for n in range(2)]
    for n, (day, hour, kind) in enumerate([(0, 8, EventType.ACCIDENT), (0, 17, EventType.ACCIDENT),
                                           (1, 8, EventType.HAZARD), (3, 18, EventType.ACCIDENT)]):
        at = local(week, day, hour, 10)
        archive.events.append((at, event(f"i{n}", kind, at, at)))
        archive.events.append((at + timedelta(minutes=40 + 20 * n),
                               event(f"i{n}", kind, at, at, version=2, lifecycle=Lifecycle.ENDED)))
    archive.write(database_url)
    prefix = run_name("analytics")
    settings = settings_for(kafka_bootstrap, prefix, write_principals(tmp_path), database_url=database_url)
    app = create_app(settings, Principals.load(settings.auth_file or Path()), {Role.API})
    with serve(app) as served:
        yield served


def _page(browser: Browser) -> Page:
    context = browser.new_context(locale="fr-FR", timezone_id="Europe/Paris", viewport={"width": 1200, "height": 1400})
    return context.new_page()


def test_the_analytics_page_shows_the_archive_numbers(browser: Browser, archive_hub: Served, tmp_path: Path) -> None:
    week = monday_of_last_week(datetime.now(UTC)).astimezone(PARIS).date()
    page = _page(browser)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{archive_hub.url}/map/static/analytics.html#key={KEYS.operator}"
              f"&from={week.isoformat()}&to={(week + timedelta(days=7)).isoformat()}")
    page.wait_for_selector("body[data-analytics=ready]", timeout=30_000)
    assert page.locator("h1").inner_text() == "Analyses du trafic"  # French first
    impact = page.locator("#impact tbody tr").first
    assert "REF-c-1" in impact.inner_text()
    assert "+4" in impact.inner_text()  # 4 s of extra delay per active hour
    page.select_option("#i-type", "accident")
    assert page.locator("#heatmap").get_attribute("data-total") == "3"  # three accidents last week
    durations = [row.split("\t")[0] for row in page.locator("#durations tbody tr").all_inner_texts()]
    assert durations == ["Accident", "Fermeture", "Danger"]  # the closure ended last week too
    assert "Rue Nationale" in page.locator("#jams").inner_text()
    impact.click()
    page.wait_for_selector("#impact-detail table")
    assert "Rue Nationale" in page.locator("#impact-detail").inner_text()
    assert errors == []
    page.screenshot(path=str(SCREENSHOT if os.environ.get("UPDATE_SCREENSHOTS") else tmp_path / "analytics.png"))
    page.context.close()


def test_the_reality_flag_is_shown_to_the_closures_team(browser: Browser, archive_hub: Served) -> None:
    page = _page(browser)
    page.goto(f"{archive_hub.url}/map/static/analytics.html#key={KEYS.lille}")
    page.wait_for_selector("body[data-analytics=ready]", timeout=30_000)
    assert "REF-flagged" in page.locator("#reality").inner_text()
    assert "Signalée" in page.locator("#reality").inner_text()
    assert page.locator("#s-jams").is_hidden()  # Waze jams per segment: operators only
    page.context.close()


def _history(route: Route) -> None:
    """The archived state at `at`: a closure all day, and an accident from 09:00 to 11:00 local time."""
    at = datetime.fromisoformat(parse_qs(urlsplit(route.request.url).query)["at"][0])
    local_hour = at.astimezone(PARIS).hour
    features = [_feature("c", "closure", SOLFERINO)]
    if 9 <= local_hour < 11:
        features.append(_feature("a", "accident", [SOLFERINO[1]]))
    body = {"type": "FeatureCollection", "features": features, "next": None}
    route.fulfill(status=200, content_type="application/geo+json", body=json.dumps(body))


def _feature(fid: str, kind: str, points: list[tuple[float, float]]) -> dict[str, object]:
    geometry = ({"type": "Point", "coordinates": list(points[0])} if len(points) == 1
                else {"type": "LineString", "coordinates": [list(p) for p in points]})
    return {"type": "Feature", "id": fid, "geometry": geometry,
            "properties": {"id": fid, "type": kind, "status": "active", "street": "Rue Solférino"}}


def test_the_time_slider_replays_a_past_moment(browser: Browser, archive_hub: Served) -> None:
    page = _page(browser)
    asked: list[str] = []

    def history(route: Route) -> None:
        asked.append(route.request.url)
        _history(route)

    page.route("**/api/v1/history/events*", history)
    page.goto(f"{archive_hub.url}/map/#key={KEYS.operator}")
    page.wait_for_selector("body[data-map=ready]", timeout=30_000)
    page.click("#replay-toggle")
    page.wait_for_selector("#replay[data-count='1']", timeout=15_000)  # 08:00: the closure only
    assert page.evaluate("window.trafficHubMap.getLayoutProperty('event-lines', 'visibility')") == "none"
    page.fill("#replay-slider", "600")  # 10:00 local
    page.wait_for_selector("#replay[data-count='2']", timeout=15_000)
    at = datetime.fromisoformat(page.locator("#replay").get_attribute("data-at") or "")
    yesterday = (datetime.now(PARIS) - timedelta(days=1)).date()
    assert at.astimezone(PARIS).date() == yesterday
    assert (at.astimezone(PARIS).hour, at.astimezone(PARIS).minute) == (10, 0)
    assert "at=" in asked[-1]
    assert "2 événements" in page.locator("#replay-status").inner_text()
    shown = page.evaluate("window.trafficHubMap.getSource('replay').serialize().data.features.length")
    assert shown == 2
    page.evaluate(f"window.trafficHubMap.jumpTo({{center: {list(SOLFERINO[1])}, zoom: 16}})")
    page.wait_for_function("() => window.trafficHubMap.loaded()", timeout=15_000)
    x, y = page.evaluate(f"(() => {{ const p = window.trafficHubMap.project({list(SOLFERINO[1])}); "
                         "return [p.x, p.y]; })()")
    page.locator("#map canvas").click(position={"x": x, "y": y})
    page.wait_for_function("() => document.getElementById('replay-status').textContent.includes('Rue Solférino')")
    page.click("#replay-toggle")  # back to live
    assert page.evaluate("window.trafficHubMap.getLayoutProperty('event-lines', 'visibility')") == "visible"
    page.context.close()
