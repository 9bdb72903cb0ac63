"""Conditional requests on a feed version (RFC 9110 §8.8, §13): validators, 304 or not, gzip or not.

Why one module: a feed is answered on two paths, the routed one (`api.feeds.serve`, also used by
`api.fastfeeds`) and the protocol fast path (`api.feedlane`), and partners must get the same 304s
and the same validator headers from both. The rules, in order:
- `If-None-Match` decides when present: 304 when it lists `*`, the version's ETag or the ETag of its
  gzip variant (weak `W/` tags compare by their opaque part, RFC 9110 §13.1.2); `If-Modified-Since`
  is then ignored.
- else `If-Modified-Since`: 304 when the version is not newer than the date (to the second); an
  unreadable or zone-less date is no condition.
- The gzip variant has its own ETag (`"…-gzip"`), so caches never mix the two encodings.
"""

from __future__ import annotations

from datetime import datetime
from email.utils import format_datetime, parsedate_to_datetime

__all__ = ["CACHE_CONTROL", "VARY", "etag_listed", "gzip_etag", "not_modified", "validator_headers", "wants_gzip"]

CACHE_CONTROL = "private, no-cache"  # revalidate every time; never in shared caches (keyed feeds)
VARY = "Accept-Encoding, Authorization"


def gzip_etag(etag: str) -> str:
    """The ETag of the gzip variant of a feed version."""
    return etag[:-1] + '-gzip"'


def wants_gzip(accept_encoding: str) -> bool:
    """The client accepts gzip (`Accept-Encoding` names it)."""
    return "gzip" in accept_encoding.lower()


def etag_listed(if_none_match: str, etag: str) -> bool:
    """`If-None-Match` lists `*`, `etag` or its gzip variant."""
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in tags or etag in tags or gzip_etag(etag) in tags


def not_modified(etag: str, last_modified: datetime, if_none_match: str | None, if_modified_since: str | None) -> bool:
    """True when the request's conditions say the client already has this version (answer 304)."""
    if if_none_match is not None:
        return etag_listed(if_none_match, etag)
    if if_modified_since is not None:
        try:
            return last_modified.replace(microsecond=0) <= parsedate_to_datetime(if_modified_since)
        except (TypeError, ValueError):
            return False
    return False


def validator_headers(etag: str, last_modified: datetime, items: int, *, gzip: bool) -> dict[str, str]:
    """The headers of every feed answer, 200 and 304 alike (ETag of the variant sent)."""
    return {
        "ETag": gzip_etag(etag) if gzip else etag,
        "Last-Modified": format_datetime(last_modified, usegmt=True),
        "Cache-Control": CACHE_CONTROL,
        "Vary": VARY,
        "X-Feed-Items": str(items),
    }
