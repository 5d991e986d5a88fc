"""The fault log: the car's last faults, raised and cleared, on disk, surviving restarts (`carctl faults` reads it).

Rules of this module:
- A ring buffer of `runtime.fault_log_capacity` records: once full, the oldest goes.
- The loop only appends to memory (record() never waits); a writer thread persists the log by writing the whole
  ring to a temporary file, fsync, and renaming it over the old one. A crash or power cut mid-write leaves the
  previous log intact, and the loop never waits for the SD card.
- A log file that cannot be read (truncated, corrupt) is moved aside as `<file>.unreadable-<n>` and a new log begun:
  never a crash, and nothing is deleted.
- Each record says what the car was doing: mode, phase, landing, position, speed, load, door phase.
"""

from __future__ import annotations

import collections
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from carctl.atomicfile import remove_stale_temporaries, write_atomic
from carctl.core.controller import ControllerState
from carctl.core.signals import Event, EventKind, Inputs
from carctl.core.supervisor import FAULTS, Fault, parse_fault_detail

VERSION = 1


def read(path: Path) -> list[dict[str, Any]]:
    """The records of a log file, oldest first; ValueError if it is not a readable fault log."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not text ({error})") from None
    if not isinstance(data, dict) or data.get("version") != VERSION or not isinstance(data.get("records"), list):
        raise ValueError(f"{path}: not a carctl fault log")
    return [record for record in data["records"] if isinstance(record, dict)]


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
        if path.exists():
            try:
                self.ring.extend(read(path))
            except (OSError, ValueError):
                self.set_aside = self._move_aside()
        self._dirty = threading.Event()
        self._stopping = False
        self._lock = threading.Lock()  # guards the ring between the loop and the writer (never held on I/O)
        self._writer = threading.Thread(target=self._write_loop, name="carctl-fault-log", daemon=True)
        self._writer.start()

    def _move_aside(self) -> Path:
        number = 1
        while (aside := self.path.with_name(f"{self.path.name}.unreadable-{number}")).exists():
            number += 1
        os.replace(self.path, aside)
        return aside

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
            write_atomic(self.path, body.encode())
        except OSError:
            self.write_errors += 1  # counted in the health record; the ring is still in memory

    def close(self) -> None:
        """Write what is pending and stop the writer."""
        self._stopping = True
        self._dirty.set()
        self._writer.join(timeout=5)
        self._write()
