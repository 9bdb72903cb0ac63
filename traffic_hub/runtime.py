"""The composition root: the hub's roles put together from their parts, opened in one place and closed in
reverse order.

`open_hub` composes the broker probe, topic set-up, publisher, event view, feed engine and, when the
role asks for it, the normaliser and the connectors. `create_app` hands the API only the narrow parts its
routes use, by name (`api.deps.ApiState`), never the hub. Only this module and the CLI import the roles
(`connectors`, `normaliser`, `api`); `tests/test_architecture.py` keeps it so.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import FastAPI

from connectors.config import ConnectorConfig
from connectors.handover import Handover, is_status, statuses
from connectors.runner import ConnectorRunner, running_connectors
from connectors.state import ConnectorsCollector
from geo.communes import Communes
from geo.crs import Reprojector
from geo.matching import match_street
from geo.network import RoadNetwork
from traffic_hub.api.app import build_app
from traffic_hub.api.deps import ApiState
from traffic_hub.archive import Archiver
from traffic_hub.archive.store import HistoryDb
from traffic_hub.auth import DemoKey, KeyStore, Principals
from traffic_hub.closures import ClosureBook, ClosureService, StreetResolver
from traffic_hub.demo.closures import seed
from traffic_hub.feeds.base import Renderer
from traffic_hub.feeds.context import feed_context
from traffic_hub.feeds.engine import FeedBook
from traffic_hub.feeds.registry import renderer_factories
from traffic_hub.heap import freeze_when_ready
from traffic_hub.kafka import BrokerProbe, Publisher, ensure_topics
from traffic_hub.kafka.admin import Replication, check_replication
from traffic_hub.kafka.leases import LeaseTopics, SavedStateReader, SourceLeases
from traffic_hub.keys import watching
from traffic_hub.logs import quiet_start
from traffic_hub.metrics import Metrics, serve_metrics
from traffic_hub.model import Report
from traffic_hub.normaliser.placement import NetworkPlacer, Placer
from traffic_hub.normaliser.service import Normaliser
from traffic_hub.publishing import Record
from traffic_hub.settings import Settings
from traffic_hub.topics import Topics
from traffic_hub.view import LiveView

log = logging.getLogger(__name__)


class Role(StrEnum):
    API = "api"
    NORMALISER = "normaliser"
    CONNECTORS = "connectors"
    ARCHIVER = "archiver"


FEEDS: dict[str, type[Renderer]] = renderer_factories()  # path → renderer, from traffic_hub.feeds.registry


@dataclass
class Hub:
    settings: Settings
    topics: Topics
    tz: ZoneInfo
    probe: BrokerProbe
    publisher: Publisher
    live: LiveView
    feeds: FeedBook
    closures: ClosureService | None  # None in a connector runner: it places nothing and takes no closure
    keys: KeyStore
    communes: Communes
    topics_ready: asyncio.Event
    normaliser: Normaliser | None = None
    network: RoadNetwork | None = None
    connectors: ConnectorRunner | None = None
    connector_statuses: SavedStateReader | None = None  # an API without connectors: what the shared runners report
    archiver: Archiver | None = None
    history: HistoryDb | None = None  # the history routes' reads (API role, when a database is configured)
    demo_keys: list[DemoKey] = field(default_factory=list)
    replication: Replication = field(default_factory=Replication)  # what /readyz says of the topics' durability
    viewing: bool = True  # the event view is read (API, normaliser); a connector runner only publishes

    @property
    def ready(self) -> bool:
        view = self.live.ready or not self.viewing
        return self.probe.up and self.topics_ready.is_set() and view and self.publisher.ready


async def _ensure_topics_forever(
    settings: Settings, topics: Topics, ready: asyncio.Event, replication: Replication
) -> None:
    k = settings.kafka
    await ensure_topics(k.bootstrap_servers, topics, k.partitions, k.replication_factor, k.min_insync_replicas)
    ready.set()
    await check_replication(k.bootstrap_servers, topics, replication)


async def _cancel_and_wait(task: asyncio.Task[Any], timeout_s: float = 5.0) -> None:
    """Cancel `task` and give it `timeout_s` to run its cleanup. Why: the topic set-up holds a Kafka admin
    client; cancelled and left, its `close` ran after the event loop had ended when a hub stopped early
    (tests that start a hub for one request), and an unclosed connection's ResourceWarning surfaced later."""
    task.cancel()
    await asyncio.wait({task}, timeout=timeout_s)


