"""The run recorder's messages between the loop and the service tool (docs/service-tool.md, Run recorder), checked
totally. Sans-I/O: JSON values in and out; parsing gives a typed value or a short, fixed reason (a str), never an
exception. protocol/loopback.py wraps the reasons in its Refused.

Rules of this module:
- The service asks (`runs`: the summaries; `run` with an id: one run's curves), each request with an `ask` number
  that the answer repeats, so that a page waits for its own answer. The loop answers only a process that watches.
- A run's curves travel as three little-endian packed columns in base64 (position in mm as int32, speed in mm/s as
  int16, the doors as one byte), sampled every `every_s`: a run at its cap (MAX_SAMPLES) is one datagram of about
  9 KiB, well inside the side channel's 16 KiB. The summaries go SUMMARIES_PER_MESSAGE to a datagram.
- Every answer names the recorder (`boot`, random per start of the loop) and the ids the ring holds now
  (`oldest`..`newest`): the service keeps nothing else, so a restarted loop or an evicted run cannot linger.
- Everything is bounded here, whoever sent it: ids and counts are non-negative integers below 2^31, texts short,
  floats finite and in physical ranges, lists of at most their cap, columns of equal length within MAX_SAMPLES.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import sys
from array import array
from dataclasses import dataclass
from typing import Any

MAX_RUNS = 50  # the ring the loop keeps
MAX_SAMPLES = 900  # per run: 90 s at SAMPLE_EVERY_S
SAMPLE_EVERY_S = 0.1
SUMMARIES_PER_MESSAGE = 10
MAX_FAULTS_PER_RUN = 8
MAX_ID = (1 << 31) - 1
BOOT = re.compile(r"[0-9a-f]{16}")
NAME = re.compile(r"[a-z0-9_]{1,40}")  # a fault's name, a run's kind or how it ended
KINDS = ("run", "parking", "correction", "inspection")
ENDS = ("doors_open", "stopped", "halted", "cut")
# The doors as the controller saw them, one byte a sample: the door machine's phase, plus DOOR_LOCKED when the lock
# reads made. The car-top board reports limits, not a door position: there is no opening fraction to record.
DOOR_PHASES = ("closed", "opening", "open", "closing")
DOOR_LOCKED = 8
MAX_POSITION_MM = 1_000_000  # 1 km: no building this firmware serves is a tenth of that
MAX_SPEED_MM_S = 20_000
MAX_DURATION_S = 3600.0
MAX_LEVEL_ERROR_MM = 100_000.0
_COLUMNS = (("position_mm", "i", 4), ("speed_mm_s", "h", 2), ("door", "b", 1))
_SUMMARY_KEYS = frozenset({"id", "kind", "from", "to", "start_utc_s", "duration_s", "peak_m_s", "level_mm",
                           "faults", "end", "samples"})


@dataclass(frozen=True, slots=True)
class RunSummary:
    id: int
    kind: str  # KINDS
    from_landing: int  # -1: not at a landing
    to_landing: int  # -1: not at a landing (a run halted or cut between landings)
    start_utc_s: float
    duration_s: float
    peak_speed_m_s: float
    levelling_error_mm: float | None  # the car above (+) or below (-) the landing when it stopped; None: unknown
    faults: tuple[str, ...]  # raised during the run, at most MAX_FAULTS_PER_RUN
    end: str  # ENDS
    samples: int


@dataclass(frozen=True, slots=True)
class RunCurves:
    every_s: float
    position_mm: tuple[int, ...]
    speed_mm_s: tuple[int, ...]
    door: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class RunsRequest:
    ask: int


@dataclass(frozen=True, slots=True)
class RunRequest:
    ask: int
    run_id: int


@dataclass(frozen=True, slots=True)
class RunsAnswer:
    """One part of the list: some of the ring's summaries, and which ids the ring holds now."""

    boot: str
    ask: int
    oldest: int  # the ring holds oldest..newest; newest < oldest: it is empty
    newest: int
    runs: tuple[RunSummary, ...]


