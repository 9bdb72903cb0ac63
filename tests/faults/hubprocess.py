"""A hub in its own process (`traffic-hub run`), so that tests can kill it with SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx2

from tests.conftest import free_port
from tests.integration.hubs import wait_until, write_principals
from tests.kafkarun import run_name

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class HubProcess:
    bootstrap: str
    prefix: str
    auth_file: Path
    log: Path
    port: int = field(default_factory=free_port)
    metrics_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def start(self, command: str = "run") -> None:
        env = {
            **os.environ,
            "TRAFFIC_HUB_HTTP_PORT": str(self.port),
            "TRAFFIC_HUB_METRICS__PORT": str(self.metrics_port),
            "TRAFFIC_HUB_TOPIC_PREFIX": self.prefix,
            "TRAFFIC_HUB_AUTH_FILE": str(self.auth_file),
            "TRAFFIC_HUB_KAFKA__BOOTSTRAP_SERVERS": self.bootstrap,
            "TRAFFIC_HUB_DEMO": "false",
            "TRAFFIC_HUB_INSTANCE": f"{self.prefix}-{self.port}",
        }
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "traffic_hub", command], env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT
            )
        wait_until(self.ready, timeout=60, interval=0.2)

    def ready(self) -> bool:
        try:
            return httpx2.get(f"{self.url}/readyz", timeout=1).status_code == 200
        except httpx2.HTTPError:
            return False

    def kill(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


@contextmanager
def started_hub(bootstrap: str, directory: Path, label: str, command: str = "run") -> Iterator[HubProcess]:
    """A hub on run-scoped topics, with its keys and log in ``directory``, stopped on exit."""
    hub = HubProcess(bootstrap, run_name(label), write_principals(directory), directory / "hub.log")
    try:  # a start whose readiness times out still stops the process it launched
        hub.start(command)
        yield hub
    finally:
        hub.stop()
