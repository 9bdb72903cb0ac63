"""RFC 9457 problem details: every error leaves the API in this one shape, naming the field."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from traffic_hub.errors import (
    BadInput,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    PreconditionFailed,
    TrafficHubError,
    Unauthenticated,
    Unavailable,
    WriteRejected,
)

log = logging.getLogger(__name__)

PROBLEM = "application/problem+json"

# The one place a hub error becomes HTTP: the most specific class of an error wins (its MRO is walked).
STATUS: dict[type[TrafficHubError], tuple[int, str]] = {
    InvalidInput: (422, "Invalid input"),
    PayloadTooLarge: (413, "Payload too large"),
    BadInput: (422, "Invalid input"),
    Unauthenticated: (401, "Authentication required"),
    Forbidden: (403, "Forbidden"),
    NotFound: (404, "Not found"),
    PreconditionFailed: (412, "Precondition failed"),
    Conflict: (409, "Conflict"),
    Unavailable: (503, "Service unavailable"),
    WriteRejected: (503, "Service unavailable"),  # the request was fine; the event log would not take it
    TrafficHubError: (500, "Internal error"),
}


def status_of(exc: TrafficHubError) -> tuple[int, str]:
    """The HTTP status and title of a hub error."""
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return STATUS[TrafficHubError]


def hub_problem(exc: TrafficHubError) -> JSONResponse:
    """The problem document of a hub error (also used by the fast paths, outside FastAPI's handlers)."""
    status, title = status_of(exc)
    if isinstance(exc, InvalidInput):
        errors = [{"field": exc.field, "message": exc.reason}]
        return problem(status, title, exc.detail, field=exc.field, errors=errors)
    if isinstance(exc, Unavailable | WriteRejected):
        return problem(status, title, exc.detail, retry_after=exc.retry_after_s)
    return problem(status, title, exc.detail)
UNREADABLE_BODY = "There was an error parsing the body"  # FastAPI's words when its JSON parser raises


def problem(status: int, title: str, detail: str, **extra: Any) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    headers = {}
    retry_after = body.pop("retry_after", None)
    if status == 503 or (status == 429 and retry_after is not None):
        headers["Retry-After"] = str(retry_after if retry_after is not None else 1)
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="traffic-hub"'
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def _field(loc: Sequence[int | str]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "header", "path")]
    # drop pydantic's union tags ("LineString", "function-after[...]") from the path people read
    parts = [p for p in parts if not p.startswith("function-") and p not in ("LineString", "Point", "MultiLineString")]
    return ".".join(parts) or "body"


def _errors(exc: RequestValidationError) -> list[dict[str, str]]:
    out = []
    for error in exc.errors():
        field = _field(error.get("loc", ()))
        if error.get("type") == "json_invalid":
            field = "body"
        message = str(error.get("msg", "invalid"))
        if error.get("type") == "extra_forbidden":
            message = "unknown field"
        out.append({"field": field, "message": message.removeprefix("Value error, ")})
    return out


async def _on_validation(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, RequestValidationError):
        raise exc
    errors = _errors(exc)
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
    return problem(422, "Invalid input", detail, field=errors[0]["field"] if errors else "body", errors=errors)


async def _on_hub_error(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, TrafficHubError):
        raise exc
    return hub_problem(exc)


async def _on_http(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, HTTPException):
        raise exc
    if exc.status_code == 400 and exc.detail == UNREADABLE_BODY and isinstance(exc.__cause__, Exception):
        return _unreadable_body(exc.__cause__)
    return problem(exc.status_code, _title(exc.status_code), str(exc.detail))


def _unreadable_body(cause: Exception) -> JSONResponse:
    """FastAPI's 400 for a body its JSON parser gave up on: 422 naming the body, as for any invalid input.

    A body nested thousands of levels deep exhausts the parser's recursion; bytes that are not UTF-8 are
    not JSON text. Neither is the client's server error, nor a reason to leave the problem shape.
    """
    if isinstance(cause, RecursionError):
        message = "the JSON body is nested too deeply"
    elif isinstance(cause, UnicodeDecodeError):
        message = "the body is not UTF-8 JSON"
    else:
        message = "the body is not JSON this API can read"
    errors = [{"field": "body", "message": message}]
    return problem(422, "Invalid input", f"body: {message}", field="body", errors=errors)


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem(500, "Internal error", "an unexpected error occurred; it has been logged")


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(TrafficHubError, _on_hub_error)
    app.add_exception_handler(HTTPException, _on_http)
    app.add_exception_handler(Exception, _on_unexpected)
