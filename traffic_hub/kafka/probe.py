"""Is the broker answering? A real ApiVersions round trip, repeated in the background.

aiokafka retries forever on its own when the broker is gone; the probe lets the API answer 503 at
once instead of waiting, and tells /readyz the truth.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from collections.abc import AsyncIterator
from types import TracebackType

log = logging.getLogger(__name__)

_API_VERSIONS = 18
_CORRELATION = 0x7E57


async def api_versions_ok(host: str, port: int, timeout_s: float) -> bool:
    """Send ApiVersions v0 and check the broker answers with error code 0."""
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
    except (OSError, TimeoutError, asyncio.IncompleteReadError, struct.error):
        return False
    correlation, error_code = struct.unpack(">ih", answer[:6])
    return bool(correlation == _CORRELATION and error_code == 0)


def parse_bootstrap(servers: str) -> list[tuple[str, int]]:
    out: list[tuple[str, int]] = []
    for server in servers.split(","):
        host, _, port = server.strip().rpartition(":")
        out.append((host.strip("[]") or "127.0.0.1", int(port)))
    return out


class BrokerProbe:
    """Background check of the bootstrap servers; `up` is True while one of them answers."""

    def __init__(self, bootstrap_servers: str, interval_s: float = 0.5) -> None:
        self._servers = parse_bootstrap(bootstrap_servers)
        self._interval = interval_s
        self._task: asyncio.Task[None] | None = None
        self._up = asyncio.Event()
        self.up = False

    async def check(self) -> bool:
        timeout = max(self._interval, 0.5)
        for host, port in self._servers:
            if await api_versions_ok(host, port, timeout):
                return True
        return False

    async def _loop(self) -> None:
        while True:
            up = await self.check()
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

    async def __aenter__(self) -> BrokerProbe:
        self.up = await self.check()
        if self.up:
            self._up.set()
        self._task = asyncio.create_task(self._loop(), name="kafka-probe")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


@contextlib.asynccontextmanager
async def probing(bootstrap_servers: str, interval_s: float) -> AsyncIterator[BrokerProbe]:
    async with BrokerProbe(bootstrap_servers, interval_s) as probe:
        yield probe
