"""Shared fixtures: the real Kafka broker (started when none answers), hubs with their own topics."""

from __future__ import annotations

import asyncio
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kafkarun import delete_run_topics, run_name
from traffic_hub.settings import bootstrap_servers

ROOT = Path(__file__).resolve().parent.parent
KAFKA_SCRIPT = ROOT / "ops" / "kafka" / "kafka-local.sh"


def kafka_bootstrap_address() -> str:
    """TRAFFIC_HUB_KAFKA__BOOTSTRAP_SERVERS, else the broker `kafka-local.sh` runs on TRAFFIC_HUB_KAFKA_PORT."""
    return bootstrap_servers()


def kafka_answers() -> bool:
    return subprocess.run(["bash", str(KAFKA_SCRIPT), "status"], capture_output=True, check=False).returncode == 0


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """The real broker's bootstrap address; `make test` starts it, this starts it if it is not running.

    At the end of the run, the topics this run created are deleted (see `tests.kafkarun`).
    """
    if not kafka_answers():
        subprocess.run(["bash", str(KAFKA_SCRIPT), "up"], check=True, timeout=900)
    bootstrap = kafka_bootstrap_address()
    yield bootstrap
    asyncio.run(delete_run_topics(bootstrap))


@pytest.fixture
def topic_prefix() -> str:
    return run_name("test")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
