"""The maintenance record's format and its check: records chained by hash, one JSON line each (docs/audit.md).

Rules of this module:
- Pure: records and bytes in, records, lines and verdicts out. No clock, no file (audit_log.py writes, the CLI
  reads).
- A record is a JSON object with exactly the keys of RECORD_FIELDS: `seq` (1, 2, 3... with no gap, across a rotation
  too), `t` (wall-clock seconds, within 1970-2106), `action` (one of ACTIONS), `via` (one of VIAS), `who` (the key,
  the command id, the user), `details` (a small object), `prev` (the SHA-256, hex, of the record before; GENESIS for
  the first record ever). Its line is its canonical JSON (sorted keys, no spaces, UTF-8); the hash of a record is the
  SHA-256 of that line, so the next record witnesses every byte of it.
- Reading is total: a line longer than MAX_LINE_BYTES, not UTF-8, not JSON within limits (carctl/safejson.py), or not
  a record of this form is "not a record", never an exception.
- verify() names the first break of the chain: a record changed, inserted, reordered or removed (by sequence and
  line), a line that is not a record, or a line cut short in the middle. A last line without its newline is a write
  cut short by a kill or a power cut (torn), not tampering. Removing records from the end, or rewriting every record
  from some point on, cannot be seen from the files alone: the platform's copy is the witness (docs/audit.md).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

from carctl import safejson

GENESIS = "0" * 64
# A record is a few hundred bytes; the largest, a parameter change with every landing listed, under 1 KiB.
MAX_LINE_BYTES = 4096
MAX_LINE_VALUES = 1200  # a value takes two bytes at least: a line of MAX_LINE_BYTES holds fewer
MAX_TEXT_CHARS = 128
# Wall-clock seconds of a record: from 1970 to 2106, as the fault log (a board without a clock may start in 1970).
MAX_T = 2.0**32

# What is recorded, and where it is seen (docs/audit.md has the table with each action's details).
ACTIONS: dict[str, str] = {
    "fault_reset": "the maintenance reset key pressed, or the reset asked for on the service tool: the latched faults "
                   "it cleared",
    "alarm_reset": "the alarm's reset key at the car pressed (the rescuer's reset)",
    "mode_switch": "a key switch turned on or off (inspection, fire service, independent service, EEO)",
    "mode_command": "a signed platform command asking for a mode (taken, or refused while a key switch is on)",
    "mode_changed": "the car's operating mode changed, whatever asked for it",
    "eeo_run": "a hold-to-run button of emergency electrical operation pressed in the cabinet",
    "parameter_change": "the platform's validated settings changed (home landing, permissions, face feature)",
    "learning_run": "a shaft learning run ended (done, refused, interrupted), or was asked for on the service tool",
    "brake_test": "a brake test ended (passed, slipped, not answered, abandoned), or was asked for on the service tool",
    "torn_tail": "the writer found its last line cut short at start and continued from the last whole record",
    "log_set_aside": "the writer found a last line that is not a record at start: the file set aside, a chain begun",
    "records_lost": "records that could not be kept while the card stood still (the writer's queue was full)",
    "service_login": "a login to the service tool, or one refused (a wrong password, a lockout, no form token)",
    "service_logout": "a logout from the service tool",
    "service_change": "a change asked for through the service tool (taken, or refused with the reason)",
    "records_unwritten": "the writer found numbers reserved past the last record at start (a power cut with records "
                         "queued, perhaps sent to the platform): they are skipped, not used again",
}
# The writer's records at start that may declare the numbers it skipped (details `unwritten`: [first, last]): the gap
# before such a record, exactly as declared, is not a removal.
DECLARES_UNWRITTEN = frozenset({"torn_tail", "records_unwritten"})
# Who acted, by the way the action reached the car.
VIAS = ("car_key", "platform", "service_tool", "controller")
RECORD_FIELDS: dict[str, type | tuple[type, ...]] = {
    "seq": int, "t": (int, float), "action": str, "via": str, "who": str, "details": dict, "prev": str}
HEX = frozenset("0123456789abcdef")


def canonical_line(record: dict[str, Any]) -> bytes:
    """The record as it is written and hashed: sorted keys, no spaces, UTF-8."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def digest(line: bytes) -> str:
    return hashlib.sha256(line).hexdigest()


