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

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from traffic_hub.model import Event

__all__ = ["Assembled", "FeedContext", "Item", "Renderer"]


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
