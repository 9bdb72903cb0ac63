"""Deciding a conditional feed poll from the hub's current feeds: a ready 304, or the normal path.

The rules are those of `api.feeds.serve` and `api.deps` (the same key sources, role and ETag tests),
answering only where they give a 304; 401, 403, 503 and every 200 stay with the normal path, which
words them. Nothing here reads a feed's bytes: a 304 needs only its ETag, date and item count. The 304
ends with the security headers (`secheaders`), where the normal path's middleware puts them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from typing import Protocol

from prometheus_client import Counter

from traffic_hub.api.deps import FEED_READERS, authenticate, check_role
from traffic_hub.api.fastfeeds import FEED_PATHS, feed_key
from traffic_hub.api.feedpoll import Poll, read_poll
from traffic_hub.api.feeds import gzip_etag
from traffic_hub.api.secheaders import header_lines, security_headers
from traffic_hub.errors import TrafficHubError
from traffic_hub.metrics import Metrics
from traffic_hub.runtime import Hub

LANE = "feed_lane"  # its key in the lifespan state
NOT_MODIFIED = b"HTTP/1.1 304 Not Modified\r\n"


class FeedVersion(Protocol):
    """What a 304 needs of a rendered feed (never its bytes)."""

    @property
    def etag(self) -> str: ...
    @property
    def last_modified(self) -> datetime: ...
    @property
    def items(self) -> int: ...


@dataclass(frozen=True, slots=True)
class _Head:
    """The 304 header lines of one version of one feed, in both ETag variants (as `feeds.serve` writes them)."""

    version: FeedVersion
    key: tuple[str, datetime, int]
    etag: bytes
    gzip_etag: bytes
    last_modified: bytes
    plain: bytes
    gzipped: bytes

    @classmethod
    def of(cls, version: FeedVersion, trailer: bytes = b"") -> _Head:
        etag = version.etag.encode("latin-1")
        gzipped_etag = gzip_etag(version.etag).encode("latin-1")
        last_modified = format_datetime(version.last_modified, usegmt=True).encode("latin-1")
        rest = (
            b"last-modified: " + last_modified + b"\r\n"
            b"cache-control: private, no-cache\r\n"
            b"vary: Accept-Encoding, Authorization\r\n"
            b"x-feed-items: " + str(version.items).encode("ascii") + b"\r\n" + trailer
        )
        return cls(
            version=version,
            key=(version.etag, version.last_modified, version.items),
            etag=etag,
            gzip_etag=gzipped_etag,
            last_modified=last_modified,
            plain=b"etag: " + etag + b"\r\n" + rest,
            gzipped=b"etag: " + gzipped_etag + b"\r\n" + rest,
        )

    def not_modified(self, poll: Poll) -> bool:
        """`feeds._not_modified`, answering True only where it does (anything unsure is False)."""
        if poll.if_none_match is not None:
            tags = poll.if_none_match
            if tags in (self.etag, self.gzip_etag):
                return True
            listed = {tag.strip().removeprefix(b"W/") for tag in tags.split(b",")}
            return b"*" in listed or self.etag in listed or self.gzip_etag in listed
        return poll.if_modified_since == self.last_modified  # other dates: the normal path compares


class _Answer:
    """A 304 decided for one exact request: it stands while the feed keeps the same version."""

    __slots__ = ("close", "counter", "defaults", "feed", "head", "lines", "response")

    def __init__(self, feed: str, head: _Head, lines: bytes, counter: Counter, close: bool) -> None:
        self.feed = feed
        self.head = head
        self.lines = lines
        self.counter = counter
        self.close = close
        self.defaults: list[tuple[bytes, bytes]] | None = None
        self.response = b""

    def response_with(self, defaults: list[tuple[bytes, bytes]]) -> bytes:
        """The whole response, with uvicorn's Date and Server lines (the server renews them once a second)."""
        if defaults is not self.defaults:
            first = b"".join(name + b": " + value + b"\r\n" for name, value in defaults)
            last = b"connection: close\r\n\r\n" if self.close else b"\r\n"
            self.response = NOT_MODIFIED + first + self.lines + last
            self.defaults = defaults
        return self.response


class FeedLane:
    """Answers conditional polls from the hub's current feeds with a 304, or None for the normal path.

    Partners repeat the very same request bytes poll after poll, so a decision is remembered by those
    bytes (only 304s, a bounded number) and holds as long as the feed's version does.
    """

    MAX_ANSWERS = 1024  # with requests of at most MAX_REMEMBERED bytes: 1 MiB at most
    MAX_REMEMBERED = 1024

    def __init__(self, hub: Hub, metrics: Metrics, headers: list[tuple[bytes, bytes]] | None = None) -> None:
        self._hub = hub
        self._metrics = metrics
        self._trailer = header_lines(security_headers() if headers is None else headers)
        self._public = dict(FEED_PATHS.values())
        self._readers: dict[str, str] = {}  # key → principal name; only keys allowed to read feeds
        self._heads: dict[str, _Head] = {}
        self._answers: dict[bytes, _Answer] = {}

    def answer(self, request: bytes) -> _Answer | None:
        """The counted 304 for these request bytes, or None."""
        known = self._answers.get(request)
        if known is None or not self._holds(known):
            known = self._decide(request)
            if known is None:
                self._answers.pop(request, None)
                return None
            if len(request) <= self.MAX_REMEMBERED:
                if len(self._answers) >= self.MAX_ANSWERS:
                    self._answers.clear()
                self._answers[request] = known
        known.counter.inc()
        return known

    def _holds(self, known: _Answer) -> bool:
        version = self._hub.feeds.get(known.feed)
        return version is known.head.version or (
            version is not None and known.head.key == (version.etag, version.last_modified, version.items)
        )

    def _decide(self, request: bytes) -> _Answer | None:
        poll = read_poll(request)
        if poll is None:
            return None
        public = self._public.get(poll.feed)
        if public is None or (poll.if_none_match is None and poll.if_modified_since is None):
            return None
        partner = "public" if public else self._reader(poll)
        version = self._hub.feeds.get(poll.feed)
        if partner is None or version is None:
            return None
        head = self._head(poll.feed, version)
        if not head.not_modified(poll):
            return None
        lines = head.gzipped if b"gzip" in poll.accept_encoding.lower() else head.plain
        counter = self._metrics.feed_requests.labels(poll.feed, partner, "304")
        return _Answer(poll.feed, head, lines, counter, poll.close)

    def _reader(self, poll: Poll) -> str | None:
        authorization = poll.authorization.decode("latin-1") if poll.authorization is not None else ""
        key = feed_key(authorization, poll.query)
        if not key:
            return None
        name = self._readers.get(key)
        if name is None:
            try:
                name = check_role(authenticate(self._hub, key), FEED_READERS).name
            except TrafficHubError:
                return None  # 401 / 403: the normal path words them
            self._readers[key] = name
        return name

    def _head(self, feed: str, version: FeedVersion) -> _Head:
        head = self._heads.get(feed)
        if head is None or (
            head.version is not version and head.key != (version.etag, version.last_modified, version.items)
        ):
            head = self._heads[feed] = _Head.of(version, self._trailer)
        return head