@dataclass(frozen=True, slots=True)
class RunAnswer:
    boot: str
    ask: int
    run_id: int
    summary: RunSummary | None  # None: the ring no longer (or never) held it
    curves: RunCurves | None


# -- building (the loop's side, and the service's requests) --------------------------------------------------------

def runs_request(ask: int) -> dict[str, Any]:
    return {"type": "runs", "ask": ask}


def run_request(ask: int, run_id: int) -> dict[str, Any]:
    return {"type": "run", "ask": ask, "id": run_id}


def summary_json(summary: RunSummary) -> dict[str, Any]:
    return {"id": summary.id, "kind": summary.kind, "from": summary.from_landing, "to": summary.to_landing,
            "start_utc_s": round(summary.start_utc_s, 3), "duration_s": round(summary.duration_s, 2),
            "peak_m_s": round(summary.peak_speed_m_s, 3),
            "level_mm": None if summary.levelling_error_mm is None else round(summary.levelling_error_mm, 1),
            "faults": list(summary.faults), "end": summary.end, "samples": summary.samples}


def pack_column(values: array) -> str:  # type: ignore[type-arg]
    """A column as little-endian bytes in base64 (the board and the laptop are both little-endian; the swap is for
    a reader that is not)."""
    if sys.byteorder != "little":
        values = array(values.typecode, values)
        values.byteswap()
    return base64.b64encode(values.tobytes()).decode("ascii")


