"""Files named from outside in the face feature: a key, a gallery, a photo or a video that is a FIFO, a device, a
symbolic link, too large or out of range is refused at once, never waited on, never read without end, and never
written through."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from carctl.face import keys
from carctl.face.gallery import Gallery, GalleryError, Resident, create_key, load_key
from carctl.face.images import ImageError, load_image
from carctl.face.keys import KEY_BYTES, KeyFiles
from carctl.face.worker import frames
from tests.face.conftest import FACES
from tests.refusals import assert_refused

ROOT = Path(__file__).resolve().parent.parent.parent
PHOTO = FACES / "biden" / "biden_1.jpg"
# What a link in the key's place might point at: the community's command key (docs/platform.md).
VICTIM = b"the community's command key, which a rotation must never touch"


def resident(name: str = "r-101", home: int = 4, allowed: tuple[int, ...] = (0, 4)) -> Resident:
    return Resident(name, home, allowed, "CONSENT-1", "2026-11-25T08:00:00+00:00", "2026-11-25T08:00:00+00:00",
                    ((0.125,) * 128,))


def victim(tmp_path: Path) -> Path:
    path = tmp_path / "community.key"
    path.write_bytes(VICTIM)
    path.chmod(0o600)
    return path


def face(*args: str) -> subprocess.CompletedProcess[str]:
    # A FIFO used to block the command for ever: 30 s is ample for a refusal that comes before any model loads.
    return subprocess.run([sys.executable, "-m", "carctl.cli", "face", *args], capture_output=True, text=True,
                          timeout=30, cwd=ROOT)


# -- the key -------------------------------------------------------------------------------------------------------

def test_a_key_file_that_is_a_symbolic_link_is_refused_even_to_a_good_key(tmp_path: Path) -> None:
    real = tmp_path / "real.key"
    create_key(real)
    link = tmp_path / "gallery.key"
    link.symlink_to(real)
    with pytest.raises(GalleryError, match="is a symbolic link"):
        load_key(link)


@pytest.mark.parametrize("kind", ["fifo", "device", "folder"])
def test_a_key_file_that_is_not_a_regular_file_is_refused_without_reading(tmp_path: Path, kind: str) -> None:
    path = {"fifo": tmp_path / "key", "device": Path("/dev/zero"), "folder": tmp_path / "key"}[kind]
    if kind == "fifo":
        os.mkfifo(path, 0o600)
    elif kind == "folder":
        path.mkdir(mode=0o700)
    with pytest.raises(GalleryError, match="is not a regular file"):
        load_key(path)


def test_the_key_files_mode_is_checked_before_a_byte_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "key"
    create_key(path)
    path.chmod(0o644)
    read: list[Path] = []
    monkeypatch.setattr(keys, "read_bounded", lambda *args, **kwargs: read.append(args[0]) or b"")
    with pytest.raises(GalleryError, match="readable by others"):
        load_key(path)
    assert read == []


def test_a_key_file_of_the_wrong_size_is_refused_before_it_is_read(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "key"
    path.write_bytes(b"\0" * (KEY_BYTES * 1000))
    path.chmod(0o600)
    monkeypatch.setattr(keys, "read_bounded", lambda *args, **kwargs: pytest.fail("the key was read"))
    with pytest.raises(GalleryError, match=f"does not hold a {KEY_BYTES}-byte key"):
        load_key(path)


def test_a_gallery_whose_key_is_a_link_is_refused_and_the_links_target_is_untouched(tmp_path: Path) -> None:
    key_file = tmp_path / "keys" / "gallery.key"
    key_file.parent.mkdir()
    gallery = Gallery.open(tmp_path / "g", "xihan", key_file, create=True)
    gallery.enroll(resident("a"))
    gallery.enroll(resident("b"))
    target = victim(tmp_path)
    original = key_file.read_bytes()
    target.write_bytes(original)  # even a link to the right key is refused
    key_file.unlink()
    key_file.symlink_to(target)
    with pytest.raises(GalleryError, match="is a symbolic link"):
        Gallery.open(tmp_path / "g", "xihan", key_file)
    with pytest.raises(GalleryError, match="is a symbolic link"):
        Gallery.open_read_only(tmp_path / "g", "xihan", key_file)
    keys.remove_all(KeyFiles(key_file))  # a wipe removes the link, and writes nothing through it
    assert not key_file.is_symlink() and target.read_bytes() == original


def test_a_deletion_never_writes_through_a_link(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The key swapped for a link after the gallery was opened (the rotation's step 4 is where the old key is written
    over): the link's target keeps its bytes."""
    key_file = tmp_path / "keys" / "gallery.key"
    key_file.parent.mkdir()
    gallery = Gallery.open(tmp_path / "g", "xihan", key_file, create=True)
    gallery.enroll(resident("a"))
    target = victim(tmp_path)
    key_file.unlink()
    key_file.symlink_to(target)
    with pytest.raises(GalleryError, match="replacing the old key did not finish"):
        gallery.delete("a")
    assert target.read_bytes() == VICTIM


