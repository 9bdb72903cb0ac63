"""Measure routes (contract §3, issue 18): every traffic measure a road-works team orders.

The same service and guarantees as closures (:mod:`traffic_hub.closures`: reference idempotency, 409
on a changed re-post, commune scope, `If-Match`, audit, 2 s to every feed): a closure is a measure,
and a measure is recorded as a closure with a `type` and the type's values. A closure posted through
/api/v1/closures reads here as `road_closed` or `lane_closed`.
"""

from __future__ import annotations

from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from traffic_hub.api.audit import audited
from traffic_hub.api.closures import IfMatch, reference_taken
from traffic_hub.api.deps import ClosureReader, ClosuresDep, FeedsDep, MetricsDep, TimezoneDep, Writer
from traffic_hub.api.resources import ClosureOut, closure_out
from traffic_hub.api.responses import WRITE
from traffic_hub.auth import Principal
from traffic_hub.closures import ClosureService, ReferenceTaken, Written, closure_id, etag
from traffic_hub.feeds.engine import FeedBook
from traffic_hub.metrics import Metrics
from traffic_hub.model import ClosureState, MeasureIn, MeasurePatch, MeasureType, Vehicles
from traffic_hub.model.closure import ClosureWarning

router = APIRouter(prefix="/api/v1/measures", tags=["measures"])

PROBLEMS = WRITE
CREATE_RESPONSES: dict[int | str, dict[str, Any]] = {
    **PROBLEMS,
    200: {"description": "the reference is already live with this very body: that measure"},
    409: {
        **PROBLEMS[409],
        "description": "the reference is already live with another body: the problem names the fields that "
        "differ (`differences`), the measure's `measure_id` and `version`, and how to change it (PUT or PATCH "
        "with If-Match)",
    },
}


class MeasureOut(ClosureOut):
    """A measure as its team sees it: the closure's fields, `type` and the type's values."""

    type: MeasureType
    speed_kmh: int | None
    vehicles: Vehicles | None
    detour_of: str | None


class MeasurePage(BaseModel):
    items: list[MeasureOut]
    next: str | None


def measure_out(
    closures: ClosureService, feeds: FeedBook, state: ClosureState, warnings: list[ClosureWarning] | None = None
) -> MeasureOut:
    now = closures.now()
    _, event = closures.book.get(state.id)
    publication = feeds.publication(event, now) if event is not None else {}
    base = closure_out(state, event, publication, now, warnings or [])
    return MeasureOut(
        **dict(base), type=state.measure_type, speed_kmh=state.speed_kmh, vehicles=state.vehicles,
        detour_of=state.detour_of,
    )


def _send(
    response: Response, closures: ClosureService, feeds: FeedBook, state: ClosureState,
    warnings: list[ClosureWarning] | None = None,
) -> MeasureOut:
    response.headers["ETag"] = etag(state)
    return measure_out(closures, feeds, state, warnings)


def _reference_taken(request: Request, exc: ReferenceTaken) -> JSONResponse:
    current = exc.current
    path = str(request.url_for("read_measure", measure_id=current.id).path)
    detail = (
        f"reference {current.reference} already names measure {current.id} (version {current.version}), which "
        f"differs in: {', '.join(d['field'] for d in exc.differences)}. POST never changes a measure; to change "
        f"it, PUT {path} (the whole measure) or PATCH {path} (only the fields to change) with If-Match: "
        f"{etag(current)}"
    )
    return reference_taken(exc, path, detail, measure_id=current.id, closure_id=current.id)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=MeasureOut, responses=CREATE_RESPONSES)
async def create_measure(
    body: MeasureIn,
    principal: Writer,
    closures: ClosuresDep,
    feeds: FeedsDep,
    tz: TimezoneDep,
    metrics: MetricsDep,
    request: Request,
    response: Response,
) -> MeasureOut | JSONResponse:
    """Post a measure: a closure's fields plus `type` and the type's values.

    `type`: `road_closed`, `lane_closed` (with `lanes`), `alternate_traffic`, `no_overtaking`,
    `speed_limit` (`speed_kmh`, 5–130), `vehicle_restriction` (`vehicles`: `max_weight_t`,
    `max_axle_load_t`, `max_height_m`, `max_width_m`, `max_length_m`, `kinds`, `critair`, `except`),
    `detour` (`detour_of`: a live `road_closed` or `vehicle_restriction` in your communes; the
    geometry is the route; `vehicles` optionally says whom it is for). `schedule` takes weekday
    windows, `daily` windows and `except` (`weekends`, `public_holidays`, `dates`).

    Same answers as POST /api/v1/closures: `201` new, `200` the same body again, `409` another body for
    a live reference, `201` re-opened after a DELETE. Values that do not fit the type: `422` naming the
    field. A detour running through a current closure, or through a restriction banning vehicles it
    carries, is accepted with a `detour-conflict` warning naming that measure.
    """
    cid = closure_id(principal.name, body.reference)
    with audited(principal, "create", closure_id=cid, reference=body.reference, measure=body.type.value) as entry:
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
    response.headers["Location"] = str(request.url_for("read_measure", measure_id=state.id).path)
    warnings = await closures.measure_warnings(state, tz) if fresh else []
    return _send(response, closures, feeds, state, warnings)


