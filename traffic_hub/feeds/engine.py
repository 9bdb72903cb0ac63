"""One engine for every feed: render when the view changes, serve pre-rendered bytes.

Requests never render. The engine re-renders after a change (coalescing bursts) and at the next
moment an event starts or ends, so items enter and leave feeds on time without a request.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import hashlib
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Literal
from zoneinfo import ZoneInfo

from traffic_hub.feeds.base import FeedContext, Renderer
from traffic_hub.feeds.memo import EventMemo
from traffic_hub.model import Event
from traffic_hub.view import EventView

log = logging.getLogger(__name__)

MAX_SLEEP = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class Rendered:
    body: bytes
    gzipped: bytes
    etag: str
    last_modified: datetime
    media_type: str
    items: int


@dataclass(frozen=True, slots=True)
class Publication:
    status: Literal["published", "withheld"]
    reason: str | None = None


def content_time(events: Iterable[Event], now: datetime) -> datetime:
    """When the feeds' content last changed: the newest update or validity boundary passed.

    Deterministic for a given view, so replicas serve the same Last-Modified and ETag.
    """
    events = list(events)
    if not events:  # nothing ever happened: the start of the current hour (same on every replica)
        return now.replace(minute=0, second=0, microsecond=0)
    latest = datetime(2000, 1, 1, tzinfo=UTC)
    for event in events:
        moments = [event.updated_at, event.validity.starts_at]
        if event.validity.ends_at is not None:
            moments.append(event.validity.ends_at)
        latest = max([latest, *(m for m in moments if m <= now)])
    return latest


def next_boundary(events: Iterable[Event], now: datetime, tz: ZoneInfo) -> datetime:
    upcoming = [now + MAX_SLEEP]
    for event in events:
        validity = event.validity
        upcoming.extend(m for m in (validity.starts_at, validity.ends_at) if m is not None and m > now)
        if validity.schedule is not None and event.is_current(now):
            upcoming.extend(validity.schedule.boundaries(now, tz, days=1)[:1])
    return min(upcoming)


def feedable(event: Event, now: datetime) -> str | None:
    """Why no feed may carry the event now (None: feeds may, subject to their own rules)."""
    if event.verification == "dismissed":
        return "dismissed by an operator"
    if not event.is_current(now):
        return f"the event is {event.status_at(now).value}"
    return None


def _render_safely(renderer: Renderer, events: list[Event], ctx: FeedContext) -> bytes:
    """Render; if that fails, drop the events that cannot be rendered rather than the whole feed."""
    try:
        return renderer.render(events, ctx)
    except (ValueError, TypeError, KeyError) as exc:
        log.error("%s: rendering failed (%r); isolating the events at fault", renderer.name, exc)
    good = []
    for event in events:
        try:
            renderer.render([event], ctx)
        except (ValueError, TypeError, KeyError) as exc:
            log.error("%s: event %s cannot be rendered: %r", renderer.name, event.id, exc)
            continue
        good.append(event)
    return renderer.render(good, ctx)


def _check_key(event: Event, ctx: FeedContext) -> tuple[str, bool]:
    """What a gate's verdict depends on besides the event itself: its status and whether it is in a window."""
    return (event.status_at(ctx.now).value, event.in_window(ctx.now, ZoneInfo(ctx.timezone)))


@dataclass(frozen=True, slots=True)
class Candidates:
    """The events any feed may carry now, each with what its gates' verdicts depend on (computed once)."""

    events: list[Event]
    keys: list[tuple[str, bool]]

    @classmethod
    def of(cls, events: Sequence[Event], ctx: FeedContext) -> Candidates:
        current = [e for e in events if feedable(e, ctx.now) is None]
        return cls(current, [_check_key(e, ctx) for e in current])


def render(
    renderer: Renderer,
    events: Sequence[Event] | Candidates,
    ctx: FeedContext,
    verdicts: EventMemo[list[str]] | None = None,
) -> Rendered:
    candidates = events if isinstance(events, Candidates) else Candidates.of(events, ctx)

    def gate(event: Event, key: tuple[str, bool]) -> list[str]:
        if verdicts is None:
            return renderer.check(event, ctx)
        return verdicts.get(event, key, lambda e: renderer.check(e, ctx))

    publishable = [e for e, key in zip(candidates.events, candidates.keys, strict=True) if not gate(e, key)]
    body = _render_safely(renderer, publishable, ctx)
    digest = hashlib.blake2b(body, digest_size=16).hexdigest()
    return Rendered(
        body=body,
        # level 1: several times faster than the default on multi-megabyte feeds, most of the gain kept
        gzipped=gzip.compress(body, compresslevel=1, mtime=0),
        etag=f'"{digest}"',
        last_modified=ctx.timestamp,
        media_type=renderer.media_type,
        items=len(publishable),
    )


class FeedBook:
    """The current bytes of every feed, kept in step with the event view."""

    def __init__(
        self,
        view: EventView,
        renderers: dict[str, Renderer],
        context: Callable[[datetime, datetime], FeedContext],
        tz: ZoneInfo,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._view = view
        self._renderers = renderers
        self._context = context
        self._tz = tz
        self._clock = clock
        self._feeds: dict[str, Rendered] = {}
        self._verdicts: dict[str, EventMemo[list[str]]] = {key: EventMemo() for key in renderers}
        self._task: asyncio.Task[None] | None = None
        self.renders = 0
        self.rendered_seq = -1

    def get(self, feed: str) -> Rendered | None:
        return self._feeds.get(feed)

    def publication(self, event: Event, now: datetime) -> dict[str, Publication]:
        """Per feed: published, or withheld with the reasons (answers "why is my closure not in Waze?")."""
        ctx = self._context(now, now)
        out: dict[str, Publication] = {}
        for renderer in self._renderers.values():
            if renderer.name in out:
                continue
            barred = feedable(event, now)
            if barred is not None:
                out[renderer.name] = Publication("withheld", barred)
                continue
            reasons = renderer.check(event, ctx)
            out[renderer.name] = Publication("withheld", "; ".join(reasons)) if reasons else Publication("published")
        return out

    def render_all(self, events: Sequence[Event], now: datetime) -> None:
        """Render every feed from a snapshot of the view (CPU work: runs in a worker thread)."""
        ctx = self._context(now, content_time(events, now))
        candidates = Candidates.of(events, ctx)
        for key, renderer in self._renderers.items():  # each feed is served as soon as it is ready
            self._feeds = {**self._feeds, key: render(renderer, candidates, ctx, self._verdicts[key])}
        self.renders += 1

    async def refresh(self) -> None:
        """Render now from the view as it is (snapshot taken on the event loop)."""
        seq, events = self._view.seq, list(self._view)
        await asyncio.to_thread(self.render_all, events, self._clock())
        self.rendered_seq = seq

    @property
    def alive(self) -> bool:
        return self._task is not None and not self._task.done()

    async def _loop(self) -> None:
        while True:
            try:
                await self.refresh()
                seq = self.rendered_seq
                wake = next_boundary(list(self._view), self._clock(), self._tz)
            except Exception:  # a render must never stop the feeds for good: log, wait, render again
                log.exception("rendering the feeds failed; retrying")
                await asyncio.sleep(1.0)
                continue
            delay = max((wake - self._clock()).total_seconds(), 0.0) + 0.001
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._view.wait_for_change(seq)
                    await asyncio.sleep(0.01)  # coalesce a burst of changes into one render

    async def __aenter__(self) -> FeedBook:
        self._task = asyncio.create_task(self._loop(), name="feeds")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
