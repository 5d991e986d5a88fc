"""The firmware's structured log: JSON lines, one record per event plus a health record every few seconds.

Rules of this module:
- A record that cannot be written (a full card, a closed stream) is counted, never raised into the loop.
- A log file is bounded: past `runtime.log_max_bytes` it is renamed to `<file>.1` (replacing the one before) and a
  new file is begun, so the log never holds more than twice that on the card. The rename and the open are two system
  calls, once per many megabytes; nothing is compressed or copied on the loop. Under systemd with `runtime.log = "-"`
  the records go to the journal, which bounds itself (journald's SystemMaxUse).
- A new log file is created 0640: technicians in group carctl read it (carctl/runtime/state_layout.py).
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import IO, Any

from carctl.filein import check_output
from carctl.runtime.state_layout import TECHNICIAN_READABLE

DEFAULT_MAX_BYTES = 16 * 1024 * 1024
ROTATED_SUFFIX = ".1"


class StructuredLog:
    """JSON lines to a stream (stderr), or to a file of at most ``max_bytes`` (then rotated once)."""

    def __init__(self, stream: IO[str], path: str | None = None, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.stream = stream
        self.path = path
        self.max_bytes = max_bytes
        self.failed_writes = 0
        self.rotations = 0
        self.rotation_failures = 0
        self.bytes_in_file = _size(stream) if path is not None else 0

    def write(self, kind: str, **fields: Any) -> None:
        try:
            line = json.dumps({"t": round(time.time(), 3), "kind": kind, **fields}, default=str) + "\n"
            self.stream.write(line)
            self.stream.flush()
        except (OSError, ValueError, TypeError):
            self.failed_writes += 1
            return
        if self.path is not None:
            self.bytes_in_file += len(line)
            if self.bytes_in_file >= self.max_bytes:
                self._rotate()

    def _rotate(self) -> None:
        assert self.path is not None
        try:
            os.replace(self.path, self.path + ROTATED_SUFFIX)
        except OSError:
            self._start_again_in_place()
            return
        try:
            fresh = _open_append(self.path)
        except OSError:
            # The records so far are in <file>.1; this stream now writes there too: begun again, it stays bounded.
            self._start_again_in_place()
            return
        old, self.stream = self.stream, fresh
        self.bytes_in_file = 0
        self.rotations += 1
        try:
            old.close()
        except OSError:
            pass

    def _start_again_in_place(self) -> None:
        """Rotation failed (the folder not writable, a folder named <file>.1): the file is emptied rather than let
        grow, so the bound holds whatever the folder allows. Counted in the health record (log_rotation_failures);
        what was in the file is lost, which a log that fills the card would lose anyway."""
        self.rotation_failures += 1
        try:
            self.stream.flush()
            os.ftruncate(self.stream.fileno(), 0)
            self.bytes_in_file = 0
        except (OSError, ValueError):
            # Not even that: stop writing to the file (each record is then a counted failed write).
            self.stream = _Closed()

    def close(self) -> None:
        """Close a log file (stderr stays open)."""
        if self.path is not None:
            try:
                self.stream.close()
            except OSError:
                pass


class _Closed:
    """A stream that refuses every write: the log file that could be neither rotated nor emptied."""

    def write(self, text: str) -> int:
        raise OSError("the log file could be neither rotated nor emptied")

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def fileno(self) -> int:
        raise OSError("closed")


def open_log(target: str, max_bytes: int = DEFAULT_MAX_BYTES) -> StructuredLog:
    """The structured log: stderr for "-", else a file appended to. OSError if it cannot be opened, NotARegularFile
    (one) for a FIFO, a device or a folder: writing to a FIFO would block the loop until someone reads it."""
    if target == "-":
        return StructuredLog(sys.stderr)
    check_output(target)
    return StructuredLog(_open_append(target), target, max_bytes)


def _open_append(path: str) -> IO[str]:
    # O_NOFOLLOW: the log's folder is the service's own, but a link planted there must not redirect its writes.
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                         TECHNICIAN_READABLE)
    return os.fdopen(descriptor, "a", encoding="utf-8")


def _size(stream: IO[str]) -> int:
    try:
        return os.fstat(stream.fileno()).st_size
    except (OSError, ValueError, AttributeError):
        return 0
