"""A source's memory, written to Kafka after every acknowledged cycle, so it moves with the source.

When several runners share the sources (`traffic_hub/kafka/leases.py`), a source whose runner dies is
taken over by another. Without the dead runner's memory the new owner would (a) fetch without the
ETag and re-send every item as new, and worse (b) never send the `ended` report of an item that
disappeared from a snapshot between the last poll of the dead runner and the first of the new one:
that incident would stay open in every feed for ever. So the memory of each source (validators, the
content hash of every item last sent, the last report of every item still current) is written to a
compacted topic, keyed by source, once the cycle's reports are acknowledged, and the new owner reads
it back before its first poll.

The runner also writes `s#status` after every cycle: the source's state as `GET /api/v1/connectors`
shows it, with the runner that polls it, so an API replica that runs no connector shows them all.

What is written, for source `s` (names never contain `/`):
- parts `s/<gen>/<i>`: the gzip'd JSON state cut into pieces of at most `PART_BYTES` (a Waze partner
  feed of thousands of items with their geometries is megabytes, over the broker's record limit);
- then the manifest `s`: the generation, the number of parts, the SHA-256 of the whole;
- then tombstones for the parts of the previous generation.
The records go to one partition, in order: a runner that dies half-way leaves the previous manifest
and its parts intact (they are removed only after the new manifest is written), so a reader always
finds one whole state. A manifest whose parts are missing or do not match its hash is ignored (logged):
the source then starts afresh, which re-sends its items under the same keys (nothing new is created).

Each item is turned into JSON once, when it changes: a written state keeps every item's JSON with the
item it came from (`Saved.dumped`), and the next write of the source reuses it for an item equal to that
one (the same object, or one with the same content hash). `model_dump` cost ≈ 50 µs an item, for every
remembered item after every cycle; the bytes written are the same either way.

Reports themselves need nothing of this to keep their ids: a report's key is `<source>:<item id>`
and the normaliser's event id is a UUIDv5 of that key (`traffic_hub/normaliser/incidents.py`), so a
report sent again by another runner, or twice by one, lands on the same event.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol

import orjson
from pydantic import ValidationError

from connectors.fetch import Validators
from connectors.state import ConnectorState
from traffic_hub.model import IncidentReport
from traffic_hub.publishing import Record

log = logging.getLogger(__name__)

VERSION = 1
STATUS_SUFFIX = "#status"  # `<source>#status`: the last status its runner wrote (names never contain `#`)
PART_BYTES = 256 * 1024  # well under the broker's 1 MB record limit


class SavedStates(Protocol):
    """The state topic as last written, read up to its end at the time of the call (keys decoded)."""

    async def snapshot(self) -> Mapping[str, bytes]: ...


@dataclass(frozen=True, slots=True)
class Handover:
    """What a runner sharing its sources with others is given: where states are, and its own name."""

    states: SavedStates
    topic: str  # the compacted topic the runner writes its sources' states to
    instance: str  # this runner's name (TRAFFIC_HUB_INSTANCE), shown in the connectors' status


@dataclass(frozen=True, slots=True)
class Dumped:
    """One item as last written: the item, its content hash then, and its JSON."""

    incident: IncidentReport
    digest: str | None
    json: orjson.Fragment

    def reusable_for(self, incident: IncidentReport, digest: str | None) -> bool:
        """Is this JSON the one `incident` would give? The same (frozen) object, or one with the same content
        hash (`Saved.hashes`: the SHA-256 of the item's JSON, what the runner tells a changed item by).
        Not model equality: 5 µs an item, half a dump, and it calls 1 and 1.0 equal where the JSON differs."""
        return self.incident is incident or (digest is not None and self.digest == digest)


@dataclass(frozen=True, slots=True)
class Saved:
    """One source's state as read back (or about to be written)."""

    url: str  # the public URL the validators belong to (a changed URL drops them)
    validators: Validators
    seen: Mapping[str, IncidentReport] = field(default_factory=dict)
    hashes: Mapping[str, str] = field(default_factory=dict)  # `content_hash` of each item (and of items sent)
    cycles: int = 0
    polled_at: datetime | None = None
    runner: str = ""
    generation: str = ""
    parts: int = 0
    # every item of `seen` as written (filled by `state_records`): what the next write reuses
    dumped: Mapping[str, Dumped] = field(default_factory=dict, compare=False, repr=False)


def state_records(
    topic: str, source: str, saved: Saved, stale: Sequence[Saved] = ()
) -> tuple[list[Record], Saved]:
    """Parts, manifest, then tombstones of the parts of `stale` generations (in that order); and `saved`
    with its number of parts and its items' JSON (CPU work: JSON and gzip of up to megabytes, run it in a
    thread). `stale`, the states written before (oldest first), also lend the JSON of unchanged items."""
    dumped = _dumped(saved, stale)
    blob = gzip.compress(orjson.dumps(_body(saved, dumped)), compresslevel=6, mtime=0)
    pieces = [blob[at : at + PART_BYTES] for at in range(0, len(blob), PART_BYTES)] or [b""]
    records = [Record(topic, _part_key(source, saved.generation, i), piece) for i, piece in enumerate(pieces)]
    manifest = {
        "v": VERSION,
        "source": source,
        "generation": saved.generation,
        "parts": len(pieces),
        "sha256": hashlib.sha256(blob).hexdigest(),
        "runner": saved.runner,
        "polled_at": saved.polled_at.isoformat() if saved.polled_at else None,
    }
    records.append(Record(topic, source.encode(), orjson.dumps(manifest)))
    for old in stale:
        if old.generation and old.generation != saved.generation:
            records += [Record(topic, _part_key(source, old.generation, i), None) for i in range(old.parts)]
    return records, replace(saved, parts=len(pieces), dumped=dumped)


def _dumped(saved: Saved, stale: Sequence[Saved]) -> dict[str, Dumped]:
    """The JSON of every item of `saved.seen`: reused from the latest earlier write where the item is
    unchanged, `model_dump` for the others."""
    earlier: dict[str, Dumped] = {}
    for old in stale:
        earlier.update(old.dumped)
    dumped: dict[str, Dumped] = {}
    for sid, incident in saved.seen.items():
        digest = saved.hashes.get(sid)
        last = earlier.get(sid)
        if last is not None and last.reusable_for(incident, digest):
            dumped[sid] = last
        else:
            dumped[sid] = Dumped(incident, digest, orjson.Fragment(orjson.dumps(incident.model_dump(mode="json"))))
    return dumped


def status_record(topic: str, state: ConnectorState, at: datetime) -> Record:
    """The source's status as its runner sees it (`GET /api/v1/connectors` on any API replica reads these)."""
    return Record(topic, f"{state.name}{STATUS_SUFFIX}".encode(), orjson.dumps({**state.as_dict(), "reported_at": at}))


def is_status(key: str) -> bool:
    return key.endswith(STATUS_SUFFIX)


STALE_GRACE_S = 30.0  # beyond a missed poll (fetch timeout, back-off, a lease moving: ~6 s) before saying so


def statuses(values: Mapping[str, bytes], now: datetime | None = None) -> list[dict[str, Any]]:
    """Every source's last status in the state topic's latest values, by name.

    With `now`, a status whose runner should have polled again long ago (two intervals and
    `STALE_GRACE_S` past its `next_run_at`) says `stale`: no runner holds the source any more (every
    runner stopped, or the source left the connectors file), and its last "ok" is history, not health.
    """
    found = []
    for key in sorted(values):
        if is_status(key):
            with contextlib.suppress(orjson.JSONDecodeError):
                value = orjson.loads(values[key])
                if isinstance(value, dict):
                    found.append(_aged(value, now) if now is not None else value)
    return found


def _aged(status: dict[str, Any], now: datetime) -> dict[str, Any]:
    due, interval = status.get("next_run_at"), status.get("interval_s")
    if status.get("status") == "disabled" or not isinstance(due, str) or not isinstance(interval, int | float):
        return status
    try:
        overdue = (now - datetime.fromisoformat(due)).total_seconds()
    except (ValueError, TypeError):  # a malformed or naive time: say nothing rather than guess
        return status
    if overdue <= 2 * interval + STALE_GRACE_S:
        return status
    return {**status, "status": "stale", "stale_for_s": round(overdue, 1)}


def new_generation() -> str:
    return uuid.uuid4().hex[:16]


def read_saved(source: str, values: Mapping[str, bytes]) -> Saved | None:
    """The source's last whole state in `values` (the state topic's latest value per key), else None."""
    raw = values.get(source)
    if raw is None:
        return None
    try:
        manifest = orjson.loads(raw)
        generation, count = str(manifest["generation"]), int(manifest["parts"])
        pieces = [values.get(_part_key(source, generation, i).decode()) for i in range(count)]
        if any(piece is None for piece in pieces):
            log.warning("connector %s: saved state %s misses parts; starting afresh", source, generation)
            return None
        blob = b"".join(piece or b"" for piece in pieces)
        if hashlib.sha256(blob).hexdigest() != manifest["sha256"]:
            log.warning("connector %s: saved state %s does not match its hash; starting afresh", source, generation)
            return None
        return _saved(orjson.loads(gzip.decompress(blob)), manifest, generation, count)
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, OSError, ValidationError) as exc:
        log.warning("connector %s: saved state unreadable (%s); starting afresh", source, exc)
        return None


def _part_key(source: str, generation: str, index: int) -> bytes:
    return f"{source}/{generation}/{index}".encode()


def _body(saved: Saved, dumped: Mapping[str, Dumped]) -> dict[str, Any]:
    return {
        "url": saved.url,
        "etag": saved.validators.etag,
        "last_modified": saved.validators.last_modified,
        "cycles": saved.cycles,
        "hashes": dict(saved.hashes),
        "seen": {sid: item.json for sid, item in dumped.items()},  # already JSON, in the order of `seen`
    }


def _saved(body: dict[str, Any], manifest: dict[str, Any], generation: str, parts: int) -> Saved:
    polled = manifest.get("polled_at")
    return Saved(
        url=str(body["url"]),
        validators=Validators(etag=body.get("etag"), last_modified=body.get("last_modified")),
        seen={sid: IncidentReport.model_validate(value) for sid, value in body["seen"].items()},
        hashes={str(sid): str(digest) for sid, digest in body["hashes"].items()},
        cycles=int(body.get("cycles", 0)),
        polled_at=datetime.fromisoformat(polled) if isinstance(polled, str) else None,
        runner=str(manifest.get("runner", "")),
        generation=generation,
        parts=parts,
    )
