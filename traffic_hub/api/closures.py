"""Closure routes (contract §3): create, read, list, replace, patch, delete."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response, status
from pydantic import BaseModel

from traffic_hub.api.deps import ClosureReader, HubDep, MetricsDep, Writer
from traffic_hub.api.resources import ClosureOut, ClosurePage, closure_out
from traffic_hub.api.responses import WRITE
from traffic_hub.closures import etag
from traffic_hub.model import ClosureIn, ClosurePatch, ClosureState, Normalised
from traffic_hub.model.geometry import LineString
from traffic_hub.runtime import Hub

router = APIRouter(prefix="/api/v1/closures", tags=["closures"])

IfMatch = Annotated[str | None, Header(description="the closure's ETag; the write fails with 412 if it changed")]
PROBLEMS = WRITE


def _out(hub: Hub, state: ClosureState) -> ClosureOut:
    now = datetime.now(UTC)
    _, event = hub.closures.book.get(state.id)
    publication = hub.feeds.publication(event, now) if event is not None else {}
    return closure_out(state, event, publication, now)


def _send(response: Response, hub: Hub, state: ClosureState) -> ClosureOut:
    response.headers["ETag"] = etag(state)
    return _out(hub, state)


@router.post("", status_code=status.HTTP_201_CREATED, responses={200: {"model": ClosureOut}, **PROBLEMS})
async def create_closure(
    body: ClosureIn, principal: Writer, hub: HubDep, metrics: MetricsDep, request: Request, response: Response
) -> ClosureOut:
    """Post a closure once. The same `reference` again returns the same closure (200), never a duplicate.

    A 201 means the closure is durable in Kafka (acks=all) and will be in every feed within 2 s.
    """
    state, created = await hub.closures.create(principal, body)
    if created:
        metrics.closure_writes.labels("create").inc()
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    response.headers["Location"] = str(request.url_for("read_closure", closure_id=state.id).path)
    return _send(response, hub, state)


class ClosurePreviewIn(ClosureIn):
    reference: str = "preview"


class SegmentOut(BaseModel):
    street: str | None
    coordinates: list[tuple[float, float]]
    length_m: float


class ClosurePreview(BaseModel):
    geometry: LineString | None
    street: str | None
    streets: list[str]
    communes: list[str]
    normalised: Normalised | None
    waze_ready: bool
    segments: list[SegmentOut]
    withheld: list[str]


@router.post("/preview", responses=PROBLEMS)
async def preview_closure(body: ClosurePreviewIn, principal: Writer, hub: HubDep) -> ClosurePreview:
    """What a closure would become on the road network (street, segments, Waze readiness). Writes nothing."""
    state, placement = await asyncio.to_thread(hub.closures.preview, principal, body)
    if placement is None:
        return ClosurePreview(geometry=state.geometry, street=state.street, streets=[], communes=state.communes,
                              normalised=None, waze_ready=False, segments=[], withheld=["no road network loaded"])
    segments = placement.segments
    geometry = state.geometry
    if placement.normalised.matched and segments:
        coords = [list(c) for seg in segments for c in seg.coordinates]
        geometry = LineString(type="LineString", coordinates=coords) if len(coords) >= 2 else geometry
    return ClosurePreview(
        geometry=geometry,
        street=placement.normalised.street or state.street,
        streets=sorted({s.street for s in segments if s.street}),
        communes=state.communes,
        normalised=placement.normalised,
        waze_ready=bool(segments) and not placement.withheld,
        segments=[SegmentOut(street=s.street, coordinates=s.coordinates, length_m=s.length_m) for s in segments],
        withheld=placement.withheld,
    )


@router.get("", responses=PROBLEMS)
async def list_closures(
    principal: ClosureReader,
    hub: HubDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> ClosurePage:
    """The caller's closures (admins and operators: all), oldest first, paginated."""
    states, next_cursor = hub.closures.list(principal, limit, cursor)
    return ClosurePage(items=[_out(hub, s) for s in states], next=next_cursor)


@router.get("/{closure_id}", responses=PROBLEMS)
async def read_closure(closure_id: str, principal: ClosureReader, hub: HubDep, response: Response) -> ClosureOut:
    """A closure with its status, where it sits on the network, and where it is published."""
    state, _ = hub.closures.read(principal, closure_id)
    return _send(response, hub, state)


@router.put("/{closure_id}", responses=PROBLEMS)
async def replace_closure(
    closure_id: str, body: ClosureIn, principal: Writer, hub: HubDep, metrics: MetricsDep, response: Response,
    if_match: IfMatch = None,
) -> ClosureOut:
    state = await hub.closures.replace(principal, closure_id, body, if_match)
    metrics.closure_writes.labels("replace").inc()
    return _send(response, hub, state)


@router.patch("/{closure_id}", responses=PROBLEMS)
async def patch_closure(
    closure_id: str, body: ClosurePatch, principal: Writer, hub: HubDep, metrics: MetricsDep, response: Response,
    if_match: IfMatch = None,
) -> ClosureOut:
    state = await hub.closures.patch(principal, closure_id, body, if_match)
    metrics.closure_writes.labels("patch").inc()
    return _send(response, hub, state)


@router.delete("/{closure_id}", status_code=status.HTTP_204_NO_CONTENT, responses=PROBLEMS)
async def delete_closure(
    closure_id: str, principal: Writer, hub: HubDep, metrics: MetricsDep, if_match: IfMatch = None
) -> Response:
    """Cancel the closure: it leaves every feed. Deleting twice is harmless."""
    await hub.closures.cancel(principal, closure_id, if_match)
    metrics.closure_writes.labels("delete").inc()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
