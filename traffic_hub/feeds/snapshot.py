"""The rendered feeds kept on disk, so that a restarted replica serves in seconds, not minutes.

Why: a replica's first render costs ~0.8 ms of CPU per event across the feeds (measured with
cProfile on the generated Lille events: 3,000 events, 2.4 s), i.e. 50 s on this 2-core machine at
100,000 events, and the feeds answer 503 meanwhile. Yet after a restart nearly every event is the
one rendered a minute before. So the engine saves its compressed blocks (`blocks.Block`) with, per
event, a hash of the JSON it rendered and the period in which that rendering holds (its timeline
moments), and a restart takes back every block whose events are all unchanged and still in that
period. Only the rest is rendered, and the bodies come out block for block what a full render
would give (cuts fall by event id alone), so the ETags are those of every other replica.

Fallback: a missing, unreadable or foreign snapshot (another version of the renderers or of their
settings: `fingerprint`) is ignored with a log line, and the feeds are rendered from scratch.

Format (`FORMAT`): a magic line, the header's length (8 bytes), the header (JSON: events, blocks,
sources), then the binary part: 16-byte event hashes, then every block's deflate data.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import logging
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from traffic_hub.feeds.base import FeedContext, Renderer
from traffic_hub.feeds.blocks import Block, FeedBody
from traffic_hub.feeds.gzjoin import Piece
from traffic_hub.feeds.timeline import Moments

__all__ = ["Saved", "Snapshot", "event_hash", "fingerprint", "read", "reusable", "write"]

log = logging.getLogger(__name__)

FORMAT = b"traffic-hub feed snapshot 1\n"
_CODE = ("traffic_hub/feeds", "traffic_hub/model", "geo")  # what renders an event: any change voids a snapshot
_LIBRARIES = ("orjson", "pydantic", "pydantic-core", "shapely")


def event_hash(raw: bytes) -> bytes:
    return hashlib.blake2b(raw, digest_size=16).digest()


def _micros(moment: datetime) -> int:
    return round(moment.timestamp() * 1_000_000)


def _moment(micros: int) -> datetime:
    return datetime.fromtimestamp(micros / 1_000_000, UTC)


@dataclass(slots=True)
class Saved:
    """One feed's body as saved: its blocks, and the sources its items name."""

    blocks: list[Block]
    sources: dict[str, tuple[str, ...]]
    starts: dict[str, Block] = field(init=False, repr=False)  # first event id → block

    def __post_init__(self) -> None:
        self.starts = {block.ids[0]: block for block in self.blocks}


@dataclass(slots=True)
class Snapshot:
    fingerprint: str
    taken_at: datetime
    hashes: dict[str, bytes]  # event id → `event_hash` of the JSON its items were rendered from
    moments: dict[str, Moments]  # event id → when its rendering stops holding (next) and since when (last)
    bodies: dict[str, Saved] = field(default_factory=dict)

    @classmethod
    def capture(
        cls,
        key: str,
        taken_at: datetime,
        hashes: Mapping[str, bytes],
        moments: Mapping[str, Moments],
        bodies: Mapping[str, FeedBody],
    ) -> Snapshot:
        """A snapshot of the engine's state (the blocks are immutable: copying the lists is enough)."""
        saved = {name: Saved(list(body.blocks), dict(body.event_sources)) for name, body in bodies.items()}
        return cls(key, taken_at, dict(hashes), dict(moments), saved)

    def holds(self, event_id: str, digest: bytes, now: datetime) -> bool:
        """The saved rendering of this event is the one a render now would give."""
        moments = self.moments.get(event_id)
        if moments is None or self.hashes.get(event_id) != digest:
            return False
        return moments.last <= now and (moments.next is None or now < moments.next)


def fingerprint(renderers: Mapping[str, Renderer], ctx: FeedContext, block_size: int, level: int) -> str:
    """What the saved bytes depend on besides the events: the renderers' code, settings and libraries."""
    digest = hashlib.sha256(FORMAT)
    settings = [ctx.timezone, ctx.publisher, ctx.publisher_id, ctx.base_url, str(block_size), str(level)]
    for key, renderer in sorted(renderers.items()):
        settings.extend([key, type(renderer).__qualname__])
    settings.extend(importlib.metadata.version(name) for name in _LIBRARIES)
    digest.update(orjson.dumps(settings))
    digest.update(_code())
    return digest.hexdigest()


