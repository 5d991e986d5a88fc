"""Every image from outside the process is decoded here, with limits: enrolment photos (the CLI's files and the
platform's photos), the photo to identify, and a folder of frames.

Rules of this module:
- Only JPEG, PNG and BMP are opened (what cameras and phones send); no other Pillow plugin ever sees the bytes.
- The size is read from the header before anything is decoded: more than `max_pixels` (default 16,000,000, i.e.
  4,000 x 4,000: 48 MB decoded; `face.max_image_pixels` on the car) or a side longer than MAX_SIDE_PX is refused.
- A file is read only if it is a regular file no larger than the largest encoding of an image of `max_pixels`
  (carctl/filein.py): a FIFO would block the reader, /dev/zero never end.
- A truncated image is refused. face_recognition sets ImageFile.LOAD_TRUNCATED_IMAGES for the whole process when it
  is imported; a photo whose missing part is filled with grey is not the resident, so decode() sets it back.
- Whatever Pillow raises on hostile bytes (a decompression bomb, a broken stream, a bad header) becomes an
  ImageError of one sentence; nothing else leaves this module.
- The result is an RGB uint8 array, as dlib wants it. No image is ever written anywhere.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import IO

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

from carctl.filein import NotARegularFile, read_bounded

DEFAULT_MAX_PIXELS = 16_000_000
# No photo of a person is this long on one side; a 1 x 16,000,000 "image" has the pixels allowed and no face.
MAX_SIDE_PX = 20_000
# The largest file an image within max_pixels can need: 8 bytes a pixel (an uncompressed 16-bit RGBA PNG), and room
# for metadata (EXIF, ICC profiles, thumbnails). A real photo is a tenth of that.
FILE_BYTES_PER_PIXEL = 8
FILE_BYTES_SPARE = 16 << 20
FORMATS = ("JPEG", "PNG", "BMP")
_REASON_CHARS = 160


class ImageError(Exception):
    """An image that is refused: unreadable, truncated, too large, or not a JPEG, PNG or BMP."""


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())[:_REASON_CHARS] or type(error).__name__


def size_refusal(width: int, height: int, max_pixels: int = DEFAULT_MAX_PIXELS) -> str | None:
    """Why an image of this size is refused, or None if it may be decoded."""
    if width < 1 or height < 1:
        return f"{width} x {height} pixels is not an image"
    if width > MAX_SIDE_PX or height > MAX_SIDE_PX:
        return f"{width} x {height} pixels: a side longer than {MAX_SIDE_PX:,} px is not a photo"
    if width * height > max_pixels:
        return (f"{width} x {height} pixels is more than the {max_pixels:,} allowed; refused before decoding "
                f"(send a smaller photo)")
    return None


def _decode(source: IO[bytes], name: str, max_pixels: int) -> np.ndarray:
    ImageFile.LOAD_TRUNCATED_IMAGES = False  # whoever set it (face_recognition does, on import)
    try:
        with Image.open(source, formats=FORMATS) as image:
            refusal = size_refusal(image.width, image.height, max_pixels)
            if refusal is not None:
                raise ImageError(f"{name}: {refusal}")
            image.load()
            # A palette with transparency goes through RGBA: Pillow warns when it is converted to RGB directly.
            opaque = image.convert("RGBA") if image.mode in ("P", "PA") else image
            return np.array(opaque.convert("RGB"), dtype=np.uint8)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(f"{name}: its header claims more pixels than can be decoded safely (refused as a "
                         f"decompression bomb)") from None
    except UnidentifiedImageError:
        raise ImageError(f"{name}: not a readable image (not a JPEG, PNG or BMP file)") from None
    except Exception as error:  # noqa: BLE001 - Pillow's plugins raise many kinds on hostile bytes; all are refusals
        raise ImageError(f"{name}: not a readable image ({_one_line(error)})") from None


def decode_image(data: bytes, name: str = "photo", max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """An RGB image array from an encoded image held in memory (a photo delivered by the platform: it never touches
    the disk); ImageError if it is refused."""
    return _decode(io.BytesIO(data), name, max_pixels)


def max_file_bytes(max_pixels: int) -> int:
    """The largest image file read for an image of at most ``max_pixels``."""
    return FILE_BYTES_PER_PIXEL * max_pixels + FILE_BYTES_SPARE


def load_image(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """An RGB image array from a file; ImageError if it cannot be read or is refused (a FIFO, a device or a file
    too large for any image of ``max_pixels`` too, before a byte is read)."""
    try:
        data = read_bounded(path, max_file_bytes(max_pixels))
    except NotARegularFile as refusal:
        raise ImageError(f"{path}: not a readable image ({refusal})") from None
    except OSError as error:
        raise ImageError(f"{path}: not a readable image ({error.strerror or error})") from None
    return _decode(io.BytesIO(data), str(path), max_pixels)
