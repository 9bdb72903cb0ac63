"""History routes (issue 19): every version of a closure or an event with who, when and what changed, and
past events in a window or at an instant (what the map's time slider replays). Contract: docs/history.md.

They read the PostgreSQL archive through `archive.store.HistoryDb` and nothing else does: when the
database is down these routes answer a fast 503 with Retry-After and every other route is unaffected.

Scope is the closure routes' own: the role guards of `api.deps` (`ClosureReader` for a closure's history,
`Operator` for events), and for a road-works team the one communes rule, `Communes.in_scope`, applied to
the item's latest archived geometry (404 when the archive has no such item, 403 when it lies outside the
team's communes). A measure's history is one line: `router.add_api_route(...)` with
`report_history("measure")` (see the bottom of this module).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import shapely
import shapely.geometry
from fastapi import APIRouter, Query
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from geo.communes import Communes
from traffic_hub.api.deps import (
    ClosureReader,
    ClosuresDep,
    CommunesDep,
    HistoryDep,
    Operator,
    OptionalHistoryDep,
    history_db,
)
from traffic_hub.api.responses import READ
from traffic_hub.archive import diff, queries
from traffic_hub.archive.queries import Cursor, EventFilter, PastEvent, Version
from traffic_hub.auth import Principal, Role
from traffic_hub.errors import Forbidden, InvalidInput, NotFound
from traffic_hub.model import Event
from traffic_hub.model.vocabulary import EventType

router = APIRouter(tags=["history"])

MAX_WINDOW = timedelta(days=31)
"""The longest `from`–`to` window: a commune-month. A page is cheap whatever the window (see
`archive.queries`), but walking a month of the whole metropolis at the Waze partner feed's volume is
~800,000 events: a bulk export, which the daily open-data files (and analytics) serve, not a listing."""
MAX_PAGE = 1000
DEFAULT_PAGE = 200
MAX_VERSIONS = 5000
HISTORY_ERRORS: dict[int | str, dict[str, Any]] = {
    **READ, 503: {"description": "the history database is unavailable: retry after Retry-After seconds "
                                 "(the rest of the API is not affected)"},
}


class Who(BaseModel):
    """Who made a version: `principal` and `role` when the hub knows the writer, `source` the origin."""

    principal: str | None = None
    role: str | None = None
    source: str | None = None
    recorded: str = Field(description="how it is known: writer (the principal that wrote the version), owner "
                          "(versions archived before writers were recorded: the owning team), operator-action, "
                          "source (a connector's report), hub (retention, a deletion)")


class Change(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    field: str
    from_: Any = Field(default=None, alias="from")
    to: Any = None


class VersionOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    version: int | None = Field(description="the item's own version number (None for a deletion record)")
    at: datetime = Field(description="when the hub recorded this version (the Kafka record's time)")
    action: str = Field(description="created, updated, deleted, reopened (closures); created, updated, "
                        "confirmed, dismissed, ended, merged, removed (events)")
    who: Who
    changes: list[Change] = Field(description="field-level diff with the previous version (empty for the first)")
    state: dict[str, Any] | None = Field(description="the version as recorded (events: summarised sources)")


class ItemHistory(BaseModel):
    id: str
    kind: str
    versions: list[VersionOut]
    truncated: bool = Field(False, description="true when more versions exist than were returned (`limit`)")


# --- a closure's (or a measure's) history: its reports ---------------------------------------------------


def _geometry(doc: Mapping[str, Any] | None) -> shapely.Geometry | None:
    found = doc.get("geometry") if doc is not None else None
    if not isinstance(found, Mapping):
        return None
    try:
        return shapely.geometry.shape(dict(found))
    except (ValueError, TypeError, AttributeError, shapely.errors.GEOSException):
        return None


async def check_scope(principal: Principal, communes: Communes, state: Mapping[str, Any] | None, what: str) -> None:
    """The closure routes' rule: operators and admins see everything; a team what lies in its communes."""
    if principal.role in (Role.ADMIN, Role.OPERATOR):
        return
    geometry = _geometry(state)
    inside = geometry is not None and principal.role is Role.ROADWORKS and await asyncio.to_thread(
        communes.in_scope, geometry, principal.communes)
    if not inside:
        raise Forbidden(f"this {what} lies outside your communes ({', '.join(sorted(principal.communes))})")


def _writer(version: Version, state: Mapping[str, Any]) -> Who:
    payload = (version.doc or {}).get("payload")
    source = (version.doc or {}).get("source")
    if isinstance(payload, Mapping) and payload.get("by"):
        return Who(principal=payload["by"], role=payload.get("role"), source=source, recorded="writer")
    return Who(principal=state.get("owner"), role="roadworks", source=source, recorded="owner")


