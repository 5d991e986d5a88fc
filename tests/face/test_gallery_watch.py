"""The face worker's watch on the gallery and its key: a rotation of the key never leaves it on an empty gallery."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from carctl.face import keys
from carctl.face.gallery import Gallery, Resident
from carctl.face.keys import KeyFiles
from carctl.face.worker import GalleryWatch, Recogniser, reload_if_changed
from carctl.runtime.config import FaceSection


class Crash(BaseException):
    """The writer dies here."""


def die(*args: object) -> None:
    raise Crash()


def settings(tmp_path: Path) -> FaceSection:
    return FaceSection(gallery_dir=str(tmp_path / "gallery"), key_file=str(tmp_path / "keys" / "gallery.key"),
                       community="xihan", liveness="off")


def made_up(name: str, value: float) -> Resident:
    return Resident(name, 2, (2,), "C-1", "t", "t", ((value,) * 128,))


def test_the_worker_rereads_when_only_the_key_changes(tmp_path: Path, engine) -> None:  # type: ignore[no-untyped-def]
    """The worker read the gallery just as a deletion finished: it found the old key already overwritten and the
    next key already renamed, so it read nothing. The rename changed only the key file; the worker must notice."""
    owner = Gallery.open(tmp_path / "gallery", "xihan", tmp_path / "keys" / "gallery.key", create=True)
    owner.enroll(made_up("a", 0.1))
    owner.enroll(made_up("b", 0.2))
    watch = GalleryWatch(owner.path)  # as the worker's main() makes it: the key file is learnt on the first reload
    recogniser = Recogniser(engine, list(owner.residents.values()), 0.5, "off")
    reload_if_changed(watch, recogniser, settings(tmp_path))
    assert set(recogniser.residents) == {"a", "b"}  # nothing changed, nothing reloaded

    files = KeyFiles(tmp_path / "keys" / "gallery.key")
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(keys, "promote_next", die)
        with pytest.raises(Crash):
            owner.delete("a")  # steps 1-4 done: the gallery is under the next key, the old key is noise
    stash = tmp_path / "next-key-in-flight"
    shutil.move(files.next, stash)  # the worker looks for the next key just after step 5 renamed it
    reload_if_changed(watch, recogniser, settings(tmp_path))
    assert recogniser.residents == {}  # it could not read the gallery: it recognises nobody, as it must

    shutil.move(stash, files.next)
    keys.promote_next(files)  # step 5: only the key file changes
    reload_if_changed(watch, recogniser, settings(tmp_path))
    assert set(recogniser.residents) == {"b"}


def test_a_watch_given_the_key_file_sees_a_rotation(tmp_path: Path) -> None:
    owner = Gallery.open(tmp_path / "gallery", "xihan", tmp_path / "keys" / "gallery.key", create=True)
    owner.enroll(made_up("a", 0.1))
    owner.enroll(made_up("b", 0.2))
    watch = GalleryWatch(owner.path, key_file=tmp_path / "keys" / "gallery.key")
    assert not watch.changed()
    owner.delete("a")
    assert watch.changed() and not watch.changed()