@contextlib.asynccontextmanager
async def open_hub(
    settings: Settings,
    principals: Principals,
    roles: set[Role],
    demo_keys: list[DemoKey] | None = None,
    placer: Placer | None = None,
    connectors: list[ConnectorConfig] | None = None,
    shared_connectors: bool = False,
    freeze_heap: bool = False,
) -> AsyncIterator[Hub]:
    """The hub's parts for `roles`. `shared_connectors`: the connectors share the sources with other
    runners (`traffic-hub connectors`); without it they poll every source (`traffic-hub run`).
    `freeze_heap`: a process of its own (the CLI) moves its start's heap out of the cyclic collector
    once ready (`traffic_hub.heap`); a hub inside another program (tests) leaves the collector alone."""
    topics = Topics(settings.topic_prefix)
    tz = ZoneInfo(settings.timezone)
    k = settings.kafka
    communes = Communes.load()
    reprojector = Reprojector()
    # A connector runner fetches and publishes: it needs neither the road network (hundreds of MiB at MEL
    # scale) nor the event view (GiBs at 1 M events, minutes to read); the API and the normaliser place.
    viewing = bool(roles & {Role.API, Role.NORMALISER})
    network = await asyncio.to_thread(load_network, settings) if viewing else None
    topics_ready = asyncio.Event()
    replication = Replication(conscious=settings.demo or k.single_broker_ok)
    async with contextlib.AsyncExitStack() as stack:
        probe = await stack.enter_async_context(BrokerProbe(k.bootstrap_servers, k.probe_interval_s))
        setup = asyncio.create_task(
            _ensure_topics_forever(settings, topics, topics_ready, replication), name="topic-setup"
        )
        stack.push_async_callback(_cancel_and_wait, setup)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                await topics_ready.wait()
        publisher = await stack.enter_async_context(
            Publisher(k.bootstrap_servers, probe, k.write_timeout_s, f"{settings.instance}-producer")
        )
        live = LiveView(k.bootstrap_servers, topics.events, f"{settings.instance}-view", gate=topics_ready)
        if viewing:
            await stack.enter_async_context(live)
        renderers = {path: cls() for path, cls in FEEDS.items()}
        context = feed_context(settings)
        feeds = FeedBook(live.events, renderers, context, tz, ready=live.wait_ready, settings=settings.feeds)
        if Role.API in roles:  # a normaliser or a connector runner serves no feed: it renders none
            await stack.enter_async_context(feeds)
        closures = None
        if network is not None:
            placer = placer or NetworkPlacer(network)
            book, resolver = ClosureBook(live.events), street_resolver(network)
            closures = ClosureService(book, publisher, topics, communes, reprojector, resolver, placer)
        keys = KeyStore(principals)
        hub = Hub(settings, topics, tz, probe, publisher, live, feeds, closures, keys, communes, topics_ready)
        hub.network = network
        hub.viewing = viewing
        hub.demo_keys = demo_keys or []
        hub.replication = replication
        if Role.NORMALISER in roles and placer is not None:  # always: a normaliser has the network
            hub.normaliser = Normaliser(
                k.bootstrap_servers,
                topics,
                publisher,
                placer,
                f"{settings.instance}-normaliser",
                gate=topics_ready,
                live=live,
                retention=timedelta(days=settings.retention_days),
            )
            await stack.enter_async_context(hub.normaliser)
        if Role.CONNECTORS in roles and connectors:
            runner = shared_runner(settings, connectors, publisher, topics) if shared_connectors else (
                running_connectors(connectors, publisher, topics, instance=settings.instance))
            hub.connectors = await stack.enter_async_context(runner)
        if Role.API in roles and hub.connectors is None:
            names = LeaseTopics(topics.prefix)
            hub.connector_statuses = await stack.enter_async_context(SavedStateReader(
                k.bootstrap_servers, names.state, f"{settings.instance}-connector-status", topics_ready,
                wait_for_topic_s=10.0, keep=is_status,
            ))
        if Role.ARCHIVER in roles and settings.database_url:
            hub.archiver = await stack.enter_async_context(archiver(settings, topics))
        if Role.API in roles and settings.database_url:
            history = HistoryDb(
                settings.database_url, k.bootstrap_servers, topics, f"{settings.instance}-history", k.partitions
            )
            hub.history = await stack.enter_async_context(history)
        if viewing and freeze_heap:  # the start's heap out of the full collections' walk, once ready (heap.py)
            ready = (live.wait_ready, feeds.wait_rendered) if Role.API in roles else (live.wait_ready,)
            freezing = asyncio.create_task(freeze_when_ready(*ready), name="heap-freeze")
            stack.push_async_callback(_cancel_and_wait, freezing)
        if settings.demo and hub.demo_keys and Role.API in roles:
            seeding = asyncio.create_task(seed(placing(hub), live.wait_ready, hub.demo_keys), name="demo-seed")
            stack.push_async_callback(_cancel_and_wait, seeding)
        yield hub


