"""Is the broker answering? A real ApiVersions round trip, repeated in the background.

aiokafka retries forever on its own when the broker is gone; the probe lets the API answer 503 at
once instead of waiting, and tells /readyz the truth. It also tells a write that is slow to be
acknowledged whether the broker is answering meanwhile (`confirm`): a busy broker is waited for, a
silent one is not (see `Publisher.send_many`).

A refused connection marks the broker down at once; a round trip that merely timed out must happen
twice in a row, because on a loaded host a busy event loop can let one probe run late although the
broker is fine, and every write would have been refused with a 503 meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import struct
import time
from collections.abc import AsyncIterator, Coroutine
from typing import Any

from traffic_hub.lifecycle import Service

log = logging.getLogger(__name__)

_API_VERSIONS = 18
_CORRELATION = 0x7E57
TIMEOUTS_TO_DOWN = 2  # consecutive timed-out round trips before the broker counts as down


async def api_versions_ok(host: str, port: int, timeout_s: float) -> bool:
    """Send ApiVersions v0 and check the broker answers with error code 0."""
    return await api_versions(host, port, timeout_s) is Answer.OK


class Answer(enum.Enum):
    OK = "ok"
    TIMED_OUT = "timed out"  # no answer in time: the broker, or only this host, may be slow
    FAILED = "failed"  # refused, reset, or a wrong answer: nothing usable is listening


async def api_versions(host: str, port: int, timeout_s: float) -> Answer:
    """One ApiVersions v0 round trip: `Answer.OK`, `Answer.TIMED_OUT` or `Answer.FAILED`."""
    client_id = b"traffic-hub-probe"
    body = struct.pack(">hhih", _API_VERSIONS, 0, _CORRELATION, len(client_id)) + client_id
    try:
        async with asyncio.timeout(timeout_s):
            reader, writer = await asyncio.open_connection(host, port)
            try:
                writer.write(struct.pack(">i", len(body)) + body)
                await writer.drain()
                (size,) = struct.unpack(">i", await reader.readexactly(4))
                answer = await reader.readexactly(size)
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
    except TimeoutError:
        return Answer.TIMED_OUT
    except (OSError, asyncio.IncompleteReadError, struct.error):
        return Answer.FAILED
    correlation, error_code = struct.unpack(">ih", answer[:6])
    return Answer.OK if correlation == _CORRELATION and error_code == 0 else Answer.FAILED


def parse_bootstrap(servers: str) -> list[tuple[str, int]]:
    out: list[tuple[str, int]] = []
    for server in servers.split(","):
        host, _, port = server.strip().rpartition(":")
        out.append((host.strip("[]") or "127.0.0.1", int(port)))
    return out


class BrokerProbe(Service):
    """Background check of the bootstrap servers; `up` is True while one of them answers."""

    def __init__(self, bootstrap_servers: str, interval_s: float = 0.5) -> None:
        super().__init__()
        self._servers = parse_bootstrap(bootstrap_servers)
        self._interval = interval_s
        self._checking: asyncio.Task[Answer] | None = None
        self._up = asyncio.Event()
        self._timeouts = 0
        self.up = False
        # time.monotonic() at which the last round trip that got an answer was sent (-inf: never)
        self.answered_at = float("-inf")

    @property
    def timeout_s(self) -> float:
        """The longest one round trip may take (so the longest `confirm` may wait for a fresh one)."""
        return max(self._interval, 0.5)

    async def _round_trip(self) -> Answer:
        sent = time.monotonic()
        answer = Answer.FAILED
        for host, port in self._servers:
            answer = await api_versions(host, port, self.timeout_s)
            if answer is Answer.OK:
                self.answered_at = max(self.answered_at, sent)
                return answer
        return answer

    async def check(self) -> bool:
        """One round trip now (shared with any other caller that asks meanwhile): does the broker answer?"""
        return await self._shared_round_trip() is Answer.OK

    def _shared_round_trip(self) -> asyncio.Task[Answer]:
        if self._checking is None or self._checking.done():
            self._checking = asyncio.create_task(self._round_trip(), name="kafka-probe-check")
        return self._checking

    async def confirm(self, since: float) -> bool:
        """Has the broker answered a round trip sent at `since` (time.monotonic) or later? If none was
        sent since then, one is made now, shared by every caller waiting meanwhile: at most `timeout_s`."""
        if self.answered_at >= since:
            return True
        await asyncio.shield(self._shared_round_trip())
        return self.answered_at >= since

    def _record(self, answer: Answer) -> bool:
        """The new `up` after one round trip of the background loop."""
        if answer is Answer.OK:
            self._timeouts = 0
            return True
        if answer is Answer.TIMED_OUT:
            self._timeouts += 1
            return self.up and self._timeouts < TIMEOUTS_TO_DOWN
        self._timeouts = 0
        return False

    async def _loop(self) -> None:
        while True:
            up = self._record(await asyncio.shield(self._shared_round_trip()))
            if up != self.up:
                log.warning("kafka %s", "answers" if up else "does not answer")
            self.up = up
            if up:
                self._up.set()
            else:
                self._up.clear()
            await asyncio.sleep(self._interval)

    async def wait_up(self) -> None:
        await self._up.wait()

    def tasks(self) -> dict[str, Coroutine[Any, Any, None]]:
        return {"kafka-probe": self._loop()}

    async def before_start(self) -> None:
        self.up = await self.check()  # at start-up, no second chance: a timeout is "down" until proven up
        if self.up:
            self._up.set()

    async def after_stop(self) -> None:
        if self._checking is not None:
            self._checking.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checking


@contextlib.asynccontextmanager
async def probing(bootstrap_servers: str, interval_s: float) -> AsyncIterator[BrokerProbe]:
    async with BrokerProbe(bootstrap_servers, interval_s) as probe:
        yield probe
