"""The FastAPI application: one lifespan opens the hub, routes are thin.

The lifespan also opens what the routes share beyond the hub: the event streams' snapshots and counts
(`stream.Streams`), the protocol fast path's lane, and the metrics listener on its own loopback address.
Every response carries the security headers (`secheaders`).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from connectors.config import ConnectorConfig
from connectors.state import ConnectorsCollector
from traffic_hub.api import actions, closures, docs, events, feeds, health, problems, stream, whoami
from traffic_hub.api import connectors as connector_routes
from traffic_hub.api import map as map_routes
from traffic_hub.api.fastfeeds import FeedFastPath
from traffic_hub.api.feedlane import LANE, FeedLane
from traffic_hub.api.limits import BodyLimit
from traffic_hub.api.secheaders import SecurityHeaders, security_headers
from traffic_hub.api.stream import STREAMS, Streams
from traffic_hub.auth import DemoKey, Principals
from traffic_hub.keys import watching
from traffic_hub.logs import quiet_start
from traffic_hub.metrics import Metrics, serve_metrics
from traffic_hub.runtime import Hub, Role, open_hub
from traffic_hub.settings import Settings


def _gauges(hub: Hub) -> dict[str, float]:
    normaliser = hub.normaliser
    return {
        "kafka_up": float(hub.probe.up),
        "ready": float(hub.ready),
        "view_events": float(len(hub.live.events)),
        "view_changes": float(hub.live.events.seq),
        "feed_renders": float(hub.feeds.renders),
        "normaliser_processed": float(normaliser.processed if normaliser else 0),
        "normaliser_dead_lettered": float(normaliser.dead_lettered if normaliser else 0),
        **{f"feed_items_{k.replace('/', '_').replace('.', '_')}": float(v.items) for k, v in _rendered(hub)},
    }


def _rendered(hub: Hub) -> list[tuple[str, Any]]:
    from traffic_hub.runtime import FEEDS

    return [(name, feed) for name in FEEDS if (feed := hub.feeds.get(name)) is not None]


def _principals_of(hub: Hub) -> Callable[[Principals], None]:
    """Swaps the hub's principals in one assignment: a request sees the old set or the new one."""

    def use(principals: Principals) -> None:
        hub.principals = principals

    return use


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


def create_app(
    settings: Settings,
    principals: Principals,
    roles: set[Role] | None = None,
    demo_keys: list[DemoKey] | None = None,
    connectors: list[ConnectorConfig] | None = None,
) -> FastAPI:
    metrics = Metrics()
    active_roles = roles if roles is not None else {Role.API}
    headers = security_headers(settings.map_tiles)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        async with (
            quiet_start() as quiet,  # expected start-up states are logged at INFO, not WARNING/ERROR
            open_hub(settings, principals, active_roles, demo_keys, connectors=connectors) as hub,
            watching(settings.auth_file, _principals_of(hub)),  # `traffic-hub keys` changes, no restart
        ):
            quiet.ready_when(lambda: hub.ready)
            streams = Streams(hub, settings.limits)
            metrics.watch(lambda: _gauges(hub) | streams.gauges())
            metrics.registry.register(ConnectorsCollector(lambda: hub.connectors.states() if hub.connectors else []))
            app.state.hub = hub
            listener = None
            if settings.metrics.port:
                listener = await serve_metrics(metrics.registry, settings.metrics.host, settings.metrics.port)
            try:
                # LANE: for FeedProtocol
                yield {"hub": hub, "metrics": metrics, STREAMS: streams, LANE: FeedLane(hub, metrics, headers)}
            finally:
                if listener is not None:
                    listener.close()

    app = FastAPI(
        title="traffic-hub",
        version="0.1.0",
        summary="Road-works closures and incidents in, partner feeds out, through Apache Kafka.",
        lifespan=lifespan,
        docs_url=None,  # /docs and /redoc come from traffic_hub.api.docs, with local assets
        redoc_url=None,
    )
    problems.install(app)
    for module in (closures, stream, actions, events, feeds, connector_routes, health, whoami, map_routes, docs):
        app.include_router(module.router)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestMetrics, metrics=metrics)
    app.add_middleware(FeedFastPath)  # feed polls skip everything else
    app.add_middleware(SecurityHeaders, headers=headers, map_tiles=settings.map_tiles)  # outermost: every response
    return app
