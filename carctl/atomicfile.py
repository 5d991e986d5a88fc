"""Replace a file's contents all at once, and clear away what crashed writers left behind. Used for the face gallery
and its key's version floor, the platform's settings and the fault log.

Rules of this module:
- A write goes to a temporary file in the same directory, is fsync'd, renamed over the target, and the directory is
  fsync'd: a crash or power cut at any point leaves either the old contents or the new, never a mix.
- A temporary is named `.<target>.<pid>.<random>.tmp`, so the writer that made it can be recognised. A writer killed
  mid-write (SIGKILL, a power cut) leaves its temporary behind; remove_stale_temporaries() deletes those whose
  writer is no longer alive, and is called before each write and when the owner opens the file to read it.
- A temporary is never taken from a writer that may still be running: one whose pid is alive is kept unless it is
  older than STALE_AFTER_S (then its pid has been reused: no write takes that long). A temporary with no pid in its
  name (the naming before this one) is removed once it is older than STALE_AFTER_S.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import time
from pathlib import Path

TEMPORARY_SUFFIX = ".tmp"
# Far longer than any write of these small files takes, even on a slow SD card.
STALE_AFTER_S = 600.0
_WRITER_AND_RANDOM = re.compile(r"^(?P<pid>[0-9]{1,10})\.[0-9a-f]{16}$")
_BEFORE_PIDS = re.compile(r"^[a-z0-9_]{8}$")  # tempfile.mkstemp's random part, the naming before this one
_EXCLUSIVE_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def temporary_prefix(path: Path) -> str:
    """Every temporary of ``path`` starts with this (and ends with TEMPORARY_SUFFIX)."""
    return f".{path.name}."


def _new_temporary(path: Path) -> tuple[int, Path]:
    """A new, empty temporary beside ``path`` (mode 0600), opened for writing; named after this process."""
    for _ in range(8):
        temporary = path.with_name(f"{temporary_prefix(path)}{os.getpid()}.{secrets.token_hex(8)}{TEMPORARY_SUFFIX}")
        try:
            return os.open(temporary, _EXCLUSIVE_NEW, 0o600), temporary
        except FileExistsError:
            continue  # 64 random bits collided: try another name
    raise FileExistsError(errno.EEXIST, "no free temporary name", str(path))


def fsync_directory(directory: Path) -> None:
    """Make a rename or an unlink in ``directory`` survive a power cut."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_new_private(path: Path, data: bytes) -> None:
    """A new file at ``path`` holding ``data`` (a key), mode 0600 from its creation, never over an existing file or
    through a link (FileExistsError, OSError); a file cut short is removed, and the new name survives a power cut."""
    descriptor = os.open(path, _EXCLUSIVE_NEW, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        path.unlink(missing_ok=True)  # a key cut short is not a key, and it would block the next try
        raise
    fsync_directory(path.parent)


def write_atomic(path: Path, data: bytes, mode: int | None = None) -> None:
    """Write ``data`` to ``path`` atomically (``mode``, e.g. 0o600, is set before the file appears; else 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    descriptor, temporary = _new_temporary(path)
    try:
        with os.fdopen(descriptor, "wb") as out:
            out.write(data)
            out.flush()
            if mode is not None:
                os.fchmod(out.fileno(), mode)
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)


def aside_name(path: Path) -> Path:
    """The first free `<file>.unreadable-<n>` beside ``path``: where an unusable file is kept for whoever looks into
    it, out of the way of a new one."""
    number = 1
    while os.path.lexists(aside := path.with_name(f"{path.name}.unreadable-{number}")):
        number += 1
    return aside


def move_aside(path: Path) -> Path:
    """Move an unusable file (or whatever stands at ``path``) to aside_name(); OSError if it cannot be moved."""
    aside = aside_name(path)
    os.replace(path, aside)
    return aside


def _writer_may_run(middle: str) -> bool | None:
    """Whether the writer of a temporary (named by what lies between the prefix and the suffix) may still be
    writing; None when the name is not one of ours (say, the temporary of `<target>.version`)."""
    match = _WRITER_AND_RANDOM.match(middle)
    if match:
        return _alive(int(match["pid"]))
    if _BEFORE_PIDS.match(middle):
        return True  # no pid to ask: only its age tells
    return None


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False  # os.kill(0, 0) would signal our own process group: such a name is not a writer's
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    except OverflowError:
        return False  # no such pid can exist
    return True


def remove_stale_temporaries(path: Path, now_s: float | None = None) -> int:
    """Delete the temporaries of ``path`` left by writers that died mid-write; returns how many were removed.

    Never raises for a directory that is missing or cannot be listed, nor for a temporary that cannot be removed:
    clearing up must not stop the file from being read or written."""
    prefix = temporary_prefix(path)
    now_s = time.time() if now_s is None else now_s
    removed = 0
    try:
        with os.scandir(path.parent) as listing:
            entries = list(listing)
    except OSError:
        return 0
    for entry in entries:
        name = entry.name
        if not (name.startswith(prefix) and name.endswith(TEMPORARY_SUFFIX)):
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            may_run = _writer_may_run(name[len(prefix):-len(TEMPORARY_SUFFIX)])
            if may_run is None:
                continue
            if may_run and now_s - entry.stat(follow_symlinks=False).st_mtime < STALE_AFTER_S:
                continue
            os.unlink(entry.path)
            removed += 1
        except OSError:
            continue  # gone already (its writer renamed it, another opener removed it), or not ours to remove
    return removed
