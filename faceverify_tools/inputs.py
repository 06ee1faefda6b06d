"""Inputs as callers send them, for tests, soak and benchmark: data URIs and hand-built PNGs."""

from __future__ import annotations

import base64
import struct
import zlib


def data_uri(data: bytes, media: str = "image/jpeg") -> str:
    """Bytes as a standard base64 data URI, as a browser's `readAsDataURL` writes it."""
    return f"data:{media};base64," + base64.b64encode(data).decode()


def png_chunk(kind: bytes, body: bytes) -> bytes:
    """One PNG chunk: length, type, body and CRC."""
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png(width: int, height: int, idat: bytes, bit_depth: int = 8, colour_type: int = 2) -> bytes:
    """A PNG whose header says width x height, with `idat` as its compressed pixel data."""
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def png_claiming_size(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height pixels that its data does not hold
    (the shape of a decompression bomb)."""
    return png(width, height, zlib.compress(b"\x00" * 16))


def flat_png(width: int, height: int, bit_depth: int = 8, colour_type: int = 2, value: int = 0x40) -> bytes:
    """A flat PNG of real width x height pixels, compressed row by row: a few KB on the wire."""
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[colour_type]
    row = b"\x00" + bytes([value]) * (width * channels * bit_depth // 8)
    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    return png(width, height, idat, bit_depth, colour_type)
