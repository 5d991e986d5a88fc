"""The maintenance record on disk: an append-only file of hash-chained records (audit_chain.py, docs/audit.md).

Rules of this module:
- The loop makes each record (its sequence, its hash of the one before: microseconds, and only when someone acts)
  and hands the line to a writer thread, which appends it, fsyncs, and rotates: the loop never waits for the card.
- Bounded: at most MAX_PENDING lines wait for the writer (a card that stands still for hours); past that the records
  are counted, not queued, and the first record that fits again says how many were lost, so the chain stays whole.
  On disk: past `runtime.audit_log_max_bytes` the file is renamed to `<file>.1` (replacing the one before) and a new
  one begun, whose first record carries the hash of the last of the old: at most twice the limit on the card.
- At start the chain continues from the last whole record (of `<file>.1` when the file holds none, empty or only a
  torn line: a rotation cut short). A last line cut short by a kill or a power cut (no newline) is recorded
  (`torn_tail`, with its length and hash) and cut off only by the first line written over it: a kill before that line
  is on the card leaves the torn line, found again at the next start: a cut always leaves a trace. A last line that is
  not a record, or a file that cannot be read, is set aside as `<file>.unreadable-<n>` (nothing is deleted) and a new
  chain begun; the loop records that too.
- A number handed out is never handed out again, though the platform hears of a record before the card has it: the
  writer keeps `<file>.reserved` RESERVE_AHEAD numbers ahead of the loop, and the last record at a clean stop. At
  start the numbers reserved past the last record on the card are skipped, and the recovery record declares them
  (`unwritten`; `records_unwritten` when nothing else is to be said).
- Created 0640: technicians in group carctl read it (state_layout.py). Opened with O_NOFOLLOW, and refused at start
  if it is not a regular file (a FIFO would block the writer for ever).
"""

from __future__ import annotations

import collections
import os
import stat
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from carctl import safejson
from carctl.atomicfile import move_aside, write_atomic
from carctl.filein import NotARegularFile, check_output, read_bounded
from carctl.runtime.audit_chain import GENESIS, MAX_LINE_BYTES, canonical_line, digest, make_record, parse_record
from carctl.runtime.state_layout import TECHNICIAN_READABLE

DEFAULT_MAX_BYTES = 4 * 1024 * 1024
ROTATED_SUFFIX = ".1"
MAX_PENDING = 256
RETRY_AFTER_S = 1.0
# The numbers the loop may hand out, kept on the card ahead of it in `<file>.reserved`: a power cut loses the records
# still queued, which the platform may already hold, and the next start must not number others the same. Renewed by
# the writer when less than half is left: more than the queue holds, so the loop does not overtake it.
RESERVED_SUFFIX = ".reserved"
RESERVE_AHEAD = 4 * MAX_PENDING
MAX_RESERVED_BYTES = 64
MAX_SEQ = 2**53  # a JSON number every reader takes as an integer


@dataclass(frozen=True, slots=True)
class Recovery:
    """What the writer found at start that the loop records (its first record of the run): a torn last line (cut off
    by that record's own line), a log set aside, or numbers skipped."""

    action: str  # "torn_tail", "log_set_aside" or "records_unwritten"
    details: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Written:
    """A record as the loop made it: the record, and the hash of its line (what the next record will carry)."""

    record: dict[str, Any]
    line: str
    hash: str


