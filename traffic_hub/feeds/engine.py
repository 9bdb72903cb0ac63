"""One engine for every feed: render what changed, serve pre-rendered bytes.

Requests never render. The engine follows the event view's change log: each changed event is
checked by every feed's gate and, if it passes, rendered into that feed's item; the item goes into
the feed's compressed body (`blocks.FeedBody`), and a new version of each feed is published
(`rendered.publish`). The timeline wakes the engine when an event starts, ends or enters or leaves
a schedule window, so items enter and leave feeds on time without a request. A full rebuild runs
at start and whenever the change log no longer reaches back to the last version.

All rendering runs in a worker thread, one step at a time; requests read the published versions.
With `snapshot_dir` set, the rendered blocks are saved now and then and at a clean stop, and the
first rebuild after a restart renders only what changed since (`snapshot`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any, Literal
from zoneinfo import ZoneInfo

from traffic_hub.feeds.base import FeedContext, Renderer
from traffic_hub.feeds.blocks import FeedBody
from traffic_hub.feeds.items import feedable, items_of
from traffic_hub.feeds.rebuild import Range, render_all, render_reusing
from traffic_hub.feeds.rendered import Rendered, publish
from traffic_hub.feeds.snapshot import Snapshot, event_hash, fingerprint, read, write
from traffic_hub.feeds.timeline import Timeline
from traffic_hub.lifecycle import Service
from traffic_hub.model import Event
from traffic_hub.settings import FeedSettings
from traffic_hub.view import Change, EventView, Stored

__all__ = ["FeedBook", "Publication", "Rendered", "feedable"]

log = logging.getLogger(__name__)

Context = Callable[[datetime, datetime], FeedContext]


@dataclass(frozen=True, slots=True)
class Publication:
    status: Literal["published", "withheld"]
    reason: str | None = None


class FeedBook(Service):
    """The current version of every feed, kept in step with the event view."""

    def __init__(
        self,
        view: EventView,
        renderers: dict[str, Renderer],
        context: Context,
        tz: ZoneInfo,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        ready: Callable[[], Awaitable[None]] | None = None,
        settings: FeedSettings | None = None,
    ) -> None:
        super().__init__()
        settings = settings or FeedSettings()
        self._view = view
        self._renderers = renderers
        self._context = context
        self._clock = clock
        self._ready = ready
        self._level = settings.gzip_level
        self._block_size = settings.block_events
        self._budget = settings.plain_cache_mb * 1024 * 1024
        self._bodies = {
            key: FeedBody(renderer.separator, settings.block_events, settings.gzip_level)
            for key, renderer in renderers.items()
        }
        self._timeline = Timeline(tz)
        self._feeds: dict[str, Rendered] = {}
        self.renders = 0
        self.rendered_seq = -1
        self._snapshot_path = settings.snapshot_dir / "feeds.snapshot" if settings.snapshot_dir else None
        self._snapshot_every_s = settings.snapshot_every_s
        self._hashes: dict[str, bytes] = {}  # event id → hash of the JSON rendered (kept only for snapshots)
        self._saved_renders = 0
        self._step = asyncio.Lock()  # a render step and a snapshot capture never overlap
        self.reused = 0  # events the last rebuild took from a snapshot
        self._first_render = asyncio.Event()

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

    # --- rendering (worker thread) -------------------------------------------------------------

    def rebuild(self, events: Sequence[tuple[str, bytes]], now: datetime) -> None:
        """Every feed from the events ((id, JSON) in id order): from scratch (`rebuild.render_all`), or,
        the first time, from a saved snapshot and what changed since (`rebuild.render_reusing`)."""
        started = time.monotonic()
        ctx = self._context(now, now)
        snapshot = self._saved(ctx) if self.renders == 0 else None
        if snapshot is not None:
            built, self.reused = render_reusing(
                self._renderers, events, ctx, self._block_size, self._level, snapshot
            )
        else:
            built = self._render_all(events, ctx)
        self._bodies = built.bodies
        self._timeline.load(built.moments)
        if self._snapshot_path is not None:
            self._hashes = {event_id: event_hash(raw) for event_id, raw in events}
        self._fit_budget(rebuilt=True)
        self._publish(now)
        log.info(
            "feeds rebuilt from %d events in %.1f s (%d taken from the snapshot)",
            len(events), time.monotonic() - started, self.reused,
        )

    def _render_all(self, events: Sequence[tuple[str, bytes]], ctx: FeedContext) -> Range:
        raws = [raw for _, raw in events]
        return render_all(self._renderers, raws, ctx, self._block_size, self._level)

    def _saved(self, ctx: FeedContext) -> Snapshot | None:
        """The saved snapshot, if there is one these renderers made (a bad file is only logged)."""
        if self._snapshot_path is None:
            return None
        try:
            return read(self._snapshot_path, fingerprint(self._renderers, ctx, self._block_size, self._level))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("feed snapshot %s unreadable (%r); rendering from scratch", self._snapshot_path, exc)
            return None

    def _update_from(self, pending: dict[str, Change], due: list[tuple[str, Stored | None]], now: datetime) -> None:
        """`update` with the events decoded here, in the worker, rather than on the event loop."""
        changed: dict[str, Event | None] = {event_id: change.event for event_id, change in pending.items()}
        if self._snapshot_path is not None:
            for event_id, change in pending.items():
                self._remember(event_id, change.stored)
        for event_id, stored in due:
            if event_id not in changed:
                changed[event_id] = None if stored is None else stored.decode()
                self._remember(event_id, stored)
        self.update(changed, now)

    def _remember(self, event_id: str, stored: Stored | None) -> None:
        if self._snapshot_path is None:
            return
        if stored is None:
            self._hashes.pop(event_id, None)
        else:
            self._hashes[event_id] = event_hash(stored.raw)

    def update(self, changed: dict[str, Event | None], now: datetime) -> None:
        """Re-render the events that changed (None: removed) and publish a new version of every feed."""
        ctx = self._context(now, now)
        for event_id, event in changed.items():
            event_id = sys.intern(event_id)
            self._timeline.track(event_id, event, now)
            for key, item in items_of(self._renderers, event, ctx).items():
                self._bodies[key].stage(event_id, item)
        for body in self._bodies.values():
            body.commit()
        self._fit_budget(rebuilt=False)
        self._publish(now)

    def _fit_budget(self, rebuilt: bool) -> None:
        """Keep plain copies of the smallest feeds that fit the budget; the others stay compressed only."""
        total = 0
        for body in sorted(self._bodies.values(), key=lambda b: b.length):
            # a feed joins only with room to spare, so that a feed near the limit does not flap
            fits = total + body.length <= (self._budget if body.keep_plain else 0.8 * self._budget)
            if fits:
                total += body.length
            if rebuilt or fits != body.keep_plain:
                body.set_keep_plain(fits)

    def _publish(self, now: datetime) -> None:
        ctx = self._context(now, self._timeline.content_time(now))
        for key, renderer in self._renderers.items():  # each feed is served as soon as it is ready
            self._feeds = {**self._feeds, key: publish(renderer, self._bodies[key], ctx, self._level)}
        self.renders += 1

    # --- the loop (event loop) -----------------------------------------------------------------

    async def refresh(self) -> None:
        """Bring every feed up to date with the view and the clock."""
        now, seq = self._clock(), self._view.seq
        changes = self._view.changes_since(self.rendered_seq) if self.rendered_seq >= 0 else None
        async with self._step:
            if changes is None:  # decoded one at a time in the worker: 100,000 events never sit in memory at once
                records = sorted(self._view.records(), key=attrgetter("id"))
                await asyncio.to_thread(self.rebuild, [(stored.id, stored.raw) for stored in records], now)
                self._first_render.set()
            else:
                pending = {change.event_id: change for change in changes}  # the latest change of each event
                due = [(event_id, self._view.stored(event_id)) for event_id in self._timeline.due(now)]
                if pending or due:
                    await asyncio.to_thread(self._update_from, pending, due, now)
            self.rendered_seq = seq

    @property
    def rendered(self) -> bool:
        """Every feed has a version to serve (false during the first render, minutes at 1 M events)."""
        return len(self._feeds) == len(self._renderers)

    async def wait_rendered(self) -> None:
        """Until every feed has its first version (`rendered`)."""
        await self._first_render.wait()

    @property
    def alive(self) -> bool:
        return self.running

    def tasks(self) -> dict[str, Coroutine[Any, Any, None]]:
        tasks = {"feeds": self._loop()}
        if self._snapshot_path is not None:
            tasks["feeds-snapshot"] = self._saving()
        return tasks

    async def after_stop(self) -> None:
        await self.save_snapshot()  # a clean stop leaves the newest state for the next start

    async def save_snapshot(self) -> bool:
        """Save the rendered feeds if they changed since the last save; True when a snapshot was written."""
        if self._snapshot_path is None or not self.rendered or self.renders == self._saved_renders:
            return False
        async with self._step:  # the blocks, the timeline and the hashes of one and the same step
            renders = self.renders
            snapshot = Snapshot.capture(
                "", self._clock(), self._hashes, self._timeline.moments(), self._bodies
            )
        ctx = self._context(snapshot.taken_at, snapshot.taken_at)
        snapshot.fingerprint = fingerprint(self._renderers, ctx, self._block_size, self._level)
        try:
            await asyncio.to_thread(write, self._snapshot_path, snapshot)
        except OSError as exc:
            log.warning("feed snapshot %s not saved: %r", self._snapshot_path, exc)
            return False
        self._saved_renders = renders
        return True

    async def _saving(self) -> None:
        """Save once the first render is done (a crash soon after start finds it), then now and then."""
        await self._first_render.wait()
        while True:
            await self.save_snapshot()
            await asyncio.sleep(self._snapshot_every_s)

    async def _loop(self) -> None:
        if self._ready is not None:
            await self._ready()
        while True:
            try:
                await self.refresh()
            except Exception:  # a render must never stop the feeds for good: log, wait, rebuild
                log.exception("rendering the feeds failed; rebuilding")
                self.rendered_seq = -1
                await asyncio.sleep(1.0)
                continue
            delay = max((self._timeline.wake_at(self._clock()) - self._clock()).total_seconds(), 0.0) + 0.001
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._view.wait_for_change(self.rendered_seq)
