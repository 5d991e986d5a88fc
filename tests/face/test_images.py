"""Images from outside decoded in one place: limits read from the header, bombs and truncated photos refused with
one sentence, and face_recognition's process-wide switch for truncated images put back."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from carctl.face.images import MAX_SIDE_PX, ImageError, decode_image, load_image
from tests.face.conftest import FACES
from tests.face.hostile_images import CASES, png_claiming, truncated_face_jpeg

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.mark.parametrize("case", list(CASES))
def test_a_hostile_image_is_refused_with_one_sentence(tmp_path: Path, case: str) -> None:
    data, words = CASES[case]
    with pytest.raises(ImageError, match="^photo 1: ") as in_memory:
        decode_image(data, "photo 1")
    path = tmp_path / "photo.png"
    path.write_bytes(data)
    with pytest.raises(ImageError) as from_file:
        load_image(path)
    for refusal in (str(in_memory.value), str(from_file.value)):
        assert words in refusal and "\n" not in refusal and len(refusal) < 400


def test_a_photo_decodes_to_the_rgb_array_face_recognition_made() -> None:
    photo = FACES / "obama" / "obama_1.jpg"
    array = load_image(photo)
    with Image.open(photo) as image:
        assert np.array_equal(array, np.array(image.convert("RGB")))  # face_recognition.load_image_file's way
    assert array.dtype == np.uint8 and array.ndim == 3 and array.shape[2] == 3
    assert np.array_equal(decode_image(photo.read_bytes()), array)


def test_the_pixel_limit_is_the_callers(tmp_path: Path) -> None:
    photo = FACES / "biden" / "biden_1.jpg"
    with Image.open(photo) as image:
        width, height = image.size
    with pytest.raises(ImageError, match=f"{width} x {height} pixels is more than the 10,000 allowed"):
        load_image(photo, max_pixels=10_000)
    assert load_image(photo, max_pixels=width * height).shape[:2] == (height, width)


def test_an_absurd_side_is_refused_whatever_the_pixel_count() -> None:
    with pytest.raises(ImageError, match="side longer than 20,000 px"):
        decode_image(png_claiming(MAX_SIDE_PX + 1, 1), "photo 1")


def test_other_formats_are_not_opened() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (120, 80, 40)).save(buffer, format="TIFF")
    with pytest.raises(ImageError, match="not a JPEG, PNG or BMP"):
        decode_image(buffer.getvalue(), "photo 1")


@pytest.mark.parametrize("mode", ["P", "L", "RGBA", "LA", "1", "CMYK"])
def test_every_usual_mode_becomes_rgb(mode: str) -> None:
    image = Image.new("RGB", (40, 30), (200, 100, 50)).convert(mode)
    if mode == "P":
        image.info["transparency"] = 0  # Pillow warns about this one when it goes to RGB directly
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG" if mode == "CMYK" else "PNG")
    decoded = decode_image(buffer.getvalue())
    assert decoded.shape == (30, 40, 3) and decoded.dtype == np.uint8


# Run in a fresh interpreter: the switch is process-wide, and this test process has long since imported everything.
FACE_RECOGNITION_ALONE = """
from PIL import Image, ImageFile
import io, sys
import face_recognition
print(ImageFile.LOAD_TRUNCATED_IMAGES)
Image.open(io.BytesIO(sys.stdin.buffer.read())).load()
print("loaded")
"""
FIRMWARE = """
import io, sys
from PIL import ImageFile
import carctl.face.worker, carctl.face.cli, carctl.platform.face_admin
from carctl.face.engine import FaceEngine, ImageError, decode_image
FaceEngine()  # the worker and the platform link make one before the first frame or photo
assert "face_recognition" in sys.modules
print(ImageFile.LOAD_TRUNCATED_IMAGES)
try:
    decode_image(sys.stdin.buffer.read(), "photo 1")
except ImageError as error:
    print(error)
"""


def run_fresh(script: str, data: bytes) -> list[str]:
    result = subprocess.run([sys.executable, "-c", script], input=data, capture_output=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode().splitlines()


def test_the_firmware_undoes_face_recognitions_switch_for_truncated_images() -> None:
    truncated = truncated_face_jpeg()
    # What face_recognition does to a process on import: a truncated photo loads, its missing part grey.
    assert run_fresh(FACE_RECOGNITION_ALONE, truncated) == ["True", "loaded"]
    switch, refusal = run_fresh(FIRMWARE, truncated)
    assert switch == "False"
    assert refusal.startswith("photo 1: not a readable image (image file is truncated")
