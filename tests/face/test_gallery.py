"""The encrypted gallery: embeddings only, consent required, atomic writes, deletion without a trace — including in
copies made before the deletion (the key is rotated) — and older copies refused as rollbacks."""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from carctl.face import gallery as gallery_module
from carctl.face import keys
from carctl.face.gallery import Gallery, GalleryError, Resident, create_key, load_key
from carctl.face.keys import KeyFiles


def resident(name: str = "r-101", consent: str = "CONSENT-2026-0042", value: float = 0.125) -> Resident:
    return Resident(name, 4, (0, 4), consent, "2026-11-25T08:00:00+00:00", "2026-11-25T08:00:00+00:00",
                    ((value,) * 128, (value / 2,) * 128))


@pytest.fixture
def key(tmp_path: Path) -> bytes:
    create_key(tmp_path / "key")
    return load_key(tmp_path / "key")


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    """The key in its own directory, apart from the gallery's, as on the car."""
    path = tmp_path / "keys" / "gallery.key"
    path.parent.mkdir()
    create_key(path)
    return path


def owner(tmp_path: Path, key_file: Path) -> Gallery:
    return Gallery.open(tmp_path / "g", "xihan", key_file)


def two_residents(tmp_path: Path, key_file: Path) -> Gallery:
    gallery = owner(tmp_path, key_file)
    gallery.enroll(resident("a", value=0.25))
    gallery.enroll(resident("b", value=0.5))
    return gallery


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
    assert not list((tmp_path / "g").glob("*.tmp")) and not list((tmp_path / "g").glob(".*"))


def test_enrolment_without_consent_is_refused_and_nothing_written(tmp_path: Path, key: bytes) -> None:
    gallery = Gallery(tmp_path / "g", "xihan", key)
    with pytest.raises(GalleryError, match="consent"):
        gallery.enroll(resident(consent="  "))
    assert not gallery.path.exists()


def test_delete_removes_every_trace_at_once(tmp_path: Path, key_file: Path) -> None:
    gallery = two_residents(tmp_path, key_file)
    assert gallery.delete("a")
    reloaded = Gallery.open_read_only(tmp_path / "g", "xihan", key_file)
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


def test_the_version_in_the_clear_header_is_authenticated(tmp_path: Path, key_file: Path) -> None:
    gallery = two_residents(tmp_path, key_file)
    blob = bytearray(gallery.path.read_bytes())
    assert blob[:8] == b"CARCTLG2" and int.from_bytes(blob[8:16], "big") == 2
    blob[15] = 9  # claims version 9: above the floor, but not what was sealed
    gallery.path.write_bytes(bytes(blob))
    with pytest.raises(GalleryError, match="tampered"):
        owner(tmp_path, key_file)


def test_another_communitys_file_is_refused(tmp_path: Path, key: bytes) -> None:
    Gallery(tmp_path / "g", "xihan", key).enroll(resident())
    (tmp_path / "g" / "xihan.gallery").rename(tmp_path / "g" / "dongfang.gallery")
    with pytest.raises(GalleryError, match="another community"):
        Gallery(tmp_path / "g", "dongfang", key)


def test_a_key_file_serves_one_community(tmp_path: Path, key_file: Path) -> None:
    owner(tmp_path, key_file).enroll(resident())
    with pytest.raises(GalleryError, match="needs its own key file"):
        Gallery.open(tmp_path / "g", "dongfang", key_file)


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
    assert not list((tmp_path / "g").glob(".*.tmp"))


# -- a deletion rotates the key ----------------------------------------------------------------------------------


def test_a_copy_made_before_a_deletion_no_longer_decrypts_on_the_car(tmp_path: Path, key_file: Path) -> None:
    gallery = two_residents(tmp_path, key_file)
    backup = tmp_path / "backup.gallery"
    shutil.copy(gallery.path, backup)
    old_key = key_file.read_bytes()
    assert gallery.delete("a")

    files = KeyFiles(key_file)
    assert key_file.read_bytes() != old_key and stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert not files.next.exists()
    assert keys.read_floor(files, "xihan") == gallery.version == 3
    assert set(Gallery.open_read_only(tmp_path / "g", "xihan", key_file).residents) == {"b"}

    shutil.copy(backup, gallery.path)  # the backup (or an SD-card image) copied back
    for opener in (Gallery.open, Gallery.open_read_only):
        with pytest.raises(GalleryError, match="cannot be decrypted.*a copy made before a deletion"):
            opener(tmp_path / "g", "xihan", key_file)
    # What deletion cannot undo (docs/privacy.md): a backup kept together with the key of its day still opens.
    assert set(Gallery(tmp_path / "g", "xihan", old_key).residents) == {"a", "b"}


