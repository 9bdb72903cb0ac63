"""Shared fixtures: the real Kafka broker (started when none answers), hubs with their own topics."""

from __future__ import annotations

import os
import socket
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
KAFKA_SCRIPT = ROOT / "ops" / "kafka" / "kafka-local.sh"


def kafka_bootstrap_address() -> str:
    return os.environ.get("TRAFFIC_HUB_KAFKA__BOOTSTRAP_SERVERS", "127.0.0.1:19092")


def kafka_answers() -> bool:
    return subprocess.run(["bash", str(KAFKA_SCRIPT), "status"], capture_output=True, check=False).returncode == 0


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    """The real broker's bootstrap address; `make test` starts it, this starts it if it is not running."""
    if not kafka_answers():
        subprocess.run(["bash", str(KAFKA_SCRIPT), "up"], check=True, timeout=600)
    return kafka_bootstrap_address()


@pytest.fixture
def unique() -> Callable[[str], str]:
    return lambda prefix: f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def topic_prefix(unique: Callable[[str], str]) -> str:
    return unique("test")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
