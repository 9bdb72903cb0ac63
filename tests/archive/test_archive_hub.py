"""Closures posted through a test hub reach the archive: every version, its geometry in PostGIS, who wrote it."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from tests.archive.conftest import count
from tests.conftest import free_port
from tests.integration.hubs import KEYS, auth, closure_body, running_hub, settings_for, wait_until, write_principals
from traffic_hub.runtime import Role

pytestmark = [pytest.mark.kafka, pytest.mark.db]


def test_closure_versions_and_reports_are_archived_with_geometry_and_principal(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path, database_url: str
) -> None:
    settings = settings_for(kafka_bootstrap, topic_prefix, write_principals(tmp_path), database_url=database_url)
    with running_hub(settings, {Role.API, Role.NORMALISER, Role.ARCHIVER}) as hub:
        created = hub.post("/api/v1/closures", json=closure_body("ARCH-1"), headers=auth(KEYS.lille))
        assert created.status_code == 201, created.text
        event_id = created.json()["id"]
        changed = hub.patch(
            f"/api/v1/closures/{event_id}", json={"description": "Travaux prolongés"}, headers=auth(KEYS.lille)
        )
        assert changed.status_code == 200, changed.text
        wait_until(
            lambda: count(database_url, "SELECT count(DISTINCT version) FROM event_versions WHERE event_id = %s",
                          event_id) >= 2,
            timeout=60,
        )
        wait_until(lambda: count(database_url, "SELECT count(*) FROM reports WHERE kind = 'closure'") >= 2, timeout=30)
    with psycopg.connect(database_url) as conn:
        principals = conn.execute("SELECT DISTINCT principal FROM reports WHERE kind = 'closure'").fetchall()
        assert principals == [("roadworks:voirie-lille",)]
        versions = conn.execute(
            "SELECT version, type, status, commune, ST_GeometryType(geom), ST_SRID(geom), event->>'description' "
            "FROM event_versions WHERE event_id = %s ORDER BY version",
            (event_id,),
        ).fetchall()
    assert [v[0] for v in versions][:2] == [1, 2]
    first, last = versions[0], versions[-1]
    assert first[1] == "closure"
    assert first[2] == "planned"  # starts tomorrow
    assert first[3] == "59350"
    assert first[4] == "ST_LineString"
    assert first[5] == 4326
    assert last[6] == "Travaux prolongés"


def test_the_api_keeps_working_when_the_database_is_down(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    down = f"postgresql://postgres:nothing@127.0.0.1:{free_port()}/traffic_hub"  # nothing listens there
    settings = settings_for(kafka_bootstrap, topic_prefix, write_principals(tmp_path), database_url=down)
    with running_hub(settings, {Role.API, Role.NORMALISER, Role.ARCHIVER}) as hub:
        created = hub.post("/api/v1/closures", json=closure_body("ARCH-DOWN"), headers=auth(KEYS.lille))
        assert created.status_code == 201, created.text
        assert hub.get(f"/api/v1/closures/{created.json()['id']}", headers=auth(KEYS.lille)).status_code == 200
        assert hub.get("/readyz").status_code == 200
