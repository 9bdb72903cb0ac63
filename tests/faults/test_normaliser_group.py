"""kill -9 one normaliser of a group of two mid-stream: the other takes over; no event lost or duplicated.

`api_and_normalisers` starts the API process and the normalisers of such tests and stops every one of them
whatever happens, a readiness that times out included (a process left running would hold its ports and
keep consuming from the shared broker long after the test failed).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx2
import pytest
from lxml import etree

from tests.conftest import free_port
from tests.faults import hubprocess
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


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, and SIGKILL if it is still there 15 s later (both no-ops on a process that has exited)."""
    process.terminate()
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(15)
    process.kill()
    process.wait(10)


@contextmanager
def api_and_normalisers(
    bootstrap: str, prefix: str, directory: Path, normalisers: dict[str, str]
) -> Iterator[tuple[HubProcess, list[subprocess.Popen[bytes]]]]:
    """An API process (ready), then a normaliser process per entry of `normalisers` (log name → instance
    name; log `<log name>.log` in `directory`); every process started is stopped on exit (the last started
    first), also when the API never gets ready or another stop fails."""
    hub = HubProcess(bootstrap, prefix, write_principals(directory), directory / "api.log")
    processes: list[subprocess.Popen[bytes]] = []
    with ExitStack() as stops:
        stops.callback(hub.stop)
        hub.start("api")  # the API and feeds only: normalising is left to the processes below
        for log, instance in normalisers.items():
            processes.append(start_normaliser(hub, instance, directory / f"{log}.log"))
            stops.callback(stop_process, processes[-1])
        yield hub, processes


def feed_ids(url: str) -> list[str]:
    xml = httpx2.get(f"{url}/feeds/waze/cifs.xml", params={"key": KEYS.partner}, timeout=10).content
    return [str(node.get("id")) for node in etree.fromstring(xml).iter("incident")]


def test_a_killed_normaliser_hands_over_without_loss_or_duplicates(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    names = {"norm-a": "norm-a", "norm-b": "norm-b"}
    with api_and_normalisers(kafka_bootstrap, topic_prefix, tmp_path, names) as (hub, normalisers):
        acknowledged: list[str] = []
        with httpx2.Client(base_url=hub.url, headers=auth(KEYS.lille), timeout=10) as client:
            for i in range(CLOSURES):
                response = client.post("/api/v1/closures", json=closure_body(f"GRP-{i}"))
                assert response.status_code == 201, response.text
                acknowledged.append(response.json()["id"])
                if i == CLOSURES // 3:
                    # the normalisers' start (imports, road network) took 35 s on the loaded 2-core machine
                    wait_until(lambda: len(feed_ids(hub.url)) > 0, timeout=90, interval=0.2)
                    os.kill(normalisers[0].pid, signal.SIGKILL)  # mid-stream
        wait_until(lambda: set(acknowledged) <= set(feed_ids(hub.url)), timeout=60, interval=0.5)
        counts = Counter(feed_ids(hub.url))
        assert len(counts) == CLOSURES
        assert max(counts.values()) == 1


def test_an_api_that_never_gets_ready_is_stopped_and_no_normaliser_is_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[HubProcess] = []
    real_start = HubProcess.start

    def start(hub: HubProcess, command: str = "run") -> None:
        started.append(hub)
        real_start(hub, command)

    def not_ready(*_: object, **__: object) -> float:  # what wait_until does when readiness times out
        raise AssertionError("condition not met within 60s")

    monkeypatch.setattr(HubProcess, "start", start)
    monkeypatch.setattr(hubprocess, "wait_until", not_ready)
    closed = f"127.0.0.1:{free_port()}"  # no broker needed: the process is stopped before it would use one
    with (
        pytest.raises(AssertionError, match="not met"),
        api_and_normalisers(closed, "never", tmp_path, {"norm": "norm"}),
    ):
        pytest.fail("the body must not run")
    [hub] = started
    assert hub.process is not None
    assert hub.process.poll() is not None  # stopped, not left running
    assert not (tmp_path / "norm.log").exists()  # no normaliser was started
