"""Sources end to end through the real broker: local HTTP server → connectors → normaliser → events.

Real-format Lille samples (shifted to today), conflation across sources, our own closure echoed back
by Waze folded into it, lifecycle when a snapshot source drops an item, operator actions.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from connectors.config import ConnectorConfig
from tests.connectors.httpserver import LocalServer, Route, local_server
from tests.integration.hubs import KEYS, auth, closure_body, running_hub, settings_for, wait_until, write_principals
from traffic_hub.demo.sources import DEMO_SOURCES, RECORDED_AT, SAMPLES, shift_text

pytestmark = pytest.mark.kafka

CONTENT_TYPES = {"json": "application/json", "xml": "application/xml", "geojson": "application/geo+json"}


def connector(name: str, kind: str, url: str, options: dict[str, Any] | None = None) -> ConnectorConfig:
    return ConnectorConfig.model_validate(
        {"name": name, "kind": kind, "url": url, "interval_s": 0.3, "options": options or {}, "allow_private": True},
        context={"testing": True},
    )


def today(filename: str) -> bytes:
    delta = datetime.now(UTC).replace(second=0, microsecond=0) - RECORDED_AT
    return shift_text((SAMPLES / filename).read_text(encoding="utf-8"), delta).encode()


def waze_feed(alerts: list[dict[str, Any]]) -> bytes:
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    return orjson.dumps({"alerts": alerts, "jams": [], "startTimeMillis": now_ms - 60_000, "endTimeMillis": now_ms})


def waze_alert(uuid: str, lon: float, lat: float, kind: str, subtype: str, street: str) -> dict[str, Any]:
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    return {
        "uuid": uuid, "type": kind, "subtype": subtype, "street": street, "city": "Lille",
        "country": "FR", "location": {"x": lon, "y": lat}, "pubMillis": now_ms - 300_000,
        "reliability": 6, "confidence": 1, "reportRating": 0, "magvar": 0, "roadType": 2,
    }


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with local_server() as server:
        yield server


def events(hub: TestClient) -> list[dict[str, Any]]:
    features: list[dict[str, Any]] = hub.get("/api/v1/events", headers=auth(KEYS.operator)).json()["features"]
    return [f["properties"] for f in features]


def test_every_kind_of_source_lands_as_events_and_reports_of_one_incident_merge(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path, server: LocalServer
) -> None:
    configs = []
    for name, kind, filename, options in DEMO_SOURCES:
        path = f"/{filename}"
        server.set(path, Route(body=today(filename), content_type=CONTENT_TYPES[filename.rsplit(".", 1)[1]]))
        configs.append(connector(name, kind, server.url(path), dict(options)))
    settings = settings_for(kafka_bootstrap, topic_prefix, write_principals(tmp_path))
    with running_hub(settings, connectors=configs) as hub:
        def every_source_seen() -> bool:
            sources = {s["source"] for e in events(hub) for s in e["sources"]}
            return {name for name, *_ in DEMO_SOURCES} <= sources

        wait_until(every_source_seen, timeout=20)
        states = hub.get("/api/v1/connectors", headers=auth(KEYS.operator)).json()["connectors"]
        assert {s["name"]: s["status"] for s in states} == {name: "ok" for name, *_ in DEMO_SOURCES}
        assert all(s["incidents_published"] > 0 for s in states)
        merged = [e for e in events(hub) if len({s["source"] for s in e["sources"]}) > 1]
        assert merged, "reports of the same incident from several sources become one event"
        for event in merged:
            reasons = [s["match_reason"] for s in event["sources"] if s["match_reason"]]
            assert reasons, event
            assert all("m apart" in r for r in reasons)
        metrics = hub.get("/metrics", headers=auth(KEYS.admin)).text
        published = 'traffic_hub_connector_incidents_published_total{connector="demo-waze",kind="waze-partner-feed"}'
        assert published in metrics


def test_our_closure_echoed_by_waze_is_folded_into_it_and_waze_items_end_when_dropped(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path, server: LocalServer
) -> None:
    echo = waze_alert("echo-1", 3.05302, 50.63298, "ROAD_CLOSED", "ROAD_CLOSED_CONSTRUCTION", "Rue Nationale")
    jam_alert = waze_alert("haz-1", 3.0625, 50.6365, "HAZARD", "HAZARD_ON_ROAD_POT_HOLE", "Rue Esquermoise")
    server.set("/waze", Route(body=waze_feed([])))
    settings = settings_for(kafka_bootstrap, topic_prefix, write_principals(tmp_path))
    with running_hub(settings, connectors=[connector("waze-mel", "waze-partner-feed", server.url("/waze"))]) as hub:
        closure = hub.post("/api/v1/closures", json=closure_body("ECHO-1"), headers=auth(KEYS.lille)).json()
        wait_until(lambda: any(e["id"] == closure["id"] for e in events(hub)))
        server.set("/waze", Route(body=waze_feed([echo, jam_alert])))

        def folded() -> bool:
            event = next(e for e in events(hub) if e["id"] == closure["id"])
            return any(s["source"] == "waze-mel" for s in event["sources"])

        wait_until(folded, timeout=10)
        current = events(hub)
        assert len([e for e in current if e["type"] == "closure"]) == 1  # never a second event
        mine = next(e for e in current if e["id"] == closure["id"])
        waze = next(s for s in mine["sources"] if s["source"] == "waze-mel")
        assert "echo of our own closure" in waze["match_reason"]
        hazard = next(e for e in current if e["type"] == "hazard")
        assert hazard["publication"]["waze"]["status"] == "withheld"  # Waze's own report is not sent back
        # the snapshot drops both items: the hazard ends, the closure lives on without Waze
        server.set("/waze", Route(body=waze_feed([])))
        wait_until(lambda: all(e["type"] != "hazard" for e in events(hub)), timeout=10)
        ended = hub.get(f"/api/v1/events/{hazard['id']}", headers=auth(KEYS.operator)).json()
        assert ended["properties"]["status"] == "ended"
        mine = hub.get(f"/api/v1/events/{closure['id']}", headers=auth(KEYS.operator)).json()["properties"]
        assert mine["status"] in ("planned", "active")
        assert [s["active"] for s in mine["sources"] if s["source"] == "waze-mel"] == [False]


def test_operator_actions_are_recorded_and_change_the_feeds(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    settings = settings_for(kafka_bootstrap, topic_prefix, write_principals(tmp_path))
    with running_hub(settings) as hub:
        a = hub.post("/api/v1/closures", json=closure_body("OPS-A"), headers=auth(KEYS.lille)).json()["id"]
        b = hub.post("/api/v1/closures", json=closure_body("OPS-B", starts_at=(
            datetime.now(UTC) - timedelta(hours=1)).isoformat()), headers=auth(KEYS.lille)).json()["id"]
        wait_until(lambda: {a, b} <= {e["id"] for e in events(hub)})

        def act(event_id: str, **body: Any) -> Any:
            return hub.post(f"/api/v1/events/{event_id}/actions", json=body, headers=auth(KEYS.operator))

        assert hub.post(f"/api/v1/events/{a}/actions", json={"action": "confirm"},
                        headers=auth(KEYS.partner)).status_code == 403
        assert act(a, action="merge").status_code == 422
        assert act(a, action="frobnicate").status_code == 422
        assert act("nope", action="confirm").status_code == 404
        confirmed = act(a, action="confirm", note="seen on camera 12")
        assert confirmed.status_code == 202
        assert confirmed.json()["by"] == "salle-trafic"

        def prop(event_id: str, name: str) -> Any:
            return hub.get(f"/api/v1/events/{event_id}", headers=auth(KEYS.operator)).json()["properties"][name]

        wait_until(lambda: prop(a, "verification") == "confirmed")
        operator = [s for s in prop(a, "sources") if s["source"] == "operator"]
        assert operator[0]["said"] == {"action": "confirm", "by": "salle-trafic", "note": "seen on camera 12"}

        def in_waze_feed(event_id: str) -> bool:
            return event_id in hub.get("/feeds/waze/cifs.xml", headers=auth(KEYS.partner)).text

        wait_until(lambda: in_waze_feed(b))
        assert act(b, action="dismiss").status_code == 202
        wait_until(lambda: not in_waze_feed(b))
        assert prop(b, "publication")["waze"] == {"status": "withheld", "reason": "dismissed by an operator"}
        assert act(b, action="merge", into=a).status_code == 202
        wait_until(lambda: prop(b, "status") == "ended")
        # b ends and a gains its source in two event writes: wait for the second too
        wait_until(lambda: any(
            s["source"] == "roadworks:voirie-lille" and s["source_id"] == "OPS-B" for s in prop(a, "sources")))
        assert act(a, action="end").status_code == 202
        wait_until(lambda: not in_waze_feed(a))
        assert prop(a, "status") == "ended"


def test_closure_preview_snaps_to_the_network_and_writes_nothing(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    settings = settings_for(kafka_bootstrap, topic_prefix, write_principals(tmp_path))
    with running_hub(settings) as hub:
        body = closure_body("PREVIEW-1")
        preview = hub.post("/api/v1/closures/preview", json=body, headers=auth(KEYS.lille))
        assert preview.status_code == 200, preview.text
        result = preview.json()
        assert result["street"] == "Rue Nationale"
        assert result["waze_ready"] is True
        assert result["segments"][0]["length_m"] >= 35
        assert result["communes"] == ["59350"]
        assert hub.post("/api/v1/closures/preview", json=body, headers=auth(KEYS.roubaix)).status_code == 403
        assert hub.get("/api/v1/closures", headers=auth(KEYS.admin)).json()["items"] == []
        assert hub.get("/api/v1/whoami", headers=auth(KEYS.lille)).json() == {
            "name": "voirie-lille", "role": "roadworks", "communes": ["59350"]}
