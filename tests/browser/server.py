"""A whole hub (API + normaliser) served by uvicorn in a thread, so a real browser can reach it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx2
import uvicorn
from fastapi import FastAPI

from tests.conftest import free_port
from tests.integration.hubs import wait_until


@dataclass(frozen=True)
class Served:
    url: str


def _ready(url: str) -> bool:
    try:
        return httpx2.get(f"{url}/readyz", timeout=1).status_code == 200
    except httpx2.HTTPError:
        return False


@contextmanager
def serve(app: FastAPI) -> Iterator[Served]:
    """Serve `app` on a free loopback port until the block ends (open SSE streams are cut after 1 s)."""
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", timeout_graceful_shutdown=1
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"hub-{port}", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _ready(url) or not thread.is_alive(), timeout=60, interval=0.1)
        assert thread.is_alive(), "the hub did not start"
        yield Served(url)
    finally:
        server.should_exit = True
        thread.join(15)

