"""Parse untrusted JSON: bounded size, bounded nesting, strict RFC 8259 (no NaN/Infinity)."""

from __future__ import annotations

from typing import Any

import orjson

from connectors.base import PayloadError

MAX_JSON_BYTES = 50 * 1024 * 1024
MAX_DEPTH = 200


def parse_json(payload: bytes, *, max_bytes: int = MAX_JSON_BYTES, max_depth: int = MAX_DEPTH) -> Any:
    """The decoded document; `PayloadError` when too big, not JSON, or nested deeper than `max_depth`."""
    if not isinstance(payload, bytes | bytearray):
        raise PayloadError("payload is not bytes")
    if len(payload) > max_bytes:
        raise PayloadError(f"payload of {len(payload)} bytes is over the {max_bytes}-byte limit")
    try:
        document = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise PayloadError(f"not valid JSON: {str(exc)[:200]}") from None
    if _depth_over(document, max_depth):
        raise PayloadError(f"JSON nested deeper than {max_depth} levels")
    return document


def _depth_over(document: Any, limit: int) -> bool:
    """Whether any value sits more than `limit` containers deep (iterative: no recursion)."""
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False
