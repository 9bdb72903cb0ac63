"""Road-works closures and measures: validate, scope-check and record them durably as reports.

A closure is a measure (issue 18): the measures API posts the closure's fields plus `type` and the
type's values through this same service, so every guarantee below holds for both. The closures API
sees only the closing types (road_closed, lane_closed); another measure read or written through it
is "not found" there, with a pointer to /api/v1/measures (a PUT of a closure body must never turn a
speed limit into a road closure).

The events topic is the truth; a closure read comes from the event view. Between the broker's
acknowledgement and the normaliser's event, the closure is kept in a short-lived pending map so a
team reads its own write at once.

A team's `reference` names one closure for good: posting it again with the same body is a retry
(the same closure), with another body a conflict that says how to change it (never a silent drop),
and after a delete it re-opens the closure as its next version. Who may act on a closure is decided
by one rule, :meth:`geo.communes.Communes.in_scope`, the same at creation and on every later access.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import time
import uuid
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

import shapely
from pydantic import ValidationError

from geo.communes import Communes
from geo.crs import Reprojector
from geo.errors import GeoError
from geo.shapes import line_from_coords, looks_swapped
from traffic_hub import closure_checks, measures
from traffic_hub.auth import Principal, Role
from traffic_hub.errors import Conflict, Forbidden, InvalidInput, NotFound, PreconditionFailed
from traffic_hub.kafka.publisher import Publisher
from traffic_hub.model import ClosureIn, ClosurePatch, ClosureState, Event, MeasureIn, MeasurePatch, Report, ReportKind
from traffic_hub.model.closure import ClosureWarning, measure_problem
from traffic_hub.model.geometry import LineString
from traffic_hub.model.measure import CLOSING_TYPES, DETOURABLE_TYPES, MeasureType
from traffic_hub.normaliser.placement import Placement, Placer
from traffic_hub.publishing import Record
from traffic_hub.topics import Topics
from traffic_hub.view import EventView

CLOSURE_NAMESPACE = uuid.UUID("5d7f5a64-7c2b-4f44-9a5b-3b8e7e0c1a42")
PENDING_TTL_S = 120.0
_SCOPE_CACHE = 10_000

StreetResolver = Callable[[str, str, str], list[tuple[float, float]]]
Body = ClosureIn | MeasureIn
"""What a write carries: a closure (its type follows from `lanes`) or a measure (`type` given)."""
PatchBody = ClosurePatch | MeasurePatch


def closure_id(owner: str, reference: str) -> str:
    """Deterministic: the same team and reference always give the same id (idempotent posts)."""
    return str(uuid.uuid5(CLOSURE_NAMESPACE, f"{owner}/{reference}"))


def etag(state: ClosureState) -> str:
    return f'"{state.version}"'


@dataclass
class _Pending:
    state: ClosureState
    expires: float


@dataclass
class ClosureBook:
    """Reads closures from the event view, overlaid with this process's not-yet-normalised writes."""

    view: EventView
    pending: dict[str, _Pending] = field(default_factory=dict)

    def get(self, closure_id: str) -> tuple[ClosureState | None, Event | None]:
        event = self.view.get(closure_id)
        seen = event.closure if event is not None else None
        mine = self.pending.get(closure_id)
        if mine is not None and (seen is None or seen.version < mine.state.version):
            if mine.expires > time.monotonic():
                return mine.state, event
            del self.pending[closure_id]
        elif mine is not None:
            del self.pending[closure_id]
        return seen, event

    def remember(self, state: ClosureState) -> None:
        self.pending[state.id] = _Pending(state, time.monotonic() + PENDING_TTL_S)

    def all(self) -> list[ClosureState]:
        closures = self.view.matching(lambda stored: stored.closure)  # decodes only the closures
        states: dict[str, ClosureState] = {e.id: e.closure for e in closures if e.closure is not None}
        for closure_id in list(self.pending):
            state, _ = self.get(closure_id)
            if state is not None:
                states[closure_id] = state
        return sorted(states.values(), key=lambda s: (s.created_at, s.id))


Outcome = Literal["created", "unchanged", "reopened", "replaced", "patched", "deleted"]


