"""Fuzzing the face module's parsers of outside input: the gallery file, its key's version floor, and images. Whatever
they are fed, the gallery's readers answer with a GalleryError and the image decoder with an ImageError or an RGB
array; never another exception. `make test` runs a few hundred examples each; `make fuzz` many more (conftest.py)."""

from __future__ import annotations

import base64
import io
import json
import math
import struct
import tempfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from carctl.face import gallery as gallery_module
from carctl.face import keys
from carctl.face.gallery import Gallery, GalleryError, Resident
from carctl.face.keys import KeyFiles
from carctl.face.images import ImageError, decode_image

pytestmark = pytest.mark.fuzz

KEY = bytes(range(32))
COMMUNITY = "xihan"
# The fuzzer's images stay small: the limit is the same code whatever its value, and big allocations are slow.
FUZZ_MAX_PIXELS = 250_000


@contextmanager
def gallery_file(blob: bytes) -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as directory:
        (Path(directory) / f"{COMMUNITY}.gallery").write_bytes(blob)
        yield Path(directory)


def read_back(blob: bytes) -> Gallery | None:
    """The gallery read from ``blob``, or None if it was refused; any other exception fails the test."""
    with gallery_file(blob) as directory:
        try:
            return Gallery(directory, COMMUNITY, KEY)
        except GalleryError as error:
            assert "\n" not in str(error)
            return None


def valid_residents() -> dict[str, Resident]:
    return {"r-1": Resident("r-1", 3, (0, 3), "C-1", "2026-11-25T08:00:00+00:00", "2026-11-25T08:00:00+00:00",
                            ((0.25,) * 128, (-0.5,) * 128)),
            "r-2": Resident("r-2", 5, (5,), "C-2", "t", "t", ((0.125,) * 128,))}


VALID_PLAIN = gallery_module._records_of(valid_residents(), COMMUNITY)
VALID_BLOB = gallery_module._seal(VALID_PLAIN, COMMUNITY, KEY, 7)
VALID_RECORD: dict[str, Any] = json.loads(VALID_PLAIN)["residents"][0]

JSON_LEAVES = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False),
                        st.text(max_size=16), st.sampled_from(["", "A" * 684, "r-1", "../etc", "\x00", "-1"]))
JSON_VALUES = st.recursive(JSON_LEAVES, lambda inner: st.lists(inner, max_size=5)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=10)


def assert_well_formed(gallery: Gallery) -> None:
    """What the reader hands on is what the rest of the firmware expects, every type checked."""
    for resident_id, resident in gallery.residents.items():
        assert resident_id == resident.resident_id and isinstance(resident_id, str)
        assert type(resident.home_landing) is int and all(type(n) is int for n in resident.allowed_landings)
        assert isinstance(resident.consent_ref, str) and resident.embeddings
        assert all(len(e) == 128 and all(math.isfinite(v) for v in e) for e in resident.embeddings)


@given(st.binary(max_size=400))
def test_random_bytes_are_refused(blob: bytes) -> None:
    assert read_back(blob) is None


@given(st.one_of(st.binary(max_size=300), st.just(b"")), st.sampled_from([b"CARCTLG1", b"CARCTLG2"]))
def test_a_carctl_header_with_random_ciphertext_is_refused(rest: bytes, magic: bytes) -> None:
    assert read_back(magic + rest) is None


