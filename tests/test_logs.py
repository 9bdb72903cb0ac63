"""StartupQuiet: known transient start-up states become INFO; real errors and late ones keep their level.

A fresh broker answers the first group join with GroupCoordinatorNotAvailable, which aiokafka logs at
ERROR; the shared test broker is warm, so that record is made here as aiokafka makes it.
"""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Iterator

import pytest
from aiokafka.errors import GroupAuthorizationFailedError, GroupCoordinatorNotAvailableError

from traffic_hub.api.audit import record as audit_record
from traffic_hub.auth import Principal, Role
from traffic_hub.logs import StartupQuiet, queued_logging, quiet_start

COORDINATOR = "aiokafka.consumer.group_coordinator"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def record(name: str, level: int, msg: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


def coordinator_error(exc: Exception) -> logging.LogRecord:
    return record(COORDINATOR, logging.ERROR, "Group Coordinator Request failed: %s", exc)


def test_group_coordinator_not_available_is_info_while_starting_and_error_after() -> None:
    clock, ready = Clock(), [False]
    quiet = StartupQuiet(lambda: ready[0], settle_s=10, grace_s=120, clock=clock)
    early = coordinator_error(GroupCoordinatorNotAvailableError())
    assert quiet.filter(early)
    assert (early.levelno, early.levelname) == (logging.INFO, "INFO")
    assert "expected while starting" in early.getMessage()
    ready[0] = True
    clock.now = 5.0
    settling = coordinator_error(GroupCoordinatorNotAvailableError())
    quiet.filter(settling)
    assert settling.levelno == logging.INFO  # ready, but not for settle_s yet
    clock.now = 16.0
    late = coordinator_error(GroupCoordinatorNotAvailableError())
    quiet.filter(late)
    assert late.levelno == logging.ERROR  # after the start it means something
    assert quiet.downgraded == 2


def test_real_errors_keep_their_level_even_while_starting() -> None:
    quiet = StartupQuiet(lambda: False, clock=Clock())
    fatal = coordinator_error(GroupAuthorizationFailedError())  # not retriable: a configuration problem
    other = record(COORDINATOR, logging.ERROR, "Heartbeat failed: %r", RuntimeError("boom"))
    ours = record("connectors.runner", logging.WARNING, "connector %s: %s (retry in %.1f s)", "waze", "HTTP 500", 3.0)
    elsewhere = record("traffic_hub.view", logging.ERROR, "events topic: undecodable event %s: %s", "x", "y")
    for rec in (fatal, other, ours, elsewhere):
        quiet.filter(rec)
    assert [r.levelno for r in (fatal, other, ours, elsewhere)] == [logging.ERROR, logging.ERROR, logging.WARNING,
                                                                     logging.ERROR]


def test_a_start_that_never_gets_ready_is_loud_after_the_grace_period() -> None:
    clock = Clock()
    quiet = StartupQuiet(lambda: False, grace_s=60, clock=clock)
    clock.now = 61.0
    rec = record("traffic_hub.kafka.publisher", logging.WARNING, "kafka producer could not start (%s); retrying", "x")
    quiet.filter(rec)
    assert rec.levelno == logging.WARNING


def test_connectors_waiting_for_the_producer_are_info_while_starting() -> None:
    quiet = StartupQuiet(lambda: False, clock=Clock())
    rec = record(
        "connectors.runner", logging.WARNING, "connector %s: %s (retry in %.1f s)", "demo-waze",
        "Kafka unavailable, batch kept for retry: the event log (Kafka) is unavailable; retry shortly", 3.2,
    )
    quiet.filter(rec)
    assert rec.levelno == logging.INFO


async def test_quiet_start_filters_the_real_logger_and_is_removed_after(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    logger = logging.getLogger(COORDINATOR)
    async with quiet_start():
        logger.error("Group Coordinator Request failed: %s", GroupCoordinatorNotAvailableError())
    logger.error("Group Coordinator Request failed: %s", GroupCoordinatorNotAvailableError())
    assert [r.levelno for r in caplog.records] == [logging.INFO, logging.ERROR]


class Threads(logging.Handler):
    """Remembers each line and the thread that wrote it."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[tuple[int, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((threading.get_ident(), self.format(record)))


@pytest.fixture
def own_logger() -> Iterator[logging.Logger]:
    """A logger of the test's own (pytest's capture handlers sit on the root)."""
    logger = logging.getLogger("test.queued")
    logger.propagate, logger.level = False, logging.INFO
    yield logger
    logger.handlers.clear()


def test_queued_logging_writes_every_line_in_order_from_another_thread(own_logger: logging.Logger) -> None:
    handler = Threads()
    own_logger.addHandler(handler)
    before = list(own_logger.handlers)
    with queued_logging(own_logger):
        for n in range(500):
            own_logger.info("line %d", n)
        assert handler not in own_logger.handlers
    assert [text for _, text in handler.lines] == [f"line {n}" for n in range(500)]  # drained at the end
    assert {thread for thread, _ in handler.lines} != {threading.get_ident()}  # not written by the caller
    assert own_logger.handlers == before  # put back


def test_queued_logging_keeps_levels_formats_and_tracebacks(own_logger: logging.Logger) -> None:
    out = io.StringIO()
    stream = logging.StreamHandler(out)
    stream.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    stream.setLevel(logging.WARNING)
    own_logger.addHandler(stream)
    with queued_logging(own_logger):
        own_logger.info("not for this handler")
        try:
            raise ValueError("boom")
        except ValueError:
            own_logger.exception("failed %s", "here")
    text = out.getvalue()
    assert "not for this handler" not in text
    assert text.startswith("ERROR test.queued: failed here")
    assert "ValueError: boom" in text


def test_audit_lines_through_the_queue_are_all_written_without_secrets() -> None:
    audit = logging.getLogger("traffic_hub.audit")
    handler = Threads()
    audit.addHandler(handler)
    propagate, audit.propagate, level, audit.level = audit.propagate, False, audit.level, logging.INFO
    team = Principal(name="voirie-lille", role=Role.ROADWORKS, communes=frozenset({"59350"}), key_sha256="ab" * 32)
    try:
        with queued_logging(audit):
            for version in range(1, 101):
                audit_record(team, "replace", 200, closure_id="c-1", version=version)
    finally:
        audit.removeHandler(handler)
        audit.propagate, audit.level = propagate, level
    lines = [json.loads(text) for _, text in handler.lines]
    assert [line["version"] for line in lines] == list(range(1, 101))
    assert {line["principal"] for line in lines} == {"voirie-lille"}
    assert all("ab" * 32 not in text for _, text in handler.lines)


def test_queued_logging_leaves_a_logger_without_handlers_alone(own_logger: logging.Logger) -> None:
    own_logger.handlers.clear()
    with queued_logging(own_logger) as listener:
        assert listener is None
    assert own_logger.handlers == []
