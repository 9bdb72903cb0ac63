"""The analytics routes on a test hub over the real database: who sees what, 422s naming the field, a fast 503."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.archive.analytics_seed import SOLFERINO, jam, monday_of_last_week
from tests.archive.test_analytics import _closure_now, _weekday_closure
from tests.conftest import free_port
from tests.integration.hubs import KEYS, auth, running_hub, settings_for, write_principals
from traffic_hub.runtime import Role

pytestmark = [pytest.mark.kafka, pytest.mark.db]


def test_analytics_routes_answer_by_role_and_scope(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path, database_url: str
) -> None:
    now = datetime.now(UTC)
    week = monday_of_last_week(now)
    archive = _weekday_closure(week)
    archive.events.append(_closure_now("flagged", now))
    archive.reports += [jam("flow", now - timedelta(hours=4 - n), SOLFERINO, 30, 300, speed=25) for n in range(2)]
    archive.write(database_url)
    settings = settings_for(kafka_bootstrap, topic_prefix, write_principals(tmp_path), database_url=database_url)
    period = {"from": week.isoformat(), "to": (week + timedelta(days=7)).isoformat()}
    with running_hub(settings, {Role.API}) as hub:
        report = hub.get("/api/v1/analytics/closures/c-1/impact", headers=auth(KEYS.operator))
        assert report.status_code == 200, report.text
        assert report.json()["impact"]["extra_delay_s"] == 4.0
        assert report.json()["reality_check"]["flagged"] is False
        assert hub.get("/api/v1/analytics/closures/c-1/impact", headers=auth(KEYS.lille)).status_code == 200
        assert hub.get("/api/v1/analytics/closures/c-1/impact", headers=auth(KEYS.roubaix)).status_code == 403
        assert hub.get("/api/v1/analytics/closures/c-1/impact", headers=auth(KEYS.partner)).status_code == 403
        assert hub.get("/api/v1/analytics/closures/nope/impact", headers=auth(KEYS.operator)).status_code == 404

        ranked = hub.get("/api/v1/analytics/closures/impact", params=period, headers=auth(KEYS.operator)).json()
        assert ranked["items"][0]["closure"]["id"] == "c-1"  # most impact first
        flags = hub.get("/api/v1/analytics/reality-check", headers=auth(KEYS.lille)).json()
        assert [i["closure_id"] for i in flags["items"]] == ["flagged"]  # voirie-lille owns it
        assert hub.get("/api/v1/analytics/reality-check", headers=auth(KEYS.roubaix)).json()["items"] == []

        jams = hub.get("/api/v1/analytics/jams", params=period, headers=auth(KEYS.operator))
        assert jams.status_code == 200, jams.text
        segments = jams.json()["segments"]  # from the hourly roll-up: Tuesday 09h 300 s + Saturday 10h 900 s
        assert [(s["segment"], s["delay_s_sum"], s["baseline_delay_s_sum"]) for s in segments[:2]] == [
            ("Rue Nationale|Lille|E", 1200.0, 100.0), ("Rue Loin|Lille|E", 900.0, 0.0)]
        assert hub.get("/api/v1/analytics/jams", headers=auth(KEYS.lille)).status_code == 403  # Waze's data
        assert hub.get("/api/v1/analytics/incidents", headers=auth(KEYS.lille)).status_code == 200
        foreign = hub.get("/api/v1/analytics/incidents", params={"commune": "59512"}, headers=auth(KEYS.lille))
        assert foreign.status_code == 403

        for params, field in (
            ({"from": period["to"], "to": period["from"]}, "from"),
            ({"from": "2026-01-01T00:00:00"}, "from"),
            ({"radius_m": "1"}, "radius_m"),
            ({"type": "meteor"}, "type"),
        ):
            path = "/api/v1/analytics/closures/impact" if "radius_m" in params else "/api/v1/analytics/incidents"
            bad = hub.get(path, params=params, headers=auth(KEYS.operator))
            assert bad.status_code == 422, (params, bad.text)
            assert bad.headers["content-type"].startswith("application/problem+json")
            assert field in bad.text, (params, bad.text)


def test_analytics_answer_503_fast_when_the_database_is_down(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    down = f"postgresql://postgres:nothing@127.0.0.1:{free_port()}/traffic_hub"  # nothing listens there
    settings = settings_for(kafka_bootstrap, topic_prefix, write_principals(tmp_path), database_url=down)
    with running_hub(settings, {Role.API}) as hub:
        answer = hub.get("/api/v1/analytics/closures/impact", headers=auth(KEYS.operator))  # refused at once
        assert answer.status_code == 503, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert int(answer.headers["retry-after"]) > 0
        assert hub.get("/readyz").status_code == 200
