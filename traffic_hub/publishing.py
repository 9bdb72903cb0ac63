"""What a producer of records is handed: the record, the sink that takes it, how a write fails, dead letters.

Connectors, the closure service and the normaliser write through a `RecordSink` they are given; Kafka
implements it (`traffic_hub.kafka.publisher.Publisher`). This module and `traffic_hub.model` are all a
connector knows of the hub (`tests/test_architecture.py`). A write fails in one of two ways, by
behaviour: `Unavailable` (retriable: the same write may succeed later) or `WriteRejected` (permanent for
those records: dead-letter or drop them, never retry them as they are).

Bad records are data: what could not be used goes to the dead-letter topic, raw, with the reason.

A dead letter must itself always be writable, whatever the upstream sent: its *encoded* size (the
JSON record value, after base64 or JSON escaping, which can make the raw bytes 6× larger) is capped
at `MAX_ENCODED_BYTES`, far below the broker's record limit. When the raw payload does not fit, the
letter keeps the SHA-256 and size of the whole payload and as much of its head as fits, and says so
(`raw_truncated`), so the payload can still be identified and its start inspected.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson

from traffic_hub.errors import Unavailable, WriteRejected
from traffic_hub.topics import Topics

__all__ = ["Record", "RecordSink", "Topics", "Unavailable", "WriteRejected", "dead_letter"]

RECORD_OVERHEAD_BYTES = 512  # a record's batch framing and headers, counted against the broker's limit



@dataclass(frozen=True, slots=True)
class Record:
    topic: str
    key: bytes
    value: bytes | None  # None is a tombstone

    @property
    def size(self) -> int:
        """What the record weighs against the broker's record limit (key, value, headers margin)."""
        return len(self.key) + len(self.value or b"") + RECORD_OVERHEAD_BYTES


class RecordSink(Protocol):
    """Takes records durably, in order per key, or raises `Unavailable` / `WriteRejected`."""

    async def send_many(self, records: Sequence[Record]) -> Sequence[Any]: ...


MAX_ENCODED_BYTES = 512 * 1024  # the whole dead-letter value, encoded; the broker takes ~1 MB records
MAX_REASON_CHARS = 2000
MAX_KEY_CHARS = 512
_ENVELOPE_MARGIN = 8 * 1024  # the fields around `raw` (reason ≤ 2000 chars escaped, names, hash, time)


def dead_letter(topics: Topics, *, stage: str, source: str, reason: str, raw: bytes, key: str = "") -> Record:
    """A dead-letter record: `raw` kept verbatim (UTF-8 text when it is, else base64) or its head when too large."""
    body: dict[str, Any] = {
        "stage": stage,
        "source": source[:MAX_KEY_CHARS],
        "key": key[:MAX_KEY_CHARS],
        "reason": reason[:MAX_REASON_CHARS],
        "at": datetime.now(UTC).isoformat(),
        "raw_bytes": len(raw),
        "raw_sha256": hashlib.sha256(raw).hexdigest(),
    }
    value = _fitted(body, raw)
    return Record(topics.deadletter, key=(key or source)[:MAX_KEY_CHARS].encode(), value=value)


def _fitted(body: dict[str, Any], raw: bytes) -> bytes:
    """The encoded letter with the longest head of `raw` that keeps it under the cap."""
    keep = len(raw)
    budget = MAX_ENCODED_BYTES - _ENVELOPE_MARGIN
    for _ in range(8):  # each pass shrinks the head by how much its encoding overshot
        value = _encoded(body, raw, keep)
        if len(value) <= MAX_ENCODED_BYTES:
            return value
        encoded_raw = max(1, len(value) - (MAX_ENCODED_BYTES - budget))
        keep = min(keep - 1, int(keep * budget / encoded_raw * 0.98))
        keep = max(0, keep)
    return _encoded(body, raw, 0)


def _encoded(body: dict[str, Any], raw: bytes, keep: int) -> bytes:
    head = raw[:keep]
    try:
        text, encoding = head.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as exc:
        if keep < len(raw) and exc.start >= len(head) - 3:  # a character cut in two at the end of the head
            text, encoding = head[: exc.start].decode("utf-8"), "utf-8"
            head = head[: exc.start]
        else:
            text, encoding = base64.b64encode(head).decode(), "base64"
    letter = {**body, "raw": text, "raw_encoding": encoding, "raw_truncated": len(head) < len(raw)}
    letter["raw_kept_bytes"] = len(head)
    return orjson.dumps(letter)
