"""Expected start-up states are INFO; WARNING and ERROR mean something.

Every clean start used to print warnings and an `ERROR … GroupCoordinatorNotAvailable`: while a
hub starts, a fresh broker has not yet elected the coordinator of a new consumer group, topics just
created are not yet in the metadata, and the connectors' first batch waits for the producer. aiokafka
and our own retry loops report these at WARNING or ERROR, and a sysadmin learns to ignore the log.

`StartupQuiet` is a logging filter on those loggers: while the hub starts (until it has been ready for
a few seconds, and never longer than `grace_s`) it logs the *known transient* messages at INFO. The
same messages after the start, any other message, and a non-retriable Kafka error keep their level.

`queued_logging` moves the root logger's handlers behind a queue while the hub serves: a log call on the
event loop (one audit line per write, issue 17's write bench) only formats its message and enqueues it;
a thread writes it (`strftime` of the time, the write and flush to stderr), so a slow or blocked stderr
(a pipe to a busy collector) never stalls requests. Every line is still written, in order, and the
queue is drained when serving ends.
"""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from logging.handlers import QueueHandler, QueueListener

from aiokafka.errors import KafkaError


@dataclass(frozen=True)
class Transient:
    """A message template (the unformatted `record.msg`) that is an expected state during a start."""

    logger: str
    msg: str
    retriable_arg: int | None = None  # index of a KafkaError argument that must be retriable
    arg_prefix: tuple[int, str] | None = None  # (index, prefix) an argument must start with


TRANSIENTS = (
    # a fresh broker elects the group coordinator (and creates __consumer_offsets) on the first join
    Transient("aiokafka.consumer.group_coordinator", "Group Coordinator Request failed: %s", retriable_arg=0),
    Transient(
        "aiokafka.consumer.group_coordinator",
        "Heartbeat failed for group %s: coordinator (node %s) is either not started or not valid",
    ),
    Transient("aiokafka.consumer.group_coordinator", "Heartbeat failed for group %s because it is rebalancing"),
    Transient("aiokafka.consumer.group_coordinator", "OffsetFetchRequest -- unknown topic %s"),
    # topics the hub has just created are not in every broker's metadata yet
    Transient("aiokafka.cluster", "Topic %s is not available during auto-create initialization"),
    Transient("aiokafka.cluster", "Topic %s not found in cluster metadata"),
    # our own retry loops, while the producer, readers and topics come up
    Transient("connectors.runner", "connector %s: %s (retry in %.1f s)", arg_prefix=(1, "Kafka unavailable")),
    Transient("traffic_hub.kafka.admin", "topic set-up failed (%s), retrying in %.1fs"),
    Transient("traffic_hub.kafka.publisher", "kafka producer could not start (%s); retrying"),
    Transient("traffic_hub.kafka.reader", "%s reader: %r; reconnecting in %.1fs"),
    Transient("traffic_hub.normaliser.service", "normaliser: %r; restarting in %.1fs"),
)


def _matches(transient: Transient, record: logging.LogRecord) -> bool:
    if record.name != transient.logger or record.msg != transient.msg:
        return False
    args = record.args if isinstance(record.args, tuple) else ()
    if transient.retriable_arg is not None:
        arg = args[transient.retriable_arg] if len(args) > transient.retriable_arg else None
        if not (isinstance(arg, KafkaError) and arg.retriable):
            return False
    if transient.arg_prefix is not None:
        index, prefix = transient.arg_prefix
        if not (len(args) > index and str(args[index]).startswith(prefix)):
            return False
    return True


class StartupQuiet(logging.Filter):
    """Downgrades known transient start-up messages to INFO until the hub has been ready for `settle_s`."""

    def __init__(
        self,
        ready: Callable[[], bool] | None = None,
        settle_s: float = 10.0,
        grace_s: float = 120.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._ready = ready or (lambda: False)
        self._settle_s = settle_s
        self._clock = clock
        self._deadline = clock() + grace_s
        self._ready_since: float | None = None
        self.downgraded = 0

    def ready_when(self, ready: Callable[[], bool]) -> None:
        """What "started" means; until this is called the hub is starting."""
        self._ready = ready

    def starting(self) -> bool:
        now = self._clock()
        if now >= self._deadline:
            return False
        if not self._ready():
            self._ready_since = None  # e.g. the broker went away again before the start settled
            return True
        if self._ready_since is None:
            self._ready_since = now
        return now - self._ready_since < self._settle_s

    def filter(self, record: logging.LogRecord) -> bool:
        transient = logging.INFO < record.levelno < logging.CRITICAL and any(_matches(t, record) for t in TRANSIENTS)
        if transient and self.starting():
            record.msg = f"{record.msg} (expected while starting)"
            record.levelno, record.levelname = logging.INFO, logging.getLevelName(logging.INFO)
            self.downgraded += 1
        return True


@asynccontextmanager
async def quiet_start(
    ready: Callable[[], bool] | None = None, settle_s: float = 10.0, grace_s: float = 120.0
) -> AsyncIterator[StartupQuiet]:
    """Install a `StartupQuiet` on the loggers of TRANSIENTS for as long as the context lasts."""
    quiet = StartupQuiet(ready, settle_s, grace_s)
    loggers = [logging.getLogger(name) for name in sorted({t.logger for t in TRANSIENTS})]
    for logger in loggers:
        logger.addFilter(quiet)
    try:
        yield quiet
    finally:
        for logger in loggers:
            logger.removeFilter(quiet)


@contextmanager
def queued_logging(logger: logging.Logger | None = None) -> Iterator[QueueListener | None]:
    """`logger`'s handlers (default: the root's) run in a thread, fed by a queue, for as long as the context
    lasts; at its end the queue is drained (every line written and flushed) and the handlers are put back.

    A logger without handlers is left alone (None). Handlers keep their own levels and formatters."""
    target = logger or logging.getLogger()
    handlers = list(target.handlers)
    if not handlers:
        yield None
        return
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    listener = QueueListener(records, *handlers, respect_handler_level=True)
    front = QueueHandler(records)
    for handler in handlers:
        target.removeHandler(handler)
    target.addHandler(front)
    listener.start()
    try:
        yield listener
    finally:
        target.removeHandler(front)
        listener.stop()  # writes what is still queued, then ends the thread
        for handler in handlers:
            target.addHandler(handler)
            handler.flush()
