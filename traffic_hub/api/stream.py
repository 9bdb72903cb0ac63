"""Server-sent events of every change to the events (created, updated, removed), resumable.

Event ids are `<epoch>-<seq>`. A client that reconnects with `Last-Event-ID` from this process gets
exactly the changes it missed; from another process (restart, other replica) or too old, it gets a
`reset` event with every current event first, then the live changes.

A `reset` carries every current event (megabytes with a few thousand), so it is built at most once per
view version and audience, in a worker thread, and the same bytes go to every connection that asks for
it (`Streams.snapshot`; a stream opened a few changes later gets the same snapshot and replays those
changes); a stream open costs the event loop a dictionary look-up. Change messages are encoded once too.
Open streams are counted per key and in all (`TRAFFIC_HUB_LIMITS__STREAMS_PER_KEY`, `…__STREAMS_TOTAL`):
beyond the first, 429; beyond the second, 503 with Retry-After.

Audiences: operators and admins get every event with its sources (what each source said) and its
publication per feed. Partners get what the open feeds carry and nothing more: the open-data feature
(`feeds.opendata`: public properties, no `said`, no publication reasons, Waze left out of `sources`)
of the events those feeds publish; Waze-only events, which the Waze terms keep out of them, never
reach a partner. An event leaving the partners' view (ended, cancelled, withheld) arrives as `removed`;
partners should treat `created` and `updated` alike (insert or replace).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, OrderedDict
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import orjson
from fastapi import APIRouter, Header, Request, Response
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from traffic_hub.api.deps import EventsDep, FeedReader
from traffic_hub.api.events import feature
from traffic_hub.api.problems import problem
from traffic_hub.api.responses import AUTH, _problem
from traffic_hub.auth import Principal, Role
from traffic_hub.feeds.context import ContextFactory
from traffic_hub.feeds.engine import FeedBook
from traffic_hub.feeds.items import feedable
from traffic_hub.feeds.opendata import check_opendata, geometry_of, properties_of
from traffic_hub.model import Event
from traffic_hub.settings import LimitSettings
from traffic_hub.view import Change, EventView

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1/events", tags=["events"])

STREAMS = "streams"  # the `Streams` of the lifespan state
PING = b": ping\n\n"
PING_INTERVAL_S = 15.0
SNAPSHOT_MAX_AGE_S = 30.0  # statuses (planned → active) are computed when a snapshot is built
SNAPSHOT_REPLAY_MAX = 500  # changes a stream may replay after a shared snapshot rather than have one built
RETRY_AFTER_S = 5
CHANGES_KEPT = 4096  # encoded changes shared by connections (a connection behind re-encodes)
STREAM_RESPONSES: dict[int | str, dict[str, Any]] = {
    **AUTH,
    429: _problem("this key already has as many event streams open as it may"),
    503: _problem("the hub has as many event streams open as it may; retry after Retry-After seconds"),
}


class Audience(StrEnum):
    FULL = "full"  # operators, admins
    PARTNER = "partner"


def audience_of(principal: Principal) -> Audience:
    return Audience.FULL if principal.role in (Role.OPERATOR, Role.ADMIN) else Audience.PARTNER


def sse(kind: str, event_id: str, data: bytes) -> bytes:
    """One SSE message (orjson writes no raw line breaks, so `data` is one line)."""
    return b"event: " + kind.encode() + b"\ndata: " + data + b"\nid: " + event_id.encode() + b"\n\n"


class Projection:
    """How an event looks on the stream: in full for operators and admins, as the open feeds carry it for
    partners (None when they do not carry it)."""

    def __init__(self, feeds: FeedBook, context: ContextFactory, tz: ZoneInfo) -> None:
        self._feeds = feeds
        self._context = context
        self._tz = tz

    def __call__(self, audience: Audience, event: Event, now: datetime) -> dict[str, Any] | None:
        return feature(self._feeds, event, now) if audience is Audience.FULL else self.partner(event, now)

    def partner(self, event: Event, now: datetime) -> dict[str, Any] | None:
        ctx = self._context(now, now)
        if feedable(event, now) is not None or check_opendata(event, ctx):
            return None
        return {
            "type": "Feature",
            "id": event.id,
            "geometry": geometry_of(event.geometry),
            "properties": properties_of(event, ctx, self._tz),
        }


class TooManyStreams(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class Streams:
    """What every open stream shares: the counts of open streams, the snapshots, the encoded changes."""

    def __init__(self, events: EventView, project: Projection, limits: LimitSettings) -> None:
        self._view = events
        self._project = project
        self._per_key = limits.streams_per_key
        self._total = limits.streams_total
        self._open: Counter[str] = Counter()
        self._snapshots: dict[Audience, tuple[int, float, asyncio.Future[bytes]]] = {}
        self._changes: OrderedDict[tuple[int, Audience], bytes] = OrderedDict()
        self.snapshot_builds = 0

    @property
    def open(self) -> int:
        return sum(self._open.values())

    def gauges(self) -> dict[str, float]:
        return {"stream_connections": float(self.open), "stream_snapshot_builds": float(self.snapshot_builds)}

    def admit(self, principal: Principal) -> None:
        """Count one more stream for `principal`, or raise `TooManyStreams` (429 per key, 503 in all)."""
        if self._open[principal.name] >= self._per_key:
            raise TooManyStreams(429, f"this key already has {self._per_key} event streams open; close one first")
        if self.open >= self._total:
            raise TooManyStreams(503, "the hub has as many event streams open as it may; retry later")
        self._open[principal.name] += 1

    def release(self, principal: Principal) -> None:
        self._open[principal.name] -= 1
        if self._open[principal.name] <= 0:
            del self._open[principal.name]

    async def snapshot(self, audience: Audience) -> tuple[int, bytes]:
        """A `reset` message for `audience` and the seq it stands for (the stream replays the changes since).

        Built in a worker thread, at most once per view version; a snapshot a few changes old is shared
        rather than rebuilt (up to `SNAPSHOT_REPLAY_MAX` changes and `SNAPSHOT_MAX_AGE_S`), so a busy view
        does not turn every open into a build.
        """
        view = self._view
        entry = self._snapshots.get(audience)
        if entry is None or not self._usable(entry[0], entry[1]):
            now = datetime.now(UTC)
            records = view.current(now)  # the current records, taken now; decoded in the worker
            build = asyncio.ensure_future(asyncio.to_thread(self._build, audience, view.seq, records, now))
            build.add_done_callback(self._forget_failed(audience))
            entry = self._snapshots[audience] = (view.seq, time.monotonic(), build)
            self.snapshot_builds += 1
        return entry[0], await asyncio.shield(entry[2])

    def _usable(self, seq: int, built_at: float) -> bool:
        view = self._view
        if seq == view.seq:
            return time.monotonic() - built_at <= SNAPSHOT_MAX_AGE_S
        return (
            view.seq - seq <= SNAPSHOT_REPLAY_MAX
            and time.monotonic() - built_at <= SNAPSHOT_MAX_AGE_S
            and view.changes_since(seq) is not None
        )

    def _forget_failed(self, audience: Audience) -> Any:
        def done(build: asyncio.Future[bytes]) -> None:
            if build.cancelled() or build.exception() is not None:
                entry = self._snapshots.get(audience)
                if entry is not None and entry[2] is build:
                    del self._snapshots[audience]

        return done

    def _build(self, audience: Audience, seq: int, events: Iterable[Event], now: datetime) -> bytes:
        projected = (self._project(audience, event, now) for event in events)
        features = [item for item in projected if item is not None]
        data = orjson.dumps({"kind": "reset", "type": "FeatureCollection", "features": features})
        return sse("reset", f"{self._view.epoch}-{seq}", data)

    def change(self, change: Change, audience: Audience) -> bytes:
        """The message of `change` for `audience`, encoded once for every connection."""
        key = (change.seq, audience)
        encoded = self._changes.get(key)
        if encoded is None:
            encoded = self._changes[key] = self._encode(change, audience)
            if len(self._changes) > CHANGES_KEPT:
                self._changes.popitem(last=False)
        return encoded

    def _encode(self, change: Change, audience: Audience) -> bytes:
        event = change.event
        projected = None if event is None else self._project(audience, event, datetime.now(UTC))
        kind = change.kind if projected is not None else "removed"
        data: dict[str, Any] = {"kind": kind, "id": change.event_id}
        if projected is not None:
            data["event"] = projected
        return sse(kind, f"{self._view.epoch}-{change.seq}", orjson.dumps(data))


class EventStream(StreamingResponse):
    """The stream's response (`text/event-stream`): gives its place back however the stream ends.

    Not FastAPI's `EventSourceResponse`, which would re-encode every message per connection: the
    messages here are encoded once and shared.
    """

    media_type = "text/event-stream"

    def __init__(self, content: AsyncIterator[bytes], streams: Streams, principal: Principal) -> None:
        super().__init__(content, headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        self._streams = streams
        self._principal = principal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._streams.release(self._principal)


def _resume_point(view: EventView, last_event_id: str | None) -> int | None:
    """The sequence number to resume after, or None when the client must start from a snapshot."""
    if not last_event_id:
        return None
    epoch, _, seq = last_event_id.partition("-")
    if epoch != view.epoch or not seq.isdigit():
        return None
    if view.changes_since(int(seq)) is None:
        return None
    return int(seq)


async def _messages(view: EventView, streams: Streams, audience: Audience, seq: int | None) -> AsyncIterator[bytes]:
    if seq is None:
        seq, reset = await streams.snapshot(audience)
        yield reset
    while True:
        changes = view.changes_since(seq)
        if changes is None:  # fell behind the kept history: start again from a snapshot
            seq, reset = await streams.snapshot(audience)
            yield reset
            continue
        for change in changes:
            yield streams.change(change, audience)
            seq = change.seq
        try:
            async with asyncio.timeout(PING_INTERVAL_S):
                await view.wait_for_change(seq)
        except TimeoutError:
            yield PING


@router.get("/stream", response_class=EventStream, status_code=200, responses=STREAM_RESPONSES)
async def stream(
    principal: FeedReader,
    events: EventsDep,
    request: Request,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> Response:
    """Every change as it happens: `created`, `updated`, `removed`; `reset` carries the full current set.

    Operators and admins see every event in full; partners see what the open feeds carry.
    """
    streams: Streams = request.state.streams
    try:
        streams.admit(principal)
    except TooManyStreams as exc:
        title = "Too Many Requests" if exc.status == 429 else "Service unavailable"
        return problem(exc.status, title, exc.detail, retry_after=RETRY_AFTER_S)
    try:
        messages = _messages(events, streams, audience_of(principal), _resume_point(events, last_event_id))
        return EventStream(messages, streams, principal)
    except BaseException:
        streams.release(principal)
        raise
