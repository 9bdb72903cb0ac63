"""The local three-node Kafka cluster (`ops/kafka/cluster-local.sh`) as the chaos run and the cluster bench use it.

Why a module: the chaos run, the cluster rows of `make bench` and the short chaos test all start the
cluster when it is not running, kill and restart nodes, and ask which node is the active controller,
through the same script as `make cluster-up / cluster-kill / cluster-start`, so what they measure is
what an operator would do by hand. Ports follow `TRAFFIC_HUB_KAFKA_PORT` like the script's, the topology
`TRAFFIC_HUB_KAFKA_CONTROLLERS` (dedicated controllers c1-c3 by default, or combined broker+controller nodes).
A node is named as the script names it: "1"-"3" for a broker (its broker id), "c1"-"c3" for a dedicated
controller.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "ops" / "kafka" / "cluster-local.sh"
BROKERS = ("1", "2", "3")


def dedicated() -> bool:
    """Controllers are processes of their own (the default), not the brokers' other half."""
    return os.environ.get("TRAFFIC_HUB_KAFKA_CONTROLLERS", "dedicated") != "combined"


def script_env() -> dict[str, str]:
    """The script's environment: the single broker's run dir and controller port are not the cluster's."""
    single = {"TRAFFIC_HUB_KAFKA_RUN_DIR", "TRAFFIC_HUB_KAFKA_CONTROLLER_PORT", "TRAFFIC_HUB_KAFKA__BOOTSTRAP_SERVERS"}
    return {k: v for k, v in os.environ.items() if k not in single}


class ClusterError(RuntimeError):
    """cluster-local.sh failed; the message carries the end of its stderr."""


def run_script(*args: str, timeout_s: float = 600.0) -> str:
    """Run cluster-local.sh; its stdout (ClusterError with its stderr when it fails)."""
    done = subprocess.run(
        ["bash", str(SCRIPT), *args], env=script_env(), capture_output=True, text=True, timeout=timeout_s, check=False
    )
    if done.returncode != 0:
        raise ClusterError(f"cluster-local.sh {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def running() -> bool:
    """Every node serves (three brokers registered, and the dedicated controllers answer)."""
    done = subprocess.run(
        ["bash", str(SCRIPT), "status"], env=script_env(), capture_output=True, timeout=120, check=False
    )
    return done.returncode == 0


@dataclass(frozen=True, slots=True)
class Cluster:
    """A running cluster: its bootstrap list, and whether this process started it (then it stops it)."""

    bootstrap: str
    started_here: bool
    up_s: float

    def kill(self, node: str) -> None:
        """SIGKILL node `node` (`make cluster-kill N=…`): a machine lost, no orderly shutdown."""
        run_script("kill", str(node), timeout_s=60)

    def pid(self, node: str) -> int:
        """Node `node`'s process id (ClusterError when it is not running)."""
        return int(run_script("pid", str(node), timeout_s=60).strip())

    async def apid(self, node: str) -> int:
        return await asyncio.to_thread(self.pid, node)

    def start(self, node: str) -> float:
        """Start node `node` again; seconds until it has rejoined (registered, unfenced)."""
        started = time.monotonic()
        run_script("start", str(node))
        return time.monotonic() - started

    def controller(self) -> str | None:
        """The node leading the KRaft quorum (the active controller: "c1"… or, combined, "1"…); None while one is
        being elected."""
        done = subprocess.run(
            ["bash", str(SCRIPT), "controller"], env=script_env(), capture_output=True, text=True, timeout=60,
            check=False,
        )
        if done.returncode != 0:
            if "no controller elected yet" in done.stderr:
                return None
            raise ClusterError(f"cluster-local.sh controller failed:\n{done.stderr[-3000:]}")
        return done.stdout.strip()

    async def astart(self, node: str) -> float:
        return await asyncio.to_thread(self.start, node)

    async def acontroller(self, deadline_s: float = 60.0) -> str:
        """The active controller, waiting (bounded) through an election."""
        started = time.monotonic()
        while (node := await asyncio.to_thread(self.controller)) is None:
            if time.monotonic() - started > deadline_s:
                raise ClusterError(f"no controller elected within {deadline_s:.0f} s")
            await asyncio.sleep(0.2)
        return node


def ensure_up() -> Cluster:
    """The cluster, started (`cluster-local.sh up`, idempotent) when it is not running."""
    already = running()
    started = time.monotonic()
    bootstrap = run_script("up").strip().splitlines()[-1]
    if bootstrap.count(",") != 2:
        raise ClusterError(f"cluster-local.sh up printed {bootstrap!r}, not three brokers")
    return Cluster(bootstrap, started_here=not already, up_s=time.monotonic() - started)


def stop(cluster: Cluster) -> None:
    """Stop the cluster if this process started it; a cluster found running is left running."""
    if cluster.started_here:
        run_script("down")
