"""A conditional feed poll, read straight from the bytes of one HTTP/1.1 request.

Partners poll their feeds with the ETag they already hold, and almost every answer is a 304. Reading
such a request with two regular expressions costs far less than uvicorn's parser callbacks, the
ASGI scope and the task that a request gets on the normal path. The reader is deliberately narrow:
anything it does not fully understand (another method or version, a body, an upgrade, percent
escapes in the path, repeated headers, odd bytes, several requests at once) yields None, and the
request takes the normal path, which knows every rule of HTTP.
"""

from __future__ import annotations

import re
from typing import NamedTuple

MAX_REQUEST_BYTES = 8192

# request line + header block; tchar names, values without control characters (HTAB allowed)
_REQUEST = re.compile(
    rb"(GET|HEAD) /feeds/([A-Za-z0-9._/-]+)(?:\?([A-Za-z0-9!$&'()*+,./:;=?@_~%-]*))? HTTP/1\.1\r\n"
    rb"((?:[A-Za-z0-9!#$%&'*+.^_`|~-]+:[\t\x20-\x7e\x80-\xff]*\r\n)*)\r\n"
)
# the header lines that matter: those read, and those that change how a request is framed or handled
# (which the normal path deals with)
_HEADER = re.compile(
    rb"^(authorization|if-none-match|if-modified-since|accept-encoding|connection"
    rb"|content-length|transfer-encoding|upgrade|expect|http2-settings):[\t ]*([^\r\n]*)\r\n",
    re.IGNORECASE | re.MULTILINE,
)
_REFUSED = frozenset({b"content-length", b"transfer-encoding", b"upgrade", b"expect", b"http2-settings"})


class Poll(NamedTuple):
    feed: str  # the path after /feeds/, as sent (no escapes)
    query: bytes
    authorization: bytes | None
    if_none_match: bytes | None
    if_modified_since: bytes | None
    accept_encoding: bytes
    close: bool  # the client asked for `Connection: close`


def read_poll(data: bytes) -> Poll | None:
    """The poll in `data` if it is exactly one complete, plain GET/HEAD on a feed path; else None."""
    if len(data) > MAX_REQUEST_BYTES or not data.endswith(b"\r\n\r\n"):
        return None
    match = _REQUEST.fullmatch(data)
    if match is None:
        return None
    kept: dict[bytes, bytes] = {}
    for raw_name, raw_value in _HEADER.findall(match[4]):
        name = raw_name.lower()
        if name in kept or name in _REFUSED:
            return None  # a repeated header: which one counts is the normal path's business
        kept[name] = raw_value.rstrip(b"\t ")
    connection = kept.get(b"connection")
    tokens = [token.strip().lower() for token in connection.split(b",")] if connection is not None else []
    if b"upgrade" in tokens:
        return None
    return Poll(
        match[2].decode("ascii"),
        match[3] or b"",
        kept.get(b"authorization"),
        kept.get(b"if-none-match"),
        kept.get(b"if-modified-since"),
        kept.get(b"accept-encoding", b""),
        b"close" in tokens,
    )
