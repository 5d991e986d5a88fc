"""The gallery key's files: the key, the next key while a deletion replaces it, and the version floor.

    <key_file>           the gallery key: 32 random bytes, mode 0600
    <key_file>.next      the key that replaces it, present only while a deletion rotates the key (gallery.py)
    <key_file>.version   the highest gallery version this car has accepted: {"community": "...", "version": n}

Rules of this module:
- All three live in the key's directory, never in the gallery directory, so restoring the gallery directory from a
  backup brings back neither an old key nor an old floor.
- A key file is created with O_EXCL and mode 0600, fsync'd, and its directory fsync'd; creating a key never
  overwrites one. A key file that is a symbolic link, not a regular file, readable by others, or that does not hold
  exactly 32 bytes is refused, from its lstat() before a byte is read (so /dev/zero or a FIFO is never read).
- No write follows a symbolic link: new files are made with O_EXCL and O_NOFOLLOW, the floor is replaced by a rename,
  a key is overwritten only through O_NOFOLLOW and only if it is a regular file, and destroying a link removes the
  link alone. A link where a key should be (to the community's command key, say) is never written through.
- A key is destroyed by writing random bytes over it in place and fsync'ing before it is unlinked or renamed over:
  what the file system reuses holds noise, not the key. On an SD card wear-levelling may keep the old flash blocks,
  so this is best effort (docs/privacy.md).
- The floor names its community, so one key file serves one community's gallery: rotating a key that two
  galleries share would leave the other one undecryptable, so a second community is refused instead.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from carctl import safejson
from carctl.atomicfile import fsync_directory, remove_stale_temporaries, write_atomic, write_new_private
from carctl.filein import FileRefused, NotARegularFile, private_file_size, read_bounded

KEY_BYTES = 32
_FLOOR_MAX_BYTES = 4096
# Writing over a key in place: never through a link, never waiting on a FIFO.
_EXISTING_FILE = os.O_WRONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


class GalleryError(Exception):
    """The gallery cannot be used: unreadable, tampered, wrong key, an older copy, or a refused change.

    Defined here, where the key files are read, so that gallery.py (which imports this module and re-exports it)
    and this module raise the one error their callers catch."""


@dataclass(frozen=True, slots=True)
class KeyFiles:
    """Where one gallery key's files are."""

    key: Path

    @property
    def next(self) -> Path:
        return self.key.with_name(self.key.name + ".next")

    @property
    def floor(self) -> Path:
        return self.key.with_name(self.key.name + ".version")


def _write_new_key(path: Path) -> bytes:
    """A new random key in a new file at ``path`` (mode 0600); OSError if it cannot be made (FileExistsError if
    a file is already there)."""
    key = secrets.token_bytes(KEY_BYTES)
    write_new_private(path, key)
    return key


def create_key(path: Path) -> None:
    """A new random key, readable by the owner only. Refuses to overwrite an existing key."""
    try:
        _write_new_key(path)
    except FileExistsError:
        raise GalleryError(f"key file {path} already exists; not overwriting it") from None


def create_next_key(files: KeyFiles) -> bytes:
    """Rotation step 1: the new key, written to `<key_file>.next`. OSError when it cannot be written (the key's
    directory is read-only, full, or a `.next` is already there)."""
    return _write_new_key(files.next)


def load_key(path: Path) -> bytes:
    """The key in ``path``; GalleryError naming the file if it is missing, a symbolic link, not a regular file, open
    to others or not 32 bytes. All of that is checked before a byte is read."""
    try:
        size = private_file_size(path)
    except FileRefused as refused:
        raise GalleryError(f"key file {path} {refused.reason}") from None
    except OSError as error:
        raise GalleryError(f"key file {path}: {error.strerror}") from None
    if size != KEY_BYTES:
        raise GalleryError(f"key file {path} does not hold a {KEY_BYTES}-byte key")
    try:
        # Without following a link, and only a regular file of at most 32 bytes: replaced since the lstat() or not.
        key = read_bounded(path, KEY_BYTES, follow_symlinks=False)
    except OSError as error:
        raise GalleryError(f"key file {path}: {error.strerror or error}") from None
    if len(key) != KEY_BYTES:
        raise GalleryError(f"key file {path} does not hold a {KEY_BYTES}-byte key")
    return key


