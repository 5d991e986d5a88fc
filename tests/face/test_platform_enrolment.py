"""The platform's face commands on the car, with real photos through dlib: enrolment from delivered photos (kept
in memory only), refusals that change nothing (hostile photos among them), deletion (which replaces the key) and
wiping, and the worker noticing each change."""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pytest

from carctl.face import keys
from carctl.face.gallery import Gallery, Resident, load_key
from carctl.face.keys import KeyFiles
from carctl.face.worker import GalleryWatch, Recogniser, reload_if_changed
from carctl.platform.face_admin import FaceAdmin, FaceCommandError
from carctl.runtime.config import FaceSection
from tests.face.conftest import FACES
from tests.face.hostile_images import CASES
from tests.face.test_worker import stepping_in


def photo(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


@pytest.fixture
def admin(tmp_path: Path, engine) -> FaceAdmin:  # type: ignore[no-untyped-def]
    made = FaceAdmin(tmp_path / "gallery", tmp_path / "keys" / "gallery.key", "xihan", landing_count=7)
    made._engine = engine  # the session's engine: loading dlib's models once is enough
    return made


def settings(tmp_path: Path) -> FaceSection:
    return FaceSection(gallery_dir=str(tmp_path / "gallery"), key_file=str(tmp_path / "keys" / "gallery.key"),
                       community="xihan", liveness="movement")


def recognised(recogniser: Recogniser, frames: list[np.ndarray], start_s: float) -> list[str]:
    return [e.resident for t, frame in enumerate(frames) for e in recogniser.process(frame, start_s + t)]


def test_enrolment_from_delivered_photos_keeps_templates_only_and_the_worker_picks_it_up(
        admin: FaceAdmin, tmp_path: Path, engine) -> None:  # type: ignore[no-untyped-def]
    watch = GalleryWatch(tmp_path / "gallery" / "xihan.gallery")
    recogniser = Recogniser(engine, [], 0.5, "movement")
    frames = stepping_in(FACES / "obama" / "obama_3.jpg")
    assert recognised(recogniser, frames, 0.0) == []

    result = admin.enroll({"resident": "r-501", "home_landing": 4, "consent": "C-2026-501",
                           "photos": [photo(FACES / "obama" / "obama_1.jpg"), photo(FACES / "obama" / "obama_2.jpg")]})
    assert result == {"resident": "r-501", "home_landing": 4, "templates": 2, "replaced": False}
    # Only the encrypted gallery was written: no photo, no temporary file.
    assert sorted(p.name for p in (tmp_path / "gallery").iterdir()) == ["xihan.gallery"]
    assert b"JFIF" not in (tmp_path / "gallery" / "xihan.gallery").read_bytes()
    stored = Gallery(tmp_path / "gallery", "xihan", load_key(tmp_path / "keys" / "gallery.key")).residents["r-501"]
    assert (stored.home_landing, stored.allowed_landings, stored.consent_ref) == (4, (4,), "C-2026-501")
    assert len(stored.embeddings) == 2 and all(len(e) == 128 for e in stored.embeddings)

    reload_if_changed(watch, recogniser, settings(tmp_path))
    assert recognised(recogniser, frames, 100.0) == ["r-501"]  # a photo never seen at enrolment

    backup = (tmp_path / "gallery" / "xihan.gallery").read_bytes()
    key_before = (tmp_path / "keys" / "gallery.key").read_bytes()
    assert admin.delete("r-501") == {"resident": "r-501"}
    assert (tmp_path / "keys" / "gallery.key").read_bytes() != key_before  # the key was replaced
    reload_if_changed(watch, recogniser, settings(tmp_path))
    assert recognised(recogniser, frames, 1000.0) == []  # deleted: never recognised again
    with pytest.raises(FaceCommandError, match="not enrolled"):
        admin.delete("r-501")
    (tmp_path / "gallery" / "xihan.gallery").write_bytes(backup)  # a copy from before the deletion, put back
    with pytest.raises(FaceCommandError, match="cannot be decrypted"):
        admin.check_usable()


@pytest.mark.parametrize(("photos", "reason"), [
    ([photo(FACES / "group" / "group_1.jpg")], "faces found"),
    (["bm90IGFuIGltYWdl"], "not a readable image"),
    (["%%%not base64%%%"], "not base64"),
])
def test_a_bad_photo_refuses_the_whole_enrolment_and_changes_nothing(
        admin: FaceAdmin, tmp_path: Path, photos: list[str], reason: str) -> None:
    admin.enroll({"resident": "r-1", "home_landing": 1, "consent": "C-1",
                  "photos": [photo(FACES / "biden" / "biden_1.jpg")]})
    before = (tmp_path / "gallery" / "xihan.gallery").read_bytes()
    with pytest.raises(FaceCommandError, match=reason):
        admin.enroll({"resident": "r-2", "home_landing": 2, "consent": "C-2",
                      "photos": [photo(FACES / "rose_leslie" / "rose_leslie_1.jpg"), *photos]})
    assert (tmp_path / "gallery" / "xihan.gallery").read_bytes() == before


def synthetic_gallery(tmp_path: Path) -> bytes:
    """One resident enrolled without dlib (a made-up template): the gallery's bytes."""
    gallery = Gallery.open(tmp_path / "gallery", "xihan", tmp_path / "keys" / "gallery.key", create=True)
    gallery.enroll(Resident("r-1", 1, (1,), "C-1", "t", "t", ((0.1,) * 128,)))
    return gallery.path.read_bytes()


@pytest.mark.parametrize("case", list(CASES))
def test_a_hostile_photo_is_refused_in_one_sentence_and_nothing_is_enrolled(
        admin: FaceAdmin, tmp_path: Path, case: str) -> None:
    data, words = CASES[case]
    before = synthetic_gallery(tmp_path)
    with pytest.raises(FaceCommandError, match="^photo 1: ") as refused:
        admin.enroll({"resident": "r-2", "home_landing": 2, "consent": "C-2",
                      "photos": [base64.b64encode(data).decode()]})
    # The link acknowledges it as `failed: <this text>`: one line, the reason in it.
    assert words in str(refused.value) and "\n" not in str(refused.value)
    assert (tmp_path / "gallery" / "xihan.gallery").read_bytes() == before
    assert sorted(p.name for p in (tmp_path / "gallery").iterdir()) == ["xihan.gallery"]


def test_the_pixel_limit_comes_from_the_car(tmp_path: Path, engine) -> None:  # type: ignore[no-untyped-def]
    strict = FaceAdmin(tmp_path / "gallery", tmp_path / "keys" / "gallery.key", "xihan", landing_count=7,
                       max_image_pixels=10_000)
    strict._engine = engine
    with pytest.raises(FaceCommandError, match="more than the 10,000 allowed"):
        strict.enroll({"resident": "r-1", "home_landing": 1, "consent": "C-1",
                       "photos": [photo(FACES / "biden" / "biden_1.jpg")]})
    assert not (tmp_path / "gallery" / "xihan.gallery").exists()


def test_a_deletion_whose_key_cannot_be_replaced_is_reported_as_failed(
        admin: FaceAdmin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synthetic_gallery(tmp_path)

    def read_only_directory(files: KeyFiles) -> bytes:
        raise PermissionError(13, "Read-only file system")

    monkeypatch.setattr(keys, "create_next_key", read_only_directory)
    with pytest.raises(FaceCommandError, match="r-1 was removed .* copies of the gallery made before the deletion "
                                               "can still be decrypted"):
        admin.delete("r-1")
    monkeypatch.undo()
    assert Gallery.open_read_only(tmp_path / "gallery", "xihan", tmp_path / "keys" / "gallery.key").residents == {}


def test_landings_must_exist_and_ids_must_be_plain(admin: FaceAdmin) -> None:
    good = [photo(FACES / "biden" / "biden_1.jpg")]
    with pytest.raises(FaceCommandError, match="landing 7 does not exist"):
        admin.enroll({"resident": "r-1", "home_landing": 7, "consent": "C-1", "photos": good})
    with pytest.raises(FaceCommandError, match="resident"):
        admin.enroll({"resident": "../etc", "home_landing": 1, "consent": "C-1", "photos": good})


def test_wipe_removes_the_gallery_and_its_key_and_the_worker_forgets_everyone(
        admin: FaceAdmin, tmp_path: Path, engine) -> None:  # type: ignore[no-untyped-def]
    admin.enroll({"resident": "r-7", "home_landing": 2, "consent": "C-7",
                  "photos": [photo(FACES / "obama" / "obama_1.jpg")]})
    watch = GalleryWatch(tmp_path / "gallery" / "xihan.gallery")
    recogniser = Recogniser(engine, list(Gallery(tmp_path / "gallery", "xihan", load_key(
        tmp_path / "keys" / "gallery.key")).residents.values()), 0.5, "movement")
    (tmp_path / "keys" / "gallery.key.next").write_bytes(b"\x01" * 32)  # a rotation cut short, for good measure
    assert admin.wipe() == {"wiped": True, "residents_removed": 1}
    assert not (tmp_path / "gallery" / "xihan.gallery").exists()
    assert list((tmp_path / "keys").iterdir()) == []  # the key, the next key and the version floor
    reload_if_changed(watch, recogniser, settings(tmp_path))
    assert recogniser.residents == {}
    assert admin.check_usable() == 0  # switching on again starts an empty gallery under a new key
