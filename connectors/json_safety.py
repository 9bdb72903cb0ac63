"""Parse untrusted JSON: bounded size, bounded nesting, strict RFC 8259 (no NaN/Infinity) by default.

Item feeds (GeoJSON, WZDx) pass `non_finite=True`: a bare `NaN`, `Infinity` or `-Infinity` is not JSON,
but one such value in one feature must not cost the whole document. The document is then read with
those three tokens accepted (Python's `json`, only when orjson refused it and the tokens occur). The
parser then rejects (dead-letters) each feature whose geometry holds a non-finite number, with its index
and the path of the value; a non-finite property means "no value" (`connectors.items.finite_only`). The
other features go through.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import numpy as np
import orjson

from connectors.base import PayloadError

MAX_JSON_BYTES = 50 * 1024 * 1024
MAX_DEPTH = 200
_NON_FINITE = re.compile(rb"NaN|Infinity")


def parse_json(
    payload: bytes, *, max_bytes: int = MAX_JSON_BYTES, max_depth: int = MAX_DEPTH, non_finite: bool = False
) -> Any:
    """The decoded document; `PayloadError` when too big, not JSON, or nested deeper than `max_depth`.

    `non_finite=True` also accepts the NaN / Infinity / -Infinity tokens (as floats): check the items.
    """
    if not isinstance(payload, bytes | bytearray):
        raise PayloadError("payload is not bytes")
    if len(payload) > max_bytes:
        raise PayloadError(f"payload of {len(payload)} bytes is over the {max_bytes}-byte limit")
    try:
        document = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        if not (non_finite and _NON_FINITE.search(payload)):
            raise PayloadError(f"not valid JSON: {str(exc)[:200]}") from None
        document = _lenient(bytes(payload), exc)
    if _depth_over(bytes(payload), max_depth):
        raise PayloadError(f"JSON nested deeper than {max_depth} levels")
    return document


def _lenient(payload: bytes, strict_error: orjson.JSONDecodeError) -> Any:
    """JSON with NaN / Infinity accepted; any other fault is the strict parser's error."""
    try:
        document = json.loads(payload.decode("utf-8"))
        orjson.dumps(document)  # what orjson cannot write (lone surrogates `\ud800`) stays refused
    except (UnicodeDecodeError, ValueError, TypeError, RecursionError):
        raise PayloadError(f"not valid JSON: {str(strict_error)[:200]}") from None
    return document


def first_non_finite(value: Any, path: str = "") -> str | None:
    """The path (`geometry.coordinates[0][1]`) of the first NaN or infinite number in `value`, or None."""
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        current, where = stack.pop()
        if isinstance(current, float) and not math.isfinite(current):
            return where or "(value)"
        if isinstance(current, dict):
            stack.extend((child, f"{where}.{key}" if where else str(key)) for key, child in reversed(current.items()))
        elif isinstance(current, list):
            stack.extend((child, f"{where}[{index}]") for index, child in reversed(list(enumerate(current))))
    return None


_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = np.zeros(256, dtype=np.int8)
_STEP[list(b"[{")] = 1
_STEP[list(b"]}")] = -1


def _depth_over(payload: bytes, limit: int) -> bool:
    """Whether any value of this (already parsed) JSON text sits more than `limit` containers deep.

    Measured on the bytes: strings removed (a bracket inside one is text), then the deepest point of
    the running count of opening minus closing brackets. Why not a walk over the decoded document:
    on the 1.7 MB Waze partner feed sample the walk (a Python step per container) was 22 % of parsing;
    this is a regular expression and a numpy cumulative sum, both in C."""
    brackets = _STRING.sub(b"", payload).translate(None, _NOT_BRACKETS)
    if len(brackets) <= limit:
        return False
    return int(np.cumsum(_STEP[np.frombuffer(brackets, dtype=np.uint8)], dtype=np.int64).max()) > limit
