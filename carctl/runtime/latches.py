"""The latched faults on disk: restored at start before the first drive command, written whenever they change.

Rules of this module:
- A latched fault (overspeed, a final limit, unintended car movement, a lost position) may be reset only by a
  competent person (EN 81-20 5.6.7); a controller restart or a power cycle must not do it. So the set is written
  atomically (temporary, fsync, rename: atomicfile.write_atomic) each time it changes, and read at start.
- restore() gives the set, or None when there is no record the car can trust: a record that does not exist (a new
  board, a re-imaged card, a state partition that did not mount, a record deleted), that cannot be read, or that is
  not one this firmware wrote (malformed, naming a fault that does not latch, a link or a device instead of a
  file). The core then holds the car on latch_record_unreadable until the maintenance reset, never "no faults";
  the commissioning engineer's reset on a new board is what writes its first record. A record that was there but
  refused is moved aside (`<file>.unreadable-<n>`) for whoever looks into it.
- The loop never waits for the disk: keep() hands the set to a writer thread, which writes the newest set it has
  been given, and every VERIFY_EVERY_S reads the record back and writes it again if it has gone or changed. While
  the record cannot be written, ``failing`` is true (the loop shows it as the fault latch_record_unwritable).
- close() writes what is pending before the process ends.
- The record also keeps an alarm that is active (issue 15, EN 81-28): it stays active across a restart until the
  rescuer's reset at the car. The key "alarm" is written only while one is; a record without it has none. With it,
  "alarm_id": the id the alarm's platform events carry, so that after a restart they carry the same one and an
  operator's acknowledgement of it is still taken.
- A record that cannot be trusted loses the alarm it may have held, as it loses the latched faults: the car is
  held on latch_record_unreadable (told to the platform), a rider still in it starts a new alarm with the button,
  and the trapped-passenger watch reports someone held (docs/alarm.md).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

from carctl import safejson
from carctl.atomicfile import move_aside, remove_stale_temporaries, write_atomic
from carctl.core.faults import FAULTS, Fault
from carctl.core.signals import AlarmPhase
from carctl.filein import read_bounded
from carctl.protocol.loopback import ALARM_ID
from carctl.runtime.state_layout import TECHNICIAN_READABLE

VERSION = 1
MAX_FILE_BYTES = 16 * 1024  # a few names of faults
VERIFY_EVERY_S = 10.0
_LATCHING = {fault.value: fault for fault in Fault if FAULTS[fault].latched}


class LatchRecord:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.write_errors = 0
        self.rewrites = 0  # the record found gone or changed on disk, and written again
        self.failing = False  # the last attempt to write the record failed
        self.problem = ""  # why there was no record to trust at start ("" when there was)
        self.set_aside: Path | None = None
        self.alarm = AlarmPhase.IDLE  # the alarm recorded (restore())
        self.alarm_id = ""  # ... and its id ("" when it has none)
        self._kept: _Kept | None = None  # what was last handed to the writer
        self._pending: _Kept | None = None
        self._written: tuple[bytes, _Kept] | None = None  # what the record should hold (the writer's)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self._writer: threading.Thread | None = None

    # -- at start ------------------------------------------------------------------------------------------------

    def restore(self) -> frozenset[Fault] | None:
        """The latched faults recorded, or None when there is no record to trust (self.problem says why)."""
        remove_stale_temporaries(self.path)
        try:
            data = read_bounded(self.path, MAX_FILE_BYTES, follow_symlinks=False)
        except FileNotFoundError:
            self.problem = (f"{self.path}: no record (a new board, or the record was lost); the maintenance reset "
                            f"writes it")
            return None
        except OSError as error:
            self.problem = f"{self.path}: {getattr(error, 'reason', None) or error.strerror or error}"
            self._move_aside()
            return None
        try:
            kept = parse_record(safejson.loads(data, max_bytes=MAX_FILE_BYTES, max_depth=4))
        except ValueError as error:
            self.problem = f"{self.path}: {error}"
            self._move_aside()
            return None
        self._kept = kept
        self._written = (_body(*kept), kept)
        self.alarm, self.alarm_id = kept[1], kept[2]
        return kept[0]

    def _move_aside(self) -> None:
        try:
            self.set_aside = move_aside(self.path)
        except OSError:
            pass  # it stays where it is; the first write replaces it

    # -- while running -------------------------------------------------------------------------------------------

    def keep(self, latched: frozenset[Fault], alarm: AlarmPhase = AlarmPhase.IDLE, alarm_id: str = "") -> None:
        """The loop's latched faults (and the alarm to keep: core.state.kept_alarm, with its id) this cycle:
        written (by the writer thread) when they differ from the last."""
        if self._writer is None:
            self._writer = threading.Thread(target=self._write_loop, name="carctl-latches", daemon=True)
            self._writer.start()
        kept = (latched, alarm, alarm_id if alarm is not AlarmPhase.IDLE else "")
        if kept == self._kept:
            return
        self._kept = kept
        with self._lock:
            self._pending = kept
        self._wake.set()

    def _write_loop(self) -> None:
        verify_in = VERIFY_EVERY_S
        while not self._stopping:
            self._wake.wait(timeout=1.0)
            self._wake.clear()
            self._write_pending()
            verify_in -= 1.0
            if verify_in <= 0:
                verify_in = VERIFY_EVERY_S
                self._verify()

    def _write_pending(self) -> None:
        with self._lock:
            kept, self._pending = self._pending, None
        if kept is not None:
            self._write(_body(*kept), kept)

    def _write(self, body: bytes, faults: _Kept) -> bool:
        try:
            write_atomic(self.path, body, mode=TECHNICIAN_READABLE)
        except OSError:
            self.write_errors += 1  # in the health record; tried again within a second, unless a newer set came
            self.failing = True
            with self._lock:
                if self._pending is None:
                    self._pending = faults
            return False
        self._written = (body, faults)
        self.failing = False
        return True

    def _verify(self) -> None:
        """The record on disk is what was last written; if it has gone or changed, it is written again."""
        if self._written is None:
            return
        expected, faults = self._written
        try:
            found = read_bounded(self.path, MAX_FILE_BYTES, follow_symlinks=False)
        except OSError:
            found = None
        if found != expected:
            self.rewrites += 1
            self._write(expected, faults)

    def close(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._writer is not None:
            self._writer.join(timeout=5)
        self._write_pending()


_Kept = tuple[frozenset[Fault], AlarmPhase, str]
_KEYS = {"version", "latched", "alarm", "alarm_id"}
# The alarm phases a record may hold (core.state.kept_alarm never keeps a voice connection: it ends with the run).
_KEPT_ALARMS = {phase.value: phase for phase in (AlarmPhase.REQUESTED, AlarmPhase.TRANSMITTED)}


def _body(faults: frozenset[Fault], alarm: AlarmPhase = AlarmPhase.IDLE, alarm_id: str = "") -> bytes:
    record: dict[str, object] = {"version": VERSION, "latched": sorted(fault.value for fault in faults)}
    if alarm is not AlarmPhase.IDLE:
        record["alarm"] = alarm.value
        if alarm_id:
            record["alarm_id"] = alarm_id
    return json.dumps(record).encode()


def parse(value: object) -> frozenset[Fault]:
    """The latched faults of a record's JSON value; ValueError naming what is wrong with it."""
    return parse_record(value)[0]


