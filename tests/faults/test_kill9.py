"""kill -9 the hub while 16 clients post closures: after a restart every acknowledged closure is served, none twice."""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2
import pytest
from lxml import etree

from tests.faults.hubprocess import HubProcess
from tests.integration.hubs import KEYS, auth, closure_body, wait_until, write_principals

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

CLIENTS = 16


def _post_until_killed(url: str, client_no: int, stop: threading.Event, acknowledged: list[str]) -> None:
    n = 0
    with httpx2.Client(base_url=url, headers=auth(KEYS.lille), timeout=5) as client:
        while not stop.is_set():
            n += 1
            try:
                response = client.post("/api/v1/closures", json=closure_body(f"K9-{client_no}-{n}"))
            except httpx2.HTTPError:
                return  # the hub died under us: this one was not acknowledged
            if response.status_code == 201:
                acknowledged.append(response.json()["id"])


def _all_closures(url: str) -> list[str]:
    ids: list[str] = []
    cursor: str | None = None
    with httpx2.Client(base_url=url, headers=auth(KEYS.admin), timeout=10) as client:
        while True:
            params: dict[str, str | int] = {"limit": 500}
            if cursor:
                params["cursor"] = cursor
            page = client.get("/api/v1/closures", params=params).json()
            ids.extend(item["id"] for item in page["items"])
            cursor = page["next"]
            if not cursor:
                return ids


def _feed_ids(url: str) -> list[str]:
    xml = httpx2.get(f"{url}/feeds/waze/cifs.xml", params={"key": KEYS.partner}, timeout=10).content
    return [str(node.get("id")) for node in etree.fromstring(xml).iter("incident")]


def test_sigkill_under_load_loses_and_duplicates_nothing(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    hub = HubProcess(kafka_bootstrap, topic_prefix, write_principals(tmp_path), tmp_path / "hub.log")
    hub.start()
    stop = threading.Event()
    acknowledged: list[str] = []
    try:
        with ThreadPoolExecutor(CLIENTS) as pool:
            for i in range(CLIENTS):
                pool.submit(_post_until_killed, hub.url, i, stop, acknowledged)
            wait_until(lambda: len(acknowledged) >= 100, timeout=60, interval=0.05)
            hub.kill()
            stop.set()
        killed_at = len(acknowledged)
        assert killed_at >= 100

        hub.start()
        wait_until(lambda: set(acknowledged) <= set(_all_closures(hub.url)), timeout=30, interval=0.5)
        listed = _all_closures(hub.url)
        assert len(listed) == len(set(listed))
        wait_until(lambda: set(acknowledged) <= set(_feed_ids(hub.url)), timeout=30, interval=0.5)
        counts = Counter(_feed_ids(hub.url))
        assert max(counts.values()) == 1
    finally:
        stop.set()
        hub.stop()
        time.sleep(0.1)