@given(st.lists(st.integers(0, len(VALID_BLOB) * 8 - 1), min_size=1, max_size=4, unique=True))
def test_a_valid_gallery_with_bits_flipped_is_refused(bits: list[int]) -> None:
    blob = bytearray(VALID_BLOB)
    for bit in bits:
        blob[bit // 8] ^= 1 << (bit % 8)
    assert read_back(bytes(blob)) is None


@given(st.integers(0, len(VALID_BLOB) - 1), st.binary(max_size=40))
def test_a_valid_gallery_cut_short_or_extended_is_refused(length: int, tail: bytes) -> None:
    assert read_back(VALID_BLOB[:length]) is None
    if tail:
        assert read_back(VALID_BLOB + tail) is None


def record_variants() -> st.SearchStrategy[Any]:
    """A valid record with one field replaced by anything, or missing, or the record replaced by anything."""
    field_name = st.sampled_from(sorted(VALID_RECORD))
    replaced = st.tuples(field_name, JSON_VALUES).map(lambda change: {**VALID_RECORD, change[0]: change[1]})
    missing = field_name.map(lambda name: {k: v for k, v in VALID_RECORD.items() if k != name})
    bad_embedding = st.binary(max_size=600).map(
        lambda raw: {**VALID_RECORD, "embeddings": [base64.b64encode(raw).decode()]})
    non_finite = st.sampled_from([math.nan, math.inf, -math.inf]).map(
        lambda value: {**VALID_RECORD, "embeddings": [gallery_module._pack((value,) * 128)]})
    return st.one_of(replaced, missing, bad_embedding, non_finite, JSON_VALUES)


PLAINTEXTS = st.one_of(
    st.binary(max_size=200),
    JSON_VALUES.map(lambda value: json.dumps(value).encode()),
    st.lists(record_variants(), max_size=3).map(lambda records: json.dumps({"residents": records}).encode()),
    st.integers(1, 5000).map(lambda depth: b"[" * depth + b"]" * depth),
    st.just(json.dumps({"residents": [VALID_RECORD, VALID_RECORD]}).encode()),  # the same resident twice
)


@given(PLAINTEXTS, st.integers(0, 2**64 - 1))
def test_a_gallery_that_decrypts_but_holds_wrong_records_is_refused(plain: bytes, version: int) -> None:
    """Sealed with the real key: only the records' shape stands between these bytes and the recogniser."""
    gallery = read_back(gallery_module._seal(plain, COMMUNITY, KEY, version))
    if gallery is not None:
        assert_well_formed(gallery)


@given(st.one_of(st.binary(max_size=200), JSON_VALUES.map(lambda value: json.dumps(value).encode()),
                 st.fixed_dictionaries({"community": JSON_VALUES, "version": JSON_VALUES}).map(
                     lambda value: json.dumps(value).encode())))
def test_the_version_floor_is_a_number_or_a_gallery_error(floor: bytes) -> None:
    with tempfile.TemporaryDirectory() as directory:
        files = KeyFiles(Path(directory) / "gallery.key")
        files.floor.write_bytes(floor)
        try:
            version = keys.read_floor(files, COMMUNITY)
        except GalleryError as error:
            assert "\n" not in str(error)
            return
    assert type(version) is int and 0 <= version < 2**64


def test_the_valid_gallery_the_mutations_start_from_reads() -> None:
    gallery = read_back(VALID_BLOB)
    assert gallery is not None and gallery.residents == valid_residents() and gallery.version == 7


# -- images ------------------------------------------------------------------------------------------------------


def encoded(image: Image.Image, image_format: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=image_format)
    return buffer.getvalue()


def _seed_images() -> list[bytes]:
    pixels = np.random.default_rng(5).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    image = Image.fromarray(pixels)
    return [encoded(image, "JPEG"), encoded(image, "PNG"), encoded(image, "BMP"),
            encoded(image.convert("P"), "PNG"), encoded(image.convert("L"), "JPEG"),
            encoded(image.convert("RGBA"), "PNG")]


SEED_IMAGES = _seed_images()


def png_with_size(width: int, height: int, body: bytes) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(body)) + chunk(b"IEND", b"")


@st.composite
def mutated_images(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEED_IMAGES)))
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["flip", "byte", "cut", "insert"]))
        position = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[position] ^= 1 << draw(st.integers(0, 7))
        elif kind == "byte" and data:
            data[position] = draw(st.sampled_from([0x00, 0xFF, 0x7F, 0x80, draw(st.integers(0, 255))]))
        elif kind == "cut":
            del data[position:position + draw(st.integers(1, 64))]
        else:
            data[position:position] = draw(st.binary(min_size=1, max_size=16))
    return bytes(data)


IMAGES = st.one_of(
    st.binary(max_size=600),
    mutated_images(),
    st.builds(png_with_size, st.integers(0, 2**32 - 1) | st.integers(0, 600), st.integers(0, 2**32 - 1)
              | st.integers(0, 600), st.binary(max_size=64)),
)


@given(IMAGES)
def test_the_image_decoder_gives_an_rgb_array_or_an_image_error(data: bytes) -> None:
    try:
        decoded = decode_image(data, "photo 1", FUZZ_MAX_PIXELS)
    except ImageError as error:
        assert str(error).startswith("photo 1: ") and "\n" not in str(error)
        return
    assert decoded.dtype == np.uint8 and decoded.ndim == 3 and decoded.shape[2] == 3
    assert 0 < decoded.shape[0] * decoded.shape[1] <= FUZZ_MAX_PIXELS


def test_the_seed_images_the_mutations_start_from_decode() -> None:
    for data in SEED_IMAGES:
        assert decode_image(data).shape == (24, 32, 3)
