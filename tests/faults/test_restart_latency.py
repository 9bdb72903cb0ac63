"""The 2 s promise holds right after a crash: kill -9 the hub, restart it under the same instance name,
and a DELETE leaves, a POST reaches, every feed within 2 s of the API's answer.

Before static group membership, the restarted normaliser waited in "(Re-)joining group" until the
dead member's session expired (10 s), so a closure deleted just after the restart stayed in
`cifs.xml` for more than 5 s. The clock starts at the API's answer (204/201) and the restarted hub is
ready (/readyz) before the write: the test measures the promise, not the start-up. The feeds are
polled until the condition holds (no fixed sleep); the time it took is then compared with 2 s.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx2
import pytest

from tests.faults.hubprocess import HubProcess
from tests.integration.hubs import KEYS, auth, closure_body, wait_until, write_principals
from traffic_hub.runtime import FEEDS

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

PROMISE_S = 2.0  # README: "it is in every feed within 2 s" (and leaves them as fast)
PATIENCE_S = 30.0  # how long to wait before calling the condition never met (the promise is checked apart)


def feed_bodies(client: httpx2.Client) -> dict[str, bytes] | None:
    """Every feed's bytes as a partner reads them; None while any feed is not serving (503 after a start)."""
    out: dict[str, bytes] = {}
    for path in FEEDS:
        response = client.get(f"/feeds/{path}", headers=auth(KEYS.partner))
        if response.status_code != 200:
            return None
        out[path] = response.content
    return out


def in_every_feed(client: httpx2.Client, closure_id: str) -> bool:
    bodies = feed_bodies(client)
    return bodies is not None and all(closure_id.encode() in body for body in bodies.values())


def in_no_feed(client: httpx2.Client, closure_id: str) -> bool:
    bodies = feed_bodies(client)
    return bodies is not None and not any(closure_id.encode() in body for body in bodies.values())


def seconds_until(condition: Callable[[], bool], since: float) -> float:
    """Seconds from `since` (time.monotonic) to the first poll that saw `condition` hold (an upper bound)."""
    wait_until(condition, timeout=PATIENCE_S, interval=0.02)
    return time.monotonic() - since


def crash_and_restart(hub: HubProcess) -> None:
    """SIGKILL (no goodbye to the consumer group), then start again on the same port, hence under the same
    TRAFFIC_HUB_INSTANCE; `start` returns once /readyz answers 200."""
    hub.kill()
    hub.start()


def post(client: httpx2.Client, reference: str) -> str:
    response = client.post("/api/v1/closures", json=closure_body(reference), headers=auth(KEYS.lille))
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_after_kill_9_and_restart_a_delete_and_a_post_reach_every_feed_within_2s(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    hub = HubProcess(kafka_bootstrap, topic_prefix, write_principals(tmp_path), tmp_path / "hub.log")
    hub.start()
    try:
        with httpx2.Client(base_url=hub.url, timeout=10) as client:
            doomed = post(client, "RESTART-DELETE")
            # normalised and served (and its report committed): the group is stable, the member is ours
            wait_until(lambda: in_every_feed(client, doomed), timeout=PATIENCE_S, interval=0.1)

        crash_and_restart(hub)
        with httpx2.Client(base_url=hub.url, timeout=10) as client:
            assert in_every_feed(client, doomed)  # the view was rebuilt from the events topic
            response = client.delete(f"/api/v1/closures/{doomed}", headers=auth(KEYS.lille))
            answered = time.monotonic()
            assert response.status_code == 204, response.text
            gone_after = seconds_until(lambda: in_no_feed(client, doomed), answered)

        crash_and_restart(hub)
        with httpx2.Client(base_url=hub.url, timeout=10) as client:
            response = client.post("/api/v1/closures", json=closure_body("RESTART-POST"), headers=auth(KEYS.lille))
            answered = time.monotonic()
            assert response.status_code == 201, response.text
            created = str(response.json()["id"])
            there_after = seconds_until(lambda: in_every_feed(client, created), answered)

        assert gone_after <= PROMISE_S, f"deleted closure left the feeds {gone_after:.2f}s after the 204"
        assert there_after <= PROMISE_S, f"new closure reached the feeds {there_after:.2f}s after the 201"
    finally:
        hub.stop()