def report_versions_out(versions: list[Version], kind: str) -> list[VersionOut]:
    out: list[VersionOut] = []
    before: Mapping[str, Any] | None = None
    for v in versions:
        state = (v.doc or {}).get(kind)
        if not isinstance(state, Mapping):
            continue
        changes = [Change.model_validate(c) for c in diff.changes(before, state)]
        number = state.get("version")
        out.append(VersionOut(version=number if isinstance(number, int) else None, at=v.at,
                              action=diff.action_of(before, state), who=_writer(v, state), changes=changes,
                              state=dict(state)))
        before = state
    return out


Endpoint = Callable[..., Awaitable[ItemHistory]]


def report_history(kind: str) -> Endpoint:
    """The history route of an item written as reports of `kind` ("closure"; "measure" alike): every
    version the team (or an admin) wrote, who wrote it, when, and what changed."""

    async def endpoint(item_id: str, principal: ClosureReader, db: HistoryDep, communes: CommunesDep) -> ItemHistory:
        async with db.connection() as conn:
            versions = await queries.report_versions(conn, kind, item_id)
        out = report_versions_out(versions, kind)
        if not out:
            raise NotFound(f"no {kind} {item_id} in the history archive")
        await check_scope(principal, communes, out[-1].state, kind)
        return ItemHistory(id=item_id, kind=kind, versions=out)

    endpoint.__name__ = f"{kind}_history"
    endpoint.__doc__ = (
        f"Every version of the {kind}, oldest first: `at` (when the hub recorded it), `who` wrote it, the "
        "`action` and the field-level `changes` from the previous version, and the `state` as written. "
        "Road-works teams: the items in their communes (403 otherwise); operators and admins: all. 404 when "
        "the archive has no such item (a write is archived within seconds); 503 with Retry-After when the "
        "history database is unavailable."
    )
    return endpoint


# --- an event's history: its versions on the events topic -------------------------------------------------

OPERATOR_FIELDS = ("verification", "ended_by", "merged_into")


def _event_action(before: Mapping[str, Any] | None, after: Version) -> str:
    doc = after.doc or {}
    if after.deleted:
        return "removed"
    if before is None:
        return "created"
    for name, value, action in (("merged_into", None, "merged"), ("ended_by", None, "ended"),
                                ("verification", "confirmed", "confirmed"), ("verification", "dismissed", "dismissed")):
        if doc.get(name) != before.get(name) and (value is None or doc.get(name) == value):
            return action
    return "updated"


def _event_who(before: Mapping[str, Any] | None, v: Version, operators: list[Version],
               writers: Mapping[int, Who]) -> Who:
    doc = v.doc or {}
    if v.deleted:
        return Who(recorded="hub")
    if before is not None and any(doc.get(f) != before.get(f) for f in OPERATOR_FIELDS):
        acted = [o for o in operators if o.at <= v.at]
        payload = (acted[-1].doc or {}).get("payload") if acted else None
        if isinstance(payload, Mapping):
            return Who(principal=payload.get("by"), role="operator", source="operator", recorded="operator-action")
    closure = doc.get("closure")
    if isinstance(closure, Mapping) and isinstance(closure.get("version"), int) and closure["version"] in writers:
        return writers[closure["version"]]
    source = diff.newest_source(before, doc)
    if source is not None:
        return Who(source=source.get("source"), recorded="source")
    return Who(recorded="hub")


def event_versions_out(versions: list[Version], operators: list[Version], closures: list[Version]) -> list[VersionOut]:
    writers: dict[int, Who] = {}
    for c in closures:
        state = (c.doc or {}).get("closure")
        if isinstance(state, Mapping) and isinstance(state.get("version"), int):
            writers[state["version"]] = _writer(c, state)
    out: list[VersionOut] = []
    before: Mapping[str, Any] | None = None
    for v in versions:
        doc = v.doc if v.doc is not None and "id" in v.doc else None
        summary = diff.event_summary(doc) if doc is not None else None
        changes = diff.changes(diff.event_summary(before), summary) if before is not None and summary else []
        number = doc.get("version") if doc is not None else None
        out.append(VersionOut(
            version=number if isinstance(number, int) else None, at=v.at, action=_event_action(before, v),
            who=_event_who(before, v, operators, writers), changes=[Change.model_validate(c) for c in changes],
            state=summary,
        ))
        before = doc if doc is not None else before
    return out