@dataclass(frozen=True)
class Written:
    """A write's result: the closure as it now stands, and what the write did to it."""

    state: ClosureState
    outcome: Outcome


class ReferenceTaken(Conflict):
    """A POST of a reference the team already used, with another body: never silently dropped."""

    def __init__(self, current: ClosureState, changed: list[dict[str, Any]]) -> None:
        fields = ", ".join(d["field"] for d in changed)
        super().__init__(
            f"reference {current.reference} already names closure {current.id} (version {current.version}), "
            f"which differs in: {fields}. POST never changes a closure; to change it, "
            f"PUT /api/v1/closures/{current.id} (the whole closure) or PATCH /api/v1/closures/{current.id} "
            f"(only the fields to change) with If-Match: {etag(current)}"
        )
        self.current = current
        self.differences = changed


class ClosureService:
    def __init__(
        self,
        book: ClosureBook,
        publisher: Publisher,
        topics: Topics,
        communes: Communes,
        reprojector: Reprojector,
        resolve_street: StreetResolver | None = None,
        placer: Placer | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._placer = placer
        self.book = book
        self._publisher = publisher
        self._topics = topics
        self._communes = communes
        self._reprojector = reprojector
        self._resolve_street = resolve_street
        self._clock = clock
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self._scopes: dict[tuple[str, int, frozenset[str]], bool] = {}

    def now(self) -> datetime:
        """The service's clock (injected in tests)."""
        return self._clock()

    def warnings(self, state: ClosureState, tz: ZoneInfo) -> list[ClosureWarning]:
        """What is unusual about a closure just written (see :mod:`traffic_hub.closure_checks`)."""
        return closure_checks.warnings(state, self._clock(), tz)

    async def measure_warnings(self, state: ClosureState, tz: ZoneInfo) -> list[ClosureWarning]:
        """:meth:`warnings`, and for a detour the current closures and restrictions it runs through
        (:mod:`traffic_hub.measures`; geometry in a thread)."""
        out = self.warnings(state, tz)
        if state.measure_type is MeasureType.DETOUR:
            events = measures.candidates(self.book.view, state, self._clock())
            out += await asyncio.to_thread(measures.detour_warnings, state, events, self._reprojector)
        return out

    # -- reads ---------------------------------------------------------------------------------

    def read(
        self, principal: Principal, closure_id: str, closures_only: bool = True
    ) -> tuple[ClosureState, Event | None]:
        state, event = self.book.get(closure_id)
        if state is None:
            raise NotFound(f"no {'closure' if closures_only else 'measure'} {closure_id}")
        _check_kind(state, closures_only)
        self._check_may_see(principal, state)
        return state, event

    def list(
        self, principal: Principal, limit: int, cursor: str | None, closures_only: bool = True,
        types: frozenset[MeasureType] | None = None,
    ) -> tuple[list[ClosureState], str | None]:
        wanted = CLOSING_TYPES if closures_only else types
        states = [
            s for s in self.book.all()
            if (wanted is None or s.measure_type in wanted) and self._lists(principal, s)
        ]
        start = _decode_cursor(cursor)
        if start is not None:
            states = [s for s in states if (s.created_at.isoformat(), s.id) > start]
        page = states[:limit]
        more = len(states) > limit
        return page, _encode_cursor(page[-1]) if more and page else None

    def preview(self, principal: Principal, body: Body) -> tuple[ClosureState, Placement | None]:
        """What a closure would become, without writing anything (CPU work: call from a thread)."""
        _require_writer(principal)
        now = self._clock()
        cid = closure_id(principal.name, body.reference)
        state = self._build(principal, cid, body, owner=principal.name, version=1, created_at=now, now=now)
        return state, self._placer.place_closure(state) if self._placer else None

    # -- writes --------------------------------------------------------------------------------

    async def create(self, principal: Principal, body: Body) -> Written:
        """Post a closure once (201). The same body again: the same closure (200). Another body for
        a live reference: :class:`ReferenceTaken` (409). After a DELETE: re-opened with this body as
        the closure's next version (201)."""
        _require_writer(principal)
        cid = closure_id(principal.name, body.reference)
        async with self._lock(cid):
            existing, _ = self.book.get(cid)
            if existing is not None:
                self._check_may_see(principal, existing)
            self._check_detour_target(principal, cid, body)
            state = await self._next(principal, cid, body, existing)
            if existing is not None and not existing.cancelled:
                return _repost(existing, state)
            closure_checks.check_ends_in_future(state.ends_at, state.updated_at)
            await self._record(state, principal)
            return Written(state, "created" if existing is None else "reopened")

    async def _next(
        self, principal: Principal, cid: str, body: Body, existing: ClosureState | None
    ) -> ClosureState:
        """What the POSTed body makes of the reference: its first version, or the next one."""
        now = self._clock()
        version = existing.version + 1 if existing is not None else 1
        created_at = existing.created_at if existing is not None else now
        build = functools.partial(self._build, owner=principal.name, version=version, created_at=created_at, now=now)
        return await asyncio.to_thread(build, principal, cid, body)  # geometry work stays off the event loop

    async def replace(self, principal: Principal, cid: str, body: Body, if_match: str | None) -> Written:
        async with self._lock(cid):
            return await self._replace(principal, cid, body, if_match, "replaced")

    async def patch(self, principal: Principal, cid: str, patch: PatchBody, if_match: str | None) -> Written:
        async with self._lock(cid):
            current = self._writable(principal, cid, if_match, closures_only=not isinstance(patch, MeasurePatch))
            merged = _merge(current, patch)
            return await self._replace(principal, cid, merged, if_match, "patched")

    async def cancel(self, principal: Principal, cid: str, if_match: str | None, closures_only: bool = True) -> Written:
        async with self._lock(cid):
            current = self._writable(principal, cid, if_match, allow_cancelled=True, closures_only=closures_only)
            if current.cancelled:
                return Written(current, "unchanged")
            now = self._clock()
            update = {"cancelled": True, "version": current.version + 1, "updated_at": now}
            state = current.model_copy(update=update)
            await self._record(state, principal)
            return Written(state, "deleted")

    # -- helpers -------------------------------------------------------------------------------

    async def _replace(
        self, principal: Principal, cid: str, body: Body, if_match: str | None, outcome: Outcome
    ) -> Written:
        current = self._writable(principal, cid, if_match, closures_only=not isinstance(body, MeasureIn))
        if body.reference != current.reference:
            raise InvalidInput("reference", "the reference of a closure cannot change")
        self._check_detour_target(principal, cid, body)
        now = self._clock()
        closure_checks.check_ends_in_future(body.ends_at, now)
        build = functools.partial(  # an admin's or operator's edit keeps the owning team's communes
            self._build, owner=current.owner, owner_communes=current.owner_communes, version=current.version + 1,
            created_at=current.created_at, now=now,
        )
        state = await asyncio.to_thread(build, principal, cid, body)
        await self._record(state, principal)
        return Written(state, outcome)

    def _lock(self, cid: str) -> asyncio.Lock:
        """One write at a time per closure in this process: two PUTs with the same If-Match, or two
        first POSTs of one reference, cannot both pass their check and both write."""
        lock = self._locks.get(cid)
        if lock is None:
            lock = self._locks[cid] = asyncio.Lock()
        return lock

    def _writable(
        self, principal: Principal, cid: str, if_match: str | None, allow_cancelled: bool = False,
        closures_only: bool = True,
    ) -> ClosureState:
        _require_writer(principal)
        current, _ = self.book.get(cid)
        if current is None:
            raise NotFound(f"no {'closure' if closures_only else 'measure'} {cid}")
        _check_kind(current, closures_only)
        self._check_may_see(principal, current)
        if if_match is not None and if_match.strip() not in ("*", etag(current), f"W/{etag(current)}"):
            raise PreconditionFailed(f"If-Match {if_match} does not match the current version {etag(current)}")
        if current.cancelled and not allow_cancelled:
            raise Conflict(
                f"the closure was deleted; POST its reference {current.reference} again to re-open it "
                "with a new body"
            )
        return current

    def _in_scope(self, principal: Principal, state: ClosureState) -> bool:
        """Admins and operators see every closure; a road-works team those in its communes, by the
        one rule of :meth:`geo.communes.Communes.in_scope` (the same at creation)."""
        if principal.role in (Role.ADMIN, Role.OPERATOR):
            return True
        if principal.role is not Role.ROADWORKS or state.geometry is None or not state.communes:
            return False
        key = (state.id, state.version, principal.communes)
        known = self._scopes.get(key)
        if known is None:
            line = shapely.linestrings(state.geometry.coordinates)
            known = self._communes.in_scope(line, principal.communes)
            if len(self._scopes) >= _SCOPE_CACHE:
                self._scopes.pop(next(iter(self._scopes)))
            self._scopes[key] = known
        return known

    def _check_detour_target(self, principal: Principal, cid: str, body: Body) -> None:
        """A detour goes around a live road_closed or vehicle_restriction the team may see (422 on
        `detour_of` otherwise: unknown, deleted, another type, outside the team's communes, itself)."""
        if not isinstance(body, MeasureIn) or body.type is not MeasureType.DETOUR or not body.detour_of:
            return
        target, _ = self.book.get(body.detour_of)
        if target is None or target.cancelled:
            raise InvalidInput("detour_of", f"no live measure {body.detour_of} to go around")
        if target.id == cid:
            raise InvalidInput("detour_of", "a detour cannot go around itself")
        if not self._in_scope(principal, target):
            raise InvalidInput(
                "detour_of", f"measure {target.id} lies outside your communes ({', '.join(sorted(principal.communes))})"
            )
        if target.measure_type not in DETOURABLE_TYPES:
            raise InvalidInput(
                "detour_of",
                f"measure {target.id} is a {target.measure_type.value}; a detour goes around a road_closed "
                "or a vehicle_restriction",
            )

    def _check_may_see(self, principal: Principal, state: ClosureState) -> None:
        if not self._in_scope(principal, state):
            raise Forbidden(f"this closure lies outside your communes ({', '.join(sorted(principal.communes))})")

    def _lists(self, principal: Principal, state: ClosureState) -> bool:
        """Admins and operators list every closure; a team lists its own (those still in its scope)."""
        if principal.role in (Role.ADMIN, Role.OPERATOR):
            return True
        return state.owner == principal.name and self._in_scope(principal, state)

    def _build(
        self,
        principal: Principal,
        cid: str,
        body: Body,
        *,
        owner: str,
        version: int,
        created_at: datetime,
        now: datetime,
        owner_communes: Sequence[str] | None = None,
    ) -> ClosureState:
        line = self._line(body)
        team = principal.role is Role.ROADWORKS
        where = self._communes.assess(line, principal.communes if team else None)  # one projection, one scope
        communes = where.scope
        if not communes or not where.in_mel:
            raise InvalidInput("geometry", "the closure lies outside the Métropole Européenne de Lille")
        if team and not where.in_scope:
            raise Forbidden(
                f"the closure lies in {self._communes.names(communes)}, outside your communes "
                f"({self._communes.names(sorted(principal.communes))})"
            )
        coords = [list(c) for c in shapely.get_coordinates(line).tolist()]
        fields: dict[str, Any] = body.model_dump(exclude={"geometry", "crs"})
        fields["type"] = _measure_type(body)
        return ClosureState(
            **fields,
            geometry=LineString(type="LineString", coordinates=coords),
            crs="EPSG:4326",
            submitted_crs=body.crs,
            id=cid,
            owner=owner,
            owner_communes=sorted(principal.communes if owner_communes is None else owner_communes),
            communes=communes,
            version=version,
            created_at=created_at,
            updated_at=now,
        )

    def _line(self, body: Body) -> shapely.LineString:
        if body.geometry is None:
            return self._street_line(body)
        raw = body.geometry.coordinates
        try:
            coords = self._reprojector.to_wgs84(raw, body.crs)
        except GeoError as exc:
            field = "crs" if exc.code in ("unsupported-crs", "wrong-crs") else "geometry.coordinates"
            raise InvalidInput(field, exc.reason) from exc
        if body.crs == "EPSG:4326" and looks_swapped(coords, self._communes.bbox):
            raise InvalidInput("geometry.coordinates", "positions look like [lat, lon]; GeoJSON wants [lon, lat]")
        try:
            return line_from_coords([list(c) for c in coords])
        except GeoError as exc:
            raise InvalidInput("geometry.coordinates", exc.reason) from exc

    def _street_line(self, body: Body) -> shapely.LineString:
        if not (body.street and body.from_street and body.to_street):
            raise InvalidInput("street", "give either geometry, or street with from_street and to_street")
        if self._resolve_street is None:
            raise InvalidInput("street", "no road network is loaded to resolve streets; send a geometry")
        try:
            coords = self._resolve_street(body.street, body.from_street, body.to_street)
        except GeoError as exc:
            raise InvalidInput(_street_field(exc), exc.reason) from exc
        return line_from_coords([list(c) for c in coords])

    async def _record(self, state: ClosureState, principal: Principal) -> None:
        report = Report(
            key=state.id,
            kind=ReportKind.CLOSURE,
            source=f"roadworks:{state.owner}",
            received_at=self._clock(),
            closure=state,
            payload={"by": principal.name, "role": principal.role.value},  # who wrote this version (history)
        )
        await self._publisher.send(Record(self._topics.reports, state.id.encode(), report.model_dump_json().encode()))
        self.book.remember(state)


def _repost(existing: ClosureState, posted: ClosureState) -> Written:
    """A live reference posted again: the same closure when nothing differs, else a 409."""
    changed = closure_checks.differences(existing, posted)
    if changed:
        raise ReferenceTaken(existing, changed)
    return Written(existing, "unchanged")


def _require_writer(principal: Principal) -> None:
    if principal.role not in (Role.ROADWORKS, Role.ADMIN):
        raise Forbidden(f"role {principal.role.value} cannot write closures")


def _check_kind(state: ClosureState, closures_only: bool) -> None:
    """The closures API sees closures only; another measure is found under /api/v1/measures."""
    if closures_only and state.measure_type not in CLOSING_TYPES:
        raise NotFound(
            f"{state.id} is a {state.measure_type.value} measure, not a closure: see /api/v1/measures/{state.id}"
        )


def _measure_type(body: Body) -> MeasureType:
    """The type a write records: the measure's own (checked against its values), else the closure's."""
    if isinstance(body, MeasureIn):
        problem = measure_problem(body.type, body.lanes, body.speed_kmh, body.vehicles, body.detour_of)
        if problem is not None:
            raise InvalidInput(*problem)
        return body.type
    return MeasureType.LANE_CLOSED if body.lanes is not None and not body.lanes.full else MeasureType.ROAD_CLOSED


def _merge(current: ClosureState, patch: PatchBody) -> Body:
    model: type[ClosureIn] | type[MeasureIn] = MeasureIn if isinstance(patch, MeasurePatch) else ClosureIn
    data = current.model_dump(include=set(model.model_fields) - {"crs"})
    data["crs"] = "EPSG:4326"
    if model is MeasureIn:
        data["type"] = current.measure_type
    data.update(patch.model_dump(exclude_unset=True))
    if "geometry" in patch.model_fields_set and patch.geometry is not None:
        data["crs"] = patch.crs or "EPSG:4326"
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field_name = ".".join(str(p) for p in first["loc"]) or "body"
        raise InvalidInput(field_name, first["msg"]) from exc


def _street_field(exc: GeoError) -> str:
    """The field a street-lookup error is about (the geo side starts its reason with it)."""
    first = exc.reason.split(" ", 1)[0]
    return first if first in ("street", "from_street", "to_street") else "street"


def _encode_cursor(state: ClosureState) -> str:
    return base64.urlsafe_b64encode(f"{state.created_at.isoformat()}|{state.id}".encode()).decode()


def _decode_cursor(cursor: str | None) -> tuple[str, str] | None:
    if cursor is None:
        return None
    try:
        created, _, cid = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput("cursor", "not a cursor this API returned") from exc
    if not cid:
        raise InvalidInput("cursor", "not a cursor this API returned")
    return created, cid
