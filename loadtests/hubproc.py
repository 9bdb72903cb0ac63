"""A hub in its own process (`python -m traffic_hub run`) on a loopback port, with bench keys.

The same way the fault tests start one (`tests/faults/hubprocess.py`): environment variables for
the port, topic prefix, principals file and broker; `/readyz` tells when it serves.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx2

from loadtests.broker import ROOT, bootstrap
from traffic_hub.auth import hash_key

ROADWORKS_KEY = "bench-key-voirie-lille"
PARTNER_KEY = "bench-key-waze"
ROADWORKS_TEAM = "bench-voirie-lille"
LILLE = "59350"


def principals_toml() -> str:
    return (
        f'[[principals]]\nname = "{ROADWORKS_TEAM}"\nrole = "roadworks"\ncommunes = ["{LILLE}"]\n'
        f'key_sha256 = "{hash_key(ROADWORKS_KEY)}"\n\n'
        f'[[principals]]\nname = "bench-waze"\nrole = "partner"\ncommunes = []\n'
        f'key_sha256 = "{hash_key(PARTNER_KEY)}"\n'
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate: Callable[[], bool], timeout_s: float, interval_s: float = 0.2) -> float:
    """Seconds until `predicate` held; TimeoutError after `timeout_s`."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout_s:
            raise TimeoutError(f"not within {timeout_s:.0f} s")
        time.sleep(interval_s)
    return time.monotonic() - started


@dataclass
class Hub:
    process: subprocess.Popen[bytes]
    prefix: str
    port: int
    log: Path
    started_in_s: float = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rss_mib(self, field: str = "VmRSS") -> float:
        """Resident memory of the hub process (`VmHWM` for its peak)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
        raise LookupError(field)

    def ready(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"the hub exited with {self.process.returncode}; see {self.log}")
        try:
            return httpx2.get(f"{self.url}/readyz", timeout=2).status_code == 200
        except httpx2.HTTPError:
            return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


@contextmanager
def running_hub(
    prefix: str,
    workdir: Path,
    ready_timeout_s: float = 180.0,
    extra_env: dict[str, str] | None = None,
    port: int | None = None,
) -> Iterator[Hub]:
    """Start a hub on topics `prefix`, wait for /readyz, stop it (SIGTERM, then SIGKILL) on exit.

    `port`: the one of a hub started before (a restart: same address, same instance name)."""
    auth = workdir / "principals.toml"
    auth.write_text(principals_toml(), encoding="utf-8")
    port = port or free_port()
    env = {
        **os.environ,
        "TRAFFIC_HUB_HTTP_HOST": "127.0.0.1",
        "TRAFFIC_HUB_HTTP_PORT": str(port),
        "TRAFFIC_HUB_TOPIC_PREFIX": prefix,
        "TRAFFIC_HUB_AUTH_FILE": str(auth),
        "TRAFFIC_HUB_KAFKA__BOOTSTRAP_SERVERS": bootstrap(),
        "TRAFFIC_HUB_DEMO": "false",
        "TRAFFIC_HUB_INSTANCE": f"{prefix}-{port}",
        "TRAFFIC_HUB_PUBLIC_URL": f"http://127.0.0.1:{port}",
        **(extra_env or {}),
    }
    env.pop("TRAFFIC_HUB_CONNECTORS_FILE", None)
    log = workdir / f"hub-{prefix}.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "traffic_hub", "run"], env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT
        )
    hub = Hub(process, prefix, port, log)
    try:
        hub.started_in_s = wait_for(hub.ready, ready_timeout_s)
        yield hub
    except BaseException:
        tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-40:]
        print("[loadtests] the hub's last log lines:\n" + "\n".join(tail), file=sys.stderr)
        raise
    finally:
        _stop(process)