class AuditLog:
    def __init__(self, path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.path = path
        self.rotated = Path(str(path) + ROTATED_SUFFIX)
        self.reservation = Path(str(path) + RESERVED_SUFFIX)
        self.max_bytes = max_bytes
        self.write_errors = 0
        self.rotations = 0
        self.lost = 0  # records not kept since the last that was (the queue was full)
        self.pending: collections.deque[bytes] = collections.deque()
        check_output(path)
        self._torn_bytes = 0
        self.seq, self.last_hash, self.recovery = self._recover()
        self._fd = _open_append(path)
        self._size = os.fstat(self._fd).st_size
        # Where the torn line begins, while it waits for the first line to be written over it (None: nothing torn).
        self._cut_at: int | None = None
        if self._torn_bytes:
            self._size = self._cut_at = max(0, self._size - self._torn_bytes)
        # Before the loop hands out a number (start may wait for the card; the loop may not).
        self.reserved = self.seq
        self._reserve_ahead()
        self._renamed = False  # a rotation renamed the file and has not yet opened the new one
        self._dirty = threading.Event()
        # Held while lines go to the disk, by the writer thread or by close(): never by the loop.
        self._writing = threading.Lock()
        self._stopping = False
        self._writer = threading.Thread(target=self._write_loop, name="carctl-audit-log", daemon=True)
        self._writer.start()

    # -- start: continue the chain -------------------------------------------------------------------------------

    def _recover(self) -> tuple[int, str, Recovery | None]:
        try:
            record, line_hash, torn = _last_record(self.path)
            self._torn_bytes = len(torn)
            if record is None:
                # No whole record in the file: a rotation cut short after its rename, before (nothing, or an empty
                # file) or during (a torn line) the first write into the new file. The chain goes on from the last
                # record of the rotated file, whatever is torn here.
                record, line_hash, _ = _last_record(self.rotated)
        except (OSError, ValueError) as problem:
            self._torn_bytes = 0
            try:
                aside = move_aside(self.path)
            except OSError:
                raise OSError(f"{self.path}: cannot be read ({problem}) nor set aside") from None
            # A new chain, numbered past what the platform may hold of the old one.
            return self._skip_unwritten(0, GENESIS, Recovery("log_set_aside", {"problem": str(problem)[:120],
                                                                              "set_aside": aside.name}))
        seq = record["seq"] if record is not None else 0
        recovery = None
        if torn:
            recovery = Recovery("torn_tail", {"bytes": len(torn), "sha256": digest(torn), "after_seq": seq})
        return self._skip_unwritten(seq, line_hash, recovery)

    def _skip_unwritten(self, seq: int, line_hash: str, recovery: Recovery | None) -> tuple[int, str, Recovery | None]:
        """Numbers the last run reserved past the last record on the card were perhaps handed out, and sent to the
        platform, but never written (a power cut): they are not used again, and the recovery record says so."""
        reserved = _read_reserved(self.reservation)
        if reserved <= seq:
            return seq, line_hash, recovery
        unwritten = [seq + 1, reserved]
        if recovery is None:
            recovery = Recovery("records_unwritten", {"after_seq": seq, "unwritten": unwritten})
        else:
            recovery = Recovery(recovery.action, {**recovery.details, "unwritten": unwritten})
        return reserved, line_hash, recovery

    # -- the loop's side -------------------------------------------------------------------------------------------

    def record(self, action: str, via: str, who: str, details: dict[str, Any]) -> list[Written]:
        """Chain one record and queue its line (never waits for the disk): the records made, which the platform hears
        of too — none when the queue is full (counted), the `records_lost` before it when some were lost."""
        if len(self.pending) >= MAX_PENDING - 1:
            self.lost += 1
            return []
        made = []
        if self.lost:
            lost, self.lost = self.lost, 0
            made.append(self._chain("records_lost", "controller", "audit log", {"records": lost}))
        made.append(self._chain(action, via, who, details))
        return made

    def _chain(self, action: str, via: str, who: str, details: dict[str, Any]) -> Written:
        record = make_record(self.seq + 1, self.last_hash, time.time(), action, via, who, details)
        line = canonical_line(record)
        self.seq, self.last_hash = record["seq"], digest(line)
        self.pending.append(line + b"\n")
        self._dirty.set()
        return Written(record, line.decode("utf-8"), self.last_hash)

    # -- the writer thread ---------------------------------------------------------------------------------------

    def _write_loop(self) -> None:
        while not self._stopping:
            self._dirty.wait(timeout=RETRY_AFTER_S)
            self._dirty.clear()
            self._write_pending()

    def _write_pending(self) -> None:
        with self._writing:
            reserving = True
            while self.pending:
                if reserving and self.reserved - self.seq < RESERVE_AHEAD // 2:
                    reserving = self._reserve_ahead()  # tried once a wake when it fails: the lines go first
                line = self.pending[0]
                try:
                    # A torn line is written over in place (one line past the limit at most), never rotated away.
                    if self._cut_at is None and self._size and self._size + len(line) > self.max_bytes:
                        self._rotate()
                    self._append(line)
                except OSError:
                    self.write_errors += 1  # in the health record; the line waits and is tried again
                    return
                self.pending.popleft()

    def _append(self, line: bytes) -> None:
        if self._cut_at is not None:
            self._write_over_torn(line, self._cut_at)
            return
        before = self._size
        try:
            written = 0
            while written < len(line):
                written += os.write(self._fd, line[written:])
            os.fsync(self._fd)
        except OSError:
            # A part of the line on disk would be a torn line in the middle of the log: take it back.
            try:
                os.ftruncate(self._fd, before)
            except OSError:
                pass
            raise
        self._size = before + len(line)

    def _write_over_torn(self, line: bytes, at: int) -> None:
        """The first line of the run, in place of the torn one. The file is only ever shortened to what is still a
        torn line (its first bytes), and the line then written over them: at every moment the file ends with a torn
        line or with the new one, so a kill leaves a trace (an O_APPEND descriptor cannot write at an offset)."""
        descriptor = os.open(self.path, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            if os.fstat(descriptor).st_size > at + len(line):
                os.ftruncate(descriptor, at + len(line))
            written = 0
            while written < len(line):
                written += os.pwrite(descriptor, line[written:], at + written)
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        self._cut_at = None
        self._size = at + len(line)

    def _reserve_ahead(self) -> bool:
        return self._reserve(min(self.seq + RESERVE_AHEAD, MAX_SEQ))

    def _reserve(self, upto: int) -> bool:
        """Keep ``upto`` on the card as the last number that may be in use (False, counted, when it cannot be)."""
        try:
            write_atomic(self.reservation, b'{"reserved_seq":%d}\n' % upto, TECHNICIAN_READABLE)
        except OSError:
            self.write_errors += 1
            return False
        self.reserved = upto
        return True

    def _rotate(self) -> None:
        if not self._renamed:
            os.replace(self.path, self.rotated)
            self._renamed = True  # if the open below fails, the next try opens without renaming again
        fresh = _open_append(self.path)
        self._renamed = False
        os.close(self._fd)
        self._fd, self._size = fresh, 0
        self.rotations += 1

    def close(self) -> None:
        """Write what is pending and stop the writer."""
        self._stopping = True
        self._dirty.set()
        self._writer.join(timeout=5)
        self._write_pending()
        if not self.pending and self.reserved != self.seq:
            self._reserve(self.seq)  # every number handed out is on the card: the next start skips none
        try:
            os.close(self._fd)
        except OSError:
            pass


def _open_append(path: Path) -> int:
    # O_NOFOLLOW: the state folder is the service's own, but a link planted there must not redirect its writes.
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                         TECHNICIAN_READABLE)
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        raise NotARegularFile(path, "is not a regular file")
    return descriptor


def _read_reserved(path: Path) -> int:
    """The last number a run reserved (0 when there is no reservation, or none that can be read: nothing to skip)."""
    try:
        value = safejson.loads(read_bounded(path, MAX_RESERVED_BYTES, follow_symlinks=False),
                               max_bytes=MAX_RESERVED_BYTES, max_depth=2, max_values=4)
    except (OSError, safejson.JsonRefused):
        return 0
    reserved = value.get("reserved_seq") if isinstance(value, dict) else None
    if isinstance(reserved, bool) or not isinstance(reserved, int) or not 0 <= reserved <= MAX_SEQ:
        return 0
    return reserved


def _last_record(path: Path) -> tuple[dict[str, Any] | None, str, bytes]:
    """(the last whole record, the hash of its line, the torn bytes after it) of a log file: (None, GENESIS, b"")
    when there is no file or nothing in it, (None, GENESIS, torn) when its only line is torn. ValueError when its last
    whole line is not a record (or is longer than any record)."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None, GENESIS, b""
    try:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):
            raise ValueError(f"{path} is not a regular file")
        size = status.st_size
        # Two lines' worth from the end hold the last whole record and a torn line after it.
        start = max(0, size - 2 * MAX_LINE_BYTES - 2)
        tail = os.pread(descriptor, size - start, start)
        end_of_whole = tail.rfind(b"\n") + 1  # 0: no newline within reach
        torn = tail[end_of_whole:]
        if len(torn) > MAX_LINE_BYTES:
            raise ValueError(f"{path}: its last line is longer than any record")
        record = None
        line_hash = GENESIS
        if end_of_whole:
            whole = tail[:end_of_whole - 1]
            begin = whole.rfind(b"\n") + 1
            if begin == 0 and start > 0:
                raise ValueError(f"{path}: its last line is longer than any record")
            record = parse_record(whole[begin:])
            if record is None:
                raise ValueError(f"{path}: its last whole line is not an audit record")
            line_hash = digest(canonical_line(record))
        return record, line_hash, torn
    finally:
        os.close(descriptor)
