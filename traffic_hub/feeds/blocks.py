"""The body of one feed as a sorted run of compressed blocks, edited one block at a time.

A feed's body is the items of its events in event-id order, joined by the format's separator
(`,` in JSON arrays, nothing in XML and CSV). It is cut into blocks of about `block_size` events,
after the events whose id hashes to a cut (`_cut`): where the cuts fall depends on the set of ids
alone, never on the order of edits, so a replica that rebuilt at start and one that followed every
change since hold the same blocks and serve the same gzip bytes under the same ETag. Each block
is kept as raw deflate data (`gzjoin.Piece`), and its plain text only while the engine
can afford it (`keep_plain`). Changing an event rebuilds its block: inflate (or take the plain
copy), splice, compress. A 100,000-event feed thus costs memory for its compressed form, and a
change costs one block whatever the feed's size.

The blocks of a published snapshot are immutable, so a response streams a consistent version
while the next one is being built.
"""

from __future__ import annotations

import bisect
import hashlib
import zlib
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

from traffic_hub.feeds.base import Item
from traffic_hub.feeds.gzjoin import Piece, piece, shift

__all__ = ["Block", "FeedBody"]

_HASH_MOD = 1 << 128
_CRC_GROUP = 16
"""Blocks per cached CRC group (`FeedBody.crc`)."""


@dataclass(frozen=True, slots=True)
class Block:
    ids: tuple[str, ...]  # sorted event ids: every event the feed carries, with or without bytes
    sizes: tuple[int, ...]  # bytes of each event's item (0: the event has no item in this format)
    leading: bool  # the plain text starts with the separator (a block after the first with content)
    piece: Piece
    plain: bytes | None  # kept while the engine's memory budget allows
    digest: int  # sum of its (event, item) hashes (`_digest`): the body's hash is the sum over its blocks

    @property
    def has_content(self) -> bool:
        return self.piece.length > 0

    def text(self) -> bytes:
        if self.plain is not None:
            return self.plain
        return zlib.decompressobj(-15).decompress(self.piece.deflated)

    def items(self, separator: bytes) -> dict[str, bytes]:
        """Event id → item bytes, cut out of the block's text."""
        text = self.text()
        at = len(separator) if self.leading else 0
        out: dict[str, bytes] = {}
        for event_id, size in zip(self.ids, self.sizes, strict=True):
            if size:
                out[event_id] = text[at : at + size]
                at += size + len(separator)
            else:
                out[event_id] = b""
        return out


@dataclass(frozen=True, slots=True)
class _Group:
    """A run of blocks and their text's CRC and length, as one piece to chain (no deflate data)."""

    blocks: tuple[Block, ...]  # kept alive: their ids are the group's key
    joined: Piece

    @classmethod
    def of(cls, blocks: Sequence[Block]) -> _Group:
        crc = length = 0
        for block in blocks:
            if block.has_content:
                crc = block.piece.after(crc)
                length += block.piece.length
        return cls(tuple(blocks), Piece(b"", crc, length, shift(length)))


def _digest(event_id: str, data: bytes) -> int:
    """A 128-bit hash of one (event, item) pair; the feed's body hash is their sum."""
    h = hashlib.blake2b(event_id.encode(), digest_size=16)
    h.update(b"\0")
    h.update(data)
    return int.from_bytes(h.digest(), "big")


def _cut(event_id: str, block_size: int) -> bool:
    """A block ends after this event: decided by its id alone (about one id in `block_size`)."""
    return zlib.crc32(event_id.encode()) % block_size == 0


def _chunks(pairs: Sequence[tuple[str, bytes]], block_size: int) -> list[list[tuple[str, bytes]]]:
    """`pairs` cut after every cut id; the last chunk may run on (its block ends the body or merges on)."""
    chunks: list[list[tuple[str, bytes]]] = [[]]
    for pair in pairs:
        chunks[-1].append(pair)
        if _cut(pair[0], block_size):
            chunks.append([])
    return [chunk for chunk in chunks if chunk]


def _block(
    items: Sequence[tuple[str, bytes]], separator: bytes, leading: bool, level: int, keep_plain: bool
) -> Block:
    content = [data for _, data in items if data]
    text = separator.join(content)
    if leading and content:
        text = separator + text
    return Block(
        ids=tuple(event_id for event_id, _ in items),
        sizes=tuple(len(data) for _, data in items),
        leading=leading and bool(content),
        piece=piece(text, level),
        plain=text if keep_plain else None,
        digest=sum(_digest(event_id, data) for event_id, data in items) % _HASH_MOD,
    )


