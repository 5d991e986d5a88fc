"""TOML files and tables to validated dataclasses, with errors that name the key as it is spelt in the file.

Shared by scenario files (sim/scenario.py) and the firmware's configuration (carctl/runtime/config.py).

Rules of this module:
- Total: whatever the file holds (not UTF-8, not TOML, arrays nested 100,000 deep, a 5,000-digit number, a table
  where a number goes, a NUL in a string), the only exception that leaves it is the caller's ConfigFileError, naming
  the key. Whatever the path names (a FIFO, /dev/zero, a directory), the file is read only if it is a regular file
  within the size limit (carctl/filein.py): nothing blocks.
- A dataclass that declares RANGES has every listed key checked against its range here too (check_ranges), so a
  class that cannot know its own section's spelling (``events[2]``) is checked all the same.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import tomllib
from pathlib import Path
from typing import Any

from carctl.core.config import ConfigError, check_ranges, shown
from carctl.filein import NotARegularFile, read_bounded


class ConfigFileError(ValueError):
    """A file that cannot be used. ``key`` names the offending key (empty for the file as a whole)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}" if key else message)
        self.key = key
        self.message = message


def read_toml(path: Path, what: str, max_bytes: int, error: type[ConfigFileError] = ConfigFileError) -> Any:
    """The TOML document in ``path``; ``error`` for a file that cannot be read, is larger than ``max_bytes``, or is
    not UTF-8 TOML. ``what`` says what the file is, for the message ("the scenario")."""
    try:
        # Only a regular file, opened without blocking and read within bounds: a FIFO or /dev/zero is refused.
        data = read_bounded(path, max_bytes)
    except NotARegularFile as failure:
        raise error("", f"cannot read {what}: {failure}") from None
    except OSError as failure:
        raise error("", f"{path}: cannot read {what} ({failure.strerror or failure})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise error("", f"{path}: not a UTF-8 text file") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as failure:
        raise error("", f"{path}: not valid TOML ({failure})") from None
    except RecursionError:
        raise error("", f"{path}: not valid TOML (nested too deep)") from None
    except ValueError as failure:  # a whole number of more than 4,300 digits
        raise error("", f"{path}: not valid TOML ({str(failure)[:80]})") from None


def build_table(cls: type, table: Any, section: str, error: type[ConfigFileError] = ConfigFileError) -> Any:
    """A dataclass from a TOML table; unknown keys, wrong types and impossible values raise ``error`` naming
    the key."""
    if not isinstance(table, dict):
        raise error(section, f"must be a table (got {type(table).__name__})")
    known = {f.name: f for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key not in known:
            raise error(f"{section}.{key_spelling(key)}", unknown_key(key, sorted(known), section))
        expected = known[key].type
        if expected in ("float", float) and isinstance(value, int) and not isinstance(value, bool):
            value = _as_float(value)
        if isinstance(value, list):
            value = tuple(value)
        _check_type(value, expected, f"{section}.{key}", error)
        if isinstance(value, str) and "\x00" in value:
            # A path with a NUL cannot be opened (Python raises ValueError where OSError was expected), and no
            # other text needs one.
            raise error(f"{section}.{key}", "must not contain a NUL character (\\u0000)")
        values[key] = value
    for name, spec in known.items():
        if name not in values and spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING:
            raise error(f"{section}.{name}", "is required")
    try:
        built = cls(**values)
        if hasattr(cls, "RANGES"):
            check_ranges(built, section)
    except ConfigError as invalid:
        raise error(invalid.key, invalid.message) from None
    return built


MAX_KEYS_LISTED = 30  # a refusal stays one readable sentence: a table with more keys names the nearest


def unknown_key(key: Any, known: list[str], section: str) -> str:
    """Why ``key`` is refused: the keys the table takes, or, for a table with many, the nearest spellings."""
    if len(known) <= MAX_KEYS_LISTED:
        return f"unknown key (known: {', '.join(known)})"
    near = difflib.get_close_matches(str(key)[:60], known, n=3, cutoff=0.6)
    guess = f"did you mean {' or '.join(near)}? " if near else ""
    return f"unknown key ({guess}[{section}] takes {len(known)} keys: docs/deployment.md and docs/scenarios.md list them)"


def key_spelling(key: Any) -> str:
    """A key as the message names it: as written if it is short, printable text, else quoted and shortened."""
    if isinstance(key, str) and key and key.isprintable() and len(key) <= 60:
        return key
    return shown(key)


def _as_float(value: int) -> float:
    """An integer where a number goes; one too large for a float becomes infinity, which the type check refuses."""
    try:
        return float(value)
    except OverflowError:
        return math.inf


def _check_type(value: Any, expected: Any, key: str, error: type[ConfigFileError]) -> None:
    expected = str(expected)
    if expected == "float":
        ok = isinstance(value, float) and math.isfinite(value)
    elif expected == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif expected == "bool":
        ok = isinstance(value, bool)
    elif expected == "str":
        ok = isinstance(value, str)
    elif expected.startswith("tuple[float"):
        ok = isinstance(value, tuple) and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    elif expected.startswith("tuple[int"):
        ok = isinstance(value, tuple) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    elif expected.startswith("tuple[str"):
        ok = isinstance(value, tuple) and all(isinstance(v, str) for v in value)
    else:
        ok = True
    if not ok:
        raise error(key, f"must be {expected.replace('tuple', 'a list')} (got {shown(value)})")
