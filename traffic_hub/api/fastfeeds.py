"""The hot path: partner feeds served straight from their pre-rendered bytes.

Partners poll hard; a feed request needs only a key check, a conditional check and a memory copy.
This ASGI layer answers GET/HEAD on the feed paths before routing, dependency injection and the
other middleware, with the same functions the documented routes use (`feeds.serve`,
`deps.authenticate`, `deps.check_role`), so the behaviour is identical; everything else passes through.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from traffic_hub.api.deps import FEED_READERS, authenticate, check_role, state_of
from traffic_hub.api.feeds import serve
from traffic_hub.api.problems import hub_problem
from traffic_hub.errors import TrafficHubError
from traffic_hub.feeds.registry import FEEDS

# path → (feed, public): the same feeds as the documented routes
FEED_PATHS: dict[str, tuple[str, bool]] = {feed.url_path: (feed.path, feed.public) for feed in FEEDS}


def feed_key(authorization: str, query_string: bytes) -> str | None:
    """The caller's key: `Authorization: Bearer <key>`, else `?key=` (shared with the protocol fast path)."""
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() == "bearer" and credentials:
        return credentials.strip()
    values = parse_qs(query_string.decode("latin-1")).get("key") if query_string else None
    return values[0] if values else None


def _key(request: Request) -> str | None:
    return feed_key(request.headers.get("authorization", ""), request.scope.get("query_string", b""))


class FeedFastPath:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = FEED_PATHS.get(scope.get("path", "")) if scope["type"] == "http" else None
        state: dict[str, Any] = scope.get("state") or {}
        parts = state_of(state) if route is not None and scope["method"] in ("GET", "HEAD") else None
        if route is None or parts is None:
            await self.app(scope, receive, send)
            return
        feed, public = route
        request = Request(scope)
        try:
            partner = "public" if public else check_role(authenticate(parts["keys"], _key(request)), FEED_READERS).name
            response = serve(request, parts["feeds"].get(feed))
        except TrafficHubError as exc:
            await hub_problem(exc)(scope, receive, send)
            return
        parts["metrics"].feed_requests.labels(feed, partner, str(response.status_code)).inc()
        await response(scope, receive, send)
