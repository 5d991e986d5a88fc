"""The fault log: the car's last faults, raised and cleared, on disk, surviving restarts (`carctl faults` reads it).

Rules of this module:
- A ring buffer of `runtime.fault_log_capacity` records: once full, the oldest goes.
- The loop only appends to memory (record() never waits); a writer thread persists the log by writing the whole
  ring to a temporary file, fsync, and renaming it over the old one. A crash or power cut mid-write leaves the
  previous log intact, and the loop never waits for the SD card.
- A log file that cannot be read (truncated, corrupt) is moved aside as `<file>.unreadable-<n>` and a new log begun:
  never a crash, and nothing is deleted. A log with some malformed records (a value of the wrong type, text with
  control characters) is moved aside too, and its good records carried into the new log.
- Reading is total: the file is parsed with carctl.safejson within limits (size, depth, count), and every record is
  checked against RECORD_FIELDS before anyone prints it. Anything else raises ValueError, or OSError from the disk.
- Each record says what the car was doing: mode, phase, landing, position, speed, load, door phase.
"""

from __future__ import annotations

import collections
import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from carctl import safejson
from carctl.atomicfile import move_aside, remove_stale_temporaries, write_atomic
from carctl.core.controller import ControllerState
from carctl.core.signals import Event, EventKind, Inputs
from carctl.core.supervisor import FAULTS, Fault, parse_fault_detail
from carctl.filein import NotARegularFile, read_bounded
from carctl.runtime.state_layout import TECHNICIAN_READABLE

VERSION = 1


# The largest log runtime.fault_log_capacity allows (100,000 records of about 400 bytes), with room.
MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_VALUES = 2_000_000
RECORD_BYTES = 1024  # a record is about 300 bytes of JSON
RECORD_VALUES = 48  # and about 15 fields
NUMBER = (int, float)
# Every key record_of() writes, with the type of its value; "meaning" and "drive_code" are written for some faults.
RECORD_FIELDS: dict[str, type | tuple[type, ...]] = {
    "t": NUMBER, "tick": int, "event": str, "fault": str, "code": int, "level": int, "mode": str, "phase": str,
    "landing": int, "position_m": NUMBER, "speed_m_s": NUMBER, "load_kg": NUMBER, "door": str,
}
OPTIONAL_FIELDS: dict[str, type | tuple[type, ...]] = {"meaning": str, "drive_code": int}
MAX_TEXT_CHARS = 200
# Wall-clock seconds of a record: from 1970 to 2106 (what a 32-bit unsigned time can hold).
MAX_T = 2.0**32


@dataclass(frozen=True, slots=True)
class LogContents:
    """What a log file holds: its good records, oldest first, and how many were left out as malformed."""

    records: list[dict[str, Any]]
    malformed: int = 0
    first_problem: str = ""  # "records[3].t: must be a number (got list)", or "" when every record is good


def read(path: Path) -> list[dict[str, Any]]:
    """The good records of a log file, oldest first; ValueError if it is not a readable fault log."""
    return read_log(path).records


def read_log(path: Path, capacity: int | None = None) -> LogContents:
    """The records of a log file, and the malformed ones counted; ValueError if the file as a whole is not a
    readable fault log (not a regular file, too large, not UTF-8 JSON, not a version-1 log), OSError from the disk
    (FileNotFoundError for a missing file)."""
    # The firmware reads a log of its own capacity (RECORD_BYTES and RECORD_VALUES per record, with room to spare),
    # so a crafted file cannot delay its start or take its memory; `carctl faults` reads up to the largest capacity.
    max_bytes = MAX_FILE_BYTES if capacity is None else min(MAX_FILE_BYTES, 4096 + capacity * RECORD_BYTES)
    max_values = MAX_VALUES if capacity is None else min(MAX_VALUES, 64 + capacity * RECORD_VALUES)
    try:
        raw = read_bounded(path, max_bytes)  # a FIFO would block the reader, a device be read for ever
    except NotARegularFile as refusal:
        raise ValueError(str(refusal)) from None
    try:
        data = safejson.loads(raw, max_bytes=max_bytes, max_depth=4, max_values=max_values)
    except safejson.JsonRefused as refused:
        raise ValueError(f"{path}: not a carctl fault log ({refused})") from None
    if not isinstance(data, dict) or not _is_version(data.get("version")) or not isinstance(data.get("records"), list):
        raise ValueError(f"{path}: not a carctl fault log")
    good: list[dict[str, Any]] = []
    problems: list[str] = []
    for index, record in enumerate(data["records"]):
        problem = record_problem(record)
        if problem is None:
            good.append(record)
        else:
            problems.append(f"records[{index}]{problem}")
    return LogContents(good, len(problems), problems[0] if problems else "")


