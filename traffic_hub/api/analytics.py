"""Analytics routes (issue 19): incidents per hour of week, durations, Waze jams, closure impact, reality check.

Who sees what, by the hub's one scope rule: operators and admins see everything; a road-works team sees
incidents and durations in its communes only, and the impact and reality check of its own closures
(in its communes, as `GET /api/v1/closures/{id}`). Waze jams per segment are for operators and admins:
they are Waze's data, kept internal by its terms; nothing here is ever part of `/feeds/*`.
Every answer is computed in PostgreSQL from the archive (`traffic_hub.archive.analytics*`); the
database being down is a fast 503 with Retry-After, a bad parameter a 422 naming it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import shapely
from fastapi import APIRouter, Query

from geo.communes import Communes
from traffic_hub.api.deps import ClosureReader, CommunesDep, Operator, SettingsDep, TimezoneDep
from traffic_hub.api.responses import READ, Problem
from traffic_hub.archive import analytics, analytics_closures, reality
from traffic_hub.archive.analytics_closures import ArchivedClosure
from traffic_hub.archive.analytics_db import reading
from traffic_hub.auth import Principal, Role
from traffic_hub.errors import Forbidden, InvalidInput, NotFound
from traffic_hub.model.vocabulary import EventType

router = APIRouter(prefix="/api/v1/analytics", tags=["analytics"])

RESPONSES: dict[int | str, dict[str, Any]] = {
    **READ,
    503: {"description": "the archive database is unavailable (or not configured); retry after Retry-After seconds",
          "model": Problem, "content": {"application/problem+json": {}}},
}
MAX_PERIOD = timedelta(days=366)
MAX_CLOSURES = 500  # closures analysed per list request; `truncated` says when the period had more
DEFAULT_PERIOD = timedelta(days=28)
From = Annotated[
    datetime | None, Query(alias="from", description="start (ISO 8601 with offset); default: 28 days before `to`")
]
To = Annotated[datetime | None, Query(alias="to", description="end, excluded (ISO 8601 with offset); default: now")]
Commune = Annotated[str | None, Query(pattern=r"^\d[0-9AB]\d{3}$", description="INSEE code")]
Types = Annotated[list[EventType] | None, Query(alias="type", description="event types (repeatable)")]
Radius = Annotated[float, Query(ge=10, le=5000, description="metres around the closed line")]
Weeks = Annotated[int, Query(ge=1, le=26, description="weeks of baseline before")]
Limit = Annotated[int, Query(ge=1, le=200)]


def period_of(start: datetime | None, end: datetime | None, now: datetime) -> analytics.Period:
    """The period asked for, checked: both with an offset, `from` before `to`, at most 366 days."""
    for name, value in (("from", start), ("to", end)):
        if value is not None and value.tzinfo is None:
            raise InvalidInput(name, "needs a UTC offset (e.g. 2026-03-01T00:00:00+01:00 or …Z)")
    to = end or now
    since = start or to - DEFAULT_PERIOD
    if since >= to:
        raise InvalidInput("from", "must be before to")
    if to - since > MAX_PERIOD:
        raise InvalidInput("from", "the period is at most 366 days")
    return analytics.Period(since.astimezone(UTC), to.astimezone(UTC))


def communes_for(principal: Principal, commune: str | None) -> set[str] | None:
    """The communes a query may cover: all (None) for operators and admins, the team's own otherwise."""
    if principal.role in (Role.OPERATOR, Role.ADMIN):
        return {commune} if commune else None
    if commune is not None and commune not in principal.communes:
        raise Forbidden(f"commune {commune} is not one of yours ({', '.join(sorted(principal.communes))})")
    return {commune} if commune else set(principal.communes)


def may_see(principal: Principal, archived: ArchivedClosure, communes: Communes, own: bool) -> bool:
    """Operators and admins: every closure; a team: those in its communes (and, in lists, its own)."""
    if principal.role in (Role.OPERATOR, Role.ADMIN):
        return True
    state = archived.event.closure
    if principal.role is not Role.ROADWORKS or state is None or state.geometry is None:
        return False
    if own and state.owner != principal.name:
        return False
    return communes.in_scope(shapely.linestrings(state.geometry.coordinates), principal.communes)


def _types(types: list[EventType] | None) -> list[str] | None:
    return [t.value for t in types] if types else None


@router.get("/incidents", responses=RESPONSES)
async def incidents(
    principal: ClosureReader, settings: SettingsDep, tz: TimezoneDep, start: From = None, end: To = None,
    commune: Commune = None, type: Types = None,
) -> dict[str, Any]:
    """Events per commune, type and local hour of week (0 = Monday 00:00-01:00, Europe/Paris), counted at
    the start of their validity."""
    period = period_of(start, end, datetime.now(UTC))
    async with reading(settings.database_url) as conn:
        rows = await analytics.incidents_per_hour(conn, period, tz, communes_for(principal, commune), _types(type))
    return {"from": period.start, "to": period.end, "timezone": tz.key, "rows": rows}