@router.get("/api/v1/events/{event_id}/history", responses=HISTORY_ERRORS)
async def event_history(
    event_id: str, principal: Operator, db: HistoryDep,
    limit: Annotated[int, Query(ge=1, le=MAX_VERSIONS)] = 1000,
) -> ItemHistory:
    """Every archived version of an event, oldest first, with who made it (the source that spoke, the
    operator who acted, the team that wrote the closure), when, and what changed. Operators and admins.
    A jam reported every two minutes has many versions: `limit` (≤ 5000) and `truncated`."""
    async with db.connection() as conn:
        versions = await queries.event_versions(conn, event_id, limit + 1)
        operators = await queries.report_versions(conn, "operator", event_id)
        closures = await queries.report_versions(conn, "closure", event_id)
    if not versions:
        raise NotFound(f"no event {event_id} in the history archive")
    out = event_versions_out(versions[:limit], operators, closures)
    return ItemHistory(id=event_id, kind="event", versions=out, truncated=len(versions) > limit)


# --- past events: a window, or the state at an instant --------------------------------------------------


class Life(BaseModel):
    from_: datetime = Field(alias="from", description="the first archived version's time")
    to: datetime | None = Field(description="ended, cancelled, removed or the validity's end; null: still open")


class SourceOut(BaseModel):
    source: str | None
    source_id: str | None
    kind: str | None
    active: bool | None


class PastEventProperties(BaseModel):
    id: str
    type: str | None
    subtype: str | None
    cause: str | None
    description: str | None
    street: str | None
    commune: str | None
    direction: str | None
    status: str | None = Field(description="planned, active, ended or cancelled at `at` (window: at `to` or now)")
    lifecycle: str | None
    verification: str | None
    starts_at: str | None
    ends_at: str | None
    lanes: dict[str, Any] | None
    version: int | None
    version_at: datetime = Field(description="when the version shown was recorded")
    life: Life
    sources: list[SourceOut]
    created_at: str | None
    updated_at: str | None


class PastEventFeature(BaseModel):
    type: str = "Feature"
    id: str
    geometry: dict[str, Any] | None
    properties: PastEventProperties


class PastEventsPage(BaseModel):
    """The documented shape of `GET /api/v1/history/events` (docs/history.md): stable for the map's slider."""

    type: str = "FeatureCollection"
    query: dict[str, Any]
    features: list[PastEventFeature]
    next: str | None = Field(description="pass as `cursor` for the next page; null on the last page")



def parse_bbox(text: str) -> tuple[float, float, float, float]:
    parts = text.split(",")
    try:
        x0, y0, x1, y1 = (float(p) for p in parts)
    except ValueError as exc:
        raise InvalidInput("bbox", "four numbers: min_lon,min_lat,max_lon,max_lat (WGS84)") from exc
    if not all(map(_finite, (x0, y0, x1, y1))):
        raise InvalidInput("bbox", "the numbers must be finite")
    if not (-180 <= x0 < x1 <= 180 and -90 <= y0 < y1 <= 90):
        raise InvalidInput("bbox", "min_lon < max_lon within ±180 and min_lat < max_lat within ±90 (lon,lat order)")
    return x0, y0, x1, y1


def _finite(x: float) -> bool:
    return x == x and abs(x) != float("inf")


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def history_feature(item: PastEvent, status_at: datetime) -> dict[str, Any]:
    """One past event as a GeoJSON Feature (the shape docs/history.md documents; keep it stable)."""
    doc = item.event
    try:
        status: str | None = Event.model_validate(doc).status_at(status_at).value
    except ValidationError:
        status = None
    found_validity, found_sources = doc.get("validity"), doc.get("sources")
    validity: dict[str, Any] = found_validity if isinstance(found_validity, dict) else {}
    sources: list[Any] = found_sources if isinstance(found_sources, list) else []
    return {
        "type": "Feature",
        "id": item.event_id,
        "geometry": doc.get("geometry"),
        "properties": {
            "id": item.event_id,
            "type": doc.get("type"),
            "subtype": doc.get("subtype"),
            "cause": doc.get("cause"),
            "description": doc.get("description"),
            "street": doc.get("street"),
            "commune": doc.get("commune"),
            "direction": doc.get("direction"),
            "status": status,
            "lifecycle": doc.get("lifecycle"),
            "verification": doc.get("verification"),
            "starts_at": validity.get("starts_at"),
            "ends_at": validity.get("ends_at"),
            "lanes": doc.get("lanes"),
            "version": doc.get("version"),
            "version_at": item.version_at.isoformat(),
            "life": {"from": item.life_from.isoformat(), "to": _iso(item.life_to)},
            "sources": [{k: s.get(k) for k in ("source", "source_id", "kind", "active")} for s in sources
                        if isinstance(s, dict)],
            "created_at": doc.get("created_at"),
            "updated_at": doc.get("updated_at"),
        },
    }


