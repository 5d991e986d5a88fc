"""TOML tables to validated dataclasses, with errors that name the key as it is spelt in the file.

Shared by scenario files (sim/scenario.py) and the firmware's configuration (carctl/runtime/config.py).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from carctl.core.config import ConfigError


class ConfigFileError(ValueError):
    """A file that cannot be used. ``key`` names the offending key (empty for the file as a whole)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}" if key else message)
        self.key = key
        self.message = message


def build_table(cls: type, table: Any, section: str, error: type[ConfigFileError] = ConfigFileError) -> Any:
    """A dataclass from a TOML table; unknown keys, wrong types and impossible values raise ``error`` naming
    the key."""
    if not isinstance(table, dict):
        raise error(section, f"must be a table (got {type(table).__name__})")
    known = {f.name: f for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key not in known:
            raise error(f"{section}.{key}", f"unknown key (known: {', '.join(sorted(known))})")
        expected = known[key].type
        if expected in ("float", float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if isinstance(value, list):
            value = tuple(value)
        _check_type(value, expected, f"{section}.{key}", error)
        values[key] = value
    try:
        return cls(**values)
    except ConfigError as invalid:
        raise error(invalid.key, invalid.message) from None


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
    else:
        ok = True
    if not ok:
        raise error(key, f"must be {expected.replace('tuple', 'a list')} (got {value!r})")


