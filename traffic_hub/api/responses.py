"""Documented error responses (RFC 9457 problem details), shared by the routes."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class Problem(BaseModel):
    """application/problem+json (RFC 9457); `field` names the offending input."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    field: str | None = None
    errors: list[dict[str, str]] | None = None


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "model": Problem, "content": {"application/problem+json": {}}}


AUTH: dict[int | str, dict[str, Any]] = {
    401: _problem("no or unknown API key"),
    403: _problem("the key's role may not do this, or it is outside the caller's communes"),
}
READ: dict[int | str, dict[str, Any]] = {**AUTH, 404: _problem("no such item"), 422: _problem("invalid parameter")}
WRITE: dict[int | str, dict[str, Any]] = {
    **READ,
    400: _problem("the body could not be read"),
    409: _problem("the item is in a state that forbids this"),
    412: _problem("If-Match does not match the current version"),
    413: _problem("the body is over the size limit"),
    422: _problem("invalid input (the problem names the field)"),
    503: _problem("Kafka cannot take the write now; retry after Retry-After seconds"),
}