def test_overwriting_or_destroying_a_link_leaves_its_target_alone(tmp_path: Path) -> None:
    target = victim(tmp_path)
    link = tmp_path / "gallery.key"
    link.symlink_to(target)
    with pytest.raises(OSError, match="symbolic link"):
        keys.overwrite_in_place(link)
    assert target.read_bytes() == VICTIM
    keys.destroy(link)
    assert not link.is_symlink() and target.read_bytes() == VICTIM


def test_a_next_key_or_a_floor_that_is_a_link_is_never_written_through(tmp_path: Path) -> None:
    key_file = tmp_path / "keys" / "gallery.key"
    key_file.parent.mkdir()
    gallery = Gallery.open(tmp_path / "g", "xihan", key_file, create=True)
    gallery.enroll(resident("a"))
    files = KeyFiles(key_file)
    target = victim(tmp_path)
    files.next.symlink_to(target)  # as a rotation cut short would leave .next, but a link
    reopened = Gallery.open(tmp_path / "g", "xihan", key_file)  # the owner's open undoes the "rotation"
    assert not files.next.exists() and not files.next.is_symlink()
    assert target.read_bytes() == VICTIM
    floor = files.floor.read_bytes()
    files.floor.unlink()
    files.floor.symlink_to(target)
    with pytest.raises(GalleryError, match="version floor .* symbolic link"):
        keys.read_floor(files, "xihan")
    keys.record_floor(files, "xihan", reopened.version)  # replaces the link; the target keeps its bytes
    assert not files.floor.is_symlink() and files.floor.read_bytes() == floor
    assert target.read_bytes() == VICTIM
    files.next.symlink_to(target)
    with pytest.raises(OSError, match="not a regular file"):
        keys.promote_next(files)
    assert not key_file.is_symlink()


def test_a_floor_that_is_a_fifo_is_refused_at_once(tmp_path: Path) -> None:
    key_file = tmp_path / "gallery.key"
    create_key(key_file)
    os.mkfifo(KeyFiles(key_file).floor)
    with pytest.raises(GalleryError, match="version floor .* not a regular file"):
        Gallery.open_read_only(tmp_path / "g", "xihan", key_file)


# -- the gallery and the photos ------------------------------------------------------------------------------------

def test_a_gallery_file_that_is_a_fifo_is_refused_at_once(tmp_path: Path) -> None:
    key_file = tmp_path / "gallery.key"
    create_key(key_file)
    (tmp_path / "g").mkdir()
    os.mkfifo(tmp_path / "g" / "xihan.gallery")
    with pytest.raises(GalleryError, match="is not a regular file \\(a FIFO\\)"):
        Gallery.open_read_only(tmp_path / "g", "xihan", key_file)


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_a_photo_that_is_not_a_regular_file_is_refused_at_once(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "photo.jpg" if kind == "fifo" else Path("/dev/zero")
    if kind == "fifo":
        os.mkfifo(path)
    with pytest.raises(ImageError, match=f"{path}: not a readable image .*not a regular file"):
        load_image(path)


def test_a_photo_file_larger_than_any_image_within_the_limit_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "photo.jpg"
    with path.open("wb") as out:
        out.truncate(8 * 10_000 + (16 << 20) + 1)  # sparse: no disk used
    with pytest.raises(ImageError, match="larger than"):
        load_image(path, max_pixels=10_000)


@pytest.mark.parametrize("where", ["key", "image"])
def test_carctl_face_refuses_a_fifo_at_once(tmp_path: Path, where: str) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo, 0o600)
    key_file = fifo if where == "key" else tmp_path / "key"
    image = fifo if where == "image" else PHOTO
    store = ["--gallery", str(tmp_path / "g"), "--key-file", str(key_file), "--community", "xihan"]
    assert_refused(face("identify", *store, str(image)), "not a regular file")
    if where == "key":
        assert_refused(face("list", *store), "not a regular file")
    else:
        assert_refused(face("enroll", *store, "--resident", "r-1", "--home-landing", "2", "--consent", "C1", str(PHOTO),
                     str(image)), "not a regular file")
    assert not (tmp_path / "g").exists()