@router.get("/durations", responses=RESPONSES)
async def durations(
    principal: ClosureReader, settings: SettingsDep, start: From = None, end: To = None, commune: Commune = None,
    type: Types = None,
) -> dict[str, Any]:
    """How long ended events lasted, per type and per type and commune (seconds; buckets)."""
    now = datetime.now(UTC)
    period = period_of(start, end, now)
    async with reading(settings.database_url) as conn:
        rows = await analytics.durations(conn, period, now, communes_for(principal, commune), _types(type))
    return {"from": period.start, "to": period.end, "rows": rows}


@router.get("/jams", responses=RESPONSES)
async def jams(
    principal: Operator, settings: SettingsDep, tz: TimezoneDep, start: From = None, end: To = None,
    city: Annotated[str | None, Query(min_length=1, max_length=100, description="Waze's city name")] = None,
    weeks: Weeks = 4, limit: Limit = 50,
) -> dict[str, Any]:
    """Waze jams per segment (street, city, heading) and hour of week, with the baseline of the weeks before."""
    now = datetime.now(UTC)
    period = period_of(start, end, now)
    async with reading(settings.database_url) as conn:
        segments = await analytics.jams_by_segment(conn, period, now, tz, weeks, city, limit)
    return {"from": period.start, "to": period.end, "timezone": tz.key, "weeks": weeks, "segments": segments}


@router.get("/closures/impact", responses=RESPONSES)
async def closures_impact(
    principal: ClosureReader, settings: SettingsDep, tz: TimezoneDep, communes: CommunesDep,
    start: From = None, end: To = None, radius_m: Radius = 300.0, weeks: Weeks = 4, limit: Limit = 50,
) -> dict[str, Any]:
    """The closures active in the period, most congesting first (extra jam delay per active hour)."""
    now = datetime.now(UTC)
    period = period_of(start, end, now)
    reports = []
    async with reading(settings.database_url) as conn:
        found = await analytics_closures.closures_in(conn, period, MAX_CLOSURES + 1)
        for archived in found[:MAX_CLOSURES]:
            if may_see(principal, archived, communes, own=True):
                report = await analytics_closures.impact(conn, archived, now, tz, radius_m, weeks)
                report["reality_check"] = await reality.reality_check(conn, archived, now, tz)
                report.pop("segments")
                reports.append(report)
    reports.sort(key=lambda r: (-r["impact"]["extra_delay_s"], r["closure"]["id"]))
    return {"from": period.start, "to": period.end, "radius_m": radius_m, "weeks": weeks, "items": reports[:limit],
            "truncated": len(found) > MAX_CLOSURES}


@router.get("/closures/{closure_id}/impact", responses=RESPONSES)
async def closure_impact(
    closure_id: str, principal: ClosureReader, settings: SettingsDep, tz: TimezoneDep, communes: CommunesDep,
    radius_m: Radius = 300.0, weeks: Weeks = 4,
) -> dict[str, Any]:
    """One closure's impact report (per nearby segment) and its reality check."""
    now = datetime.now(UTC)
    async with reading(settings.database_url) as conn:
        archived = await _visible(conn, closure_id, principal, communes)
        report = await analytics_closures.impact(conn, archived, now, tz, radius_m, weeks)
        report["reality_check"] = await reality.reality_check(conn, archived, now, tz)
    return report


@router.get("/closures/{closure_id}/reality-check", responses=RESPONSES)
async def closure_reality(
    closure_id: str, principal: ClosureReader, settings: SettingsDep, tz: TimezoneDep, communes: CommunesDep,
) -> dict[str, Any]:
    """Whether Waze shows traffic on the closed road while it is closed (internal: Waze's data)."""
    async with reading(settings.database_url) as conn:
        archived = await _visible(conn, closure_id, principal, communes)
        return await reality.reality_check(conn, archived, datetime.now(UTC), tz)


@router.get("/reality-check", responses=RESPONSES)
async def reality_flags(
    principal: ClosureReader, settings: SettingsDep, tz: TimezoneDep, communes: CommunesDep,
    start: From = None, end: To = None,
    flagged: Annotated[bool, Query(description="only the flagged closures")] = True, limit: Limit = 100,
) -> dict[str, Any]:
    """The closures of the period whose reality check raised a flag (most recent evidence first)."""
    now = datetime.now(UTC)
    period = period_of(start, end, now)
    items = []
    async with reading(settings.database_url) as conn:
        found = await analytics_closures.closures_in(conn, period, MAX_CLOSURES + 1)
        for archived in found[:MAX_CLOSURES]:
            if may_see(principal, archived, communes, own=True):
                check = await reality.reality_check(conn, archived, now, tz)
                if check["flagged"] or not flagged:
                    items.append({**check, "closure": archived.summary()})
    items.sort(key=lambda i: (i["last_seen"] is None, -(i["last_seen"] or now).timestamp(), i["closure_id"]))
    return {"from": period.start, "to": period.end, "items": items[:limit], "truncated": len(found) > MAX_CLOSURES}


async def _visible(conn: Any, closure_id: str, principal: Principal, communes: Communes) -> ArchivedClosure:
    archived = await analytics_closures.closure(conn, closure_id)
    if archived is None:
        raise NotFound(f"no archived closure {closure_id}")
    if not may_see(principal, archived, communes, own=False):
        raise Forbidden(f"this closure lies outside your communes ({', '.join(sorted(principal.communes))})")
    return archived

