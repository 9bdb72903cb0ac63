"""Security headers on every response: a strict Content-Security-Policy, nosniff, no referrer, no framing.

The operator map carries operator actions (confirm, dismiss) under a key, so no other site may frame it
(`frame-ancestors 'none'`); nothing the hub serves runs scripts from elsewhere. The policy allows what the
map needs and no more: MapLibre's workers (`worker-src 'self' blob:`), the inline styles it sets on its
elements (`style-src 'unsafe-inline'`, styles only, never scripts), images it decodes from `data:`/`blob:`,
and the configured tile server (`TRAFFIC_HUB_MAP_TILES`), whose origin is added to `img-src`/`connect-src`.

`SecurityHeaders` adds them to every ASGI response that does not already set its own (a route needing a
different policy sets it itself); the protocol fast path (`api.fastproto`) writes the same lines.

The API documentation pages (`/docs`, `/redoc`) are FastAPI's HTML, which starts Swagger UI / ReDoc with
an inline script: rather than `'unsafe-inline'`, the policy of those pages lists the SHA-256 of each
inline script they carry (CSP level 2 hashes), computed from the page itself.
"""

from __future__ import annotations

import base64
import hashlib
import re
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

INLINE_SCRIPT_PAGES = frozenset({"/docs", "/redoc", "/docs/oauth2-redirect"})
INLINE_SCRIPT = re.compile(rb"<script(?![^>]*\bsrc\s*=)[^>]*>(.*?)</script>", re.DOTALL | re.IGNORECASE)


def content_security_policy(map_tiles: str | None = None, script_hashes: tuple[str, ...] = ()) -> str:
    """The policy for every page and document the hub serves; `map_tiles`' origin may serve tiles.

    `script_hashes`: the base64 SHA-256 of inline scripts the page may run (the documentation pages).
    """
    tiles = ""
    if map_tiles:
        parts = urlsplit(map_tiles)
        if parts.scheme in ("http", "https") and parts.netloc:
            tiles = f" {parts.scheme}://{parts.netloc}"
    return "; ".join(
        (
            "default-src 'self'",
            " ".join(("script-src 'self'", *(f"'sha256-{digest}'" for digest in script_hashes))),
            "style-src 'self' 'unsafe-inline'",
            f"img-src 'self' data: blob:{tiles}",
            f"connect-src 'self'{tiles}",
            "worker-src 'self' blob:",
            "font-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )


def security_headers(map_tiles: str | None = None) -> list[tuple[bytes, bytes]]:
    """The header lines, lower-case names, in the order they are written."""
    return [
        (b"content-security-policy", content_security_policy(map_tiles).encode("latin-1")),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
        (b"x-frame-options", b"DENY"),
    ]


def inline_script_hashes(html: bytes) -> tuple[str, ...]:
    """The base64 SHA-256 of every inline script of `html`, as CSP `'sha256-…'` sources want them."""
    return tuple(base64.b64encode(hashlib.sha256(body).digest()).decode() for body in INLINE_SCRIPT.findall(html))


def header_lines(headers: list[tuple[bytes, bytes]]) -> bytes:
    """`headers` as raw HTTP/1.1 lines (for responses written without ASGI)."""
    return b"".join(name + b": " + value + b"\r\n" for name, value in headers)


class SecurityHeaders:
    """Appends the security headers to every HTTP response that does not set them itself."""

    def __init__(self, app: ASGIApp, headers: list[tuple[bytes, bytes]], map_tiles: str | None = None) -> None:
        self.app = app
        self.headers = headers
        self.names = frozenset(name for name, _ in headers)
        self.map_tiles = map_tiles

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope.get("path") in INLINE_SCRIPT_PAGES:
            await self._with_script_hashes(scope, receive, send)
            return

        async def secured_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = list(message.get("headers", ()))
                own = {bytes(name).lower() for name, _ in present} & self.names
                message["headers"] = present + [h for h in self.headers if h[0] not in own]
            await send(message)

        await self.app(scope, receive, secured_send)

    async def _with_script_hashes(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The page whole (a few KiB), then its headers with a policy allowing exactly its inline scripts."""
        start: Message | None = None
        body: list[bytes] = []

        async def collecting_send(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                return
            if message["type"] != "http.response.body" or start is None:
                await send(message)
                return
            body.append(message.get("body", b""))
            if message.get("more_body"):
                return
            page = b"".join(body)
            policy = content_security_policy(self.map_tiles, inline_script_hashes(page)).encode("latin-1")
            headers = [(n, v) for n, v in security_headers() if n != b"content-security-policy"]
            present = list(start.get("headers", ()))
            own = {bytes(name).lower() for name, _ in present}
            extra = [(b"content-security-policy", policy), *headers]
            start["headers"] = present + [h for h in extra if h[0] not in own]
            await send(start)
            await send({"type": "http.response.body", "body": page})

        await self.app(scope, receive, collecting_send)