def test_an_older_copy_is_refused_as_a_rollback(tmp_path: Path, key_file: Path) -> None:
    gallery = owner(tmp_path, key_file)
    gallery.enroll(resident("a"))
    backup = tmp_path / "backup"
    shutil.copytree(tmp_path / "g", backup)  # the whole gallery directory, as a backup tool takes it
    gallery.enroll(resident("b"))  # no deletion: the key stays, only the version moves on
    shutil.rmtree(tmp_path / "g")
    shutil.copytree(backup, tmp_path / "g")
    for opener in (Gallery.open, Gallery.open_read_only):
        with pytest.raises(GalleryError, match=r"older copy \(version 1; this car has accepted version 2\).*rollback"):
            opener(tmp_path / "g", "xihan", key_file)


def write_carctlg1(path: Path, key: bytes, community: str, residents: list[Resident]) -> None:
    """A gallery in the format before the version counter, exactly as it was written."""
    nonce = os.urandom(12)
    plain = gallery_module._records_of({r.resident_id: r for r in residents}, community)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"CARCTLG1" + nonce + AESGCM(key).encrypt(nonce, plain, b"CARCTLG1" + community.encode()))


def test_a_carctlg1_gallery_reads_as_version_0_and_is_upgraded_on_the_next_write(
        tmp_path: Path, key_file: Path) -> None:
    path = tmp_path / "g" / "xihan.gallery"
    write_carctlg1(path, load_key(key_file), "xihan", [resident("a")])
    old = path.read_bytes()
    gallery = owner(tmp_path, key_file)
    assert set(gallery.residents) == {"a"} and gallery.version == 0
    gallery.enroll(resident("b"))
    assert path.read_bytes()[:8] == b"CARCTLG2" and gallery.version == 1
    path.write_bytes(old)
    with pytest.raises(GalleryError, match="rollback"):
        owner(tmp_path, key_file)


