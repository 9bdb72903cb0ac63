"""The renderer contract every partner feed implements.

A renderer is pure: given the current events and the moment, it returns the feed's bytes. Before
an event enters a feed, `check` says why it cannot (empty list = publishable); the engine withholds
such events and reports the reasons in the closure's or event's `publication`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from traffic_hub.model import Event


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


class Renderer(Protocol):
    name: str  # "waze-cifs-xml"; the key in `publication`
    media_type: str

    def check(self, event: Event, ctx: FeedContext) -> list[str]:
        """Reasons this event cannot enter the feed now (empty: it can)."""
        ...

    def render(self, events: Sequence[Event], ctx: FeedContext) -> bytes:
        """The whole feed for `events` (already filtered by `check`)."""
        ...