class FeedBody:
    """Sorted items of one feed in compressed blocks; edits are staged, then committed together."""

    def __init__(self, separator: bytes, block_size: int = 64, level: int = 6) -> None:
        self.separator = separator
        self.block_size = block_size
        self.level = level
        self.keep_plain = True
        self.blocks: list[Block] = []
        self._firsts: list[str] = []  # first event id of each block
        self._staged: dict[str, Item | None] = {}
        self._run: list[tuple[str, bytes]] = []  # a full rebuild's items not yet in a block
        self.sources: Counter[str] = Counter()
        self._sources: dict[str, tuple[str, ...]] = {}  # only events that name sources
        self.hash = 0  # sum of the (event, item) hashes: the same items give the same hash anywhere
        self.items = 0
        self.length = 0  # bytes of the plain body
        self.deflated_length = 0
        self._groups: dict[tuple[int, ...], _Group] = {}  # CRC of each run of blocks, by the blocks' identities

    def crc(self) -> int:
        """CRC-32 of the plain body: each group of `_CRC_GROUP` blocks has its CRC computed once and kept while
        it holds the same block objects (blocks are immutable), and the groups' CRCs are chained.

        Why: chaining every block after the first one that changed cost half a feed's blocks in Python GF(2)
        multiplications (~3 µs each) at every publish, 8 feeds a write: ~0.5 ms a feed at 10,000 events, ten
        times that at 100,000. Now: one multiplication a group, and the changed groups' blocks."""
        groups: dict[tuple[int, ...], _Group] = {}
        crc = 0
        for start in range(0, len(self.blocks), _CRC_GROUP):
            members = self.blocks[start : start + _CRC_GROUP]
            key = tuple(map(id, members))
            group = self._groups.get(key) or _Group.of(members)
            groups[key] = group
            crc = group.joined.after(crc)
        self._groups = groups  # only the current groups: they hold their blocks, so no id is reused meanwhile
        return crc

    def _replace(self, index: int, count: int, new: list[Block]) -> None:
        """The one place blocks change: keeps lengths, the hash, first ids and cached CRCs in step."""
        for block in self.blocks[index : index + count]:
            self.length -= block.piece.length
            self.deflated_length -= len(block.piece.deflated) if block.has_content else 0
            self.hash = (self.hash - block.digest) % _HASH_MOD
            self.items -= len(block.ids)
        for block in new:
            self.length += block.piece.length
            self.deflated_length += len(block.piece.deflated) if block.has_content else 0
            self.hash = (self.hash + block.digest) % _HASH_MOD
            self.items += len(block.ids)
        self.blocks[index : index + count] = new
        self._firsts[index : index + count] = [block.ids[0] for block in new]

    def stage(self, event_id: str, item: Item | None) -> None:
        """Put (or, with None, take out) an event's item at the next `commit`."""
        self._staged[event_id] = item

    def commit(self) -> bool:
        """Apply the staged edits; True when the body changed."""
        staged, self._staged = self._staged, {}
        if not staged:
            return False
        by_block: dict[int, dict[str, Item | None]] = {}
        for event_id, item in staged.items():
            index = max(bisect.bisect_right(self._firsts, event_id) - 1, 0)
            by_block.setdefault(index, {})[event_id] = item
        changed = False
        for index in sorted(by_block, reverse=True):  # from the end: earlier indexes stay valid
            changed |= self._edit(index, by_block[index])
        self._lead()
        return changed

    def begin(self) -> None:
        """Start a full rebuild: `append` every item in event-id order, then `end`."""
        self.blocks, self._firsts, self._staged, self._run, self._groups = [], [], {}, [], {}
        self.sources, self._sources, self.hash, self.items = Counter(), {}, 0, 0
        self.length = self.deflated_length = 0

    def cuts_after(self, event_id: str) -> bool:
        """A block ends after this event (`_cut`)."""
        return _cut(event_id, self.block_size)

    @property
    def event_sources(self) -> dict[str, tuple[str, ...]]:
        """The sources named by each event's item (only events that name some)."""
        return self._sources

    def adopt(self, block: Block, sources: dict[str, tuple[str, ...]]) -> None:
        """During a rebuild, append a ready block (saved earlier: `snapshot`) at a block boundary."""
        if self._run:
            raise ValueError("a block can only be adopted where a block starts")
        self._replace(len(self.blocks), 0, [block])
        for event_id in block.ids:
            names = sources.get(event_id)
            if names:
                self._sources[event_id] = names
                self.sources.update(names)

    def append(self, event_id: str, item: Item) -> None:
        self._count(event_id, item)
        self._run.append((event_id, item.data))
        if _cut(event_id, self.block_size):
            self._flush_run()

    def end(self) -> None:
        self._flush_run()
        self._lead()

    def _flush_run(self) -> None:
        if self._run:
            self._place(len(self.blocks), 0, self._run)
            self._run = []

    def extend(self, other: FeedBody) -> None:
        """Append `other`, whose events all come after ours (ranges of one rebuild, joined in order)."""
        if other.blocks and self.blocks and other.blocks[0].ids[0] <= self.blocks[-1].ids[-1]:
            raise ValueError("the appended body must start after this one ends")
        rest = other.blocks
        if rest and self.blocks and not _cut(self.blocks[-1].ids[-1], self.block_size):
            # our last block runs on into theirs: one block, as a rebuild of the whole range would cut it
            pairs = list(self.blocks[-1].items(self.separator).items())
            pairs.extend(rest[0].items(other.separator).items())
            self._place(len(self.blocks) - 1, 1, pairs)
            rest = rest[1:]
        self._replace(len(self.blocks), 0, rest)
        self.sources.update(other.sources)
        self._sources.update(other._sources)
        self._lead()

    def _edit(self, index: int, edits: dict[str, Item | None]) -> bool:
        old = self.blocks[index].items(self.separator) if self.blocks else {}
        current = dict(old)
        changed = False
        for event_id, item in edits.items():
            before = old.get(event_id)
            if item is None:
                if before is None:
                    continue
                del current[event_id]
                self._forget(event_id)
            else:
                if before == item.data and self._sources.get(event_id, ()) == item.sources:
                    continue
                if before is not None:
                    self._forget(event_id)
                current[event_id] = item.data
                self._count(event_id, item)
            changed = True
        if changed:
            pairs = sorted(current.items())
            replaced = 1 if self.blocks else 0
            if index + 1 < len(self.blocks) and not (pairs and _cut(pairs[-1][0], self.block_size)):
                # the block no longer ends at a cut (or new ids came after it): it joins the next one
                pairs.extend(self.blocks[index + 1].items(self.separator).items())
                replaced = 2
            self._place(index, replaced, pairs)
        return changed

    def _count(self, event_id: str, item: Item) -> None:
        """Count the sources the item names (its hash and the item count come with its block)."""
        if item.sources:
            self._sources[event_id] = item.sources
            self.sources.update(item.sources)

    def _forget(self, event_id: str) -> None:
        sources = self._sources.pop(event_id, ())
        self.sources.subtract(sources)
        for source in sources:
            if self.sources[source] <= 0:
                del self.sources[source]

    def _place(self, index: int, replaced: int, pairs: list[tuple[str, bytes]]) -> None:
        """Replace `replaced` blocks at `index` by blocks holding `pairs` (cut after the cut ids)."""
        chunks = _chunks(pairs, self.block_size)
        new = [_block(chunk, self.separator, True, self.level, self.keep_plain) for chunk in chunks]
        self._replace(index, replaced, new)

    def _lead(self) -> None:
        """Only the first block with content starts without the separator; fix the ones that differ."""
        first = True
        for index, block in enumerate(self.blocks):
            if not block.has_content:
                continue
            if block.leading == first:  # wrong: the first must not lead, the others must
                pairs = list(block.items(self.separator).items())
                self._replace(index, 1, [_block(pairs, self.separator, not first, self.level, self.keep_plain)])
            first = False

    def set_keep_plain(self, keep: bool) -> None:
        """Keep (or drop) the plain text of every block: memory against serving uncompressed bytes."""
        self.keep_plain = keep
        self.blocks = [
            block if (block.plain is not None) == keep else replace(block, plain=block.text() if keep else None)
            for block in self.blocks
        ]

    def texts(self) -> Iterator[bytes]:
        for block in self.blocks:
            if block.has_content:
                yield block.text()