def parse_record(value: object) -> _Kept:
    """The latched faults, the alarm kept and its id in a record's JSON value; ValueError naming what is wrong
    with it."""
    if not isinstance(value, dict) or not {"version", "latched"} <= set(value) <= _KEYS:
        raise ValueError("expected an object with the keys version and latched (and alarm and alarm_id, only while "
                         "one is active)")
    alarm = value.get("alarm", "idle")
    if "alarm" in value and (not isinstance(alarm, str) or alarm not in _KEPT_ALARMS):
        raise ValueError(f"alarm must be one of {', '.join(_KEPT_ALARMS)} ({str(alarm)[:40]!r})")
    alarm_id = value.get("alarm_id", "")
    if "alarm_id" in value and ("alarm" not in value or not isinstance(alarm_id, str)
                                or not ALARM_ID.fullmatch(alarm_id)):
        raise ValueError("alarm_id must be the id of the alarm kept (32 hex digits), and only with alarm")
    if type(value["version"]) is not int or value["version"] != VERSION:
        raise ValueError(f"version must be {VERSION}")
    names = value["latched"]
    if not isinstance(names, list) or len(names) > len(_LATCHING):
        raise ValueError("latched must be a list of fault names")
    faults = set()
    for name in names:
        if not isinstance(name, str) or name not in _LATCHING:
            raise ValueError(f"latched names a fault that does not latch ({str(name)[:40]!r})")
        faults.add(_LATCHING[name])
    return frozenset(faults), _KEPT_ALARMS.get(alarm, AlarmPhase.IDLE), alarm_id


__all__ = ["LatchRecord", "parse", "parse_record"]
