"""What each feed carries for one event now: its gate, then its item (or nothing)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime

from traffic_hub.feeds.base import FeedContext, Item, Renderer
from traffic_hub.model import Event

__all__ = ["feedable", "items_of"]

log = logging.getLogger(__name__)


def feedable(event: Event, now: datetime) -> str | None:
    """Why no feed may carry the event now (None: feeds may, subject to their own rules)."""
    if event.verification == "dismissed":
        return "dismissed by an operator"
    if not event.is_current(now):
        return f"the event is {event.status_at(now).value}"
    return None


def items_of(renderers: Mapping[str, Renderer], event: Event | None, ctx: FeedContext) -> dict[str, Item | None]:
    """Every feed's item for `event` at `ctx.now` (None: the feed does not carry it)."""
    if event is None or feedable(event, ctx.now) is not None:
        return dict.fromkeys(renderers)
    passed: dict[str, bool] = {}  # renderers sharing a publication key share the gate
    out: dict[str, Item | None] = {}
    for key, renderer in renderers.items():
        if renderer.name not in passed:
            passed[renderer.name] = not renderer.check(event, ctx)
        out[key] = _item(renderer, event, ctx) if passed[renderer.name] else None
    return out


def _item(renderer: Renderer, event: Event, ctx: FeedContext) -> Item | None:
    """The renderer's item, or None (logged) when the event cannot be rendered: one event never breaks a feed."""
    try:
        return renderer.item(event, ctx)
    except (ValueError, TypeError, KeyError) as exc:
        log.error("%s: event %s cannot be rendered: %r", renderer.name, event.id, exc)
        return None