@contextlib.asynccontextmanager
async def shared_runner(
    settings: Settings, connectors: list[ConnectorConfig], publisher: Publisher, topics: Topics
) -> AsyncIterator[ConnectorRunner]:
    """A runner sharing the sources with the other `traffic-hub connectors` processes (issue 16): the
    group's leases hand it sources, their saved memory comes from the state topic. Stopped in reverse:
    the leases release every source (and leave the group) before the runner and the reader stop."""
    k = settings.kafka
    names = LeaseTopics(topics.prefix)
    ready = asyncio.Event()
    states = SavedStateReader(k.bootstrap_servers, names.state, f"{settings.instance}-connector-state", ready)
    handover = Handover(states, names.state, settings.instance)
    async with (
        states,
        running_connectors(connectors, publisher, topics, handover=handover) as runner,
        SourceLeases(
            k.bootstrap_servers, names, runner, runner.names, settings.instance,
            replication=k.replication_factor, min_insync=k.min_insync_replicas, topics_ready=ready,
        ),
    ):
        yield runner


def archiver(settings: Settings, topics: Topics) -> Archiver:
    """The history archiver (issue 19) on TRAFFIC_HUB_DATABASE_URL; it retries on its own, never blocks the hub."""
    k = settings.kafka
    return Archiver(
        settings.database_url or "",
        k.bootstrap_servers,
        topics,
        f"{settings.instance}-archiver",
        retention_months=settings.archive_retention_months,
        partitions=k.partitions,
        replication_factor=k.replication_factor,
    )


def load_network(settings: Settings) -> RoadNetwork:
    """The road network the hub places events on (the bundled Lille one unless configured)."""
    network = RoadNetwork.load(settings.network) if settings.network else RoadNetwork.default()
    log.info("road network: %d edges", network.n_edges)
    return network.warm()


def street_resolver(network: RoadNetwork) -> StreetResolver:
    """street + from_street + to_street → the line between the two junctions (GeoError names the field)."""

    def resolve(street: str, from_street: str, to_street: str) -> list[tuple[float, float]]:
        return match_street(network, street, from_street, to_street).geometry

    return resolve


def placing(hub: Hub) -> ClosureService:
    """The closure service of a hub that serves the API (which always loads the network)."""
    if hub.closures is None:
        raise RuntimeError("this hub has no road network: it runs no API")
    return hub.closures


