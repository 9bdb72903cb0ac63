"""A killed decision owner is replaced by a live normaliser (a hot standby), not by its own restart.

Why: the decision stage is one consumer group over a single-partition topic; with a long session the
partition idled until the killed owner was restarted (5 s on a quiet machine, minutes on a saturated
one), and nothing was decided meanwhile. The brokers of the local cluster allow the normalisers' 1.5 s
group session (`group.min.session.timeout.ms=1000`), so a survivor takes the partition 1.5 s after the
kill. Here the owner is killed with SIGKILL and never restarted: closures posted after the kill must
reach the feed all the same, decided by the other process, which used the fast session (neither log
says the broker refused it). The takeover time is printed, not asserted (a loaded machine).
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
from pathlib import Path

import httpx2
import pytest

from tests.cluster.conftest import Cluster
from tests.faults.hubprocess import HubProcess
from tests.faults.test_normaliser_group import feed_ids, start_normaliser
from tests.integration.hubs import KEYS, auth, closure_body, wait_until, write_principals
from tests.kafkarun import run_name

pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.timeout(600)]

OWNER = re.compile(r"^(\S+ \S+) INFO traffic_hub\.normaliser\.service: normaliser decision: owner of", re.MULTILINE)
REFUSED = "refuses a 1500 ms group session"


def post(url: str, reference: str) -> str:
    with httpx2.Client(base_url=url, headers=auth(KEYS.lille), timeout=30) as client:
        response = client.post("/api/v1/closures", json=closure_body(reference))
        assert response.status_code == 201, response.text
        return str(response.json()["id"])


def owner_lines(log: Path) -> list[str]:
    return OWNER.findall(log.read_text(encoding="utf-8", errors="replace"))


def test_a_killed_decision_owner_is_replaced_by_a_live_normaliser_without_its_restart(
    cluster: Cluster, tmp_path: Path
) -> None:
    hub = HubProcess(cluster.bootstrap, run_name("standby"), write_principals(tmp_path), tmp_path / "api.log")
    hub.start("api")
    logs = {name: tmp_path / f"{name}.log" for name in ("norm-a", "norm-b")}
    processes: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for name, log in logs.items():
            processes[name] = start_normaliser(hub, name, log)
        first = post(hub.url, "STANDBY-BEFORE")
        wait_until(lambda: first in feed_ids(hub.url), timeout=180, interval=0.2)
        # the owner now: the process whose latest "owner of" line is the latest (the partition may have
        # moved once while the second process joined)
        latest = {name: max(owner_lines(log), default="") for name, log in logs.items()}
        owner = max(latest, key=lambda name: latest[name])
        survivor = next(name for name in logs if name != owner)
        handovers_before = len(owner_lines(logs[survivor]))

        processes[owner].send_signal(signal.SIGKILL)
        processes[owner].wait(30)
        killed = time.monotonic()
        after = post(hub.url, "STANDBY-AFTER")
        wait_until(lambda: after in feed_ids(hub.url), timeout=180, interval=0.1)
        print(f"\nclosure posted after the owner's SIGKILL in the feed {time.monotonic() - killed:.1f} s after it")

        assert processes[owner].poll() is not None  # decided without the killed process
        assert len(owner_lines(logs[survivor])) > handovers_before, "the survivor never took the decision partition"
        for name, log in logs.items():
            assert REFUSED not in log.read_text(encoding="utf-8", errors="replace"), name
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.terminate()
        for process in processes.values():
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        hub.stop()
