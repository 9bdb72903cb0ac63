"""Every feed the hub serves, listed once: path, format, media type, who may read it, docs, renderer.

Why one list: the feed engine's renderers (`traffic_hub.runtime`), the API routes and their OpenAPI
text (`traffic_hub.api.feeds`), the fast paths and the architecture docs all need the same set of
feeds. Adding a feed is one `Feed(...)` line here (plus its renderer module); nothing else lists feeds.

A feed's `path` is also its name: its key in the feed engine, in the request metrics and in the
route names. The media type and the publication key (`publication`, the key an event's
`publication` reports under) are the renderer's own, read from its class, so they cannot drift.
"""

from __future__ import annotations

from dataclasses import dataclass

from traffic_hub.feeds.base import Renderer
from traffic_hub.feeds.datex2 import Datex2Situations
from traffic_hub.feeds.datex2_v2 import Datex2V2Situations
from traffic_hub.feeds.opendata import OpenDataCsv, OpenDataGeoJson
from traffic_hub.feeds.regulations import Datex2Regulations
from traffic_hub.feeds.waze import CifsJson, CifsXml
from traffic_hub.feeds.wzdx import WzdxWorkZones

__all__ = ["FEEDS", "PREFIX", "Feed", "by_path", "public_paths", "renderer_factories"]

PREFIX = "/feeds"


@dataclass(frozen=True, slots=True)
class Feed:
    """One feed: served at `PREFIX/path`, rendered by `renderer()`, keyed (partners) unless `public`."""

    path: str  # under PREFIX, e.g. "waze/cifs.xml"; also the feed's name
    format: str  # the standard it follows, for people
    docs: str  # the route's description in the OpenAPI document
    renderer: type[Renderer]  # the renderer's factory: called with no argument
    public: bool = False  # no key needed (open data)

    @property
    def url_path(self) -> str:
        return f"{PREFIX}/{self.path}"

    @property
    def media_type(self) -> str:
        return self.renderer.media_type

    @property
    def publication(self) -> str:
        return self.renderer.name


FEEDS: tuple[Feed, ...] = (
    Feed(
        "waze/cifs.xml",
        "Waze CIFS v2 (XML)",
        "Waze CIFS v2 XML (valid against cifsv2.xsd): active and upcoming closures and incidents.",
        CifsXml,
    ),
    Feed(
        "waze/cifs.json",
        "Waze CIFS (JSON)",
        "Waze CIFS JSON: the same incidents as the XML feed.",
        CifsJson,
    ),
    Feed(
        "datex2/v3/situations.xml",
        "DATEX II v3.7 SituationPublication",
        "DATEX II v3 SituationPublication (valid against the 3.7 schemas).",
        Datex2Situations,
    ),
    Feed(
        "datex2/v3/regulations.xml",
        "DATEX II v3.7 TrafficRegulationPublication",
        "DATEX II v3 TrafficRegulationPublication (valid against the 3.7 schemas): every traffic-regulation "
        "measure as an order, in the shape the national regulation base (DiaLog) publishes.",
        Datex2Regulations,
    ),
    Feed(
        "datex2/v2/situations.xml",
        "DATEX II v2.3 SituationPublication",
        "DATEX II v2.3 for legacy consumers (the same situations; lines as TPEG segments).",
        Datex2V2Situations,
    ),
    Feed(
        "wzdx/v4.2/workzones.geojson",
        "WZDx 4.2 WorkZoneFeed",
        "WZDx 4.2 WorkZoneFeed: closures and road works, one road event per direction.",
        WzdxWorkZones,
    ),
    Feed(
        "geojson/events.geojson",
        "GeoJSON (RFC 7946), ODbL",
        "Open data (public, ODbL): every current event as RFC 7946 GeoJSON.",
        OpenDataGeoJson,
        public=True,
    ),
    Feed(
        "geojson/events.csv",
        "CSV (RFC 4180), ODbL",
        "Open data (public, ODbL): the same events as CSV (RFC 4180), with WKT geometry.",
        OpenDataCsv,
        public=True,
    ),
)


def by_path() -> dict[str, Feed]:
    """The feeds by their path (their name)."""
    return {feed.path: feed for feed in FEEDS}


def public_paths() -> frozenset[str]:
    """The paths of the feeds anyone may read without a key."""
    return frozenset(feed.path for feed in FEEDS if feed.public)


def renderer_factories() -> dict[str, type[Renderer]]:
    """path → renderer factory, what the feed engine is built from."""
    return {feed.path: feed.renderer for feed in FEEDS}
