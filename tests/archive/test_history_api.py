"""The history routes on a real hub, Kafka and PostgreSQL: closure and event histories (who, when, what
changed, scope), past events in a window and at an instant (pagination, validation), /readyz's lag."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.archive.conftest import count
from tests.integration.hubs import KEYS, auth, closure_body, running_hub, settings_for, wait_until, write_principals
from traffic_hub.api.history import PastEventsPage
from traffic_hub.runtime import Role

pytestmark = [pytest.mark.kafka, pytest.mark.db]

ROUBAIX_LINE = {"type": "LineString", "coordinates": [[3.1742, 50.6905], [3.1765, 50.6921]]}


def _history(hub: TestClient, cid: str, key: str) -> Any:
    return hub.get(f"/api/v1/closures/{cid}/history", headers=auth(key))


def _archived(url: str, event_id: str, versions: int) -> bool:
    return count(url, "SELECT count(*) FROM reports WHERE kind = 'closure' AND key = %s", event_id) >= versions


def test_closure_and_event_history_with_who_what_and_scope(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path, database_url: str
) -> None:
    settings = settings_for(kafka_bootstrap, topic_prefix, write_principals(tmp_path), database_url=database_url)
    with running_hub(settings, {Role.API, Role.NORMALISER, Role.ARCHIVER}) as hub:
        created = hub.post("/api/v1/closures", json=closure_body("HIST-1"), headers=auth(KEYS.lille))
        assert created.status_code == 201, created.text
        cid = created.json()["id"]
        patched = hub.patch(f"/api/v1/closures/{cid}", json={"description": "Travaux prolongés"},
                            headers=auth(KEYS.admin))
        assert patched.status_code == 200, patched.text
        assert hub.delete(f"/api/v1/closures/{cid}", headers=auth(KEYS.lille)).status_code == 204
        wait_until(lambda: _archived(database_url, cid, 3), timeout=60)

        answer = _history(hub, cid, KEYS.lille)
        assert answer.status_code == 200, answer.text
        versions = answer.json()["versions"]
        assert [v["version"] for v in versions] == [1, 2, 3]
        assert [v["action"] for v in versions] == ["created", "updated", "deleted"]
        assert [v["who"]["principal"] for v in versions] == ["voirie-lille", "admin", "voirie-lille"]
        assert versions[1]["who"] == {"principal": "admin", "role": "admin", "source": "roadworks:voirie-lille",
                                      "recorded": "writer"}
        assert versions[0]["changes"] == []
        assert not any(c["field"] == "owner_communes" for c in versions[1]["changes"])  # the team still owns it
        assert {"field": "description", "from": "Travaux de voirie", "to": "Travaux prolongés"} in versions[1][
            "changes"]
        assert versions[2]["changes"] == [{"field": "cancelled", "from": False, "to": True}]

        # scope, as the closure routes: 404 unknown, 403 outside the team's communes or the role's reach
        assert _history(hub, cid, KEYS.operator).status_code == 200
        assert _history(hub, cid, KEYS.mel).status_code == 200
        refused = _history(hub, cid, KEYS.roubaix)
        assert refused.status_code == 403
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert _history(hub, cid, KEYS.partner).status_code == 403
        assert _history(hub, "nothing-here", KEYS.lille).status_code == 404
        assert hub.get(f"/api/v1/closures/{cid}/history").status_code == 401

        wait_until(lambda: count(database_url, "SELECT count(*) FROM event_versions WHERE event_id = %s",
                                 cid) >= 3, timeout=60)
        events = hub.get(f"/api/v1/events/{cid}/history", headers=auth(KEYS.operator))
        assert events.status_code == 200, events.text
        ev = events.json()["versions"]
        assert ev[0]["action"] == "created"
        assert ev[0]["who"]["principal"] == "voirie-lille"
        assert any(c["field"] == "description" for v in ev for c in v["changes"])
        assert any(v["who"]["principal"] == "admin" for v in ev)
        assert hub.get(f"/api/v1/events/{cid}/history", headers=auth(KEYS.lille)).status_code == 403
        assert hub.get("/api/v1/events/nothing/history", headers=auth(KEYS.operator)).status_code == 404

        # a measure of another type has the same history, under /api/v1/measures
        body = {**closure_body("HIST-M"), "type": "speed_limit", "speed_kmh": 30}
        measure = hub.post("/api/v1/measures", json=body, headers=auth(KEYS.lille))
        assert measure.status_code == 201, measure.text
        mid = measure.json()["id"]
        wait_until(lambda: _archived(database_url, mid, 1), timeout=60)
        history = hub.get(f"/api/v1/measures/{mid}/history", headers=auth(KEYS.lille))
        assert history.status_code == 200, history.text
        assert history.json()["versions"][0]["state"]["speed_kmh"] == 30
        assert hub.get(f"/api/v1/measures/{mid}/history", headers=auth(KEYS.roubaix)).status_code == 403


def _page(hub: TestClient, **params: Any) -> Any:
    return hub.get("/api/v1/history/events", params=params, headers=auth(KEYS.operator))


def test_past_events_window_at_pagination_and_validation(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path, database_url: str
) -> None:
    settings = settings_for(kafka_bootstrap, topic_prefix, write_principals(tmp_path), database_url=database_url)
    with running_hub(settings, {Role.API, Role.NORMALISER, Role.ARCHIVER}) as hub:
        before = datetime.now(UTC) - timedelta(seconds=1)
        ids = []
        for n in range(5):
            line = {"type": "LineString", "coordinates": [[3.052176 + n * 1e-4, 50.632626],
                                                          [3.053887 + n * 1e-4, 50.633345]]}
            made = hub.post("/api/v1/closures", json=closure_body(f"WIN-{n}", geometry=line), headers=auth(KEYS.lille))
            assert made.status_code == 201, made.text
            ids.append(made.json()["id"])
        roubaix = hub.post("/api/v1/closures", json=closure_body("WIN-R", geometry=ROUBAIX_LINE, street=None),
                           headers=auth(KEYS.roubaix))
        assert roubaix.status_code == 201, roubaix.text
        wait_until(lambda: count(database_url, "SELECT count(*) FROM event_spans") >= 6, timeout=60)
        after = datetime.now(UTC) + timedelta(seconds=1)
        window = {"from": before.isoformat(), "to": after.isoformat()}

        whole = _page(hub, **window)
        assert whole.status_code == 200, whole.text
        body = whole.json()
        assert body["type"] == "FeatureCollection"
        assert {f["id"] for f in body["features"]} == {*ids, roubaix.json()["id"]}
        feature = body["features"][0]
        assert set(feature["properties"]) >= {"id", "type", "status", "version", "version_at", "life", "sources"}
        assert feature["geometry"]["type"] == "LineString"
        PastEventsPage.model_validate(body)  # the documented (OpenAPI) shape is the one served

        seen: list[str] = []
        cursor = None
        while True:
            page = _page(hub, **window, limit=2, **({"cursor": cursor} if cursor else {})).json()
            assert len(page["features"]) <= 2
            seen += [f["id"] for f in page["features"]]
            cursor = page["next"]
            if cursor is None:
                break
        assert sorted(seen) == sorted({*ids, roubaix.json()["id"]})
        assert len(seen) == len(set(seen))

        lille = _page(hub, **window, commune="59350").json()
        assert {f["id"] for f in lille["features"]} == set(ids)
        boxed = _page(hub, **window, bbox="3.17,50.68,3.18,50.70").json()
        assert [f["id"] for f in boxed["features"]] == [roubaix.json()["id"]]
        assert _page(hub, **window, type="accident").json()["features"] == []
        assert len(_page(hub, **window, source="roadworks").json()["features"]) == 6
        assert _page(hub, **window, source="waze-mel").json()["features"] == []

        alive = datetime.now(UTC)
        assert hub.delete(f"/api/v1/closures/{ids[0]}", headers=auth(KEYS.lille)).status_code == 204
        wait_until(lambda: count(database_url, "SELECT count(*) FROM event_spans WHERE ended_at IS NOT NULL") >= 1,
                   timeout=60)
        now = _page(hub, at=(datetime.now(UTC) + timedelta(seconds=1)).isoformat()).json()
        assert ids[0] not in {f["id"] for f in now["features"]}
        back = _page(hub, at=alive.isoformat()).json()
        assert ids[0] in {f["id"] for f in back["features"]}
        assert all(f["properties"]["status"] == "planned" for f in back["features"])
        assert _page(hub, at=before.isoformat()).json()["features"] == []

        for params, field in (
            ({"from": after.isoformat(), "to": before.isoformat()}, "to"),
            ({"from": before.isoformat()}, "to"),
            ({"to": after.isoformat()}, "from"),
            ({}, "from"),
            ({"from": before.isoformat(), "to": (before + timedelta(days=32)).isoformat()}, "to"),
            ({**window, "at": after.isoformat()}, "at"),
            ({**window, "bbox": "3,50,2"}, "bbox"),
            ({**window, "bbox": "3.2,50,3.1,51"}, "bbox"),
            ({**window, "bbox": "3,50,3.1,51", "commune": "59350"}, "commune"),
            ({**window, "type": "meteor"}, "type"),
            ({**window, "commune": "Lille"}, "commune"),
            ({**window, "cursor": "garbage"}, "cursor"),
            ({**window, "limit": 5000}, "limit"),
            ({"from": "2026-01-01T00:00:00", "to": after.isoformat()}, "from"),
        ):
            refused = _page(hub, **params)
            assert refused.status_code == 422, (params, refused.text)
            assert refused.json()["field"] == field, (params, refused.json())
        assert hub.get("/api/v1/history/events", params=window, headers=auth(KEYS.lille)).status_code == 403
        assert hub.get("/api/v1/history/events", params=window, headers=auth(KEYS.partner)).status_code == 403

        ready = hub.get("/readyz").json()
        wait_until(lambda: hub.get("/readyz").json()["archive"]["lag"] is not None, timeout=30)
        ready = hub.get("/readyz").json()
        assert ready["archive"]["database"] == "up"
        assert set(ready["archive"]["lag"]) == {f"{topic_prefix}.reports", f"{topic_prefix}.events"}
        assert all(set(v) == {"records", "seconds"} for v in ready["archive"]["lag"].values())
