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

from traffic_hub.api.conditional import not_modified, validator_headers, wants_gzip
from traffic_hub.api.deps import FEED_READERS, authenticate, check_role
from traffic_hub.api.fastfeeds import FEED_PATHS, feed_key
from traffic_hub.api.feedpoll import Poll, read_poll
from traffic_hub.api.secheaders import header_lines, security_headers
from traffic_hub.auth import KeyStore
from traffic_hub.errors import TrafficHubError
from traffic_hub.metrics import Metrics

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
    last_modified: bytes
    plain: bytes
    gzipped: bytes

    @classmethod
    def of(cls, version: FeedVersion, trailer: bytes = b"") -> _Head:
        plain, gzipped = (
            _lines(validator_headers(version.etag, version.last_modified, version.items, gzip=g)) + trailer
            for g in (False, True)
        )
        key = (version.etag, version.last_modified, version.items)
        last_modified = format_datetime(version.last_modified, usegmt=True).encode("latin-1")
        return cls(version=version, key=key, last_modified=last_modified, plain=plain, gzipped=gzipped)

    def not_modified(self, poll: Poll) -> bool:
        """`conditional.not_modified`, the rule of every feed path; a date other than the version's own
        goes to the normal path (it words the dates it cannot read)."""
        if poll.if_none_match is None and poll.if_modified_since != self.last_modified:
            return False
        if_none_match = poll.if_none_match.decode("latin-1") if poll.if_none_match is not None else None
        since = poll.if_modified_since.decode("latin-1") if poll.if_modified_since is not None else None
        return not_modified(self.version.etag, self.version.last_modified, if_none_match, since)


def _lines(headers: dict[str, str]) -> bytes:
    """Header lines as uvicorn writes them (lower-case names)."""
    return b"".join(f"{name.lower()}: {value}\r\n".encode("latin-1") for name, value in headers.items())


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


class FeedVersions(Protocol):
    """What the lane reads: each feed's current rendered version (`FeedBook`)."""

    def get(self, feed: str) -> FeedVersion | None: ...


class FeedLane:
    """Answers conditional polls from the hub's current feeds with a 304, or None for the normal path.

    Partners repeat the very same request bytes poll after poll, so a decision is remembered by those
    bytes (only 304s, a bounded number) and holds as long as the feed's version does.
    """

    MAX_ANSWERS = 1024  # with requests of at most MAX_REMEMBERED bytes: 1 MiB at most
    MAX_REMEMBERED = 1024

    def __init__(
        self, feeds: FeedVersions, keys: KeyStore, metrics: Metrics, headers: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        self._feeds = feeds
        self._keys = keys
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
        version = self._feeds.get(known.feed)
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
        version = self._feeds.get(poll.feed)
        if partner is None or version is None:
            return None
        head = self._head(poll.feed, version)
        if not head.not_modified(poll):
            return None
        lines = head.gzipped if wants_gzip(poll.accept_encoding.decode("latin-1")) else head.plain
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
                name = check_role(authenticate(self._keys, key), FEED_READERS).name
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
