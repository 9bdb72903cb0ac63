"""SSE: every change arrives live; Last-Event-ID resumes exactly where the client was."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.integration.hubs import KEYS, auth, closure_body, running_hub, settings_for, wait_until, write_principals

pytestmark = pytest.mark.kafka


@pytest.fixture
def hub(kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> Iterator[TestClient]:
    with running_hub(settings_for(kafka_bootstrap, topic_prefix, write_principals(tmp_path))) as client:
        yield client


def read_events(client: TestClient, count: int, headers: dict[str, str]) -> list[dict[str, Any]]:
    """The first `count` SSE events of a fresh connection (id, event, data)."""
    out: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    with client.stream("GET", "/api/v1/events/stream", params={"key": KEYS.operator}, headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith(("id:", "event:", "data:")):
                name, _, value = line.partition(":")
                current[name] = json.loads(value) if name == "data" else value.strip()
            elif line == "" and current:
                out.append(current)
                current = {}
                if len(out) == count:
                    return out
    return out


def test_stream_snapshot_then_changes_and_resume(hub: TestClient) -> None:
    first = hub.post("/api/v1/closures", json=closure_body("SSE-1"), headers=auth(KEYS.lille)).json()["id"]
    wait_until(lambda: hub.get(f"/api/v1/events/{first}", headers=auth(KEYS.operator)).status_code == 200)
    # a fresh client gets a reset with the current state
    events = read_events(hub, 1, {})
    assert events[0]["event"] == "reset"
    assert [f["id"] for f in events[0]["data"]["features"]] == [first]
    resume_from = events[0]["id"]
    second = hub.post("/api/v1/closures", json=closure_body("SSE-2"), headers=auth(KEYS.lille)).json()["id"]
    hub.delete(f"/api/v1/closures/{second}", headers=auth(KEYS.lille))
    # resuming from the reset's id gives exactly what happened since, in order
    def cancelled() -> bool:  # 404 until the normaliser has written the event
        response = hub.get(f"/api/v1/events/{second}", headers=auth(KEYS.operator))
        return response.status_code == 200 and response.json()["properties"]["status"] == "cancelled"

    wait_until(cancelled)
    missed = read_events(hub, 2, {"Last-Event-ID": resume_from})
    assert [(e["event"], e["data"]["id"]) for e in missed] == [("created", second), ("updated", second)]
    assert missed[1]["data"]["event"]["properties"]["status"] == "cancelled"
    assert missed[1]["id"].startswith(resume_from.split("-")[0])
    # an id from another process (or garbage) starts again from a snapshot
    assert read_events(hub, 1, {"Last-Event-ID": "deadbeef-3"})[0]["event"] == "reset"
