"""Server-sent events of every change to the events (created, updated, removed), resumable.

Event ids are `<epoch>-<seq>`. A client that reconnects with `Last-Event-ID` from this process gets
exactly the changes it missed; from another process (restart, other replica) or too old, it gets a
`reset` event with every current event first, then the live changes.
"""

from __future__ import annotations

from collections.abc import AsyncIterable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header
from fastapi.sse import EventSourceResponse, ServerSentEvent

from traffic_hub.api.deps import FeedReader, HubDep
from traffic_hub.api.events import feature
from traffic_hub.api.responses import AUTH
from traffic_hub.runtime import Hub
from traffic_hub.view import Change

router = APIRouter(prefix="/api/v1/events", tags=["events"])


def _resume_point(hub: Hub, last_event_id: str | None) -> int | None:
    """The sequence number to resume after, or None when the client must start from a snapshot."""
    if not last_event_id:
        return None
    epoch, _, seq = last_event_id.partition("-")
    if epoch != hub.live.events.epoch or not seq.isdigit():
        return None
    if hub.live.events.changes_since(int(seq)) is None:
        return None
    return int(seq)


def _change_event(hub: Hub, change: Change) -> ServerSentEvent:
    now = datetime.now(UTC)
    data: dict[str, Any] = {"kind": change.kind, "id": change.event_id}
    if change.event is not None:
        data["event"] = feature(hub, change.event, now)
    return ServerSentEvent(id=f"{hub.live.events.epoch}-{change.seq}", event=change.kind, data=data)


def _snapshot(hub: Hub) -> ServerSentEvent:
    now = datetime.now(UTC)
    events = [feature(hub, e, now) for e in hub.live.events.current(now)]  # decodes only the current events
    seq = hub.live.events.seq
    return ServerSentEvent(
        id=f"{hub.live.events.epoch}-{seq}",
        event="reset",
        data={"kind": "reset", "type": "FeatureCollection", "features": events},
    )


@router.get("/stream", response_class=EventSourceResponse, responses=AUTH)
async def stream(
    principal: FeedReader,
    hub: HubDep,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> AsyncIterable[ServerSentEvent]:
    """Every change as it happens: `created`, `updated`, `removed`; `reset` carries the full current set."""
    seq = _resume_point(hub, last_event_id)
    if seq is None:
        seq = hub.live.events.seq
        yield _snapshot(hub)
    while True:
        changes = hub.live.events.changes_since(seq)
        if changes is None:  # fell behind the kept history: start again from a snapshot
            seq = hub.live.events.seq
            yield _snapshot(hub)
            continue
        for change in changes:
            yield _change_event(hub, change)
            seq = change.seq
        await hub.live.events.wait_for_change(seq)