def make_record(seq: int, prev: str, time_s: float, action: str, via: str, who: str,
                details: dict[str, Any]) -> dict[str, Any]:
    """A record that parse_record() reads back as it is: details too long, or of a shape no record may hold, are
    replaced by their size and hash (still witnessed), so a record can never look like tampering."""
    if action not in ACTIONS or via not in VIAS:
        raise ValueError(f"not an audit action and source: {action!r} via {via!r}")
    record = {"seq": seq, "t": record_time(time_s), "action": action, "via": via, "who": _text(who), "details": details,
              "prev": prev}
    if parse_record(canonical_line(record)) != record:
        detail_bytes = canonical_line(details)
        record["details"] = {"too_long_bytes": len(detail_bytes), "sha256": digest(detail_bytes)}
    return record


def record_time(time_s: float) -> float:
    """The board's clock as a record may carry it: within 1970 to MAX_T (a clock before 1970 or past 2106, or no
    number at all, is written as the nearest end), so that a wrong clock never makes a line that is not a record."""
    if not math.isfinite(time_s):
        return 0.0 if math.isnan(time_s) or time_s < 0 else MAX_T
    return round(min(max(time_s, 0.0), MAX_T), 3)


def _text(value: str) -> str:
    """Text from outside (a command id) made printable and short, so a record can always be written and read."""
    return "".join(char if char.isprintable() else "?" for char in value[:MAX_TEXT_CHARS])


def parse_record(line: bytes) -> dict[str, Any] | None:
    """The record on one line (without its newline), or None if it is not one."""
    if len(line) > MAX_LINE_BYTES:
        return None
    try:
        value = safejson.loads(line, max_bytes=MAX_LINE_BYTES, max_depth=6, max_values=MAX_LINE_VALUES)
    except safejson.JsonRefused:
        return None
    if not isinstance(value, dict) or set(value) != set(RECORD_FIELDS):
        return None
    for key, kind in RECORD_FIELDS.items():
        if isinstance(value[key], bool) or not isinstance(value[key], kind):
            return None
    time_s = value["t"]
    if value["seq"] < 1 or not (isinstance(time_s, int) or math.isfinite(time_s)) or not 0 <= time_s <= MAX_T:
        return None
    if value["action"] not in ACTIONS or value["via"] not in VIAS or len(value["who"]) > MAX_TEXT_CHARS:
        return None
    if len(value["prev"]) != 64 or not set(value["prev"]) <= HEX:
        return None
    return value


@dataclass(frozen=True, slots=True)
class Line:
    """One line of a log file: where it is, and what the chain needs of the record on it (seq 0: not a record).
    The record itself is not kept: a log of 60,000 records is checked in a few megabytes."""

    file: str
    number: int  # from 1
    seq: int
    prev: str
    hash: str  # of the record's canonical form ("" when it is not a record)
    whole: bool  # ended by a newline
    begins_a_record: bool  # a line without its newline that starts as the writer's lines do (a torn write)
    unwritten_from: int = 0  # the first number of the gap the record declares just before it (0: none)


# Every line the writer makes begins so (the keys are sorted): a torn write is a prefix of a line like this.
RECORD_START = b'{"action":"'
# No record is shorter (its `prev` alone is 64 characters): a file of more, shorter lines is not a log.
MIN_LINE_BYTES = 100


def parts_of(name: str, data: bytes) -> list[bytes]:
    """The lines of a file (the last one without its newline, b"" when the file ends with one); ValueError when
    they are too many and too short to be records."""
    if data.count(b"\n") > len(data) // MIN_LINE_BYTES + 1:
        raise ValueError(f"{name} is not a carctl audit log (its lines are too short to be records)")
    return data.split(b"\n")


def split_lines(name: str, data: bytes) -> list[Line]:
    lines = []
    parts = parts_of(name, data)
    for index, part in enumerate(parts):
        whole = index < len(parts) - 1
        if not whole and not part:
            break  # the file ends with its newline
        record = parse_record(part)
        if record is None:
            line = Line(name, index + 1, 0, "", "", whole,
                        not whole and (part.startswith(RECORD_START) or RECORD_START.startswith(part)))
        else:
            line = Line(name, index + 1, record["seq"], record["prev"], digest(canonical_line(record)), whole,
                        not whole, _unwritten_from(record))
        lines.append(line)
    return lines


def _unwritten_from(record: dict[str, Any]) -> int:
    """The first number of the gap a writer's record declares, ending just before it (0 when it declares none)."""
    if record["action"] not in DECLARES_UNWRITTEN:
        return 0
    unwritten = record["details"].get("unwritten")
    if not isinstance(unwritten, list) or len(unwritten) != 2 or any(type(n) is not int for n in unwritten):
        return 0
    first, last = unwritten
    return first if 1 <= first <= last == record["seq"] - 1 else 0


