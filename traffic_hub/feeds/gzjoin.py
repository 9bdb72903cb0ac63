"""Gzip members assembled from independently compressed pieces, without recompressing the whole.

A feed is a head, a run of blocks and a tail. Each piece is compressed on its own into raw
deflate data ending on a byte boundary (`Z_SYNC_FLUSH`, never a final block), so pieces can be
concatenated into one deflate stream (no piece refers back into another). A gzip member then
needs only a header, the pieces, a final empty block and the CRC-32 of the whole plain text,
which `crc32_combine` computes from the pieces' own CRCs and lengths (zlib's algorithm: CRC-32 is
linear over GF(2), so appending `n` bytes multiplies the CRC so far by x^(8n) modulo the
polynomial). Changing one block of a 300 MB feed costs one block's compression, not 300 MB.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

__all__ = ["FINAL", "HEADER", "Piece", "crc32_combine", "piece", "shift", "trailer"]

POLY = 0xEDB88320  # CRC-32 (reflected)
# a gzip header: deflate, no flags, mtime 0 (reproducible bytes), no extra flags, OS unknown
HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
FINAL = b"\x03\x00"  # an empty final block with fixed Huffman codes: ends the deflate stream


def _multmodp(a: int, b: int) -> int:
    """a × b modulo the CRC polynomial (bit-reflected, as zlib's multmodp)."""
    m = 1 << 31
    p = 0
    while True:
        if a & m:
            p ^= b
            if (a & (m - 1)) == 0:
                return p
        m >>= 1
        b = (b >> 1) ^ POLY if b & 1 else b >> 1


def _x2n_table() -> tuple[int, ...]:
    p = 1 << 30  # x^1
    table = [p]
    for _ in range(1, 32):
        p = _multmodp(p, p)
        table.append(p)
    return tuple(table)


_X2N = _x2n_table()


def _shift_tables() -> tuple[tuple[int, ...], ...]:
    """`_SHIFTS[j][v]` = x^(8 × (v << 8j)) mod p: the operator of each byte value at each byte of a length."""
    tables = []
    for j in range(4):
        table = [1 << 31]  # x^0: a zero byte appends nothing
        for v in range(1, 256):
            low = (v & -v).bit_length() - 1  # v = rest + 2^low
            table.append(_multmodp(_X2N[(3 + 8 * j + low) & 31], table[v & (v - 1)]))
        tables.append(tuple(table))
    return tuple(tables)


_SHIFTS = _shift_tables()


def shift(length: int) -> int:
    """The operator x^(8 × length) mod p: what appending `length` bytes does to a CRC so far.

    One table operator per non-zero byte of `length` (a block's length: 1 or 2 multiplications) instead of
    one per set bit: each multiplication is ~3 µs of Python, and every compressed block needs its shift."""
    if length >> 32:
        return _shift_bits(length)
    p = _SHIFTS[0][length & 0xFF]
    for j in (1, 2, 3):
        byte = (length >> (8 * j)) & 0xFF
        if byte:
            p = _multmodp(_SHIFTS[j][byte], p)
    return p


def _shift_bits(length: int) -> int:
    """`shift`, one multiplication per set bit of `length` (zlib's x2nmodp; any length)."""
    p = 1 << 31  # x^0
    k = 3
    n = length
    while n:
        if n & 1:
            p = _multmodp(_X2N[k & 31], p)
        n >>= 1
        k += 1
    return p


def crc32_combine(crc1: int, crc2: int, length2: int) -> int:
    """CRC-32 of A + B from crc32(A), crc32(B) and len(B)."""
    return _multmodp(shift(length2), crc1) ^ crc2


@dataclass(frozen=True, slots=True)
class Piece:
    """A piece of plain text and its raw deflate data, ready to be joined with others."""

    deflated: bytes
    crc: int
    length: int
    op: int  # shift(length), kept so that joining costs one multiplication per piece

    def after(self, crc: int) -> int:
        """The CRC of (text whose CRC is `crc`) followed by this piece."""
        return _multmodp(self.op, crc) ^ self.crc


def piece(plain: bytes, level: int = 6) -> Piece:
    compressor = zlib.compressobj(level, zlib.DEFLATED, -15)
    deflated = compressor.compress(plain) + compressor.flush(zlib.Z_SYNC_FLUSH)
    return Piece(deflated, zlib.crc32(plain), len(plain), shift(len(plain)))


def trailer(crc: int, length: int) -> bytes:
    return struct.pack("<II", crc & 0xFFFFFFFF, length & 0xFFFFFFFF)
