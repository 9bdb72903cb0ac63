"""Partner feeds: pre-rendered bytes with ETag, Last-Modified, 304 and gzip.

One route per feed of the registry (`traffic_hub.feeds.registry`); the conditional rules are
`traffic_hub.api.conditional`'s.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.types import Receive, Scope, Send

from traffic_hub.api.conditional import gzip_etag, not_modified, validator_headers, wants_gzip
from traffic_hub.api.deps import FeedReader, FeedsDep, MetricsDep
from traffic_hub.api.responses import AUTH
from traffic_hub.errors import Unavailable
from traffic_hub.feeds.engine import Rendered
from traffic_hub.feeds.registry import FEEDS, PREFIX, Feed

__all__ = ["FeedResponse", "gzip_etag", "router", "serve"]

router = APIRouter(prefix=PREFIX, tags=["feeds"])

# Derived from the registry, for `api.fastfeeds` until it reads `traffic_hub.feeds.registry` itself.

NOT_MODIFIED: dict[int | str, dict[str, Any]] = {304: {"description": "not modified since the ETag / date given"}}
BUILDING: dict[int | str, dict[str, Any]] = {503: {"description": "the feed is being built; retry shortly"}}


def _responses(feed: Feed) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI responses of a feed's route: its own media type, the key errors unless public."""
    content: dict[str, dict[str, Any]] = {feed.media_type.split(";")[0]: {}}
    ok: dict[int | str, dict[str, Any]] = {200: {"description": "the whole current feed", "content": content}}
    return {**ok, **NOT_MODIFIED, **({} if feed.public else AUTH), **BUILDING}


class FeedResponse(Response):
    """A feed version sent block by block: no copy of the whole feed per request, Content-Length known."""

    def __init__(self, chunks: Callable[[], Iterator[bytes]], length: int, media_type: str, headers: dict[str, str]):
        super().__init__(media_type=media_type, headers={**headers, "Content-Length": str(length)})
        self._chunks = chunks

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        if scope["method"] != "HEAD":
            for chunk in self._chunks():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def serve(request: Request, feed: Rendered | None) -> Response:
    if feed is None:
        raise Unavailable("the feed is being built; retry shortly", retry_after_s=1)
    gzip = wants_gzip(request.headers.get("accept-encoding", ""))
    headers = validator_headers(feed.etag, feed.last_modified, feed.items, gzip=gzip)
    conditions = (request.headers.get("if-none-match"), request.headers.get("if-modified-since"))
    if not_modified(feed.etag, feed.last_modified, *conditions):
        return Response(status_code=304, headers=headers)
    if gzip:
        headers["Content-Encoding"] = "gzip"
        return FeedResponse(feed.gzip_chunks, feed.gzip_length, feed.media_type, headers)
    return FeedResponse(feed.chunks, feed.length, feed.media_type, headers)


def _serve_counted(request: Request, feeds: FeedsDep, metrics: MetricsDep, name: str, partner: str) -> Response:
    response = serve(request, feeds.get(name))
    metrics.feed_requests.labels(name, partner, str(response.status_code)).inc()
    return response


def _endpoint(feed: Feed) -> Callable[..., Awaitable[Response]]:
    name = feed.path
    if feed.public:

        async def public(request: Request, feeds: FeedsDep, metrics: MetricsDep) -> Response:
            return _serve_counted(request, feeds, metrics, name, "public")

        return public

    async def keyed(request: Request, principal: FeedReader, feeds: FeedsDep, metrics: MetricsDep) -> Response:
        return _serve_counted(request, feeds, metrics, name, principal.name)

    return keyed


for _feed in FEEDS:
    router.add_api_route(
        f"/{_feed.path}",
        _endpoint(_feed),
        methods=["GET"],
        name=_feed.path,
        description=_feed.docs,
        response_class=Response,
        responses=_responses(_feed),
    )