@dataclass(frozen=True, slots=True)
class Verdict:
    intact: bool  # no break of the chain (a torn last line is not one)
    records: int
    first_seq: int  # 0 when there are no records
    last_seq: int
    last_hash: str  # of the last whole record: compare it with the platform's copy
    problem: str = ""  # the first break, naming the record by sequence and line
    torn: str = ""  # the torn last line, when there is one


def _where(line: Line) -> str:
    return f"{line.file} line {line.number}"


def verify(files: list[tuple[str, bytes]]) -> Verdict:
    """Check the chain through ``files``, oldest first (the rotated file, then the current one). ValueError when
    nothing in them is a record (not an audit log at all); an empty log is intact."""
    lines = [line for name, data in files for line in split_lines(name, data)]
    torn = ""
    if lines and not lines[-1].whole and lines[-1].begins_a_record:
        last = lines.pop()
        torn = f"{_where(last)} is torn (the write of its record was cut short: a kill or a power cut, not tampering)"
    if lines and not any(line.seq for line in lines):
        raise ValueError(f"{lines[0].file} is not a carctl audit log (no line is a record)")
    records = [line for line in lines if line.seq]
    first_seq = records[0].seq if records else 0

    def verdict(problem: str = "", upto: list[Line] | None = None) -> Verdict:
        kept = records if upto is None else upto
        last = kept[-1] if kept else None
        return Verdict(not problem, len(records), first_seq, last.seq if last else 0, last.hash if last else "",
                       problem, torn)

    seen_at: dict[int, Line] = {}
    for index, line in enumerate(lines):
        if not line.whole and line.begins_a_record:
            return verdict(f"{_where(line)} is cut short in the middle of the log", lines[:index])
        if not line.seq:
            return verdict(f"{_where(line)} is not a record", lines[:index])
        seq = line.seq
        if index == 0:
            if seq == 1 and line.prev != GENESIS:
                return verdict(f"record 1 ({_where(line)}) does not begin the chain", [])
            seen_at[seq] = line
            continue
        before = lines[index - 1]
        expected = before.seq + 1
        after = lines[index + 1] if index + 1 < len(lines) and lines[index + 1].seq else None
        if seq == expected:
            if line.prev != before.hash:
                if after is not None and after.seq == seq:
                    return verdict(f"a record was inserted at {_where(line)} (sequence {seq} twice)", lines[:index])
                if after is not None and after.prev != line.hash:
                    return verdict(f"record {seq} ({_where(line)}) was changed: neither its hash of record "
                                   f"{before.seq} nor record {after.seq}'s hash of it match", lines[:index])
                return verdict(f"record {before.seq} ({_where(before)}) was changed: record {seq} carries "
                               f"another hash of it", lines[:index - 1])
        elif seq == before.seq:
            # The same number twice: the stranger is the one the chain does not run through.
            if line.prev == _hash_before(lines, index - 1):
                return verdict(f"a record was inserted at {_where(before)} (sequence {seq} twice)", lines[:index - 1])
            return verdict(f"a record was inserted at {_where(line)} (sequence {seq} twice)", lines[:index])
        elif seq in seen_at:
            return verdict(f"a record was inserted at {_where(line)}: record {seq} again (first at "
                           f"{_where(seen_at[seq])})", lines[:index])
        elif seq < before.seq:
            return verdict(f"records {before.seq} and {seq} are out of order ({_where(before)} and "
                           f"{_where(line)})", lines[:index - 1])
        elif line.unwritten_from == expected and line.prev == before.hash:
            pass  # numbers the writer skipped after a power cut, declared by the record after them
        else:
            later = {other.seq for other in lines[index + 1:]}
            if any(number in later for number in range(expected, seq)):
                return verdict(f"records are out of order: record {seq} ({_where(line)}) comes before record "
                               f"{expected}", lines[:index])
            gone = f"record {expected}" if seq == expected + 1 else f"records {expected} to {seq - 1}"
            return verdict(f"{gone} removed (between {_where(before)} and {_where(line)})", lines[:index])
        seen_at[seq] = line
    return verdict()


def _hash_before(lines: list[Line], index: int) -> str:
    """The hash of the whole record before lines[index] (GENESIS at the start)."""
    return lines[index - 1].hash if index > 0 else GENESIS
