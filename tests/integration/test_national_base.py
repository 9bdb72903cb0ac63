"""The national regulation base in, end to end through the real broker: local HTTP server → `dialog`
connector → Kafka → normaliser → events and feeds.

The real DiaLog sample has no order in MEL; its MEL-derived copy (coordinates moved, see
tests/fixtures/sources/SOURCES.md) has four regulations in Lille, one in Roubaix and one order left
in Meurthe-et-Moselle, which must be dropped.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from connectors.config import ConnectorConfig
from tests.connectors import regulations_xml as x
from tests.connectors.httpserver import LocalServer, Route, local_server
from tests.connectors.sources import read
from tests.integration.hubs import KEYS, auth, closure_body, running_hub, settings_for, wait_until, write_principals
from traffic_hub.feeds.validation import datex2_errors
from traffic_hub.feeds.waze_withhold import NATIONAL_BASE_REASON

pytestmark = pytest.mark.kafka

DERIVED = "datex2/fr-dialog/dialog-regulations_mel-derived.xml"
IN_MEL = {
    *(f"018a45df-58c3-740c-b712-37d3d2ca25f8/{n}" for n in range(1, 5)),  # Lille
    "018b19e9-7f21-7b21-9200-5b4a09b00fde/1",  # Roubaix
}
RUE_NATIONALE = '{"type":"LineString","coordinates":[[3.052176,50.632626],[3.053887,50.633345]]}'


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with local_server() as server:
        yield server


def dialog(url: str) -> ConnectorConfig:
    return ConnectorConfig.model_validate(
        {"name": "dialog", "kind": "dialog", "url": url, "interval_s": 0.3, "allow_private": True},
        context={"testing": True},
    )


def from_dialog(hub: TestClient) -> dict[str, dict[str, Any]]:
    """Current events by the national base's item ids (one event may list several)."""
    features = hub.get("/api/v1/events", headers=auth(KEYS.operator)).json()["features"]
    out: dict[str, dict[str, Any]] = {}
    for feature in features:
        for source in feature["properties"]["sources"]:
            if source["kind"] == "dialog-regulation":
                out[source["source_id"]] = feature["properties"]
    return out


def test_the_national_base_keeps_the_orders_in_mel(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path, server: LocalServer
) -> None:
    server.set("/api/regulations.xml", Route(body=read(DERIVED), content_type="application/xml"))
    settings = settings_for(kafka_bootstrap, topic_prefix, write_principals(tmp_path))
    with running_hub(settings, connectors=[dialog(server.url("/api/regulations.xml"))]) as hub:
        wait_until(lambda: set(from_dialog(hub)) == IN_MEL, timeout=30)
        events = from_dialog(hub)
        assert {e["subtype"] for e in events.values()} == {"vehicle_restriction"}
        assert {e["commune"] for e in events.values()} <= {"59350", "59512", None}
        for event in events.values():
            assert event["publication"]["waze"]["status"] == "withheld"
        roubaix = events["018b19e9-7f21-7b21-9200-5b4a09b00fde/1"]
        assert roubaix["normalised"]["matched"] is False  # beyond the bundled Lille-centre network
        situations = hub.get("/feeds/datex2/v3/situations.xml", headers=auth(KEYS.partner)).content
        assert datex2_errors(situations) == []
        assert situations.count(b"<sit:situation ") >= len(IN_MEL)

        def dialog_health() -> list[tuple[str, int]]:
            states = hub.get("/api/v1/connectors", headers=auth(KEYS.operator)).json()["connectors"]
            return [(s["status"], s["payload_errors"]) for s in states if s["name"] == "dialog"]

        # healthy: a transient refusal by a broker just started may stay recorded in last_error after its retry
        wait_until(lambda: dialog_health() == [("ok", 0)], timeout=30)


def test_an_order_the_team_also_posted_is_one_event_and_waze_gets_it_once(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path, server: LocalServer
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    order = x.order(
        "rue-nationale",
        x.no_entry(),
        x.validity(now - timedelta(days=1), now + timedelta(days=40)) + x.location(RUE_NATIONALE, "Rue Nationale"),
    )
    server.set("/api/regulations.xml", Route(body=x.document(order), content_type="application/xml"))
    settings = settings_for(kafka_bootstrap, topic_prefix, write_principals(tmp_path))
    with running_hub(settings, connectors=[dialog(server.url("/api/regulations.xml"))]) as hub:
        wait_until(lambda: "rue-nationale/1" in from_dialog(hub), timeout=30)
        alone = from_dialog(hub)["rue-nationale/1"]
        assert alone["publication"]["waze"] == {"status": "withheld", "reason": NATIONAL_BASE_REASON}

        posted = hub.post("/api/v1/closures", json=closure_body("LILLE-NAT-1"), headers=auth(KEYS.lille))
        assert posted.status_code == 201, posted.text
        closure_id = posted.json()["id"]

        def conflated() -> bool:
            event = from_dialog(hub).get("rue-nationale/1")
            return event is not None and event["id"] == closure_id

        wait_until(conflated, timeout=20)
        merged = from_dialog(hub)["rue-nationale/1"]
        assert {s["kind"] for s in merged["sources"]} >= {"closure", "dialog-regulation"}
        waze = merged["publication"]["waze"]
        assert (
            waze.get("reason") != NATIONAL_BASE_REASON
        )  # ours now: published once, by us (or withheld for another reason)
        ids = [f["id"] for f in hub.get("/api/v1/events", headers=auth(KEYS.operator)).json()["features"]]
        assert ids.count(closure_id) == 1
        assert alone["id"] not in ids or alone["id"] == closure_id  # the national base's own event was taken in
