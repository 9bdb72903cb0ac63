"""JSON limits: size, nesting depth, strict numbers."""

from __future__ import annotations

import pytest

from connectors.base import PayloadError
from connectors.json_safety import parse_json


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b'{"x": NaN}', "not valid JSON"),
        (b'{"x": Infinity}', "not valid JSON"),
        (b'{"x": 1e400}', "not valid JSON"),
        (b'{"alerts": [', "not valid JSON"),
        (b"\xff\xfe\x00", "not valid JSON"),
        (b"[" * 201 + b"]" * 201, "deeper than 200"),
        (b'{"a":' * 300 + b"1" + b"}" * 300, "deeper than 200"),
    ],
)
def test_bad_json_is_a_payload_error(payload: bytes, reason: str) -> None:
    with pytest.raises(PayloadError, match=reason):
        parse_json(payload)


def test_limits_are_exact() -> None:
    nested = parse_json(b"[" * 200 + b"]" * 200)
    depth = 0
    while isinstance(nested, list) and nested:
        nested, depth = nested[0], depth + 1
    assert depth == 199
    with pytest.raises(PayloadError, match="over the"):
        parse_json(b"[1, 2]", max_bytes=5)
    assert parse_json(b"[1, 2]", max_bytes=6) == [1, 2]
