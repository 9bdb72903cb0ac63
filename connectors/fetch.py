"""One fetch of one source: conditional GET, a total time limit, a size limit enforced while reading.

The body is read chunk by chunk (after content decoding, so a gzip bomb is cut off too) and the
read stops as soon as it passes `max_bytes`. Validators (ETag / Last-Modified) from the last
successful fetch make the request conditional; `304` is "not modified". `file://` URLs (the demo)
get the same treatment, with validators made from the file's size and modification time.

Redirects are followed here, hop by hop, not by the HTTP client, so each hop is checked against the
connector's policy (`connectors.config`): a redirect to the same host is followed (at most
`MAX_REDIRECTS`, never from https down to http) unless `follow_redirects = false`; a redirect to another
host only when that host is listed in `allow_redirect_hosts`. As soon as a hop leaves the origin
(scheme, host, port) of the configured URL, none of the configured headers (API keys, Authorization,
any custom header) is sent any more. Every connection goes through `connectors.netguard`, which refuses
loopback, private and link-local addresses unless the connector says `allow_private = true`.
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

from connectors import logmask
from connectors.config import ConnectorConfig
from connectors.netguard import ALLOW_PRIVATE, AddressRefused, GuardedTransport

USER_AGENT = "traffic-hub/0.1 (Metropole Europeenne de Lille; connector runner)"  # ASCII: a header
HEAD_BYTES = 64 * 1024  # how much of an oversized body is kept for the dead-letter record
MAX_REDIRECTS = 5
REDIRECTS = frozenset({301, 302, 303, 307, 308})


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


class Refused(FetchError):
    """The connector's policy refuses the address or the redirect: nothing was read from it."""


def make_client(*, trust_env: bool = True) -> httpx2.AsyncClient:
    """The one HTTP client a runner shares between its connectors (timeouts are set per request).

    Its connections go through `connectors.netguard` (address checks). `trust_env` honours the
    operator's SSL_CERT_FILE / SSL_CERT_DIR; HTTP(S)_PROXY is not used (see `connectors.netguard`).
    """
    logmask.install()
    limits = httpx2.Limits(max_connections=50, max_keepalive_connections=10)
    return httpx2.AsyncClient(
        follow_redirects=False,
        headers={"User-Agent": USER_AGENT},
        limits=limits,
        transport=GuardedTransport(limits=limits, trust_env=trust_env),
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
    except AddressRefused as exc:
        raise Refused(f"address refused: {exc.reason}") from None
    except httpx2.TimeoutException as exc:
        raise FetchError(f"timed out after {cfg.timeout_s:g} s ({type(exc).__name__})") from None
    except httpx2.HTTPError as exc:
        raise FetchError(logmask.mask_secrets(f"HTTP request failed: {type(exc).__name__}: {exc}")) from None


async def _get(client: httpx2.AsyncClient, cfg: ConnectorConfig, validators: Validators, started: float) -> FetchResult:
    url = httpx2.URL(cfg.url)
    origin = _origin(url)
    headers = {**cfg.request_headers(), **validators.request_headers()}
    for _hop in range(MAX_REDIRECTS + 1):
        if _origin(url) != origin:  # never the configured credentials outside the configured origin
            headers = validators.request_headers()
        request = client.build_request(
            "GET", url, headers=headers, timeout=cfg.timeout_s, extensions={ALLOW_PRIVATE: cfg.allow_private}
        )
        response = await client.send(request, stream=True, follow_redirects=False)
        try:
            if response.status_code in REDIRECTS:
                url = _next_hop(cfg, url, response)
                continue
            return await _answer(response, cfg, validators, started)
        finally:
            await response.aclose()
    raise FetchError(f"more than {MAX_REDIRECTS} redirects")


def _origin(url: httpx2.URL) -> tuple[str, str, int | None]:
    port = url.port or {"http": 80, "https": 443}.get(url.scheme)
    return (url.scheme, url.host.lower().rstrip("."), port)


def _next_hop(cfg: ConnectorConfig, current: httpx2.URL, response: httpx2.Response) -> httpx2.URL:
    """Where a redirect leads, or Refused when the connector's policy does not allow it."""
    location = response.headers.get("Location")
    status = response.status_code
    if not location:
        raise FetchError(f"HTTP {status} redirect without a Location")
    try:
        target = current.join(location)
    except httpx2.InvalidURL:
        raise FetchError(f"HTTP {status} redirect to an invalid URL") from None
    shown = logmask.mask_secrets(str(target.copy_with(query=None, fragment=None)))
    if not cfg.follow_redirects:
        raise Refused(f"HTTP {status} redirect to {shown} refused: follow_redirects = false for this connector")
    if target.scheme not in ("http", "https"):
        raise Refused(f"HTTP {status} redirect to a {target.scheme!r} URL refused")
    if current.scheme == "https" and target.scheme == "http":
        raise Refused(f"HTTP {status} redirect from https down to http ({shown}) refused")
    host = target.host.lower().rstrip(".")
    configured = (httpx2.URL(cfg.url).host.lower().rstrip("."), *cfg.allow_redirect_hosts)
    if host != current.host.lower().rstrip(".") and host not in configured:
        raise Refused(
            f"HTTP {status} redirect to another host ({host}) refused; "
            "list it in allow_redirect_hosts to follow it (configured headers are not sent there)"
        )
    return target


async def _answer(
    response: httpx2.Response, cfg: ConnectorConfig, validators: Validators, started: float
) -> FetchResult:
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
