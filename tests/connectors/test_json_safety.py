"""JSON limits: size, nesting depth, strict numbers."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors import json_safety
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


def _walk_depth(value: object) -> int:
    if isinstance(value, dict):
        return 1 + max((_walk_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_walk_depth(v) for v in value), default=0)
    return 0


@given(
    st.recursive(
        st.none() | st.integers(-(2**63), 2**63 - 1) | st.text(alphabet='[]{}"\\ab\u00e9', max_size=6),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text('[]{}"\\x', max_size=4), inner, max_size=3),
        max_leaves=40,
    )
)
@settings(max_examples=200, deadline=None)
def test_the_depth_is_measured_on_the_text_without_counting_brackets_inside_strings(value: object) -> None:
    """The depth check reads the bytes (strings with brackets and escaped quotes removed): it agrees
    with a walk over the decoded document at every limit around the real depth."""
    payload = orjson.dumps(value)
    depth = _walk_depth(value)
    for limit in range(max(depth - 1, 1), depth + 2):
        if depth > limit:
            with pytest.raises(PayloadError, match="deeper than"):
                parse_json(payload, max_depth=limit)
        else:
            assert parse_json(payload, max_depth=limit) == value


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 1 << 20])
def test_the_depth_is_the_same_across_the_numpy_chunks(chunk: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """A string or an escape cut by a chunk boundary is still read as one (the quote parity carries over)."""
    monkeypatch.setattr(json_safety, "_CHUNK", chunk)
    value = {"a[": ['x"]]]\\', [[{"b": "{{[[\\\\"}]], "\\\"["], "c": [[[[1]]]]}
    payload = orjson.dumps(value)
    depth = _walk_depth(value)
    assert parse_json(payload, max_depth=depth) == value
    with pytest.raises(PayloadError, match="deeper than"):
        parse_json(payload, max_depth=depth - 1)
    assert parse_json(b" " * 5 + b"[" * 3 + b"]" * 3, max_depth=3) == [[[]]]
