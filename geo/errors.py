"""The one error the geo package raises for unusable input geometry."""

from __future__ import annotations


class GeoError(ValueError):
    """Invalid or unusable geometry.

    ``code`` is a stable slug (for clients and tests), ``reason`` a short human sentence (for the
    problem+json ``detail``), ``position`` the 0-based index of the offending coordinate when one
    position is to blame (so the API can name ``geometry.coordinates[i]``), else ``None``.
    """

    code: str
    reason: str
    position: int | None

    def __init__(self, code: str, reason: str, *, position: int | None = None) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.position = position

    def __repr__(self) -> str:
        return f"GeoError({self.code!r}, {self.reason!r}, position={self.position!r})"
