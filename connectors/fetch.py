"""One fetch of one source: conditional GET, a total time limit, a size limit enforced while reading.

The body is read chunk by chunk (after content decoding, so a gzip bomb is cut off too) and the
read stops as soon as it passes `max_bytes`. Validators (ETag / Last-Modified) from the last
successful fetch make the request conditional; `304` is "not modified". `file://` URLs (the demo)
get the same treatment, with validators made from the file's size and modification time.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx2

from connectors.config import ConnectorConfig

USER_AGENT = "traffic-hub/0.1 (Metropole Europeenne de Lille; connector runner)"  # ASCII: a header
HEAD_BYTES = 64 * 1024  # how much of an oversized body is kept for the dead-letter record


@dataclass(frozen=True, slots=True)
class Validators:
    """What makes the next request conditional."""

    etag: str | None = None
    last_modified: str | None = None

    def request_headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        if self.etag:
            headers["If-None-Match"] = self.etag
        if self.last_modified:
            headers["If-Modified-Since"] = self.last_modified
        return headers


@dataclass(frozen=True, slots=True)
class FetchResult:
    status: int
    body: bytes  # empty when not modified
    validators: Validators  # the response's (the previous ones when not modified)
    content_type: str | None
    elapsed_s: float

    @property
    def not_modified(self) -> bool:
        return self.status == 304


class FetchError(Exception):
    """The fetch failed. `reason` is safe to show (it never contains header values)."""

    def __init__(
        self, reason: str, *, status: int | None = None, retry_after_s: float | None = None, head: bytes = b""
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.retry_after_s = retry_after_s
        self.head = head  # the start of the body, kept for the dead letter when there is one


class TooLarge(FetchError):
    """The body passed `max_bytes`: the whole payload is refused (dead-lettered with its head)."""


def make_client(*, trust_env: bool = True) -> httpx2.AsyncClient:
    """The one HTTP client a runner shares between its connectors (timeouts are set per request).

    `trust_env` honours the operator's HTTP(S)_PROXY / NO_PROXY / SSL_CERT_FILE settings.
    """
    return httpx2.AsyncClient(
        follow_redirects=True,
        max_redirects=5,
        headers={"User-Agent": USER_AGENT},
        limits=httpx2.Limits(max_connections=50, max_keepalive_connections=10),
        trust_env=trust_env,
    )


async def fetch(client: httpx2.AsyncClient, cfg: ConnectorConfig, validators: Validators) -> FetchResult:
    """Fetch `cfg.url` once; raise FetchError (TooLarge for a body over the limit) on any failure."""
    started = time.monotonic()
    try:
        async with asyncio.timeout(cfg.timeout_s):
            if urlsplit(cfg.url).scheme == "file":
                return await asyncio.to_thread(_read_file, cfg, validators, started)
            return await _get(client, cfg, validators, started)
    except TimeoutError:
        raise FetchError(f"timed out after {cfg.timeout_s:g} s") from None
    except httpx2.TimeoutException as exc:
        raise FetchError(f"timed out after {cfg.timeout_s:g} s ({type(exc).__name__})") from None
    except httpx2.HTTPError as exc:
        raise FetchError(f"HTTP request failed: {type(exc).__name__}: {exc}") from None


async def _get(client: httpx2.AsyncClient, cfg: ConnectorConfig, validators: Validators, started: float) -> FetchResult:
    headers = {**cfg.request_headers(), **validators.request_headers()}
    async with client.stream("GET", cfg.url, headers=headers, timeout=cfg.timeout_s) as response:
        if response.status_code == 304:
            return FetchResult(304, b"", _merge(validators, response.headers), None, time.monotonic() - started)
        if not 200 <= response.status_code < 300:
            raise FetchError(
                f"HTTP {response.status_code} {response.reason_phrase}".strip(),
                status=response.status_code,
                retry_after_s=_retry_after(response.headers.get("Retry-After")),
            )
        _refuse_declared_size(response.headers.get("Content-Length"), cfg.max_bytes)
        body = await _read_limited(response, cfg.max_bytes)
        found = Validators(response.headers.get("ETag"), response.headers.get("Last-Modified"))
        content_type = response.headers.get("Content-Type")
        return FetchResult(response.status_code, body, found, content_type, time.monotonic() - started)


def _refuse_declared_size(declared: str | None, limit: int) -> None:
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"payload of {int(declared)} bytes (Content-Length) is over the limit of {limit} bytes")


async def _read_limited(response: httpx2.Response, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"payload over the limit of {limit} bytes (stopped reading)", head=_head(chunks))
    return b"".join(chunks)


def _head(chunks: list[bytes]) -> bytes:
    head = bytearray()
    for chunk in chunks:
        head += chunk[: HEAD_BYTES - len(head)]
        if len(head) >= HEAD_BYTES:
            break
    return bytes(head)


def _merge(previous: Validators, headers: httpx2.Headers) -> Validators:
    return Validators(headers.get("ETag") or previous.etag, headers.get("Last-Modified") or previous.last_modified)


def _retry_after(value: str | None) -> float | None:
    """Retry-After in seconds (delta-seconds or an HTTP date), None when absent or unreadable."""
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _read_file(cfg: ConnectorConfig, validators: Validators, started: float) -> FetchResult:
    path = Path(unquote(urlsplit(cfg.url).path))
    try:
        stat = path.stat()
        found = Validators(
            etag=f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"',
            last_modified=email.utils.formatdate(stat.st_mtime, usegmt=True),
        )
        if validators.etag == found.etag:
            return FetchResult(304, b"", found, None, time.monotonic() - started)
        if stat.st_size > cfg.max_bytes:
            raise TooLarge(f"payload of {stat.st_size} bytes is over the limit of {cfg.max_bytes} bytes")
        with path.open("rb") as handle:
            body = handle.read(cfg.max_bytes + 1)
    except OSError as exc:
        raise FetchError(f"cannot read {path.name}: {exc.strerror or exc}", status=404) from None
    if len(body) > cfg.max_bytes:
        raise TooLarge(f"payload over the limit of {cfg.max_bytes} bytes", head=body[:HEAD_BYTES])
    return FetchResult(200, body, found, None, time.monotonic() - started)
