"""The hub's roles as separate processes (`traffic-hub api | normaliser | connectors`) that can be SIGKILLed.

Why: the chaos run and the cluster bench scale each role out the way a deployment does (one process
per instance, each with its own stable `TRAFFIC_HUB_INSTANCE`, every API replica told the same public
URL), kill one with SIGKILL and start it again under the same name and port, as a supervisor would.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx2

from loadtests.hubproc import free_port

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True, slots=True)
class Deployment:
    """What every process of one hub shares: brokers, topics, keys, sources, public address."""

    bootstrap: str
    prefix: str
    auth_file: Path
    workdir: Path
    public_url: str
    connectors_file: Path | None = None
    replication: int = 3

    def env(self, instance: str) -> dict[str, str]:
        env = {
            **os.environ,
            "TRAFFIC_HUB_KAFKA__BOOTSTRAP_SERVERS": self.bootstrap,
            "TRAFFIC_HUB_KAFKA__REPLICATION_FACTOR": str(self.replication),
            "TRAFFIC_HUB_KAFKA__SINGLE_BROKER_OK": "true" if self.replication < 3 else "false",
            "TRAFFIC_HUB_TOPIC_PREFIX": self.prefix,
            "TRAFFIC_HUB_AUTH_FILE": str(self.auth_file),
            "TRAFFIC_HUB_DEMO": "false",
            "TRAFFIC_HUB_INSTANCE": instance,
            "TRAFFIC_HUB_PUBLIC_URL": self.public_url,
            "TRAFFIC_HUB_METRICS__PORT": "0",
            "TRAFFIC_HUB_HTTP_HOST": "127.0.0.1",
        }
        env.pop("TRAFFIC_HUB_KAFKA__MIN_INSYNC_REPLICAS", None)  # follows the replication factor
        env.pop("TRAFFIC_HUB_DATABASE_URL", None)
        if self.connectors_file is not None:
            env["TRAFFIC_HUB_CONNECTORS_FILE"] = str(self.connectors_file)
        else:
            env.pop("TRAFFIC_HUB_CONNECTORS_FILE", None)
        return env


@dataclass
class RoleProcess:
    """One process of one role; `start` again after `kill` reuses its instance name (and port, for an API)."""

    deployment: Deployment
    role: str  # "api", "normaliser", "connectors" (or "run": every role in one process)
    name: str  # e.g. "api-1": the instance is "<prefix>-<name>"
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    kills: int = 0
    log_offset: int = 0  # where this start's lines begin in the (appended) log

    @property
    def instance(self) -> str:
        return f"{self.deployment.prefix}-{self.name}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.deployment.workdir / f"{self.name}.log"

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        env = self.deployment.env(self.instance)
        self.log_offset = self.log.stat().st_size if self.log.exists() else 0
        if self.role in ("api", "run"):
            env["TRAFFIC_HUB_HTTP_PORT"] = str(self.port)
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "traffic_hub", self.role], env=env, stdout=out, stderr=subprocess.STDOUT,
                cwd=ROOT,
            )
        self.started_at = time.monotonic()

    def ready(self) -> bool:
        """An API replica: /readyz answers 200. A headless role: the process is up and says it runs its role."""
        if self.process is None or self.process.poll() is not None:
            code = None if self.process is None else self.process.returncode
            raise RuntimeError(f"{self.name} is not running (exit {code}); see {self.log}:\n{self.tail()}")
        if self.role in ("api", "run"):
            try:
                return httpx2.get(f"{self.url}/readyz", timeout=2).status_code == 200
            except httpx2.HTTPError:
                return False
        return f"running roles: {self.role}".encode() in self._log_since_start()

    def _log_since_start(self) -> bytes:
        try:
            with self.log.open("rb") as log:
                log.seek(self.log_offset)
                return log.read()[-200_000:]
        except OSError:
            return b""

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self._log_since_start().decode("utf-8", "replace").splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL: no orderly shutdown, no LeaveGroup, in-flight requests cut."""
        self.sigkill()
        self.reap()

    def sigkill(self) -> None:
        """Send SIGKILL and return at once (several victims of one fault die at the same moment); `reap` next."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)

    def reap(self) -> None:
        """Wait for the killed process to be gone."""
        assert self.process is not None
        self.process.wait(30)
        self.kills += 1

    def terminate(self) -> None:
        """SIGTERM without waiting (stop many at once, then `stop` each)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)

    def cpu_s(self) -> float:
        """User + system CPU seconds of the running process (from /proc)."""
        if self.process is None:
            return 0.0
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