def test_a_key_that_cannot_be_replaced_still_removes_the_resident_and_says_so(
        tmp_path: Path, key_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gallery = two_residents(tmp_path, key_file)
    backup = gallery.path.read_bytes()

    def read_only_directory(files: KeyFiles) -> bytes:
        raise PermissionError(13, "Permission denied", str(files.next))

    monkeypatch.setattr(keys, "create_next_key", read_only_directory)
    with pytest.raises(GalleryError, match=r"resident a was removed .* could not be replaced \(Permission denied\): "
                                           r"copies of the gallery made before the deletion can still be decrypted"):
        gallery.delete("a")
    monkeypatch.undo()
    assert set(Gallery.open_read_only(tmp_path / "g", "xihan", key_file).residents) == {"b"}
    gallery.path.write_bytes(backup)
    with pytest.raises(GalleryError, match="rollback"):  # the version floor was still recorded
        owner(tmp_path, key_file)


class Crash(BaseException):
    """The process dies here: nothing after it runs, no handler tidies up."""


def crash_at(target: object, name: str) -> Callable[[pytest.MonkeyPatch], None]:
    def arm(monkeypatch: pytest.MonkeyPatch) -> None:
        def die(*args: object, **kwargs: object) -> None:
            raise Crash(name)

        monkeypatch.setattr(target, name, die)

    return arm


# Where a deletion can be cut short, and whether the resident is gone once the owner opens the gallery again.
CRASH_POINTS = {
    "before the gallery is written (after step 1)": (crash_at(gallery_module, "write_atomic"), False),
    "before the floor is recorded (after step 2)": (crash_at(keys, "record_floor"), True),
    "before the old key is overwritten (after step 3)": (crash_at(keys, "overwrite_in_place"), True),
    "before the next key is renamed (after step 4)": (crash_at(keys, "promote_next"), True),
}


@pytest.mark.parametrize("point", list(CRASH_POINTS))
def test_a_rotation_cut_short_anywhere_is_put_right_at_the_next_open(
        tmp_path: Path, key_file: Path, point: str) -> None:
    arm, gone = CRASH_POINTS[point]
    gallery = two_residents(tmp_path, key_file)
    backup = gallery.path.read_bytes()
    old_key = key_file.read_bytes()
    files = KeyFiles(key_file)
    with pytest.MonkeyPatch.context() as monkeypatch:
        arm(monkeypatch)
        with pytest.raises(Crash):
            gallery.delete("a")
    assert files.next.exists()
    # The worker reads whatever state the crash left, and writes nothing.
    left_behind = {p.name: p.read_bytes() for p in key_file.parent.iterdir()}
    seen = Gallery.open_read_only(tmp_path / "g", "xihan", key_file)
    assert set(seen.residents) == ({"b"} if gone else {"a", "b"})
    assert {p.name: p.read_bytes() for p in key_file.parent.iterdir()} == left_behind

    reopened = owner(tmp_path, key_file)
    assert set(reopened.residents) == ({"b"} if gone else {"a", "b"})
    assert not files.next.exists()
    assert (key_file.read_bytes() != old_key) == gone
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    if gone:
        assert keys.read_floor(files, "xihan") == reopened.version == 3
        gallery.path.write_bytes(backup)
        with pytest.raises(GalleryError, match="cannot be decrypted"):
            owner(tmp_path, key_file)
    else:
        assert reopened.delete("a")  # the deletion can simply be asked for again
        assert key_file.read_bytes() != old_key


def test_a_next_key_half_written_by_a_crash_is_destroyed(tmp_path: Path, key_file: Path) -> None:
    two_residents(tmp_path, key_file)
    old_key = key_file.read_bytes()
    files = KeyFiles(key_file)
    files.next.write_bytes(b"\x07" * 11)
    files.next.chmod(0o600)
    assert set(owner(tmp_path, key_file).residents) == {"a", "b"}
    assert not files.next.exists() and key_file.read_bytes() == old_key


def test_a_reader_racing_a_writer_never_sees_a_rollback_and_follows_a_rotation(
        tmp_path: Path, key_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The reader has read the floor and the keys; then the writer changes everything before the reader reads the
    gallery file."""
    writer = two_residents(tmp_path, key_file)
    original_read = gallery_module._read_blob
    changes: list[Callable[[], object]] = [lambda: writer.enroll(resident("c")), lambda: writer.delete("a")]

    def writer_gets_in_first(path: Path) -> bytes | None:
        if changes:
            changes.pop(0)()
        return original_read(path)

    monkeypatch.setattr(gallery_module, "_read_blob", writer_gets_in_first)
    assert set(Gallery.open_read_only(tmp_path / "g", "xihan", key_file).residents) == {"a", "b", "c"}
    # The rotation completes between the reader's keys and its gallery: it reads the keys once more.
    assert set(Gallery.open_read_only(tmp_path / "g", "xihan", key_file).residents) == {"b", "c"}


def test_a_read_only_gallery_refuses_changes(tmp_path: Path, key_file: Path) -> None:
    two_residents(tmp_path, key_file)
    seen = Gallery.open_read_only(tmp_path / "g", "xihan", key_file)
    with pytest.raises(GalleryError, match="read-only"):
        seen.delete("a")
    with pytest.raises(GalleryError, match="read-only"):
        seen.enroll(resident("c"))


def test_the_owner_removes_temporaries_of_a_writer_that_died(tmp_path: Path, key_file: Path) -> None:
    gallery = two_residents(tmp_path, key_file)
    dead_writer = tmp_path / "g" / ".xihan.gallery.4194305.0123456789abcdef.tmp"  # above any pid_max
    dead_writer.write_bytes(b"half a gallery")
    owner(tmp_path, key_file)
    assert sorted(p.name for p in (tmp_path / "g").iterdir()) == [gallery.path.name]
