"""What the API returns: closures with their normalisation and publication status."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from traffic_hub.feeds.engine import Publication
from traffic_hub.model import ClosureState, Event, Normalised, Status
from traffic_hub.model.closure import ClosureWarning, Lanes
from traffic_hub.model.geometry import LineString
from traffic_hub.model.validity import Schedule, ends_after
from traffic_hub.model.vocabulary import Cause, Direction


class PublicationOut(BaseModel):
    status: Literal["published", "withheld", "pending"]
    reason: str | None = None


class ClosureOut(BaseModel):
    id: str
    reference: str
    description: str
    geometry: LineString | None
    crs: str
    submitted_crs: str
    street: str | None
    from_street: str | None
    to_street: str | None
    direction: Direction
    cause: Cause
    starts_at: datetime
    ends_at: datetime
    schedule: Schedule | None
    lanes: Lanes | None
    status: Status
    version: int
    owner: str
    communes: list[str]
    created_at: datetime
    updated_at: datetime
    normalised: Normalised | None
    publication: dict[str, PublicationOut]
    warnings: list[ClosureWarning] = Field(
        default_factory=list,
        description="on a write's answer: what is unusual about the input (accepted all the same); empty on reads",
    )


class ClosurePage(BaseModel):
    items: list[ClosureOut]
    next: str | None


def status_of(state: ClosureState, now: datetime) -> Status:
    if state.cancelled:
        return Status.CANCELLED
    if not ends_after(now, state.ends_at):  # instants, not wall clocks (see `ends_after`)
        return Status.ENDED
    return Status.PLANNED if ends_after(now, state.starts_at) else Status.ACTIVE


def closure_out(
    state: ClosureState,
    event: Event | None,
    publication: dict[str, Publication],
    now: datetime,
    warnings: list[ClosureWarning] | None = None,
) -> ClosureOut:
    """The closure as its team sees it; normalisation and publication only once the event caught up."""
    current = event is not None and event.closure is not None and event.closure.version == state.version
    pub = {k: PublicationOut(status=p.status, reason=p.reason) for k, p in publication.items()} if current else {}
    if not current:
        pub = {k: PublicationOut(status="pending", reason="being normalised") for k in publication} or {
            "waze": PublicationOut(status="pending", reason="being normalised")
        }
    return ClosureOut(
        **state.model_dump(
            include={
                "id", "reference", "description", "geometry", "crs", "submitted_crs", "street", "from_street",
                "to_street", "direction", "cause", "starts_at", "ends_at", "schedule", "lanes", "version", "owner",
                "communes", "created_at", "updated_at",
            }
        ),
        status=status_of(state, now),
        normalised=event.normalised if current and event is not None else None,
        publication=pub,
        warnings=warnings or [],
    )
