"""A second, private Kafka broker that fault tests may stop and start without disturbing the others."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "ops" / "kafka" / "kafka-local.sh"


@dataclass(frozen=True)
class Broker:
    port: int

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _run(self, command: str, timeout: float = 300) -> subprocess.CompletedProcess[bytes]:
        # Its own port, controller port and run dir (the script's defaults for that port), whatever the
        # environment sets for the shared broker.
        shared = {"TRAFFIC_HUB_KAFKA_RUN_DIR", "TRAFFIC_HUB_KAFKA_CONTROLLER_PORT"}
        env = {k: v for k, v in os.environ.items() if k not in shared} | {"TRAFFIC_HUB_KAFKA_PORT": str(self.port)}
        args = ["bash", str(SCRIPT), command]
        return subprocess.run(args, env=env, capture_output=True, timeout=timeout, check=False)

    def up(self) -> None:
        result = self._run("up")
        assert result.returncode == 0, result.stderr.decode()[-2000:]

    def down(self) -> None:
        self._run("down", timeout=60)

    def purge(self) -> None:
        self._run("purge", timeout=60)


@contextmanager
def private_broker(port: int) -> Iterator[Broker]:
    broker = Broker(port)
    broker.up()
    try:
        yield broker
    finally:
        broker.purge()
