"""Pixels of a PNG screenshot (Chromium's: 8-bit RGB or RGBA, not interlaced), decoded with the
standard library alone, for tests that compare what a page shows."""

from __future__ import annotations

import struct
import zlib

Pixels = list[tuple[int, ...]]
_CHANNELS = {2: 3, 6: 4}  # colour type -> bytes per pixel


def decode(png: bytes) -> tuple[int, int, Pixels]:
    """(width, height, pixels row by row)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width, height, channels = 8, b"", 0, 0, 0
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos:pos + 8])
        body = png[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and colour in _CHANNELS and not interlace, (depth, colour, interlace)
            channels = _CHANNELS[colour]
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels
    rows: list[bytearray] = []
    previous = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        row = _unfilter(raw[start], bytearray(raw[start + 1:start + 1 + stride]), previous, channels)
        rows.append(row)
        previous = row
    return width, height, [tuple(r[x:x + channels]) for r in rows for x in range(0, stride, channels)]


def _unfilter(kind: int, row: bytearray, up: bytearray, bpp: int) -> bytearray:
    for i in range(len(row)):
        left = row[i - bpp] if i >= bpp else 0
        corner = up[i - bpp] if i >= bpp else 0
        if kind == 1:
            row[i] = (row[i] + left) & 0xFF
        elif kind == 2:
            row[i] = (row[i] + up[i]) & 0xFF
        elif kind == 3:
            row[i] = (row[i] + (left + up[i]) // 2) & 0xFF
        elif kind == 4:
            row[i] = (row[i] + _paeth(left, up[i], corner)) & 0xFF
    return row


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else b if pb <= pc else c


def differing(first: bytes, second: bytes) -> int:
    """How many pixels differ between two screenshots of the same size."""
    w1, h1, a = decode(first)
    w2, h2, b = decode(second)
    assert (w1, h1) == (w2, h2), f"sizes differ: {w1}x{h1} and {w2}x{h2}"
    return sum(1 for p, q in zip(a, b, strict=True) if p != q)
