"""The API keeps working without its database: only the history routes answer, with a 503 and Retry-After;
and when the database comes back the archiver catches up and the history answers again.

Never `db-down` of the shared server: one test points the hub at a port nothing listens on, the other
drops its own per-test database under the running hub and creates it again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.archive.conftest import count
from tests.conftest import free_port
from tests.integration.hubs import KEYS, auth, closure_body, running_hub, settings_for, wait_until, write_principals
from traffic_hub.runtime import Role

pytestmark = [pytest.mark.kafka, pytest.mark.db]


def _history_paths(cid: str) -> list[str]:
    now = datetime.now(UTC)
    window = f"from={(now - timedelta(hours=1)).isoformat()}&to={now.isoformat()}".replace("+", "%2B")
    return [f"/api/v1/closures/{cid}/history", f"/api/v1/events/{cid}/history",
            f"/api/v1/history/events?{window}", f"/api/v1/history/events?at={now.isoformat()}".replace("+", "%2B")]


def _assert_unavailable(hub: TestClient, cid: str) -> None:
    for path in _history_paths(cid):
        answer = hub.get(path, headers=auth(KEYS.admin))
        assert answer.status_code == 503, (path, answer.text)
        assert int(answer.headers["Retry-After"]) >= 1
        assert answer.headers["content-type"].startswith("application/problem+json")


def _assert_the_rest_works(hub: TestClient, reference: str) -> str:
    created = hub.post("/api/v1/closures", json=closure_body(reference), headers=auth(KEYS.lille))
    assert created.status_code == 201, created.text
    cid = str(created.json()["id"])
    assert hub.get(f"/api/v1/closures/{cid}", headers=auth(KEYS.lille)).status_code == 200
    changed = hub.patch(f"/api/v1/closures/{cid}", json={"description": "Changé"}, headers=auth(KEYS.lille))
    assert changed.status_code == 200, changed.text
    assert hub.get("/api/v1/closures", headers=auth(KEYS.lille)).status_code == 200
    wait_until(lambda: hub.get(f"/api/v1/events/{cid}", headers=auth(KEYS.operator)).status_code == 200, timeout=30)
    assert hub.get("/api/v1/events", headers=auth(KEYS.operator)).status_code == 200
    assert hub.get("/feeds/geojson/events.geojson").status_code == 200
    assert hub.get("/feeds/waze/cifs.xml", headers=auth(KEYS.partner)).status_code == 200
    ready = hub.get("/readyz")
    assert ready.status_code == 200, ready.text  # the archive is a report, never a readiness gate
    return cid


def test_a_hub_whose_database_never_answers_serves_everything_but_history(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    down = f"postgresql://postgres:nothing@127.0.0.1:{free_port()}/traffic_hub"  # nothing listens there
    settings = settings_for(kafka_bootstrap, topic_prefix, write_principals(tmp_path), database_url=down)
    with running_hub(settings, {Role.API, Role.NORMALISER, Role.ARCHIVER}) as hub:
        cid = _assert_the_rest_works(hub, "DOWN-1")
        wait_until(lambda: hub.get("/readyz").json()["archive"]["database"] == "down", timeout=30)
        assert hub.get("/readyz").json()["archive"]["status"] == "down"
        _assert_unavailable(hub, cid)


def _drop(cluster: str, name: str) -> None:
    with psycopg.connect(cluster, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_the_database_lost_and_back_the_archiver_catches_up(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path, database_url: str, database_cluster: str
) -> None:
    name = urlsplit(database_url).path.lstrip("/")
    settings = settings_for(kafka_bootstrap, topic_prefix, write_principals(tmp_path), database_url=database_url)
    with running_hub(settings, {Role.API, Role.NORMALISER, Role.ARCHIVER}) as hub:
        first = _assert_the_rest_works(hub, "LOST-1")
        wait_until(lambda: hub.get(f"/api/v1/closures/{first}/history", headers=auth(KEYS.lille)).status_code == 200,
                   timeout=60)

        _drop(database_cluster, name)  # the database is gone under the running hub
        wait_until(lambda: hub.get(f"/api/v1/closures/{first}/history", headers=auth(KEYS.lille)).status_code == 503,
                   timeout=30)
        second = _assert_the_rest_works(hub, "LOST-2")  # written while the archive is down
        _assert_unavailable(hub, second)

        with psycopg.connect(database_cluster, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        # the archiver reconnects, finds no stored offsets and rebuilds the archive from the topics
        wait_until(lambda: count(database_url, "SELECT count(*) FROM reports WHERE key = %s", second) >= 2,
                   timeout=120)
        for cid in (first, second):
            wait_until(lambda c=cid: hub.get(f"/api/v1/closures/{c}/history",  # type: ignore[misc]
                                             headers=auth(KEYS.lille)).status_code == 200, timeout=60)
            versions = hub.get(f"/api/v1/closures/{cid}/history", headers=auth(KEYS.lille)).json()["versions"]
            assert [v["version"] for v in versions] == [1, 2]
        wait_until(lambda: hub.get("/readyz").json()["archive"]["status"] == "ok", timeout=60)
