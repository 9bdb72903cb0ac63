"""Shared fixtures: the real Kafka broker (started when none answers), hubs with their own topics."""

from __future__ import annotations

import asyncio
import socket
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine

from tests.kafkarun import delete_run_topics, run_name
from traffic_hub.settings import bootstrap_servers

ROOT = Path(__file__).resolve().parent.parent
KAFKA_SCRIPT = ROOT / "ops" / "kafka" / "kafka-local.sh"


def kafka_bootstrap_address() -> str:
    """TRAFFIC_HUB_KAFKA__BOOTSTRAP_SERVERS, else the broker `kafka-local.sh` runs on TRAFFIC_HUB_KAFKA_PORT."""
    return bootstrap_servers()


def kafka_answers() -> bool:
    return subprocess.run(["bash", str(KAFKA_SCRIPT), "status"], capture_output=True, check=False).returncode == 0


# Folders whose tests run a hub, a runner or a parser against the real clock: their meaning depends on
# "now", so `make test-future` runs them again with the clock moved a year ahead (ops/test-future.sh).
# Elsewhere a test that reads the clock marks itself `time_dependent`. geo/ and feeds/ fix "now"
# themselves; browser/ and faults/ drive Chromium or whole processes and stay on the real clock.
TIME_DEPENDENT_FOLDERS = {"integration", "connectors", "hostile"}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--clock-ahead", type=int, default=0, metavar="DAYS",
        help="move this process's wall clock DAYS ahead for the whole run (time-machine; monotonic clocks stay real)",
    )


def pytest_configure(config: pytest.Config) -> None:
    """`--clock-ahead`: the injected clock of `make test-future`.

    time-machine moves every wall-clock read of this process (time.time, datetime.now, date.today, the C
    clock_gettime(CLOCK_REALTIME)) and lets time flow on; monotonic clocks (timeouts, asyncio) stay real.
    libfaketime was measured first and rejected: 0.9.10 (Debian 12) makes Python 3.11's time.sleep fail
    with EINVAL.
    """
    days: int = config.getoption("--clock-ahead")
    if days:
        traveller = time_machine.travel(datetime.now(UTC) + timedelta(days=days), tick=True)
        traveller.start()
        config.stash[CLOCK_TRAVEL] = traveller


def pytest_unconfigure(config: pytest.Config) -> None:
    traveller = config.stash.get(CLOCK_TRAVEL, None)
    if traveller is not None:
        traveller.stop()


def pytest_report_header(config: pytest.Config) -> str | None:
    days: int = config.getoption("--clock-ahead")
    return f"clock moved {days} days ahead: now is {datetime.now(UTC).isoformat()}" if days else None


CLOCK_TRAVEL = pytest.StashKey[time_machine.travel]()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        folder = item.path.relative_to(ROOT / "tests").parts[0]
        if folder in TIME_DEPENDENT_FOLDERS or folder.startswith("test_"):
            item.add_marker(pytest.mark.time_dependent)


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