def overwrite_in_place(path: Path) -> None:
    """Write random bytes over the whole of ``path`` without truncating or moving it, and fsync (rotation step 4).
    OSError if it cannot be done; NotARegularFile (one) if ``path`` is a symbolic link (whose target is someone
    else's file: it is not written) or not a regular file."""
    try:
        descriptor = os.open(path, _EXISTING_FILE)
    except OSError as error:
        if error.errno == errno.ELOOP and os.path.islink(path):
            raise NotARegularFile(path, "is a symbolic link; not writing through it") from None
        raise
    with os.fdopen(descriptor, "wb") as target:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):
            raise NotARegularFile(path, "is not a regular file; not writing to it")
        os.set_blocking(descriptor, True)
        target.write(secrets.token_bytes(status.st_size))
        target.flush()
        os.fsync(descriptor)


def destroy(path: Path) -> None:
    """Overwrite ``path`` in place, unlink it and fsync its directory; nothing to do if it is not there. A symbolic
    link, or anything else that is not a regular file, holds no key of ours: it is unlinked and not written to."""
    try:
        status = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISREG(status.st_mode):
        try:
            overwrite_in_place(path)
        except FileNotFoundError:
            return
    path.unlink(missing_ok=True)
    fsync_directory(path.parent)


def promote_next(files: KeyFiles) -> None:
    """Rotation step 5: `<key_file>.next` becomes the key, in one rename that survives a power cut. NotARegularFile
    if `.next` is a symbolic link or not a regular file (the key would become one)."""
    if not stat.S_ISREG(os.lstat(files.next).st_mode):
        raise NotARegularFile(files.next, "is not a regular file; not making it the key")
    os.replace(files.next, files.key)
    fsync_directory(files.key.parent)


def read_floor(files: KeyFiles, community: str) -> int:
    """The lowest gallery version this car still accepts for ``community`` (0 when none is recorded yet)."""
    try:
        raw = read_bounded(files.floor, _FLOOR_MAX_BYTES, follow_symlinks=False)
        data = safejson.loads(raw, max_bytes=_FLOOR_MAX_BYTES, max_depth=2)
    except FileNotFoundError:
        return 0
    except OSError as error:
        raise GalleryError(f"version floor {files.floor}: {error.strerror or error}") from None
    except safejson.JsonRefused as error:
        raise GalleryError(f"version floor {files.floor} is unreadable ({error})") from None
    version = data.get("version") if isinstance(data, dict) else None
    if not isinstance(version, int) or isinstance(version, bool) or not 0 <= version < 1 << 64 \
            or not isinstance(data.get("community"), str):
        raise GalleryError(f"version floor {files.floor} is not a carctl version floor")
    if data["community"] != community:
        raise GalleryError(f"key file {files.key} is the key of community {data['community']!r}, not {community!r}: "
                           f"each community's gallery needs its own key file")
    return version


def record_floor(files: KeyFiles, community: str, version: int) -> None:
    """Rotation step 3, and after every write: ``version`` is the lowest this car accepts from now on. OSError if
    it cannot be written. A new file renamed over the floor: a link in its place is replaced, never written through."""
    body = safejson.dumps({"community": community, "version": version})
    write_atomic(files.floor, body, mode=0o600)


def remove_all(files: KeyFiles) -> None:
    """The key, any next key (both destroyed) and the floor, for a wipe."""
    destroy(files.next)
    destroy(files.key)
    files.floor.unlink(missing_ok=True)
    remove_stale_temporaries(files.floor)
    if files.key.parent.exists():
        fsync_directory(files.key.parent)