@functools.cache
def _code() -> bytes:
    """A hash of the source of everything that renders an event (read once per process)."""
    digest = hashlib.sha256()
    root = Path(__file__).resolve().parents[2]
    for folder in _CODE:
        for path in sorted((root / folder).glob("*.py")):
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.digest()


def reusable(saved: Saved, body: FeedBody, carried: Sequence[str], index: int, holds: set[str]) -> Block | None:
    """The saved block that starts at `carried[index]`, when a full render would give exactly it.

    It must hold the same events (`carried` lists the feed's events in id order, `index` being the
    start of a block), each unchanged (`holds`), and end at a cut unless it ends the body."""
    block = saved.starts.get(carried[index])
    if block is None:
        return None
    end = index + len(block.ids)
    if tuple(carried[index:end]) != block.ids or not holds.issuperset(block.ids):  # a set op: no Python loop
        return None
    return block if end == len(carried) or body.cuts_after(block.ids[-1]) else None


# --- on disk ----------------------------------------------------------------------------------


def write(path: Path, snapshot: Snapshot) -> None:
    """Write atomically (a temporary file renamed over the old one): a crash leaves the old or the new."""
    ids = sorted(snapshot.hashes)
    data: list[bytes] = [snapshot.hashes[event_id] for event_id in ids]
    offset = 16 * len(ids)
    feeds: dict[str, Any] = {}
    for name, saved in snapshot.bodies.items():
        blocks = []
        for block in saved.blocks:
            piece = block.piece
            size = len(piece.deflated)
            blocks.append(
                [
                    block.ids,
                    block.sizes,
                    block.leading,
                    piece.crc,
                    piece.length,
                    piece.op,
                    f"{block.digest:032x}",
                    offset,
                    size,
                ]
            )
            data.append(piece.deflated)
            offset += size
        feeds[name] = {"blocks": blocks, "sources": saved.sources}
    moments = [snapshot.moments.get(event_id) for event_id in ids]
    header = orjson.dumps(
        {
            "fingerprint": snapshot.fingerprint,
            "taken_at": snapshot.taken_at.isoformat(),
            "ids": ids,
            "next": [_micros(m.next) if m is not None and m.next is not None else None for m in moments],
            "last": [_micros(m.last) if m is not None else None for m in moments],
            "feeds": feeds,
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(FORMAT + len(header).to_bytes(8, "big") + header)
            out.writelines(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read(path: Path, expected: str) -> Snapshot | None:
    """The snapshot at `path` if it was made by these renderers (`fingerprint`); None otherwise."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    if not raw.startswith(FORMAT):
        log.warning("feed snapshot %s: not a snapshot of this format; rendering from scratch", path)
        return None
    start = len(FORMAT) + 8
    size = int.from_bytes(raw[len(FORMAT) : start], "big")
    header = orjson.loads(raw[start : start + size])
    if header["fingerprint"] != expected:
        log.info("feed snapshot %s: made by other renderers or settings; rendering from scratch", path)
        return None
    return _decoded(header, memoryview(raw)[start + size :])


def _decoded(header: dict[str, Any], data: memoryview) -> Snapshot:
    ids: list[str] = header["ids"]
    hashes = {event_id: bytes(data[16 * i : 16 * i + 16]) for i, event_id in enumerate(ids)}
    moments: dict[str, Moments] = {}
    for event_id, upcoming, last in zip(ids, header["next"], header["last"], strict=True):
        if last is not None:
            moments[event_id] = Moments(None if upcoming is None else _moment(upcoming), _moment(last))
    bodies: dict[str, Saved] = {}
    for name, feed in header["feeds"].items():
        blocks = [_block(entry, data) for entry in feed["blocks"]]
        bodies[name] = Saved(blocks, {event_id: tuple(names) for event_id, names in feed["sources"].items()})
    return Snapshot(header["fingerprint"], datetime.fromisoformat(header["taken_at"]), hashes, moments, bodies)


def _block(entry: list[Any], data: memoryview) -> Block:
    ids, sizes, leading, crc, length, op, digest, offset, size = entry
    piece = Piece(bytes(data[offset : offset + size]), crc, length, op)
    return Block(tuple(ids), tuple(sizes), leading, piece, None, int(digest, 16))
