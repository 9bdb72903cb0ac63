"""A placed report: what stage 1 of the normaliser (placement) hands stage 2 (decision) on `Topics.placed`.

Why a record of its own: placement on the road network is nearly all of the normaliser's CPU and
scales out over the reports topic's partitions, while merge decisions must be made by one owner (see
docs/scaling.md, "Several normalisers: one owner per merge"). Stage 1 places, stage 2 decides; this
record carries the one to the other.

The value is one line of JSON, a newline, then the report exactly as it was on the reports topic:

    {"v":1,"placement":{"normalised":{...},"segments":[...],"withheld":[...]}}\\n{...the report...}

The header is versioned (`v`). The report's bytes are kept as they were (a dead letter of stage 2
shows what the source sent, and `kafka-console-consumer` shows both parts readably). A header that is
missing, unreadable or of a version this code does not know gives no placement: stage 2 then places
the report itself, so a rolling upgrade that adds a version 2 costs CPU, never a report. A placement
is JSON of the model's own types, and JSON numbers round-trip floats exactly, so the event made from
a decoded placement is byte-identical to the one made from the placement itself.
"""

from __future__ import annotations

import logging

from pydantic import BaseModel, ConfigDict, ValidationError

from traffic_hub.model import Normalised, Segment
from traffic_hub.normaliser.placement import Placement

log = logging.getLogger(__name__)

VERSION = 1
_SEPARATOR = b"\n"  # the header never holds a raw newline (JSON escapes it in strings)
_HEAD = b'{"v":'  # how every header starts (pydantic writes fields in their order)


class _Placement(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    normalised: Normalised
    segments: list[Segment]
    withheld: list[str]


class _Header(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)  # later minor additions are read by older code

    v: int
    placement: _Placement | None = None


def encode_placed(raw: bytes, placement: Placement | None) -> bytes:
    """The placed record's value: the header line, then the report's own bytes."""
    body = None
    if placement is not None:
        body = _Placement(normalised=placement.normalised, segments=placement.segments, withheld=placement.withheld)
    return _Header(v=VERSION, placement=body).model_dump_json().encode() + _SEPARATOR + raw


def decode_placed(value: bytes) -> tuple[bytes, Placement | None]:
    """The report's bytes and its placement (None: not placed, or a header this version cannot read)."""
    head, separator, raw = value.partition(_SEPARATOR)
    if not separator or not head.startswith(_HEAD):
        log.warning("placed record without a header; deciding it as a bare report")
        return value, None
    try:
        header = _Header.model_validate_json(head)
    except ValidationError as exc:
        log.warning("placed record with an unreadable header (%s); placing it again", exc.error_count())
        return raw, None
    if header.v != VERSION:
        log.warning("placed record of version %d (this normaliser reads %d); placing it again", header.v, VERSION)
        return raw, None
    placed = header.placement
    if placed is None:
        return raw, None
    return raw, Placement(placed.normalised, list(placed.segments), list(placed.withheld))
