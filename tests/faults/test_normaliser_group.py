"""kill -9 one normaliser of a group of two mid-stream: the other takes over; no event lost or duplicated."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import httpx2
import pytest
from lxml import etree

from tests.faults.hubprocess import ROOT, HubProcess
from tests.integration.hubs import KEYS, auth, closure_body, wait_until, write_principals

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

CLOSURES = 120


def start_normaliser(hub: HubProcess, name: str, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "TRAFFIC_HUB_TOPIC_PREFIX": hub.prefix,
        "TRAFFIC_HUB_KAFKA__BOOTSTRAP_SERVERS": hub.bootstrap,
        "TRAFFIC_HUB_INSTANCE": name,
    }
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "traffic_hub", "normaliser"], env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT
        )


def feed_ids(url: str) -> list[str]:
    xml = httpx2.get(f"{url}/feeds/waze/cifs.xml", params={"key": KEYS.partner}, timeout=10).content
    return [str(node.get("id")) for node in etree.fromstring(xml).iter("incident")]


def test_a_killed_normaliser_hands_over_without_loss_or_duplicates(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    hub = HubProcess(kafka_bootstrap, topic_prefix, write_principals(tmp_path), tmp_path / "api.log")
    hub.start("api")  # the API and feeds only: normalising is left to the two below
    first = start_normaliser(hub, "norm-a", tmp_path / "norm-a.log")
    second = start_normaliser(hub, "norm-b", tmp_path / "norm-b.log")
    try:
        acknowledged: list[str] = []
        with httpx2.Client(base_url=hub.url, headers=auth(KEYS.lille), timeout=10) as client:
            for i in range(CLOSURES):
                response = client.post("/api/v1/closures", json=closure_body(f"GRP-{i}"))
                assert response.status_code == 201, response.text
                acknowledged.append(response.json()["id"])
                if i == CLOSURES // 3:
                    wait_until(lambda: len(feed_ids(hub.url)) > 0, timeout=30, interval=0.2)
                    os.kill(first.pid, signal.SIGKILL)  # mid-stream
        wait_until(lambda: set(acknowledged) <= set(feed_ids(hub.url)), timeout=60, interval=0.5)
        counts = Counter(feed_ids(hub.url))
        assert len(counts) == CLOSURES
        assert max(counts.values()) == 1
    finally:
        for process in (first, second):
            if process.poll() is None:
                process.terminate()
                process.wait(15)
        hub.stop()
