"""Broker down under load: writes get 503 within 2 s, reads keep serving, everything recovers by itself."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.faults.brokers import Broker, private_broker
from tests.integration.hubs import KEYS, auth, closure_body, running_hub, settings_for, wait_until, write_principals

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


@pytest.fixture(scope="module")
def broker() -> Iterator[Broker]:
    with private_broker(19192) as broker:
        yield broker


def test_writes_fail_fast_reads_continue_and_the_hub_recovers(broker: Broker, tmp_path: Path) -> None:
    settings = settings_for(broker.bootstrap, "outage", write_principals(tmp_path))
    with running_hub(settings) as hub:
        before = hub.post("/api/v1/closures", json=closure_body("OUT-0"), headers=auth(KEYS.lille))
        assert before.status_code == 201
        cid = before.json()["id"]
        wait_until(lambda: cid in hub.get("/feeds/waze/cifs.xml", headers=auth(KEYS.partner)).text)
        acknowledged = {cid}

        broker.down()
        wait_until(lambda: hub.get("/readyz").status_code == 503, timeout=5)
        # writes: a fast 503 with Retry-After, never a hang or a 500, from several clients at once
        def attempt(i: int) -> tuple[int, float, str | None]:
            started = time.monotonic()
            response = hub.post("/api/v1/closures", json=closure_body(f"OUT-{i}"), headers=auth(KEYS.lille))
            return response.status_code, time.monotonic() - started, response.headers.get("retry-after")

        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(attempt, range(1, 17)))
        assert {status for status, _, _ in results} == {503}
        assert max(took for _, took, _ in results) < 2.0
        assert all(retry is not None and int(retry) >= 1 for _, _, retry in results)
        # reads keep serving the last state
        feed = hub.get("/feeds/waze/cifs.xml", headers=auth(KEYS.partner))
        assert feed.status_code == 200
        assert cid in feed.text
        assert hub.get(f"/api/v1/closures/{cid}", headers=auth(KEYS.lille)).status_code == 200

        broker.up()
        # recovery by itself: writes are accepted again, and reach the feed
        def accepted() -> bool:
            response = hub.post("/api/v1/closures", json=closure_body("OUT-after"), headers=auth(KEYS.lille))
            if response.status_code in (200, 201):
                acknowledged.add(response.json()["id"])
                return True
            assert response.status_code == 503, response.text
            return False

        wait_until(accepted, timeout=60, interval=0.5)
        wait_until(lambda: hub.get("/readyz").status_code == 200, timeout=30)
        wait_until(
            lambda: all(a in hub.get("/feeds/waze/cifs.xml", headers=auth(KEYS.partner)).text for a in acknowledged),
            timeout=30,
        )
