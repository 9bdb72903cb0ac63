"""A real uvicorn server in a thread, in front of a bare ASGI app that hands the protocol its feed lane.

The fast-path, limits and fallback tests all need the same thing: uvicorn with a given protocol class,
an app whose lifespan puts a `FeedLane` in the state (as the hub's does), and a clean stop.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from starlette.types import Receive, Scope, Send

from tests.conftest import free_port
from tests.integration.hubs import wait_until
from traffic_hub.api.feedlane import LANE, FeedLane

Handler = Callable[[Scope, Receive, Send], Awaitable[None]]


def with_lane(lane: FeedLane, handle: Handler) -> Any:
    """An ASGI app: its lifespan hands `lane` to the protocol (state[LANE]); requests go to `handle`."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                scope["state"][LANE] = lane
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        await handle(scope, receive, send)

    return app


@contextmanager
def uvicorn_thread(app: Any, http: Any, keep_alive_s: int, log_level: str = "warning") -> Iterator[uvicorn.Server]:
    """uvicorn serving `app` with protocol `http` on a free loopback port (`server.config.port`)."""
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=free_port(),
        http=http,
        lifespan="on",
        timeout_keep_alive=keep_alive_s,
        log_config=None,
        log_level=log_level,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, timeout=10)
    try:
        yield server
    finally:
        server.should_exit = True
        thread.join(10)
