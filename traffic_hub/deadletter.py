"""Bad records are data: what could not be used goes to the dead-letter topic, raw, with the reason."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import orjson

from traffic_hub.kafka.publisher import Record
from traffic_hub.topics import Topics

MAX_RAW_BYTES = 900_000  # stay under the producer's request size


def dead_letter(topics: Topics, *, stage: str, source: str, reason: str, raw: bytes, key: str = "") -> Record:
    """A dead-letter record: `raw` is kept verbatim (UTF-8 text when it is, else base64)."""
    truncated = len(raw) > MAX_RAW_BYTES
    raw = raw[:MAX_RAW_BYTES]
    try:
        text, encoding = raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        text, encoding = base64.b64encode(raw).decode(), "base64"
    body = {
        "stage": stage,
        "source": source,
        "key": key,
        "reason": reason[:2000],
        "at": datetime.now(UTC).isoformat(),
        "raw": text,
        "raw_encoding": encoding,
        "raw_truncated": truncated,
    }
    return Record(topics.deadletter, key=(key or source).encode(), value=orjson.dumps(body))
