"""A full rebuild of every feed, from the events' JSON, split by event-id range over processes.

A rebuild renders every event into every feed: about 0.8 ms of CPU per event, a minute for 100,000
events. The events, sorted by id, are cut into as many contiguous ranges as there are cores; each
range is rendered into blocks by a worker process (`render_range`, a pure function), and the ranges'
bodies are joined end to end. Besides using every core, this keeps the decoded events and the
rendering garbage out of the serving process, whose memory holds only what it keeps. Small rebuilds
run in the calling thread.

After a restart, `render_reusing` takes back what a saved snapshot (`snapshot`) still holds and
renders only the events that changed since, into the same blocks a full render would give.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from traffic_hub.feeds.base import FeedContext, Item, Renderer
from traffic_hub.feeds.blocks import Block, FeedBody
from traffic_hub.feeds.items import items_of
from traffic_hub.feeds.snapshot import Saved, Snapshot, event_hash, reusable
from traffic_hub.feeds.timeline import Moments, moments_of
from traffic_hub.model import Event

__all__ = ["Range", "render_all", "render_range", "render_reusing"]

Rendered = dict[str, tuple[dict[str, Item | None], Moments]]  # event id → (feed → item, moments)

PARALLEL_FROM = 5000  # events: below this, a process pool costs more than it saves


@dataclass(slots=True)
class Range:
    """A run of events rendered into every feed, and when each of them next changes by itself."""

    bodies: dict[str, FeedBody]
    moments: dict[str, Moments]


def render_range(
    renderers: Mapping[str, Renderer], events: Sequence[bytes], ctx: FeedContext, block_size: int, level: int
) -> Range:
    """Render `events` (JSON, in id order) into blocks of every feed, compressed only."""
    bodies = {key: FeedBody(renderer.separator, block_size, level) for key, renderer in renderers.items()}
    moments: dict[str, Moments] = {}
    for body in bodies.values():
        body.keep_plain = False
        body.begin()
    tz = ZoneInfo(ctx.timezone)
    for raw in events:
        event = Event.model_validate_json(raw)
        moments[event.id] = moments_of(event, ctx.now, tz)
        for key, item in items_of(renderers, event, ctx).items():
            if item is not None:
                bodies[key].append(event.id, item)
    for body in bodies.values():
        body.end()
    return Range(bodies, moments)


def render_all(
    renderers: Mapping[str, Renderer], events: Sequence[bytes], ctx: FeedContext, block_size: int, level: int
) -> Range:
    """Every feed for `events` (JSON, in id order), over worker processes when there are many."""
    workers = min(os.cpu_count() or 1, 8)
    if len(events) < PARALLEL_FROM or workers < 2:
        return render_range(renderers, events, ctx, block_size, level)
    step = -(-len(events) // workers)
    ranges = [events[i : i + step] for i in range(0, len(events), step)]
    # spawn: a fresh interpreter, never a fork of a process running threads and an event loop
    with ProcessPoolExecutor(len(ranges), mp_context=multiprocessing.get_context("spawn")) as pool:
        parts = list(
            pool.map(render_range, *zip(*[(renderers, r, ctx, block_size, level) for r in ranges], strict=True))
        )
    return _joined(parts)


def render_items(renderers: Mapping[str, Renderer], events: Sequence[bytes], ctx: FeedContext) -> Rendered:
    """Every feed's item and the moments of each event (JSON), without blocks."""
    tz = ZoneInfo(ctx.timezone)
    out: Rendered = {}
    for raw in events:
        event = Event.model_validate_json(raw)
        out[event.id] = (items_of(renderers, event, ctx), moments_of(event, ctx.now, tz))
    return out


def _render_items_all(renderers: Mapping[str, Renderer], events: Sequence[bytes], ctx: FeedContext) -> Rendered:
    workers = min(os.cpu_count() or 1, 8)
    if len(events) < PARALLEL_FROM or workers < 2:
        return render_items(renderers, events, ctx)
    step = -(-len(events) // workers)
    ranges = [events[i : i + step] for i in range(0, len(events), step)]
    out: Rendered = {}
    with ProcessPoolExecutor(len(ranges), mp_context=multiprocessing.get_context("spawn")) as pool:
        for part in pool.map(render_items, *zip(*[(renderers, r, ctx) for r in ranges], strict=True)):
            out.update(part)
    return out


def render_reusing(
    renderers: Mapping[str, Renderer], events: Sequence[tuple[str, bytes]], ctx: FeedContext, block_size: int,
    level: int, snapshot: Snapshot,
) -> tuple[Range, int]:
    """Every feed for `events` ((id, JSON) in id order), taking what `snapshot` still holds; and how many
    events were taken from it rather than rendered."""
    holds = {event_id for event_id, raw in events if snapshot.holds(event_id, event_hash(raw), ctx.now)}
    fresh = _render_items_all(renderers, [raw for event_id, raw in events if event_id not in holds], ctx)
    ids = [event_id for event_id, _ in events]
    bodies = {}
    for key, renderer in renderers.items():
        saved = snapshot.bodies.get(key) or Saved([], {})
        body = FeedBody(renderer.separator, block_size, level)
        _assemble(body, key, ids, holds, fresh, saved)
        bodies[key] = body
    moments = {event_id: snapshot.moments[event_id] for event_id in holds}
    moments.update({event_id: rendered[1] for event_id, rendered in fresh.items()})
    return Range(bodies, moments), len(holds)


def _assemble(body: FeedBody, key: str, ids: list[str], holds: set[str], fresh: Rendered, saved: Saved) -> None:
    """`body` as a full render would build it: saved blocks where they still hold, items elsewhere."""
    where = {event_id: block for block in saved.blocks for event_id in block.ids}
    carried = [i for i in ids if (fresh[i][0][key] is not None if i in fresh else i in where)]
    inflated: dict[str, dict[str, bytes]] = {}  # a saved block's items, by its first id
    body.keep_plain = False
    body.begin()
    at = 0
    while at < len(carried):
        if at == 0 or body.cuts_after(carried[at - 1]):
            block = reusable(saved, body, carried, at, holds)
            if block is not None:
                body.adopt(block, saved.sources)
                at += len(block.ids)
                continue
        event_id = carried[at]
        if event_id in fresh:
            item = fresh[event_id][0][key]
        else:
            item = _saved_item(saved, where[event_id], event_id, inflated, body.separator)
        if item is not None:
            body.append(event_id, item)
        at += 1
    body.end()


def _saved_item(
    saved: Saved, block: Block, event_id: str, inflated: dict[str, dict[str, bytes]], separator: bytes
) -> Item:
    items = inflated.get(block.ids[0])
    if items is None:
        items = inflated[block.ids[0]] = block.items(separator)
    return Item(items[event_id], saved.sources.get(event_id, ()))


def _joined(parts: list[Range]) -> Range:
    first, *rest = parts
    for part in rest:
        for key, body in first.bodies.items():
            body.extend(part.bodies[key])
        first.moments.update(part.moments)
    return first
