"""The renderer contract every partner feed implements.

A feed is a head, the items of its events in event-id order joined by a separator, and a tail.
A renderer says how to write each of these; it is pure: given an event (or the publication
context), it returns bytes. The engine keeps every event's item and re-renders only the events
that change, then joins the pieces (`traffic_hub.feeds.blocks`). Before an event enters a feed,
`check` says why it cannot (empty list = publishable); the engine withholds such events and
reports the reasons in the closure's or event's `publication`.

An item may depend on the moment only through the event's status (upcoming or active) and the
schedule window it is in; the engine re-renders events at those boundaries.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import orjson

from traffic_hub.model import Event, Status

__all__ = [
    "XML_DECLARATION",
    "Assembled",
    "FeatureCollectionShell",
    "FeedContext",
    "Gate",
    "Item",
    "Renderer",
    "Shell",
    "feature_collection_frame",
    "status_reasons",
]

XML_DECLARATION = "<?xml version='1.0' encoding='UTF-8'?>\n"


@dataclass(frozen=True, slots=True)
class FeedContext:
    """What renderers may know besides the events: who publishes, where, in which time zone."""

    now: datetime  # decides what is current (active or upcoming)
    # when the feed's content last changed (the feed's own timestamp / Last-Modified); defaults to `now`
    published_at: datetime | None = None
    timezone: str = "Europe/Paris"
    publisher: str = "Métropole Européenne de Lille"
    publisher_id: str = "MEL"
    base_url: str = "http://127.0.0.1:8000"
    waze_withhold_national_base: bool = True  # traffic_hub.feeds.waze_withhold

    @property
    def timestamp(self) -> datetime:
        return self.published_at or self.now


@dataclass(frozen=True, slots=True)
class Item:
    """One event's part of a feed: its encoded items (maybe none) and the data sources the head must list."""

    data: bytes
    sources: tuple[str, ...] = ()


class Renderer(Protocol):
    name: str  # "waze"; the key in `publication`
    media_type: str
    separator: bytes  # between two items: b"," in JSON arrays, b"" in XML and CSV

    def check(self, event: Event, ctx: FeedContext) -> list[str]:
        """Reasons this event cannot enter the feed now (empty: it can)."""
        ...

    def item(self, event: Event, ctx: FeedContext) -> Item:
        """The event's items, encoded (the event passed `check`)."""
        ...

    def head(self, ctx: FeedContext, sources: Sequence[str]) -> bytes:
        """Everything before the first item; `sources`: every data source the items name, sorted."""
        ...

    def tail(self, ctx: FeedContext) -> bytes:
        """Everything after the last item."""
        ...

    def render(self, events: Sequence[Event], ctx: FeedContext) -> bytes:
        """The whole feed for `events` (already filtered by `check`)."""
        ...


class Assembled:
    """`render` for any renderer: head, the items in event-id order, tail (what the engine builds incrementally)."""

    separator: bytes = b""

    def item(self, event: Event, ctx: FeedContext) -> Item:
        raise NotImplementedError

    def head(self, ctx: FeedContext, sources: Sequence[str]) -> bytes:
        raise NotImplementedError

    def tail(self, ctx: FeedContext) -> bytes:
        raise NotImplementedError

    def render(self, events: Sequence[Event], ctx: FeedContext) -> bytes:
        items = [self.item(event, ctx) for event in sorted(events, key=lambda e: e.id)]
        sources = sorted({source for item in items for source in item.sources})
        body = self.separator.join(item.data for item in items if item.data)
        return b"".join((self.head(ctx, sources), body, self.tail(ctx)))


Gate = Callable[[Event, FeedContext], list[str]]
"""A feed's rules: why an event cannot enter it now (empty: it can)."""


def status_reasons(event: Event, ctx: FeedContext) -> list[str]:
    """["ended"] or ["cancelled"] when the event has left the feeds at `ctx.now`, else []: every gate starts here."""
    status = event.status_at(ctx.now)
    if status is Status.CANCELLED:
        return ["cancelled"]
    if status is Status.ENDED:
        return ["ended"]
    return []


class Shell(Assembled):
    """What every renderer declares rather than writes: its publication key, media type and gate.

    A renderer module defines its gate as a function (tests and sibling formats call it directly)
    and names it here; `check` is that gate.
    """

    name: str
    media_type: str
    gate: staticmethod[[Event, FeedContext], list[str]]

    def check(self, event: Event, ctx: FeedContext) -> list[str]:
        return self.gate(event, ctx)


def feature_collection_frame(document: bytes) -> tuple[bytes, bytes]:
    """`document` (an encoded FeatureCollection ending with `"features":[]}`) cut where the features go."""
    if not document.endswith(b"[]}"):
        raise ValueError("the features member must come last and be empty")
    return document[:-2], b"]}"


class FeatureCollectionShell(Shell):
    """A GeoJSON FeatureCollection feed: the renderer gives the members before `features`, and the features."""

    media_type: str = "application/geo+json"
    separator = b","

    def members(self, ctx: FeedContext, sources: Sequence[str]) -> dict[str, Any]:
        """The document's members, `"features": []` last (the items go there)."""
        raise NotImplementedError

    def head(self, ctx: FeedContext, sources: Sequence[str]) -> bytes:
        return feature_collection_frame(orjson.dumps(self.members(ctx, sources)))[0]

    def tail(self, ctx: FeedContext) -> bytes:
        return b"]}"