def _window(start: datetime | None, end: datetime | None, at: datetime | None) -> None:
    if at is not None:
        if start is not None or end is not None:
            raise InvalidInput("at", "give either at (the state at an instant) or from and to (a window), not both")
        return
    if start is None:
        raise InvalidInput("from", "required (with to), unless at is given")
    if end is None:
        raise InvalidInput("to", "required (with from), unless at is given")
    if end <= start:
        raise InvalidInput("to", "must be after from")
    if end - start > MAX_WINDOW:
        raise InvalidInput("to", f"the window is at most {MAX_WINDOW.days} days (a commune-month); "
                           "the daily open-data files or several windows cover more")


def _cursor(text: str | None) -> Cursor | None:
    if text is None:
        return None
    try:
        return Cursor.decode(text)
    except ValueError as exc:
        raise InvalidInput("cursor", "not a cursor this endpoint gave (pass `next` back unchanged)") from exc


@router.get("/api/v1/history/events", response_model=None,
            responses={**HISTORY_ERRORS, 200: {"model": PastEventsPage, "description": "a page of past events"}})
async def past_events(
    principal: Operator,
    db: HistoryDep,
    start: Annotated[AwareDatetime | None, Query(alias="from", description="window start (RFC 3339)")] = None,
    end: Annotated[AwareDatetime | None, Query(alias="to", description="window end (exclusive; ≤ 31 days)")] = None,
    at: Annotated[AwareDatetime | None, Query(description="the state at this instant (instead of from/to)")] = None,
    bbox: Annotated[str | None, Query(max_length=200, description="min_lon,min_lat,max_lon,max_lat")] = None,
    commune: Annotated[str | None, Query(pattern=r"^\d[0-9AB]\d{3}$", description="INSEE code")] = None,
    type: Annotated[EventType | None, Query(description="event type")] = None,
    source: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9._:-]{1,100}$",
                                        description="a source (`waze-mel`) or an origin (`roadworks`)")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> dict[str, Any]:
    """Past events as a GeoJSON FeatureCollection, paginated (`next`: pass it as `cursor`).

    - `from` & `to`: every event whose life overlaps [from, to), each as its last version before `to`.
    - `at`: the state at that instant: every event the hub held then, each as its version current then
      (`status` at that instant). This is what the map's time slider calls.

    Filters: `bbox` or `commune` (not both), `type`, `source`. Operators and admins. 422 names the
    parameter; 503 with Retry-After when the history database is unavailable. Contract: docs/history.md.
    """
    _window(start, end, at)
    if bbox is not None and commune is not None:
        raise InvalidInput("commune", "give bbox or commune, not both")
    where = EventFilter(commune=commune, type=type.value if type else None, source=source,
                        bbox=parse_bbox(bbox) if bbox is not None else None)
    after = _cursor(cursor)
    async with db.connection() as conn:
        if start is not None and end is not None:
            page = await queries.events_between(conn, start, end, where, after, limit)
        else:
            page = await queries.events_at(conn, at or datetime.now(UTC), where, after, limit)
    status_at = at if at is not None else min(end or datetime.now(UTC), datetime.now(UTC))
    return {
        "type": "FeatureCollection",
        "query": {"from": _iso(start), "to": _iso(end), "at": _iso(at), "bbox": bbox, "commune": commune,
                  "type": type.value if type else None, "source": source, "limit": limit},
        "features": [history_feature(item, status_at) for item in page.items],
        "next": page.next.encode() if page.next else None,
    }


_any_closure = report_history("closure")


@router.get("/api/v1/closures/{closure_id}/history", responses=HISTORY_ERRORS, tags=["closures"])
async def closure_history(
    closure_id: str, principal: ClosureReader, closures: ClosuresDep, history: OptionalHistoryDep,
    communes: CommunesDep,
) -> ItemHistory:
    """Every version of the closure, oldest first: `at` (when the hub recorded it), `who` wrote it, the
    `action` and the field-level `changes` from the previous version, and the `state` as written.
    Road-works teams: the closures in their communes (403 otherwise); operators and admins: all. 404 when
    the archive has no such closure; 503 with Retry-After when the history database is unavailable."""
    if closures.book.get(closure_id)[0] is not None:
        closures.read(principal, closure_id)  # a live closure: the closure routes' own check, database or not
    return await _any_closure(closure_id, principal, history_db(history), communes)


@router.get("/api/v1/measures/{measure_id}/history", responses=HISTORY_ERRORS, tags=["measures"])
async def measure_history(
    measure_id: str, principal: ClosureReader, closures: ClosuresDep, history: OptionalHistoryDep,
    communes: CommunesDep,
) -> ItemHistory:
    """Every version of the measure (any type: a measure is written and archived as a closure is), with the
    same `at`, `who`, `action`, `changes` and `state`, and the same scope rules as the closure history."""
    if closures.book.get(measure_id)[0] is not None:
        closures.read(principal, measure_id, closures_only=False)
    return await _any_closure(measure_id, principal, history_db(history), communes)
