"""One published version of a feed: what requests serve, plain or gzip, while the next is built.

A version is a head, the body's blocks as they were when it was published (blocks are immutable),
and a tail. Its gzip form is assembled from the blocks' own deflate data (`gzjoin`), so publishing
costs the head, the tail and one CRC step per block, never a pass over the whole feed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from traffic_hub.feeds.base import FeedContext, Renderer
from traffic_hub.feeds.blocks import Block, FeedBody
from traffic_hub.feeds.gzjoin import FINAL, HEADER, Piece, crc32_combine, piece, trailer

__all__ = ["Rendered", "publish"]


@dataclass(frozen=True, slots=True)
class Rendered:
    etag: str  # quoted; the same items and head give the same ETag on every replica
    last_modified: datetime
    media_type: str
    items: int
    length: int  # bytes of the plain body
    gzip_length: int
    head: bytes
    tail: bytes
    blocks: tuple[Block, ...]
    gzip_head: bytes
    gzip_tail: bytes

    def chunks(self) -> Iterator[bytes]:
        """The plain body in pieces (blocks without a plain copy are inflated as they are reached)."""
        yield self.head
        for block in self.blocks:
            yield block.text()
        yield self.tail

    def gzip_chunks(self) -> Iterator[bytes]:
        yield self.gzip_head
        for block in self.blocks:
            yield block.piece.deflated
        yield self.gzip_tail

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks())

    @property
    def gzipped(self) -> bytes:
        return b"".join(self.gzip_chunks())


@lru_cache(maxsize=64)
def _framing(text: bytes, level: int) -> Piece:
    """Heads and tails repeat from version to version (tails nearly always): compress each once."""
    return piece(text, level)


def publish(renderer: Renderer, body: FeedBody, ctx: FeedContext, level: int = 6) -> Rendered:
    """The version of `body` to serve now, framed by the renderer's head and tail for `ctx`."""
    head, tail = renderer.head(ctx, sorted(body.sources)), renderer.tail(ctx)
    head_piece, tail_piece = _framing(head, level), _framing(tail, level)
    blocks = tuple(block for block in body.blocks if block.has_content)
    crc = crc32_combine(head_piece.crc, body.crc(), body.length)
    crc = tail_piece.after(crc)
    length = head_piece.length + body.length + tail_piece.length
    gzip_head = HEADER + head_piece.deflated
    gzip_tail = tail_piece.deflated + FINAL + trailer(crc, length)
    digest = hashlib.blake2b(digest_size=16)
    for part in (head, tail, body.hash.to_bytes(16, "big"), str(body.items).encode()):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return Rendered(
        etag=f'"{digest.hexdigest()}"',
        last_modified=ctx.timestamp,
        media_type=renderer.media_type,
        items=body.items,
        length=length,
        gzip_length=len(gzip_head) + body.deflated_length + len(gzip_tail),
        head=head,
        tail=tail,
        blocks=blocks,
        gzip_head=gzip_head,
        gzip_tail=gzip_tail,
    )