@router.get("", responses=PROBLEMS)
async def list_measures(
    principal: ClosureReader,
    closures: ClosuresDep,
    feeds: FeedsDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    type: Annotated[list[MeasureType] | None, Query(description="only these types")] = None,
) -> MeasurePage:
    """The caller's measures, closures included (admins and operators: all), oldest first, paginated."""
    types = frozenset(type) if type else None
    states, next_cursor = closures.list(principal, limit, cursor, closures_only=False, types=types)
    return MeasurePage(items=[measure_out(closures, feeds, s) for s in states], next=next_cursor)


@router.get("/{measure_id}", responses=PROBLEMS)
async def read_measure(
    measure_id: str, principal: ClosureReader, closures: ClosuresDep, feeds: FeedsDep, response: Response
) -> MeasureOut:
    """A measure with its status, where it sits on the network, and where it is published (and why not)."""
    state, _ = closures.read(principal, measure_id, closures_only=False)
    return _send(response, closures, feeds, state)


async def _rewrite(
    action: str, measure_id: str, principal: Principal, response: Response, write: Any,
    closures: ClosureService, feeds: FeedBook, tz: ZoneInfo, metrics: Metrics,
) -> MeasureOut:
    current, _ = closures.book.get(measure_id)
    reference = current.reference if current is not None else None
    with audited(principal, action, closure_id=measure_id, reference=reference) as entry:
        written: Written = await write
        entry.update(version=written.state.version, measure=written.state.measure_type.value)
    metrics.closure_writes.labels(action).inc()
    warnings = await closures.measure_warnings(written.state, tz)
    return _send(response, closures, feeds, written.state, warnings)


@router.put("/{measure_id}", responses=PROBLEMS)
async def replace_measure(
    measure_id: str, body: MeasureIn, principal: Writer, closures: ClosuresDep, feeds: FeedsDep,
    tz: TimezoneDep, metrics: MetricsDep, response: Response, if_match: IfMatch = None,
) -> MeasureOut:
    """Replace the whole measure (its next version; the type may change). Answers with `warnings`."""
    write = closures.replace(principal, measure_id, body, if_match)
    return await _rewrite("replace", measure_id, principal, response, write, closures, feeds, tz, metrics)


@router.patch("/{measure_id}", responses=PROBLEMS)
async def patch_measure(
    measure_id: str, body: MeasurePatch, principal: Writer, closures: ClosuresDep, feeds: FeedsDep,
    tz: TimezoneDep, metrics: MetricsDep, response: Response, if_match: IfMatch = None,
) -> MeasureOut:
    """Change some fields (the measure's next version). Answers with `warnings`."""
    write = closures.patch(principal, measure_id, body, if_match)
    return await _rewrite("patch", measure_id, principal, response, write, closures, feeds, tz, metrics)


@router.delete("/{measure_id}", status_code=status.HTTP_204_NO_CONTENT, responses=PROBLEMS)
async def delete_measure(
    measure_id: str, principal: Writer, closures: ClosuresDep, metrics: MetricsDep, if_match: IfMatch = None
) -> Response:
    """Cancel the measure: it leaves every feed. Deleting twice is harmless; POSTing its reference again
    re-opens it."""
    current, _ = closures.book.get(measure_id)
    reference = current.reference if current is not None else None
    with audited(principal, "delete", closure_id=measure_id, reference=reference) as entry:
        written = await closures.cancel(principal, measure_id, if_match, closures_only=False)
        entry.update(version=written.state.version, outcome=written.outcome, result=204)
    if written.outcome == "deleted":
        metrics.closure_writes.labels("delete").inc()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
