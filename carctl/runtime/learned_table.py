"""The learned landing table on disk: written when a shaft learning run ends, read at start in place of the typed one.

Rules of this module:
- The core learns (core/learning.py) and hands the table over in its state; this module writes it atomically
  (temporary, fsync, rename: atomicfile.write_atomic), versioned, with the date and a SHA-256 checksum over
  everything else in the record, so a torn, edited or bit-rotted file is told from a good one.
- At start, startup() builds the controller's configuration: the learned landings when the record is there and
  sound and fits the building (core/learning.with_learned_landings: as many landings as configured, the bottom at
  the count's zero, each within building.learned_tolerance_m of its typed height, a valid table), else the typed
  `building.landings_m` and the reason, which the loop logs and shows in its health record. No record is the normal
  state before the first learning run.
- Every byte is hostile: at most MAX_FILE_BYTES, read without following a symbolic link (filein.read_bounded),
  parsed by safejson with a depth limit, every key and value checked; a refused record raises ValueError naming
  what is wrong, never anything else.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from carctl import safejson
from carctl.atomicfile import remove_stale_temporaries, write_atomic
from carctl.core.config import MAX_HEIGHT_M, MAX_LANDINGS, ConfigError, ControllerConfig
from carctl.core.learned import LearnedTable
from carctl.core.learning import with_learned_landings
from carctl.core.signals import Event, EventKind
from carctl.filein import read_bounded
from carctl.runtime.state_layout import TECHNICIAN_READABLE

VERSION = 1
# A hundred landings with their edges and six switch edges come to a few kilobytes.
MAX_FILE_BYTES = 64 * 1024
MAX_SWITCH_EDGES = 64
_KEYS = {"version", "learned_at", "landings_m", "vane_edges_m", "switch_edges", "sha256"}
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_SWITCH = re.compile(r"^(top|bottom)\.[0-9]$")


@dataclass(frozen=True, slots=True)
class LearnedRecord:
    table: LearnedTable
    learned_at: str  # UTC, ISO 8601 to the second: "2026-12-02T21:50:00Z"


def encode(table: LearnedTable, learned_at: str) -> bytes:
    """The record's bytes: the table, the version and the date, and the checksum over them."""
    body: dict[str, object] = {
        "version": VERSION,
        "learned_at": learned_at,
        "landings_m": list(table.landings_m),
        "vane_edges_m": [list(edges) for edges in table.vane_edges_m],
        "switch_edges": [list(edge) for edge in table.switch_edges],
    }
    body["sha256"] = _checksum(body)
    return json.dumps(body, indent=1).encode() + b"\n"


