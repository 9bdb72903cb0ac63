"""The conditional-request rules every feed path shares (`traffic_hub.api.conditional`)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from traffic_hub.api.conditional import gzip_etag, not_modified, validator_headers, wants_gzip

ETAG = '"v42"'
MODIFIED = datetime(2026, 3, 1, 8, 30, 15, 123456, tzinfo=UTC)
HTTP_DATE = "Sun, 01 Mar 2026 08:30:15 GMT"


@pytest.mark.parametrize(
    ("if_none_match", "if_modified_since", "expected"),
    [
        (None, None, False),
        (ETAG, None, True),
        ('"v41"', None, False),
        ('"v41", W/"v42"', None, True),
        ('"v42-gzip"', None, True),
        ("*", None, True),
        ('"v41"', HTTP_DATE, False),  # If-None-Match decides: the date is ignored
        (None, HTTP_DATE, True),
        (None, "Sun, 01 Mar 2026 08:30:14 GMT", False),
        (None, "Mon, 02 Mar 2026 08:00:00 GMT", True),
        (None, "yesterday", False),
        (None, "Sun, 01 Mar 2026 08:30:15 -0000", False),  # no zone: no condition
    ],
)
def test_not_modified(if_none_match: str | None, if_modified_since: str | None, expected: bool) -> None:
    assert not_modified(ETAG, MODIFIED, if_none_match, if_modified_since) is expected


def test_gzip_variant_has_its_own_etag() -> None:
    assert gzip_etag(ETAG) == '"v42-gzip"'
    assert validator_headers(ETAG, MODIFIED, 3, gzip=True)["ETag"] == '"v42-gzip"'


def test_validator_headers() -> None:
    assert validator_headers(ETAG, MODIFIED, 3, gzip=False) == {
        "ETag": ETAG,
        "Last-Modified": HTTP_DATE,
        "Cache-Control": "private, no-cache",
        "Vary": "Accept-Encoding, Authorization",
        "X-Feed-Items": "3",
    }


def test_wants_gzip() -> None:
    assert wants_gzip("br, GZIP;q=0.5")
    assert not wants_gzip("identity")
