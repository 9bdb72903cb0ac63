"""Dependencies: the narrow parts each route uses, the caller, and role guards.

The composition root (`traffic_hub.runtime`) opens the hub's parts and hands the API only what routes
use, by name, in the lifespan state (`ApiState`). A route asks for the part it needs (`EventsDep`,
`ClosuresDep`, `KeysDep`, …), never for the whole hub, so what a route can touch is in its signature
and a test can hand it a stand-in for one part. Nothing in `traffic_hub.api` imports the runtime.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Annotated, Any, TypedDict, cast
from zoneinfo import ZoneInfo

from fastapi import Depends, Request
from fastapi.security import APIKeyQuery, HTTPAuthorizationCredentials, HTTPBearer

from geo.communes import Communes
from geo.network import RoadNetwork
from traffic_hub.archive.store import HistoryDb
from traffic_hub.auth import KeyStore, Principal, Role
from traffic_hub.closures import ClosureService
from traffic_hub.errors import Forbidden, Unauthenticated, Unavailable
from traffic_hub.feeds.engine import FeedBook
from traffic_hub.metrics import Metrics
from traffic_hub.model import Report
from traffic_hub.settings import Settings
from traffic_hub.view import EventView

Readiness = Callable[[], dict[str, bool]]
"""Each readiness check by name (`/readyz`): Kafka answers, topics exist, the producer and views are ready."""
Durability = Callable[[], str]
"""The replication of the hub's topics as the brokers report it (`/readyz` detail, not a readiness gate)."""
ConnectorStates = Callable[[], Sequence[dict[str, Any]]]
"""The connectors this process runs, each as its public state (an API-only replica runs none)."""
ReportWriter = Callable[[Report], Awaitable[None]]
"""Writes one report to the reports topic, durably (operator actions)."""


class ApiState(TypedDict):
    """What the root hands the API, by name: the lifespan state every request sees."""

    events: EventView
    feeds: FeedBook
    closures: ClosureService
    keys: KeyStore
    write_report: ReportWriter
    connector_states: ConnectorStates
    readiness: Readiness
    durability: Durability
    communes: Communes
    network: RoadNetwork | None
    settings: Settings
    metrics: Metrics
    history: HistoryDb | None  # the archive's reads (issue 19); None: no TRAFFIC_HUB_DATABASE_URL


def _part(name: str) -> Callable[[Request], Coroutine[Any, Any, Any]]:
    # async: FastAPI runs a plain `def` dependency in its thread pool, a thread hop per part per request
    # (a quarter of a closure POST's time on the event loop under the write bench, py-spy 2026-12-07)
    async def get(request: Request) -> Any:
        return getattr(request.state, name)

    get.__name__ = f"get_{name}"
    return get


EventsDep = Annotated[EventView, Depends(_part("events"))]
FeedsDep = Annotated[FeedBook, Depends(_part("feeds"))]
ClosuresDep = Annotated[ClosureService, Depends(_part("closures"))]
KeysDep = Annotated[KeyStore, Depends(_part("keys"))]
ReportWriterDep = Annotated[ReportWriter, Depends(_part("write_report"))]
ConnectorStatesDep = Annotated[ConnectorStates, Depends(_part("connector_states"))]
ReadinessDep = Annotated[Readiness, Depends(_part("readiness"))]
DurabilityDep = Annotated[Durability, Depends(_part("durability"))]
CommunesDep = Annotated[Communes, Depends(_part("communes"))]
NetworkDep = Annotated[RoadNetwork | None, Depends(_part("network"))]
SettingsDep = Annotated[Settings, Depends(_part("settings"))]
MetricsDep = Annotated[Metrics, Depends(_part("metrics"))]
OptionalHistoryDep = Annotated[HistoryDb | None, Depends(_part("history"))]


def history_db(history: OptionalHistoryDep) -> HistoryDb:
    """The archive, or a 503 when this hub has none (the history routes only; nothing else needs it)."""
    if history is None:
        raise Unavailable("this hub has no history archive (TRAFFIC_HUB_DATABASE_URL is not set)", retry_after_s=60)
    return history


HistoryDep = Annotated[HistoryDb, Depends(history_db)]


async def timezone(settings: SettingsDep) -> ZoneInfo:
    return ZoneInfo(settings.timezone)  # ZoneInfo caches its instances: no file read after the first


TimezoneDep = Annotated[ZoneInfo, Depends(timezone)]

_bearer = HTTPBearer(auto_error=False, description="API key: `Authorization: Bearer <key>`")
_query_key = APIKeyQuery(name="key", auto_error=False, description="API key in the URL (feeds only)")
Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
QueryKey = Annotated[str | None, Depends(_query_key)]


def authenticate(keys: KeyStore, key: str | None) -> Principal:
    if not key:
        raise Unauthenticated("an API key is required: Authorization: Bearer <key>")
    principal = keys.authenticate(key)
    if principal is None:
        raise Unauthenticated("unknown API key")
    return principal


def check_role(principal: Principal, roles: tuple[Role, ...]) -> Principal:
    if principal.role not in roles:
        allowed = ", ".join(r.value for r in roles)
        raise Forbidden(f"role {principal.role.value} may not do this (needs one of: {allowed})")
    return principal


def caller(*roles: Role) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """A dependency that authenticates with the Bearer header and checks the role."""

    async def dependency(keys: KeysDep, bearer: Bearer) -> Principal:
        return check_role(authenticate(keys, bearer.credentials if bearer else None), roles)

    return dependency


def feed_caller(*roles: Role) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """Like `caller`, but also accepts `?key=` (some partners can only poll a URL)."""

    async def dependency(keys: KeysDep, bearer: Bearer, key: QueryKey) -> Principal:
        return check_role(authenticate(keys, bearer.credentials if bearer else key), roles)

    return dependency


def state_of(scope_state: dict[str, Any]) -> ApiState | None:
    """The API state in an ASGI scope's `state`, or None before the lifespan has opened the hub."""
    return cast(ApiState, scope_state) if "feeds" in scope_state and "keys" in scope_state else None


WRITERS = (Role.ROADWORKS, Role.ADMIN)
CLOSURE_READERS = (Role.ROADWORKS, Role.OPERATOR, Role.ADMIN)
OPERATORS = (Role.OPERATOR, Role.ADMIN)
FEED_READERS = (Role.PARTNER, Role.OPERATOR, Role.ADMIN)

Writer = Annotated[Principal, Depends(caller(*WRITERS))]
ClosureReader = Annotated[Principal, Depends(caller(*CLOSURE_READERS))]
Operator = Annotated[Principal, Depends(caller(*OPERATORS))]
FeedReader = Annotated[Principal, Depends(feed_caller(*FEED_READERS))]
Anyone = Annotated[Principal, Depends(caller(*Role))]