def runs_answers(boot: str, ask: int, oldest: int, newest: int,
                 summaries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The list, SUMMARIES_PER_MESSAGE summaries (as summary_json made them) a datagram, newest first; one datagram
    even for an empty ring."""
    parts = [summaries[start:start + SUMMARIES_PER_MESSAGE]
             for start in range(0, len(summaries), SUMMARIES_PER_MESSAGE)] or [[]]
    return [{"type": "runs", "boot": boot, "ask": ask, "oldest": oldest, "newest": newest, "runs": part}
            for part in parts]


def run_answer(boot: str, ask: int, run_id: int, summary: dict[str, Any] | None,
               columns: dict[str, str] | None) -> dict[str, Any]:
    if summary is None or columns is None:
        return {"type": "run", "boot": boot, "ask": ask, "id": run_id, "missing": True}
    return {"type": "run", "boot": boot, "ask": ask, "id": run_id, "summary": summary,
            "curves": {"every_s": SAMPLE_EVERY_S, **columns}}


# -- parsing ----------------------------------------------------------------------------------------------------------

def _count(value: Any, limit: int = MAX_ID) -> bool:
    return type(value) is int and 0 <= value <= limit


def _number(value: Any, low: float, high: float) -> bool:
    return (type(value) in (int, float)) and math.isfinite(value) and low <= value <= high


def parse_request(value: Any) -> RunsRequest | RunRequest | str:
    """What the loop takes: `runs` or `run`, nothing more in them (the sender's clock stamp aside)."""
    kind = value.get("type") if isinstance(value, dict) else None
    if kind == "runs":
        if set(value) - {"type", "ask", "sent_s"} or not _count(value.get("ask")):
            return "runs request that is not one"
        return RunsRequest(value["ask"])
    if kind == "run":
        if set(value) - {"type", "ask", "id", "sent_s"} or not _count(value.get("ask")) or not _count(value.get("id")):
            return "run request that is not one"
        return RunRequest(value["ask"], value["id"])
    return "not a run request"


def parse_summary(value: Any) -> RunSummary | str:
    if not isinstance(value, dict) or set(value) != _SUMMARY_KEYS:
        return "run summary without its keys"
    landings_ok = all(type(value[key]) is int and -1 <= value[key] <= 255 for key in ("from", "to"))
    faults = value["faults"]
    if not (_count(value["id"]) and value["kind"] in KINDS and value["end"] in ENDS and landings_ok
            and _number(value["start_utc_s"], 0.0, 1e11) and _number(value["duration_s"], 0.0, MAX_DURATION_S)
            and _number(value["peak_m_s"], 0.0, MAX_SPEED_MM_S / 1000)
            and (value["level_mm"] is None or _number(value["level_mm"], -MAX_LEVEL_ERROR_MM, MAX_LEVEL_ERROR_MM))
            and _count(value["samples"], MAX_SAMPLES)
            and isinstance(faults, list) and len(faults) <= MAX_FAULTS_PER_RUN
            and all(isinstance(name, str) and NAME.fullmatch(name) for name in faults)):
        return "run summary with a field out of range"
    return RunSummary(value["id"], value["kind"], value["from"], value["to"], float(value["start_utc_s"]),
                      float(value["duration_s"]), float(value["peak_m_s"]),
                      None if value["level_mm"] is None else float(value["level_mm"]), tuple(faults), value["end"],
                      value["samples"])


def _unpack_column(text: Any, typecode: str, size: int) -> tuple[int, ...] | None:
    if not isinstance(text, str) or len(text) > 4 * ((MAX_SAMPLES * size + 2) // 3):
        return None
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return None
    if len(raw) % size:
        return None
    values = array(typecode)
    values.frombytes(raw)
    if sys.byteorder != "little":
        values.byteswap()
    return tuple(values)


def parse_curves(value: Any, samples: int) -> RunCurves | str:
    if not isinstance(value, dict) or set(value) != {"every_s", *(name for name, _, _ in _COLUMNS)}:
        return "run curves without their keys"
    if not _number(value["every_s"], 0.001, 10.0):
        return "run curves with an impossible sample period"
    columns = [_unpack_column(value[name], typecode, size) for name, typecode, size in _COLUMNS]
    position, speed, door = columns
    if position is None or speed is None or door is None or not len(position) == len(speed) == len(door) == samples:
        return "run curves that are not three columns of the run's length"
    if (any(abs(mm) > MAX_POSITION_MM for mm in position) or any(abs(mm_s) > MAX_SPEED_MM_S for mm_s in speed)
            or any(not 0 <= code < 16 or code & 7 >= len(DOOR_PHASES) for code in door)):
        return "run curves with a sample out of range"
    return RunCurves(float(value["every_s"]), position, speed, door)


def parse_answer(value: Any) -> RunsAnswer | RunAnswer | str:
    """What the service takes from the loop: a part of the list, or one run (or word that it is gone)."""
    kind = value.get("type") if isinstance(value, dict) else None
    if kind == "runs":
        if (set(value) - {"type", "boot", "ask", "oldest", "newest", "runs", "sent_s"}
                or not isinstance(value.get("boot"), str) or not BOOT.fullmatch(value["boot"])
                or not _count(value.get("ask")) or not _count(value.get("oldest"))
                or type(value.get("newest")) is not int or not -1 <= value["newest"] <= MAX_ID
                or value["newest"] - value["oldest"] >= MAX_RUNS
                or not isinstance(value.get("runs"), list) or len(value["runs"]) > SUMMARIES_PER_MESSAGE):
            return "runs answer that is not one"
        summaries = [parse_summary(item) for item in value["runs"]]
        if any(isinstance(item, str) for item in summaries):
            return "runs answer with a summary that is not one"
        return RunsAnswer(value["boot"], value["ask"], value["oldest"], value["newest"],
                          tuple(item for item in summaries if isinstance(item, RunSummary)))
    if kind == "run":
        base = {"type", "boot", "ask", "id", "sent_s"}
        if (not isinstance(value.get("boot"), str) or not BOOT.fullmatch(value["boot"])
                or not _count(value.get("ask")) or not _count(value.get("id"))):
            return "run answer that is not one"
        if value.get("missing") is True and not set(value) - base - {"missing"}:
            return RunAnswer(value["boot"], value["ask"], value["id"], None, None)
        if set(value) - base - {"summary", "curves"}:
            return "run answer that is not one"
        summary = parse_summary(value.get("summary"))
        if isinstance(summary, str):
            return summary
        if summary.id != value["id"]:
            return "run answer for another run"
        curves = parse_curves(value.get("curves"), summary.samples)
        if isinstance(curves, str):
            return curves
        return RunAnswer(value["boot"], value["ask"], value["id"], summary, curves)
    return "not a run recorder message"
