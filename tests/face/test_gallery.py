"""The encrypted gallery: embeddings only, consent required, atomic writes, deletion without a trace."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from carctl.face.gallery import Gallery, GalleryError, Resident, create_key, load_key


def resident(name: str = "r-101", consent: str = "CONSENT-2026-0042", value: float = 0.125) -> Resident:
    return Resident(name, 4, (0, 4), consent, "2026-11-25T08:00:00+00:00", "2026-11-25T08:00:00+00:00",
                    ((value,) * 128, (value / 2,) * 128))


@pytest.fixture
def key(tmp_path: Path) -> bytes:
    create_key(tmp_path / "key")
    return load_key(tmp_path / "key")


def test_key_file_is_private_and_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "key"
    create_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(GalleryError, match="already exists"):
        create_key(path)
    os.chmod(path, 0o644)
    with pytest.raises(GalleryError, match="readable by others"):
        load_key(path)


def test_enrol_persist_and_reload(tmp_path: Path, key: bytes) -> None:
    gallery = Gallery(tmp_path / "g", "xihan", key)
    gallery.enroll(resident())
    again = Gallery(tmp_path / "g", "xihan", key)
    assert again.residents["r-101"] == resident()
    assert stat.S_IMODE(again.path.stat().st_mode) == 0o600


def test_file_holds_no_readable_id_consent_or_embedding(tmp_path: Path, key: bytes) -> None:
    gallery = Gallery(tmp_path / "g", "xihan", key)
    gallery.enroll(resident(name="zhang-wei-601"))
    blob = gallery.path.read_bytes()
    for text in (b"zhang-wei-601", b"CONSENT-2026-0042", b"xihan", b"home_landing", b"\xff\xd8\xff", b"\x89PNG"):
        assert text not in blob
    assert not list((tmp_path / "g").glob("*.tmp"))


def test_enrolment_without_consent_is_refused_and_nothing_written(tmp_path: Path, key: bytes) -> None:
    gallery = Gallery(tmp_path / "g", "xihan", key)
    with pytest.raises(GalleryError, match="consent"):
        gallery.enroll(resident(consent="  "))
    assert not gallery.path.exists()


def test_delete_removes_every_trace_at_once(tmp_path: Path, key: bytes) -> None:
    gallery = Gallery(tmp_path / "g", "xihan", key)
    gallery.enroll(resident("a", value=0.25))
    gallery.enroll(resident("b", value=0.5))
    assert gallery.delete("a")
    reloaded = Gallery(tmp_path / "g", "xihan", key)
    assert set(reloaded.residents) == {"b"}
    assert not gallery.delete("a")


def test_tampered_gallery_and_wrong_key_are_refused(tmp_path: Path, key: bytes) -> None:
    gallery = Gallery(tmp_path / "g", "xihan", key)
    gallery.enroll(resident())
    blob = bytearray(gallery.path.read_bytes())
    blob[-5] ^= 1
    gallery.path.write_bytes(bytes(blob))
    with pytest.raises(GalleryError, match="tampered"):
        Gallery(tmp_path / "g", "xihan", key)
    gallery.path.write_bytes(bytes(blob[:10]))
    with pytest.raises(GalleryError, match="truncated"):
        Gallery(tmp_path / "g", "xihan", key)
    Gallery(tmp_path / "h", "xihan", key).enroll(resident())
    create_key(tmp_path / "other")
    with pytest.raises(GalleryError, match="wrong key"):
        Gallery(tmp_path / "h", "xihan", load_key(tmp_path / "other"))


def test_another_communitys_file_is_refused(tmp_path: Path, key: bytes) -> None:
    Gallery(tmp_path / "g", "xihan", key).enroll(resident())
    (tmp_path / "g" / "xihan.gallery").rename(tmp_path / "g" / "dongfang.gallery")
    with pytest.raises(GalleryError, match="another community"):
        Gallery(tmp_path / "g", "dongfang", key)


def test_a_failed_write_keeps_the_old_gallery(tmp_path: Path, key: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    gallery = Gallery(tmp_path / "g", "xihan", key)
    gallery.enroll(resident("a"))
    before = gallery.path.read_bytes()

    def crash(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(GalleryError, match="not written"):
        gallery.enroll(resident("b"))
    assert gallery.path.read_bytes() == before
    assert set(gallery.residents) == {"a"}
    assert not list((tmp_path / "g").glob("*.tmp"))