def api_state(hub: Hub, metrics: Metrics) -> ApiState:
    """The parts of `hub` the API's routes use, by name (`api.deps`): never the hub itself."""

    async def write_report(report: Report) -> None:
        await hub.publisher.send(Record(hub.topics.reports, report.key.encode(), report.model_dump_json().encode()))

    return ApiState(
        events=hub.live.events,
        feeds=hub.feeds,
        closures=placing(hub),
        keys=hub.keys,
        write_report=write_report,
        connector_states=lambda: connector_states(hub),
        readiness=lambda: readiness(hub),
        durability=lambda: hub.replication.detail,
        communes=hub.communes,
        network=hub.network,
        settings=hub.settings,
        metrics=metrics,
        history=hub.history,
    )


def connector_states(hub: Hub) -> list[dict[str, Any]]:
    """`GET /api/v1/connectors`: this process's connectors, else what the shared runners last reported."""
    if hub.connectors is not None:
        return [s.as_dict() for s in hub.connectors.states()]
    if hub.connector_statuses is not None:
        return statuses(hub.connector_statuses.values(), datetime.now(UTC))
    return []


def readiness(hub: Hub) -> dict[str, bool]:
    """`/readyz`: each check by name; ready when all hold."""
    return {
        "kafka": hub.probe.up,
        "topics": hub.topics_ready.is_set(),
        "producer": hub.publisher.ready,
        "view": hub.live.ready,
        # rendered, not only running: a replica put back behind the load balancer during its first render
        # (minutes at 1 M events) could only refuse partner polls with 503
        "feeds": hub.feeds.alive and hub.feeds.rendered,
    }


def gauges(hub: Hub) -> dict[str, float]:
    normaliser = hub.normaliser
    rendered = [(name, feed) for name in FEEDS if (feed := hub.feeds.get(name)) is not None]
    return {
        "kafka_up": float(hub.probe.up),
        "ready": float(hub.ready),
        "view_events": float(len(hub.live.events)),
        "view_changes": float(hub.live.events.seq),
        "feed_renders": float(hub.feeds.renders),
        "normaliser_processed": float(normaliser.processed if normaliser else 0),  # placed (stage 1)
        "normaliser_decided": float(normaliser.decided if normaliser else 0),  # decided (stage 2, one owner)
        "normaliser_dead_lettered": float(normaliser.dead_lettered if normaliser else 0),
        **{f"feed_items_{k.replace('/', '_').replace('.', '_')}": float(v.items) for k, v in rendered},
    }


def create_app(
    settings: Settings,
    principals: Principals,
    roles: set[Role] | None = None,
    demo_keys: list[DemoKey] | None = None,
    connectors: list[ConnectorConfig] | None = None,
    freeze_heap: bool = False,
) -> FastAPI:
    """The API process (with `roles` beside it): opens the hub at start-up, hands the API its parts
    (`freeze_heap`: see `open_hub`)."""
    metrics = Metrics()
    active_roles = roles if roles is not None else {Role.API}

    @contextlib.asynccontextmanager
    async def open_parts() -> AsyncIterator[ApiState]:
        async with (
            quiet_start() as quiet,  # expected start-up states are logged at INFO, not WARNING/ERROR
            open_hub(
                settings, principals, active_roles, demo_keys, connectors=connectors, freeze_heap=freeze_heap
            ) as hub,
            watching(settings.auth_file, hub.keys.replace),  # `traffic-hub keys` changes, no restart
            _metrics_listener(settings, metrics),
        ):
            quiet.ready_when(lambda: hub.ready)
            metrics.watch(lambda: gauges(hub))
            metrics.registry.register(ConnectorsCollector(lambda: hub.connectors.states() if hub.connectors else []))
            yield api_state(hub, metrics)

    return build_app(settings, open_parts, metrics)


@contextlib.asynccontextmanager
async def _metrics_listener(settings: Settings, metrics: Metrics) -> AsyncIterator[None]:
    """Prometheus' own listener (loopback by default), for as long as the hub runs."""
    listener = await serve_metrics(metrics.registry, settings.metrics.host, settings.metrics.port) if (
        settings.metrics.port) else None
    try:
        yield
    finally:
        if listener is not None:
            listener.close()
