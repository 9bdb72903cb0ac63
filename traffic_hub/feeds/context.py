"""The `FeedContext` a renderer is given, made from the settings in one place (feeds, stream, tests)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from traffic_hub.feeds.base import FeedContext
from traffic_hub.settings import Settings

ContextFactory = Callable[[datetime, datetime], FeedContext]


def feed_context(settings: Settings) -> ContextFactory:
    """`make(now, published_at)`: the context of a render at `now` of data last changed at `published_at`."""

    def make(now: datetime, published_at: datetime) -> FeedContext:
        return FeedContext(
            now=now,
            published_at=published_at,
            timezone=settings.timezone,
            publisher=settings.publisher,
            base_url=settings.public_url,
            waze_withhold_national_base=settings.waze_withhold_national_base,
        )

    return make
