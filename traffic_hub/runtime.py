"""The hub's long-lived resources, opened in one place and closed in reverse order.

`open_hub` composes the broker probe, topic set-up, publisher, event view, feed engine and, when
the role asks for it, the normaliser. The FastAPI lifespan and the headless roles both use it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from connectors.config import ConnectorConfig
from connectors.runner import ConnectorRunner, running_connectors
from geo.communes import Communes
from geo.crs import Reprojector
from geo.matching import match_street
from geo.network import RoadNetwork
from traffic_hub.archive import Archiver
from traffic_hub.auth import DemoKey, Principals
from traffic_hub.closures import ClosureBook, ClosureService, StreetResolver
from traffic_hub.feeds.base import FeedContext, Renderer
from traffic_hub.feeds.engine import FeedBook
from traffic_hub.feeds.registry import renderer_factories
from traffic_hub.kafka import BrokerProbe, Publisher, ensure_topics
from traffic_hub.normaliser.placement import NetworkPlacer, Placer
from traffic_hub.normaliser.service import Normaliser
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
    closures: ClosureService
    principals: Principals
    communes: Communes
    topics_ready: asyncio.Event
    normaliser: Normaliser | None = None
    network: RoadNetwork | None = None
    connectors: ConnectorRunner | None = None
    archiver: Archiver | None = None
    demo_keys: list[DemoKey] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        return self.probe.up and self.topics_ready.is_set() and self.live.ready and self.publisher.ready


def feed_context(settings: Settings) -> Callable[[datetime, datetime], FeedContext]:
    def make(now: datetime, published_at: datetime) -> FeedContext:
        return FeedContext(
            now=now,
            published_at=published_at,
            timezone=settings.timezone,
            publisher=settings.publisher,
            base_url=settings.public_url,
        )

    return make


async def _ensure_topics_forever(settings: Settings, topics: Topics, ready: asyncio.Event) -> None:
    k = settings.kafka
    await ensure_topics(k.bootstrap_servers, topics, k.partitions, k.replication_factor)
    ready.set()


@contextlib.asynccontextmanager
async def open_hub(
    settings: Settings,
    principals: Principals,
    roles: set[Role],
    demo_keys: list[DemoKey] | None = None,
    placer: Placer | None = None,
    connectors: list[ConnectorConfig] | None = None,
) -> AsyncIterator[Hub]:
    topics = Topics(settings.topic_prefix)
    tz = ZoneInfo(settings.timezone)
    k = settings.kafka
    communes = Communes.load()
    reprojector = Reprojector()
    network = await asyncio.to_thread(load_network, settings)
    topics_ready = asyncio.Event()
    async with contextlib.AsyncExitStack() as stack:
        probe = await stack.enter_async_context(BrokerProbe(k.bootstrap_servers, k.probe_interval_s))
        setup = asyncio.create_task(_ensure_topics_forever(settings, topics, topics_ready), name="topic-setup")
        stack.callback(setup.cancel)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                await topics_ready.wait()
        publisher = await stack.enter_async_context(
            Publisher(k.bootstrap_servers, probe, k.write_timeout_s, f"{settings.instance}-producer")
        )
        live = LiveView(k.bootstrap_servers, topics.events, f"{settings.instance}-view", gate=topics_ready)
        await stack.enter_async_context(live)
        renderers = {path: cls() for path, cls in FEEDS.items()}
        feeds = await stack.enter_async_context(
            FeedBook(live.events, renderers, feed_context(settings), tz, ready=live.wait_ready, settings=settings.feeds)
        )
        book = ClosureBook(live.events)
        placer = placer or NetworkPlacer(network)
        closures = ClosureService(book, publisher, topics, communes, reprojector, street_resolver(network), placer)
        hub = Hub(settings, topics, tz, probe, publisher, live, feeds, closures, principals, communes, topics_ready)
        hub.network = network
        hub.demo_keys = demo_keys or []
        if Role.NORMALISER in roles:
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
            hub.connectors = await stack.enter_async_context(running_connectors(connectors, publisher, topics))
        if Role.ARCHIVER in roles and settings.database_url:
            hub.archiver = await stack.enter_async_context(archiver(settings, topics))
        if settings.demo and hub.demo_keys and Role.API in roles:
            from traffic_hub.demo.closures import seed

            seeding = asyncio.create_task(seed(hub, hub.demo_keys), name="demo-seed")
            stack.callback(seeding.cancel)
        yield hub


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
