"""Events (all sources, normalised) for operators: GeoJSON, one feature per event."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter

from traffic_hub.api.deps import EventsDep, FeedsDep, Operator
from traffic_hub.api.responses import READ
from traffic_hub.errors import NotFound
from traffic_hub.feeds.engine import FeedBook
from traffic_hub.model import Event

router = APIRouter(prefix="/api/v1/events", tags=["events"])


def feature(feeds: FeedBook, event: Event, now: datetime) -> dict[str, Any]:
    publication = feeds.publication(event, now)
    return {
        "type": "Feature",
        "id": event.id,
        "geometry": event.geometry.model_dump(mode="json"),
        "properties": {
            "id": event.id,
            "type": event.type.value,
            "subtype": event.subtype,
            "cause": event.cause.value,
            "description": event.description,
            "street": event.street,
            "commune": event.commune,
            "direction": event.direction.value,
            "status": event.status_at(now).value,
            "verification": event.verification,
            "starts_at": event.validity.starts_at.isoformat(),
            "ends_at": event.validity.ends_at.isoformat() if event.validity.ends_at else None,
            "schedule": event.validity.schedule.model_dump(exclude_none=True) if event.validity.schedule else None,
            "lanes": event.lanes,
            "measure": event.measure.model_dump(mode="json", exclude_none=True) if event.measure else None,
            "version": event.version,
            "sources": [s.model_dump(mode="json") for s in event.sources],
            "normalised": event.normalised.model_dump(mode="json") if event.normalised else None,
            "publication": {k: {"status": p.status, "reason": p.reason} for k, p in publication.items()},
            "created_at": event.created_at.isoformat(),
            "updated_at": event.updated_at.isoformat(),
        },
    }


@router.get("", responses=READ)
async def list_events(principal: Operator, events: EventsDep, feeds: FeedsDep) -> dict[str, Any]:
    """Current events (active and upcoming) as a GeoJSON FeatureCollection."""
    now = datetime.now(UTC)
    current = list(events.current(now))  # decodes only the current events
    current.sort(key=lambda e: (e.validity.starts_at, e.id))
    return {"type": "FeatureCollection", "features": [feature(feeds, e, now) for e in current]}


@router.get("/{event_id}", responses=READ)
async def read_event(event_id: str, principal: Operator, events: EventsDep, feeds: FeedsDep) -> dict[str, Any]:
    event = events.get(event_id)
    if event is None:
        raise NotFound(f"no event {event_id}")
    return feature(feeds, event, datetime.now(UTC))
