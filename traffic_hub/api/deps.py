"""Dependencies: the hub, the caller, and role guards."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any, cast

from fastapi import Depends, Request
from fastapi.security import APIKeyQuery, HTTPAuthorizationCredentials, HTTPBearer

from traffic_hub.auth import Principal, Role
from traffic_hub.errors import Forbidden, Unauthenticated
from traffic_hub.metrics import Metrics
from traffic_hub.runtime import Hub

_bearer = HTTPBearer(auto_error=False, description="API key: `Authorization: Bearer <key>`")
_query_key = APIKeyQuery(name="key", auto_error=False, description="API key in the URL (feeds only)")


def get_hub(request: Request) -> Hub:
    return cast(Hub, request.state.hub)


def get_metrics(request: Request) -> Metrics:
    return cast(Metrics, request.state.metrics)


HubDep = Annotated[Hub, Depends(get_hub)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
QueryKey = Annotated[str | None, Depends(_query_key)]


def authenticate(hub: Hub, key: str | None) -> Principal:
    if not key:
        raise Unauthenticated("an API key is required: Authorization: Bearer <key>")
    principal = hub.principals.authenticate(key)
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

    async def dependency(hub: HubDep, bearer: Bearer) -> Principal:
        return check_role(authenticate(hub, bearer.credentials if bearer else None), roles)

    return dependency


def feed_caller(*roles: Role) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """Like `caller`, but also accepts `?key=` (some partners can only poll a URL)."""

    async def dependency(hub: HubDep, bearer: Bearer, key: QueryKey) -> Principal:
        return check_role(authenticate(hub, bearer.credentials if bearer else key), roles)

    return dependency


WRITERS = (Role.ROADWORKS, Role.ADMIN)
CLOSURE_READERS = (Role.ROADWORKS, Role.OPERATOR, Role.ADMIN)
OPERATORS = (Role.OPERATOR, Role.ADMIN)
FEED_READERS = (Role.PARTNER, Role.OPERATOR, Role.ADMIN)

Writer = Annotated[Principal, Depends(caller(*WRITERS))]
ClosureReader = Annotated[Principal, Depends(caller(*CLOSURE_READERS))]
Operator = Annotated[Principal, Depends(caller(*OPERATORS))]
FeedReader = Annotated[Principal, Depends(feed_caller(*FEED_READERS))]
Anyone = Annotated[Principal, Depends(caller(*Role))]
