"""Security headers on every response: a strict Content-Security-Policy, nosniff, no referrer, no framing.

The operator map carries operator actions (confirm, dismiss) under a key, so no other site may frame it
(`frame-ancestors 'none'`); nothing the hub serves runs scripts from elsewhere. The policy allows what the
map needs and no more: MapLibre's workers (`worker-src 'self' blob:`), the inline styles it sets on its
elements (`style-src 'unsafe-inline'`, styles only, never scripts), images it decodes from `data:`/`blob:`,
and the configured tile server (`TRAFFIC_HUB_MAP_TILES`), whose origin is added to `img-src`/`connect-src`.

`SecurityHeaders` adds them to every ASGI response that does not already set its own (a route needing a
different policy sets it itself); the protocol fast path (`api.fastproto`) writes the same lines.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send


def content_security_policy(map_tiles: str | None = None) -> str:
    """The policy for every page and document the hub serves; `map_tiles`' origin may serve tiles."""
    tiles = ""
    if map_tiles:
        parts = urlsplit(map_tiles)
        if parts.scheme in ("http", "https") and parts.netloc:
            tiles = f" {parts.scheme}://{parts.netloc}"
    return "; ".join(
        (
            "default-src 'self'",
            "script-src 'self'",
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


def header_lines(headers: list[tuple[bytes, bytes]]) -> bytes:
    """`headers` as raw HTTP/1.1 lines (for responses written without ASGI)."""
    return b"".join(name + b": " + value + b"\r\n" for name, value in headers)


class SecurityHeaders:
    """Appends the security headers to every HTTP response that does not set them itself."""

    def __init__(self, app: ASGIApp, headers: list[tuple[bytes, bytes]]) -> None:
        self.app = app
        self.headers = headers
        self.names = frozenset(name for name, _ in headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def secured_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = list(message.get("headers", ()))
                own = {bytes(name).lower() for name, _ in present} & self.names
                message["headers"] = present + [h for h in self.headers if h[0] not in own]
            await send(message)

        await self.app(scope, receive, secured_send)
