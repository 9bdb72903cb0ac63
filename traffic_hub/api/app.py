"""The FastAPI application: routes, middleware, and the API's own shared components. Routes are thin.

The app knows nothing of how the hub is put together: the composition root (`traffic_hub.runtime`)
hands `build_app` a context manager that opens the hub's parts and yields them by name (`ApiState`);
the lifespan adds what only the API shares (the event streams' snapshots and counts, `stream.Streams`;
the protocol fast path's lane, `feedlane.FeedLane`) and routes take the parts they use as dependencies.
Every response carries the security headers (`secheaders`).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from traffic_hub.api import actions, closures, docs, events, feeds, health, measures, problems, stream, whoami
from traffic_hub.api import connectors as connector_routes
from traffic_hub.api import map as map_routes
from traffic_hub.api.deps import ApiState
from traffic_hub.api.fastfeeds import FeedFastPath
from traffic_hub.api.feedlane import LANE, FeedLane
from traffic_hub.api.limits import BodyLimit
from traffic_hub.api.secheaders import SecurityHeaders, security_headers
from traffic_hub.api.stream import STREAMS, Projection, Streams
from traffic_hub.feeds.context import feed_context
from traffic_hub.metrics import Metrics
from traffic_hub.settings import Settings

OpenParts = Callable[[], AbstractAsyncContextManager[ApiState]]
"""Opens the hub's parts for one lifespan and yields them by name (the composition root provides it)."""


class RequestMetrics:
    """Counts requests per route template and status, and times them."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def tracking_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.http_requests.labels(scope["method"], route, str(status)).inc()
            self.metrics.http_latency.labels(route).observe(time.perf_counter() - started)


def build_app(settings: Settings, open_parts: OpenParts, metrics: Metrics) -> FastAPI:
    """The API over the parts `open_parts` yields; `metrics` is the registry the root also fills."""
    headers = security_headers(settings.map_tiles)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        async with open_parts() as parts:
            projection = Projection(parts["feeds"], feed_context(settings), ZoneInfo(settings.timezone))
            streams = Streams(parts["events"], projection, settings.limits)
            metrics.watch(streams.gauges)
            lane = FeedLane(parts["feeds"], parts["keys"], metrics, headers)  # LANE: for FeedProtocol
            yield {**parts, STREAMS: streams, LANE: lane}

    app = FastAPI(
        title="traffic-hub",
        version="0.1.0",
        summary="Road-works closures and incidents in, partner feeds out, through Apache Kafka.",
        lifespan=lifespan,
        docs_url=None,  # /docs and /redoc come from traffic_hub.api.docs, with local assets
        redoc_url=None,
    )
    problems.install(app)
    routes = (closures, measures, stream, actions, events, feeds, connector_routes, health, whoami, map_routes, docs)
    for module in routes:
        app.include_router(module.router)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestMetrics, metrics=metrics)
    app.add_middleware(FeedFastPath)  # feed polls skip everything else
    app.add_middleware(SecurityHeaders, headers=headers, map_tiles=settings.map_tiles)  # outermost: every response
    return app
