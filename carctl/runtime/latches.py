"""The latched faults on disk: restored at start before the first drive command, written whenever they change.

Rules of this module:
- A latched fault (overspeed, a final limit, unintended car movement, a lost position) may be reset only by a
  competent person (EN 81-20 5.6.7); a controller restart or a power cycle must not do it. So the set is written
  atomically (temporary, fsync, rename: atomicfile.write_atomic) each time it changes, and read at start.
- restore() gives the set, or None when the record exists but cannot be trusted (unreadable, truncated, malformed,
  naming a fault this firmware does not know, a link or a device instead of a file): the core then holds the car on
  "latch record unreadable" until the maintenance reset, never "no faults". A record that does not exist is a car
  that never latched anything (its first start): the record is written at once, so from then on it exists.
- The loop never waits for the disk: keep() hands the set to a writer thread, which writes the newest set it has
  been given. close() writes what is pending before the process ends.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

from carctl import safejson
from carctl.atomicfile import remove_stale_temporaries, write_atomic
from carctl.core.supervisor import Fault
from carctl.filein import read_bounded

VERSION = 1
MAX_FILE_BYTES = 16 * 1024  # a few names of faults
_KNOWN = {fault.value: fault for fault in Fault}


class LatchRecord:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.write_errors = 0
        self.problem = ""  # why the record at start could not be trusted ("" when it could)
        self._kept: frozenset[Fault] | None = None  # the set last handed to the writer
        self._pending: frozenset[Fault] | None = None
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self._writer: threading.Thread | None = None

    # -- at start ------------------------------------------------------------------------------------------------

    def restore(self) -> frozenset[Fault] | None:
        """The latched faults recorded, an empty set for a car that never recorded any, None when the record
        cannot be trusted (self.problem says why)."""
        remove_stale_temporaries(self.path)
        try:
            data = read_bounded(self.path, MAX_FILE_BYTES, follow_symlinks=False)
        except FileNotFoundError:
            return frozenset()
        except OSError as error:
            self.problem = f"{self.path}: {getattr(error, 'reason', None) or error.strerror or error}"
            return None
        try:
            value = safejson.loads(data, max_bytes=MAX_FILE_BYTES, max_depth=4)
            faults = _parse(value)
        except ValueError as error:
            self.problem = f"{self.path}: {error}"
            return None
        self._kept = faults
        return faults

    # -- while running -------------------------------------------------------------------------------------------

    def keep(self, latched: frozenset[Fault]) -> None:
        """The loop's latched faults this cycle: written (by the writer thread) when they differ from the last."""
        if latched == self._kept:
            return
        self._kept = latched
        with self._lock:
            self._pending = latched
        if self._writer is None:
            self._writer = threading.Thread(target=self._write_loop, name="carctl-latches", daemon=True)
            self._writer.start()
        self._wake.set()

    def _write_loop(self) -> None:
        while not self._stopping:
            self._wake.wait(timeout=1.0)
            self._wake.clear()
            self._write_pending()

    def _write_pending(self) -> None:
        with self._lock:
            faults, self._pending = self._pending, None
        if faults is None:
            return
        body = json.dumps({"version": VERSION, "latched": sorted(fault.value for fault in faults)})
        try:
            write_atomic(self.path, body.encode(), mode=0o644)
        except OSError:
            self.write_errors += 1  # in the health record; tried again within a second, unless a newer set came
            with self._lock:
                if self._pending is None:
                    self._pending = faults

    def close(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._writer is not None:
            self._writer.join(timeout=5)
        self._write_pending()


def _parse(value: object) -> frozenset[Fault]:
    if not isinstance(value, dict) or set(value) != {"version", "latched"}:
        raise ValueError("expected an object with exactly the keys version and latched")
    if value["version"] != VERSION or isinstance(value["version"], bool):
        raise ValueError(f"version must be {VERSION}")
    names = value["latched"]
    if not isinstance(names, list) or len(names) > len(_KNOWN):
        raise ValueError("latched must be a list of fault names")
    faults = set()
    for name in names:
        if not isinstance(name, str) or name not in _KNOWN:
            raise ValueError(f"latched names an unknown fault ({str(name)[:40]!r})")
        faults.add(_KNOWN[name])
    return frozenset(faults)


__all__ = ["LatchRecord"]
