"""Partner feeds: pre-rendered bytes with ETag, Last-Modified, 304 and gzip."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.types import Receive, Scope, Send

from traffic_hub.api.deps import FeedReader, FeedsDep, MetricsDep
from traffic_hub.api.responses import AUTH
from traffic_hub.errors import Unavailable
from traffic_hub.feeds.engine import Rendered

router = APIRouter(prefix="/feeds", tags=["feeds"])

FEED_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "the whole current feed",
        "content": {"application/xml": {}, "application/json": {}, "application/geo+json": {}},
    },
    304: {"description": "not modified since the ETag / date given"},
    **AUTH,
    503: {"description": "the feed is being built; retry shortly"},
}


PUBLIC_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "the whole current feed", "content": {"application/geo+json": {}, "text/csv": {}}},
    304: {"description": "not modified since the ETag / date given"},
    503: {"description": "the feed is being built; retry shortly"},
}


def gzip_etag(etag: str) -> str:
    """The ETag of the gzip variant of a feed version."""
    return etag[:-1] + '-gzip"'


def _not_modified(request: Request, feed: Rendered) -> bool:
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None:
        tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
        return "*" in tags or feed.etag in tags or gzip_etag(feed.etag) in tags
    since = request.headers.get("if-modified-since")
    if since is not None:
        try:
            return feed.last_modified.replace(microsecond=0) <= parsedate_to_datetime(since)
        except (TypeError, ValueError):
            return False
    return False


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
    gzip = "gzip" in request.headers.get("accept-encoding", "").lower()
    headers = {
        "ETag": gzip_etag(feed.etag) if gzip else feed.etag,
        "Last-Modified": format_datetime(feed.last_modified, usegmt=True),
        "Cache-Control": "private, no-cache",
        "Vary": "Accept-Encoding, Authorization",
        "X-Feed-Items": str(feed.items),
    }
    if _not_modified(request, feed):
        return Response(status_code=304, headers=headers)
    if gzip:
        headers["Content-Encoding"] = "gzip"
        return FeedResponse(feed.gzip_chunks, feed.gzip_length, feed.media_type, headers)
    return FeedResponse(feed.chunks, feed.length, feed.media_type, headers)


def _serve_counted(request: Request, feeds: FeedsDep, metrics: MetricsDep, name: str, partner: str) -> Response:
    response = serve(request, feeds.get(name))
    metrics.feed_requests.labels(name, partner, str(response.status_code)).inc()
    return response


FEED_DOCS: dict[str, str] = {
    "waze/cifs.xml": "Waze CIFS v2 XML (valid against cifsv2.xsd): active and upcoming closures and incidents.",
    "waze/cifs.json": "Waze CIFS JSON: the same incidents as the XML feed.",
    "datex2/v3/situations.xml": "DATEX II v3 SituationPublication (valid against the 3.7 schemas).",
    "datex2/v2/situations.xml": "DATEX II v2.3 for legacy consumers (the same situations; lines as TPEG segments).",
    "wzdx/v4.2/workzones.geojson": "WZDx 4.2 WorkZoneFeed: closures and road works, one road event per direction.",
    "geojson/events.geojson": "Open data (public, ODbL): every current event as RFC 7946 GeoJSON.",
    "geojson/events.csv": "Open data (public, ODbL): the same events as CSV (RFC 4180), with WKT geometry.",
}
PUBLIC_FEEDS = frozenset({"geojson/events.geojson", "geojson/events.csv"})


def _endpoint(feed: str) -> Callable[..., Awaitable[Response]]:
    if feed in PUBLIC_FEEDS:

        async def public(request: Request, feeds: FeedsDep, metrics: MetricsDep) -> Response:
            return _serve_counted(request, feeds, metrics, feed, "public")

        return public

    async def keyed(request: Request, principal: FeedReader, feeds: FeedsDep, metrics: MetricsDep) -> Response:
        return _serve_counted(request, feeds, metrics, feed, principal.name)

    return keyed


for _feed, _doc in FEED_DOCS.items():
    router.add_api_route(
        f"/{_feed}",
        _endpoint(_feed),
        methods=["GET"],
        name=_feed,
        description=_doc,
        response_class=Response,
        responses=PUBLIC_RESPONSES if _feed in PUBLIC_FEEDS else FEED_RESPONSES,
    )
