"""The feed registry is the one list of feeds: the engine, the routes and the docs all follow it."""

from __future__ import annotations

import inspect
from pathlib import Path

from fastapi.routing import APIRoute

from traffic_hub.api.feeds import router
from traffic_hub.feeds.registry import FEEDS, by_path, public_paths, renderer_factories
from traffic_hub.runtime import FEEDS as ENGINE_FEEDS

ARCHITECTURE = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"


def test_paths_are_unique_and_documented() -> None:
    assert len(by_path()) == len(FEEDS)
    assert all(feed.docs and feed.format and feed.url_path == f"/feeds/{feed.path}" for feed in FEEDS)


def test_media_type_and_publication_key_are_the_renderers() -> None:
    for feed in FEEDS:
        renderer = feed.renderer()
        assert (feed.media_type, feed.publication) == (renderer.media_type, renderer.name)


def test_only_open_data_is_public() -> None:
    assert public_paths() == {"geojson/events.geojson", "geojson/events.csv"}


def test_the_engine_renders_every_registered_feed() -> None:
    assert renderer_factories() == ENGINE_FEEDS
    assert list(ENGINE_FEEDS) == [feed.path for feed in FEEDS]


def test_one_route_per_feed_keyed_unless_public() -> None:
    routes = {route.path: route for route in router.routes if isinstance(route, APIRoute)}
    assert set(routes) == {feed.url_path for feed in FEEDS}
    for feed in FEEDS:
        route = routes[feed.url_path]
        keyed = "principal" in inspect.signature(route.endpoint).parameters
        assert (route.name, route.description, keyed) == (feed.path, feed.docs, not feed.public)
        assert feed.media_type.split(";")[0] in route.responses[200]["content"]
        assert (401 in route.responses) is not feed.public


def test_architecture_docs_name_every_feed() -> None:
    text = ARCHITECTURE.read_text(encoding="utf-8")
    assert [feed.url_path for feed in FEEDS if feed.url_path not in text] == []
