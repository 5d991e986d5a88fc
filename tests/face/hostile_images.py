"""Images made to hurt a decoder, built cheaply in memory: headers that lie about their size, real decompression
bombs, a truncated photo of a real face, noise, nothing."""

from __future__ import annotations

import random
import struct
import zlib

from tests.face.conftest import FACES

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png(width: int, height: int, idat: bytes, bit_depth: int = 8, colour_type: int = 0) -> bytes:
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return PNG_SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def png_claiming(width: int, height: int) -> bytes:
    """A PNG of a few dozen bytes whose header claims ``width`` x ``height`` pixels."""
    return png(width, height, zlib.compress(b"\x00" * 64))


def png_bomb(side: int) -> bytes:
    """A valid black 1-bit PNG of ``side`` x ``side`` pixels: a few tens of kilobytes that decode to side² pixels."""
    row = b"\x00" * (1 + (side + 7) // 8)  # filter byte, then the packed bits
    packer = zlib.compressobj(9)
    body = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    return png(side, side, body, bit_depth=1)


def truncated_face_jpeg() -> bytes:
    """A real photo of a face, cut off part way through its image data."""
    whole = (FACES / "obama" / "obama_1.jpg").read_bytes()
    return whole[: len(whole) * 6 // 10]


def noise(size: int = 4096, seed: int = 7) -> bytes:
    return random.Random(seed).randbytes(size)


# Each hostile image, and the words its refusal must contain.
CASES: dict[str, tuple[bytes, str]] = {
    "header claims 5000 x 4000 (over the limit)": (png_claiming(5000, 4000), "more than the 16,000,000 allowed"),
    "header claims 10000 x 10000 (Pillow's warning)": (png_claiming(10_000, 10_000), "pixels"),
    "header claims 30000 x 30000": (png_claiming(30_000, 30_000), "pixels"),
    "decompression bomb 15000 x 15000": (png_bomb(15_000), "pixels"),
    "decompression bomb 6000 x 6000": (png_bomb(6_000), "more than the 16,000,000 allowed"),
    "truncated JPEG of a face": (truncated_face_jpeg(), "truncated"),
    "random bytes": (noise(), "not a readable image"),
    "empty file": (b"", "not a readable image"),
}