def _is_version(value: Any) -> bool:
    """The log's version, VERSION, as a whole number: true and 1.0 equal 1 in Python, but are not a version."""
    return isinstance(value, int) and not isinstance(value, bool) and value == VERSION


def record_problem(record: Any) -> str | None:
    """What is wrong with one record, as ``.key: problem`` (or ``: problem``), or None if it can be shown. Keys a
    later version may add are kept and not checked: nothing prints them but as JSON."""
    if not isinstance(record, dict):
        return f": must be a table (got {type(record).__name__})"
    for key, kind in (*RECORD_FIELDS.items(), *OPTIONAL_FIELDS.items()):
        if key not in record:
            if key in RECORD_FIELDS:
                return f".{key}: is missing"
            continue
        value = record[key]
        if isinstance(value, bool) or not isinstance(value, kind):
            expected = "a number" if kind is NUMBER else "text" if kind is str else "a whole number"
            return f".{key}: must be {expected} (got {type(value).__name__})"
        if isinstance(value, str) and (len(value) > MAX_TEXT_CHARS or not value.isprintable()):
            return f".{key}: must be printable text of at most {MAX_TEXT_CHARS} characters"
    if record["event"] not in ("raised", "cleared"):
        return ".event: must be raised or cleared"
    if not 0 <= record["t"] <= MAX_T:
        return f".t: must be seconds since 1970, 0 to {MAX_T:.0f}"
    return None


def record_of(event: Event, state: ControllerState, inputs: Inputs, time_s: float) -> dict[str, Any] | None:
    """The log record of a fault event (None for other events)."""
    if event.kind is EventKind.FAULT_RAISED:
        name, code, level = parse_fault_detail(event.detail)
        what = {"event": "raised", "fault": name, "code": code, "level": level,
                "meaning": FAULTS[Fault(name)].meaning}
        if name == Fault.DRIVE_FAULT.value:
            what["drive_code"] = inputs.drive_fault_code  # the drive's own code (docs/register-map.md)
    elif event.kind is EventKind.FAULT_CLEARED:
        spec = FAULTS[Fault(event.detail)]
        what = {"event": "cleared", "fault": event.detail, "code": spec.code, "level": int(spec.level)}
    else:
        return None
    return {"t": round(time_s, 3), "tick": event.tick, **what, "mode": state.mode.value, "phase": state.phase.value,
            "landing": state.landing, "position_m": round(inputs.position_m, 4),
            "speed_m_s": round(inputs.speed_m_s, 3), "load_kg": round(inputs.load_kg, 1),
            "door": state.door.phase.value}


class FaultLog:
    def __init__(self, path: Path, capacity: int = 500) -> None:
        self.path = path
        self.ring: collections.deque[dict[str, Any]] = collections.deque(maxlen=capacity)
        self.set_aside: Path | None = None
        self.write_errors = 0
        remove_stale_temporaries(path)  # left by a writer killed mid-write (a power cut)
        self._dirty = threading.Event()
        if path.exists():
            try:
                contents = read_log(path, capacity)
            except (OSError, ValueError):
                self.set_aside = move_aside(self.path)
            else:
                self.ring.extend(contents.records)
                if contents.malformed:
                    # Kept whole for whoever looks into it; the good records go on in the new log at once.
                    self.set_aside = move_aside(self.path)
                    self._dirty.set()
        self._stopping = False
        self._lock = threading.Lock()  # guards the ring between the loop and the writer (never held on I/O)
        self._writer = threading.Thread(target=self._write_loop, name="carctl-fault-log", daemon=True)
        self._writer.start()

    def add(self, events: tuple[Event, ...], state: ControllerState, inputs: Inputs) -> None:
        """Take the cycle's fault events (called by the loop; never waits for the disk)."""
        added = False
        for event in events:
            record = record_of(event, state, inputs, time.time())
            if record is not None:
                with self._lock:
                    self.ring.append(record)
                added = True
        if added:
            self._dirty.set()

    def records(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.ring)

    def _write_loop(self) -> None:
        while not self._stopping:
            self._dirty.wait(timeout=1.0)
            if self._dirty.is_set():
                self._dirty.clear()
                self._write()

    def _write(self) -> None:
        body = json.dumps({"version": VERSION, "records": self.records()}, separators=(",", ":"))
        try:
            write_atomic(self.path, body.encode(), mode=TECHNICIAN_READABLE)
        except OSError:
            self.write_errors += 1  # counted in the health record; the ring is still in memory

    def close(self) -> None:
        """Write what is pending and stop the writer."""
        self._stopping = True
        self._dirty.set()
        self._writer.join(timeout=5)
        self._write()
