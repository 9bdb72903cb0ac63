"""Closure routes (contract §3): create, read, list, replace, patch, delete."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Header, Query, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from traffic_hub.api.audit import audited
from traffic_hub.api.deps import ClosureReader, ClosuresDep, FeedsDep, MetricsDep, TimezoneDep, Writer
from traffic_hub.api.problems import problem
from traffic_hub.api.resources import ClosureOut, ClosurePage, closure_out
from traffic_hub.api.responses import WRITE
from traffic_hub.auth import Principal
from traffic_hub.closures import ClosureService, ReferenceTaken, Written, closure_id, etag
from traffic_hub.feeds.engine import FeedBook
from traffic_hub.metrics import Metrics
from traffic_hub.model import ClosureIn, ClosurePatch, ClosureState, Normalised
from traffic_hub.model.closure import ClosureWarning
from traffic_hub.model.geometry import LineString

router = APIRouter(prefix="/api/v1/closures", tags=["closures"])

IfMatch = Annotated[str | None, Header(description="the closure's ETag; the write fails with 412 if it changed")]
PROBLEMS = WRITE
REFERENCE_TAKEN = "urn:traffic-hub:problem:reference-taken"
"""RFC 9457 `type` of the 409 a re-post with another body gets (other 409s are `about:blank`)."""
CREATE_RESPONSES: dict[int | str, dict[str, Any]] = {
    **PROBLEMS,
    200: {"model": ClosureOut, "description": "the reference is already live with this very body: that closure"},
    409: {
        **PROBLEMS[409],
        "description": "the reference is already live with another body: the problem names the fields that "
        "differ (`differences`), the closure's `closure_id` and `version`, and how to change it (PUT or PATCH "
        "with If-Match)",
    },
}


def _out(
    closures: ClosureService, feeds: FeedBook, state: ClosureState, warnings: list[ClosureWarning] | None = None
) -> ClosureOut:
    now = closures.now()
    _, event = closures.book.get(state.id)
    publication = feeds.publication(event, now) if event is not None else {}
    return closure_out(state, event, publication, now, warnings or [])


def _send(
    response: Response,
    closures: ClosureService,
    feeds: FeedBook,
    state: ClosureState,
    warnings: list[ClosureWarning] | None = None,
) -> ClosureOut:
    response.headers["ETag"] = etag(state)
    return _out(closures, feeds, state, warnings)


def reference_taken(exc: ReferenceTaken, path: str, detail: str, **ids: str) -> JSONResponse:
    """The 409 of a POST whose reference names a live item with another body (closures and measures):
    where the item is (`path`, `Location`), how it differs, and how to change it."""
    current = exc.current
    answer = problem(
        409, "Reference already used", detail, type=REFERENCE_TAKEN,
        reference=current.reference, **ids, version=current.version, etag=etag(current),
        location=path, differences=exc.differences,
        how_to_change={"PUT": path, "PATCH": path, "If-Match": etag(current)},
    )
    answer.headers["Location"] = path
    return answer


def _reference_taken(request: Request, exc: ReferenceTaken) -> JSONResponse:
    cid = exc.current.id
    return reference_taken(exc, str(request.url_for("read_closure", closure_id=cid).path), exc.detail, closure_id=cid)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ClosureOut, responses=CREATE_RESPONSES)
async def create_closure(
    body: ClosureIn,
    principal: Writer,
    closures: ClosuresDep,
    feeds: FeedsDep,
    tz: TimezoneDep,
    metrics: MetricsDep,
    request: Request,
    response: Response,
) -> ClosureOut | JSONResponse:
    """Post a closure. The `reference` is the team's own id for it; the closure id derives from it.

    - A new reference: `201`, the closure is durable in Kafka (acks=all) and in every feed within 2 s.
    - The same reference with the same body again (a retry): `200` with that closure, never a duplicate.
      Bodies are compared as data: the same instant written with another UTC offset, or the same line
      in another CRS, is the same body.
    - The same reference with another body while the closure is live: `409` problem
      (`type` `urn:traffic-hub:problem:reference-taken`) naming the fields that differ (`differences`),
      with the closure's `closure_id`, `version` and `etag`; POST never changes a closure: use
      `PUT`/`PATCH /api/v1/closures/{id}` with `If-Match: "<version>"`.
    - The reference of a deleted (cancelled) closure: the closure is **re-opened** with this body as its
      next version, same id (`201`); it is back in every feed within 2 s.

    `ends_at` in the past is refused (422 naming `ends_at`). Unusual input is accepted with `warnings`
    (each with a `code`, the `field` and a `message`): longer than a year, starting more than a year
    ahead, started over an hour ago, ending within the hour, a time written with another UTC offset than
    Lille's, a schedule that never falls inside the period.
    """
    cid = closure_id(principal.name, body.reference)
    with audited(principal, "create", closure_id=cid, reference=body.reference) as entry:
        try:
            written = await closures.create(principal, body)
        except ReferenceTaken as exc:
            entry.update(version=exc.current.version, result=409, outcome="reference-taken")
            return _reference_taken(request, exc)
        state, fresh = written.state, written.outcome != "unchanged"
        entry.update(action="reopen" if written.outcome == "reopened" else "create", version=state.version,
                     outcome=written.outcome, result=201 if fresh else 200)
    if fresh:
        metrics.closure_writes.labels(entry["action"]).inc()
    response.status_code = status.HTTP_201_CREATED if fresh else status.HTTP_200_OK
    response.headers["Location"] = _location(request, state.id)
    return _send(response, closures, feeds, state, closures.warnings(state, tz) if fresh else [])


def _location(request: Request, cid: str) -> str:
    """`request.url_for("read_closure", closure_id=cid).path`, without Starlette walking every route of the
    app to find it (a tenth of a POST's time on the event loop, py-spy under the write bench of issue 17)."""
    return str(request.scope.get("root_path", "")).rstrip("/") + f"{router.prefix}/{cid}"


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
async def preview_closure(body: ClosurePreviewIn, principal: Writer, closures: ClosuresDep) -> ClosurePreview:
    """What a closure would become on the road network (street, segments, Waze readiness). Writes nothing."""
    state, placement = await asyncio.to_thread(closures.preview, principal, body)
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
    closures: ClosuresDep,
    feeds: FeedsDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> ClosurePage:
    """The caller's closures (admins and operators: all), oldest first, paginated."""
    states, next_cursor = closures.list(principal, limit, cursor)
    return ClosurePage(items=[_out(closures, feeds, s) for s in states], next=next_cursor)


@router.get("/{closure_id}", responses=PROBLEMS)
async def read_closure(
    closure_id: str, principal: ClosureReader, closures: ClosuresDep, feeds: FeedsDep, response: Response
) -> ClosureOut:
    """A closure with its status, where it sits on the network, and where it is published."""
    state, _ = closures.read(principal, closure_id)
    return _send(response, closures, feeds, state)


def _reference(closures: ClosureService, cid: str) -> str | None:
    """The closure's reference for the audit line, also when the write is refused."""
    state, _ = closures.book.get(cid)
    return state.reference if state is not None else None


@dataclass(frozen=True)
class _Rewrite:
    """What PUT and PATCH share: audited and counted alike, answered with the new version and its warnings."""

    closures: ClosureService
    feeds: FeedBook
    tz: ZoneInfo
    metrics: Metrics

    async def __call__(
        self, action: str, closure_id: str, principal: Principal, response: Response, write: Awaitable[Written]
    ) -> ClosureOut:
        reference = _reference(self.closures, closure_id)
        with audited(principal, action, closure_id=closure_id, reference=reference) as entry:
            written = await write
            entry["version"] = written.state.version
        self.metrics.closure_writes.labels(action).inc()
        warnings = self.closures.warnings(written.state, self.tz)
        return _send(response, self.closures, self.feeds, written.state, warnings)


def _rewriting(closures: ClosuresDep, feeds: FeedsDep, tz: TimezoneDep, metrics: MetricsDep) -> _Rewrite:
    return _Rewrite(closures, feeds, tz, metrics)


Rewrite = Annotated[_Rewrite, Depends(_rewriting)]


@router.put("/{closure_id}", responses=PROBLEMS)
async def replace_closure(
    closure_id: str, body: ClosureIn, principal: Writer, rewrite: Rewrite, response: Response,
    if_match: IfMatch = None,
) -> ClosureOut:
    """Replace the whole closure (its next version). `ends_at` in the past: 422. Answers with `warnings`."""
    write = rewrite.closures.replace(principal, closure_id, body, if_match)
    return await rewrite("replace", closure_id, principal, response, write)


@router.patch("/{closure_id}", responses=PROBLEMS)
async def patch_closure(
    closure_id: str, body: ClosurePatch, principal: Writer, rewrite: Rewrite, response: Response,
    if_match: IfMatch = None,
) -> ClosureOut:
    """Change some fields (the closure's next version). `ends_at` in the past: 422. Answers with `warnings`."""
    write = rewrite.closures.patch(principal, closure_id, body, if_match)
    return await rewrite("patch", closure_id, principal, response, write)


@router.delete("/{closure_id}", status_code=status.HTTP_204_NO_CONTENT, responses=PROBLEMS)
async def delete_closure(
    closure_id: str, principal: Writer, closures: ClosuresDep, metrics: MetricsDep, if_match: IfMatch = None
) -> Response:
    """Cancel the closure: it leaves every feed. Deleting twice is harmless. POSTing its reference again
    re-opens it (see POST)."""
    with audited(principal, "delete", closure_id=closure_id, reference=_reference(closures, closure_id)) as entry:
        written = await closures.cancel(principal, closure_id, if_match)
        entry.update(version=written.state.version, outcome=written.outcome, result=204)
    if written.outcome == "deleted":
        metrics.closure_writes.labels("delete").inc()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