def _checksum(body: dict[str, object]) -> str:
    canonical = json.dumps({key: value for key, value in body.items() if key != "sha256"}, sort_keys=True,
                           separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def parse(data: bytes) -> LearnedRecord:
    """The record in ``data``; ValueError naming what is wrong with it."""
    value = safejson.loads(data, max_bytes=MAX_FILE_BYTES, max_depth=4)
    if not isinstance(value, dict) or set(value) != _KEYS:
        raise ValueError(f"expected an object with exactly the keys {', '.join(sorted(_KEYS))}")
    if type(value["version"]) is not int or value["version"] != VERSION:
        raise ValueError(f"version must be {VERSION}")
    checksum = value["sha256"]
    if not isinstance(checksum, str) or not _SHA256.fullmatch(checksum):
        raise ValueError("sha256 must be 64 lowercase hex digits")
    if _checksum(value) != checksum:
        raise ValueError("sha256 does not match the record (torn, edited or damaged)")
    learned_at = value["learned_at"]
    if not isinstance(learned_at, str) or not _DATE.fullmatch(learned_at):
        raise ValueError("learned_at must be a UTC date and time, YYYY-MM-DDTHH:MM:SSZ")
    landings = value["landings_m"]
    if not isinstance(landings, list) or not 2 <= len(landings) <= MAX_LANDINGS:
        raise ValueError(f"landings_m must be a list of 2 to {MAX_LANDINGS} heights")
    heights = tuple(_height(entry, "landings_m") for entry in landings)
    if any(upper <= lower for lower, upper in zip(heights, heights[1:])):
        raise ValueError("landings_m must be increasing")
    edges = value["vane_edges_m"]
    if not isinstance(edges, list) or len(edges) != len(heights):
        raise ValueError("vane_edges_m must be a list of one [lower, upper] per landing")
    vanes: list[tuple[float | None, float | None]] = []
    for pair in edges:
        if not isinstance(pair, list) or len(pair) != 2:
            raise ValueError("vane_edges_m entries must be [lower, upper] (null where not passed)")
        lower, upper = (None if entry is None else _height(entry, "vane_edges_m") for entry in pair)
        vanes.append((lower, upper))
    switches = value["switch_edges"]
    if not isinstance(switches, list) or len(switches) > MAX_SWITCH_EDGES:
        raise ValueError(f"switch_edges must be a list of at most {MAX_SWITCH_EDGES} entries")
    passed: list[tuple[str, str, float]] = []
    for entry in switches:
        if (not isinstance(entry, list) or len(entry) != 3 or not isinstance(entry[0], str)
                or not _SWITCH.fullmatch(entry[0]) or entry[1] not in ("on", "off")):
            raise ValueError('switch_edges entries must be ["top.N" or "bottom.N", "on" or "off", height]')
        passed.append((entry[0], entry[1], _height(entry[2], "switch_edges")))
    return LearnedRecord(LearnedTable(heights, tuple(vanes), tuple(passed)), learned_at)


def _height(value: object, key: str) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or not (
            -1.0 <= value <= MAX_HEIGHT_M):
        raise ValueError(f"{key} holds a value that is not a height in metres ({str(value)[:40]!r})")
    return float(value)


def write(path: Path, table: LearnedTable, learned_at: str) -> None:
    """Replace the record with ``table`` all at once (OSError if it cannot be written)."""
    write_atomic(path, encode(table, learned_at), mode=TECHNICIAN_READABLE)


def read(path: Path) -> LearnedRecord | None:
    """The record at ``path``; None when there is none (FileNotFoundError is not an error: nothing learned yet);
    ValueError or OSError (a link, a directory, too large, unreadable) for one that cannot be trusted."""
    remove_stale_temporaries(path)  # what a writer killed mid-write left
    try:
        data = read_bounded(path, MAX_FILE_BYTES, follow_symlinks=False)
    except FileNotFoundError:
        return None
    return parse(data)


def startup(config: ControllerConfig, path: str) -> tuple[ControllerConfig, str, str]:
    """The controller's configuration at start, where its landings came from ("learned <date>" or "typed") and why
    a learned table was not used ("" when there was none, or it was)."""
    if not path:
        return config, "typed", ""
    try:
        record = read(Path(path))
    except (OSError, ValueError) as error:
        reason = getattr(error, "reason", None) or getattr(error, "strerror", None) or str(error)
        return config, "typed", f"{path}: {reason}"
    if record is None:
        return config, "typed", ""
    try:
        learned = with_learned_landings(config, record.table.landings_m)
    except ConfigError as error:
        return config, "typed", f"{path}: does not fit the building: {error}"
    return learned, f"learned {record.learned_at}", ""


class LandingTable:
    """The loop's side of it: the configuration at start, and a table the core has just learned written (by a
    thread of its own: the loop never waits for the disk) and put in force at once."""

    def __init__(self, config: ControllerConfig, path: str) -> None:
        self.path = path
        self.typed = config  # a table learned later is held to the typed heights, not to the last learned ones
        self.config, self.source, self.problem = startup(config, path)
        self.write_errors = 0
        self._writer: threading.Thread | None = None

    def take(self, state_learned: LearnedTable | None, events: tuple[Event, ...]) -> ControllerConfig | None:
        """After a step: the configuration to use from now on when a learning run has just ended with a table (None
        otherwise, or when the table does not fit the building, with the reason in ``problem``)."""
        if state_learned is None or not any(event.kind is EventKind.LEARNING and event.detail.startswith("done:")
                                            for event in events):
            return None
        try:
            config = with_learned_landings(self.typed, state_learned.landings_m)
        except ConfigError as error:
            self.problem = f"learned table not used: {error}"
            return None
        learned_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.config, self.source, self.problem = config, f"learned {learned_at}", ""
        if self.path:
            self._writer = threading.Thread(target=self._write, args=(state_learned, learned_at),
                                            name="carctl-learned-table", daemon=True)
            self._writer.start()
        return config

    def _write(self, table: LearnedTable, learned_at: str) -> None:
        try:
            write(Path(self.path), table, learned_at)
        except OSError as error:
            self.write_errors += 1
            self.problem = f"{self.path}: not written ({error.strerror or error}); in force until the next start"

    def close(self) -> None:
        if self._writer is not None:
            self._writer.join(timeout=5)

    def health(self) -> dict[str, object]:
        return {"landing_table": self.source, "landing_table_problem": self.problem or None,
                "landing_table_write_errors": self.write_errors}


__all__ = ["MAX_FILE_BYTES", "VERSION", "LandingTable", "LearnedRecord", "encode", "parse", "read", "startup",
           "write"]
