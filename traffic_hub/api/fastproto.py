"""Conditional feed polls answered inside uvicorn's HTTP protocol, before any ASGI machinery.

A partner polling with the ETag it already holds gets a 304 of a few hundred bytes; on the normal path
the parser callbacks, the scope, the request task and the response messages cost ten times the work
of deciding. `FeedProtocol` is uvicorn's httptools protocol that, when a whole plain poll arrives on an
idle connection, asks the `FeedLane` of the lifespan state (the state the ASGI app sees) and writes its
304 itself. Every other request, and every poll the lane leaves alone, goes to uvicorn untouched.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from traffic_hub.api.feedlane import LANE, FeedLane

log = logging.getLogger(__name__)


class FeedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, answering plain conditional feed polls itself when it can.

    The keep-alive timer is not re-armed per answered poll (that would cost as much as the answer): the
    timer notes the last answer and, when it fires, waits out the rest of the timeout from there.
    """

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._fast = not self.root_path and self.limit_concurrency is None
        self._between_messages = True  # the parser holds no partial request
        self._answered_at = 0.0

    def data_received(self, data: bytes) -> None:
        if self._fast and self._between_messages and not self.pipeline and (
            self.cycle is None or self.cycle.response_complete
        ):
            try:
                if self._answer(data):
                    return
            except Exception:  # a bug here must not cost the request: the normal path answers it
                log.exception("feed fast path failed; the normal path answers")
        super().data_received(data)

    def on_message_begin(self) -> None:
        self._between_messages = False
        super().on_message_begin()

    def on_message_complete(self) -> None:
        self._between_messages = not self.parser.should_upgrade()
        super().on_message_complete()

    def timeout_keep_alive_handler(self) -> None:
        idle = self.loop.time() - self._answered_at
        if idle < self.timeout_keep_alive and not self.transport.is_closing():
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive - idle, self.timeout_keep_alive_handler
            )
            return
        super().timeout_keep_alive_handler()

    def _answer(self, data: bytes) -> bool:
        lane: FeedLane | None = self.app_state.get(LANE)
        if lane is None or self.flow.write_paused or self.transport.is_closing():
            return False
        answer = lane.answer(data)
        if answer is None:
            return False
        self.server_state.total_requests += 1
        if self.access_log:
            self._log_access(data)
        self.transport.write(answer.response_with(self.server_state.default_headers))
        if answer.close:
            self._unset_keepalive_if_required()
            self.transport.close()
            return True
        self._answered_at = self.loop.time()
        if self.timeout_keep_alive_task is None:
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive, self.timeout_keep_alive_handler
            )
        return True

    def _log_access(self, data: bytes) -> None:
        """The line uvicorn writes (its formatter wants exactly these five arguments)."""
        method, target, _ = data[: data.find(b"\r\n")].decode("ascii").split(" ", 2)
        client = "%s:%d" % self.client if self.client else ""  # noqa: UP031 - uvicorn's own format
        self.access_logger.info('%s - "%s %s HTTP/%s" %d', client, method, target, "1.1", 304)
