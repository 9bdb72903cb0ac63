"""A real three-broker Kafka cluster for the tests that lose a broker (`ops/kafka/cluster-local.sh`).

Its controllers are three processes of their own (c1-c3) unless TRAFFIC_HUB_KAFKA_CONTROLLERS=combined.

The session fixture starts the cluster when it is not running (and stops it at the end of the run; a
cluster that was already up is left up), and deletes the topics this run created. Tests kill and restart
nodes through the same script as `make cluster-kill` / `make cluster-start`, and leave every node running.
Figures measured by the tests (cluster-up time, write windows) are printed at the end of the run.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.kafkarun import delete_run_topics

SCRIPT = Path(__file__).resolve().parents[2] / "ops" / "kafka" / "cluster-local.sh"
FIGURES: dict[str, str] = {}


def cluster_env() -> dict[str, str]:
    """The environment of the script: the single broker's run dir and controller port are not the cluster's."""
    single = {"TRAFFIC_HUB_KAFKA_RUN_DIR", "TRAFFIC_HUB_KAFKA_CONTROLLER_PORT"}
    return {k: v for k, v in os.environ.items() if k not in single}


def script(*args: str, timeout: float = 600) -> str:
    """Run cluster-local.sh; its stdout (fails the test with its stderr when it fails)."""
    done = subprocess.run(
        ["bash", str(SCRIPT), *args], env=cluster_env(), capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, f"cluster-local.sh {' '.join(args)} failed:\n{done.stderr[-3000:]}"
    return done.stdout


@dataclass
class Cluster:
    bootstrap: str
    figures: dict[str, str] = field(default_factory=lambda: FIGURES)

    @property
    def ports(self) -> list[int]:
        return [int(server.rpartition(":")[2]) for server in self.bootstrap.split(",")]

    @property
    def dedicated(self) -> bool:
        """Controllers are processes of their own (the default), not the brokers' other half."""
        return os.environ.get("TRAFFIC_HUB_KAFKA_CONTROLLERS", "dedicated") != "combined"

    def kill(self, node: int | str) -> None:
        """SIGKILL broker `node` (1-3) or controller `node` ("c1"-"c3", or on a combined cluster 1-3)."""
        script("kill", str(node), timeout=60)

    def start(self, node: int | str) -> float:
        """Start node `node` again; returns the seconds until it had rejoined (registered, unfenced)."""
        started = time.monotonic()
        script("start", str(node))
        return time.monotonic() - started

    def controller(self) -> str:
        """The node leading the KRaft quorum, named as `kill` takes it ("c1"…, or "1"… on a combined cluster)."""
        return script("controller", timeout=30).strip()

    def controller_if_elected(self) -> str | None:
        """The active controller, or None while the quorum is electing one (an expected, brief state)."""
        done = subprocess.run(
            ["bash", str(SCRIPT), "controller"], env=cluster_env(), capture_output=True, text=True, timeout=30
        )
        if done.returncode != 0 and "no controller elected yet" in done.stderr:
            return None
        assert done.returncode == 0, f"cluster-local.sh controller failed:\n{done.stderr[-3000:]}"
        return done.stdout.strip()

    def serving(self) -> list[int]:
        """The brokers the cluster lists (registered and unfenced), from any node that answers."""
        done = subprocess.run(["bash", str(SCRIPT), "status"], env=cluster_env(), capture_output=True, text=True)
        for line in done.stderr.splitlines():
            if "brokers registered: [" in line:
                return [int(n) for n in line.rpartition("[")[2].rstrip("]").split()]
        return []


def cluster_running() -> bool:
    return subprocess.run(["bash", str(SCRIPT), "status"], env=cluster_env(), capture_output=True).returncode == 0


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FIGURES:
        terminalreporter.section("three-node cluster: measured")
        for name, value in FIGURES.items():
            terminalreporter.write_line(f"{name}: {value}")


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    already = cluster_running()
    started = time.monotonic()
    bootstrap = script("up").strip().splitlines()[-1]
    if not already:
        FIGURES["cluster-up (make cluster-up, from nothing running)"] = f"{time.monotonic() - started:.1f} s"
    assert bootstrap.count(",") == 2, bootstrap
    yield Cluster(bootstrap)
    asyncio.run(delete_run_topics(bootstrap))
    if not already:
        stopping = time.monotonic()
        script("down")
        FIGURES["cluster-down"] = f"{time.monotonic() - stopping:.1f} s"
