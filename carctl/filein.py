"""Reading and opening files named from outside (a configuration key, an option): never blocking, never unbounded.

Rules of this module:
- Only a regular file is read. A FIFO would block the reader until someone writes to it (a control loop stopped
  that way), a device like /dev/zero never ends, a directory is not a file: each is refused with a sentence
  naming the path, as an OSError subclass, so callers that already refuse OSError need nothing more.
- The file is opened non-blocking (so opening a FIFO returns at once and is then refused), optionally without
  following a symbolic link, and at most ``max_bytes`` are read: a larger file is refused, not truncated.
- An output named from outside must be a regular file or not exist yet (writing to a FIFO blocks as well).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


class FileRefused(OSError):
    """A file named from outside that is not used; ``reason`` says why without the path, for callers that name the
    path themselves."""

    def __init__(self, path: Path | str, reason: str) -> None:
        super().__init__(f"{path} {reason}")
        self.reason = reason


class NotARegularFile(FileRefused):
    """The path is a FIFO, a device, a directory or a symbolic link where a regular file was expected, or too large."""


class OpenToOthers(FileRefused):
    """A private file (a key) that group or others may read or write."""


def read_bounded(path: Path | str, max_bytes: int, follow_symlinks: bool = True) -> bytes:
    """The contents of a regular file of at most ``max_bytes``; OSError (NotARegularFile for the cases above)."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC | (0 if follow_symlinks else os.O_NOFOLLOW)
    try:
        descriptor = os.open(path, flags)
    except OSError as error:
        if not follow_symlinks and os.path.islink(path):
            raise NotARegularFile(path, "is a symbolic link, not a file of its own") from None
        raise error
    try:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):
            raise NotARegularFile(path, f"is not a regular file ({_kind(status.st_mode)})")
        if status.st_size > max_bytes:
            raise NotARegularFile(path, f"is larger than {max_bytes} bytes")
        os.set_blocking(descriptor, True)
        chunks = []
        remaining = max_bytes + 1
        while remaining > 0:
            chunk = os.read(descriptor, min(remaining, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        data = b"".join(chunks)
    finally:
        os.close(descriptor)
    if len(data) > max_bytes:
        raise NotARegularFile(path, f"is larger than {max_bytes} bytes")
    return data


def private_file_size(path: Path | str) -> int:
    """The size of a private file (a key), from its lstat() before a byte is read: a regular file of its own (not a
    symbolic link, whose target would be someone else's file), mode 0600 or stricter. FileRefused saying which rule
    it breaks, or the OSError of lstat() (FileNotFoundError for a missing file). Read it then with
    read_bounded(..., follow_symlinks=False)."""
    status = os.lstat(path)
    mode = status.st_mode
    if stat.S_ISLNK(mode):
        raise NotARegularFile(path, "is a symbolic link; a key must be a file of its own")
    if not stat.S_ISREG(mode):
        raise NotARegularFile(path, f"is not a regular file ({_kind(mode)})")
    if stat.S_IMODE(mode) & 0o077:
        raise OpenToOthers(path, f"is readable by others (mode {stat.S_IMODE(mode):o}); chmod 600 it")
    return status.st_size


def check_output(path: Path | str) -> None:
    """NotARegularFile unless ``path`` does not exist yet or is a regular file (so writing to it cannot block)."""
    try:
        status = os.stat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISREG(status.st_mode):
        raise NotARegularFile(path, f"is not a regular file ({_kind(status.st_mode)})")


def output_problem(path: Path, option: str) -> str | None:
    """Why the output file ``option`` names cannot be written, in one sentence that names them both, or None if it
    can. Asked before a run, not after it: a run of minutes (a community's day) that ends on a file it cannot write
    has been wasted."""
    folder = path.parent
    if path.is_dir():
        return f"{option} {path}: is a folder, not a file"
    try:
        check_output(path)  # a FIFO would block the run until someone read it; a device is not a report
    except NotARegularFile as refusal:
        return f"{option} {refusal}"
    if not folder.is_dir():
        return f"{option} {path}: the folder {folder} does not exist"
    if not os.access(folder, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        return f"{option} {path}: not writable"
    return None


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a device"),
                       (stat.S_ISBLK, "a device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISLNK, "a symbolic link")):
        if test(mode):
            return name
    return "not a file"