def test_carctl_face_refuses_dev_zero_as_the_key_or_the_photo(tmp_path: Path) -> None:
    store = ["--gallery", str(tmp_path / "g"), "--community", "xihan"]
    assert_refused(face("list", *store, "--key-file", "/dev/zero"), "key file /dev/zero is not a regular file")
    create_key(tmp_path / "key")
    assert_refused(face("identify", *store, "--key-file", str(tmp_path / "key"), "/dev/zero"), "not a regular file")


# -- options out of their range ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("extra", "named"), [
    (["--tolerance", "nan"], "--tolerance"), (["--tolerance", "-1"], "--tolerance"),
    (["--tolerance", "1e9"], "--tolerance"), (["--tolerance", "0.75"], "--tolerance"),
    (["--max-pixels", str(10**23)], "--max-pixels"), (["--max-pixels", "9999"], "--max-pixels"),
    (["--max-pixels", "0"], "--max-pixels"),
])
def test_identify_refuses_an_option_out_of_its_configuration_keys_range(tmp_path: Path, extra: list[str],
                                                                        named: str) -> None:
    store = ["--gallery", str(tmp_path / "g"), "--key-file", str(tmp_path / "key"), "--community", "xihan"]
    result = face("identify", *store, str(PHOTO), *extra)
    assert_refused(result, named)
    assert ("face.tolerance" if named == "--tolerance" else "face.max_image_pixels") in result.stderr


@pytest.mark.parametrize(("extra", "named"), [
    (["--home-landing", "100"], "--home-landing"), (["--home-landing", "-1"], "--home-landing"),
    (["--home-landing", "2", "--allowed-landings", "0,100"], "--allowed-landings"),
    (["--home-landing", "2", "--allowed-landings", "-1"], "--allowed-landings"),
    (["--home-landing", "2", "--max-pixels", str(10**23)], "--max-pixels"),
])
def test_enroll_refuses_a_landing_no_building_has(tmp_path: Path, extra: list[str], named: str) -> None:
    store = ["--gallery", str(tmp_path / "g"), "--key-file", str(tmp_path / "key"), "--community", "xihan"]
    result = face("enroll", *store, "--resident", "r-1", "--consent", "C1", *extra, str(PHOTO))
    assert_refused(result, named)
    if "landing" in named:
        assert "0..99" in result.stderr and "its building does not have" in result.stderr
    assert not (tmp_path / "g").exists() and not (tmp_path / "key").exists()


def test_the_gallery_enrols_landings_0_to_99_only(tmp_path: Path) -> None:
    key_file = tmp_path / "gallery.key"
    gallery = Gallery.open(tmp_path / "g", "xihan", key_file, create=True)
    gallery.enroll(resident("top", home=99, allowed=(0, 99)))
    for home, allowed in ((100, (0,)), (2, (0, 100)), (2, (-1,)), (True, (0,))):
        with pytest.raises(GalleryError, match="0..99 \\(the car refuses a landing its building does not have\\)"):
            gallery.enroll(resident("r-1", home=home, allowed=allowed))  # type: ignore[arg-type]
    assert list(Gallery.open(tmp_path / "g", "xihan", key_file).residents) == ["top"]


def test_delete_says_what_it_does_not_more() -> None:
    for args in (["delete", "--help"], ["--help"]):
        result = face(*args)
        assert result.returncode == 0
        text = " ".join(result.stdout.split())
        assert "every trace" not in text
        assert "replace the gallery key" in text and "docs/privacy.md" in text


# -- frames from a camera, a stream or a video ---------------------------------------------------------------------

def video(path: Path, width: int, height: int, count: int = 3) -> str:
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 5, (width, height))
    assert writer.isOpened()
    for index in range(count):
        writer.write(np.full((height, width, 3), 40 * index, dtype=np.uint8))
    writer.release()
    return str(path)


def test_video_frames_larger_than_the_limit_are_dropped_and_said_once(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    large = video(tmp_path / "large.avi", 120, 100, count=4)  # 12,000 pixels a frame
    assert list(frames(large, max_pixels=10_000)) == []
    said = capsys.readouterr().err.splitlines()
    assert len(said) == 2, said  # the first dropped frame, and the count when the video ends: not one a frame
    assert "120 x 100 pixels" in said[0] and "face.max_image_pixels (10,000)" in said[0]
    assert "4 frame(s) dropped" in said[1]
    small = video(tmp_path / "small.avi", 96, 80)  # 7,680 pixels
    kept = list(frames(small, max_pixels=10_000))
    assert [frame.shape for frame in kept] == [(80, 96, 3)] * 3
    assert capsys.readouterr().err == ""
