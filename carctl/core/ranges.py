"""Configuration values checked against their plausible ranges, with error messages a person can act on.

Rules of this module:
- A refused value raises ConfigError naming the key as spelt in the file (``car.rated_speed_m_s``) and saying what
  is allowed, in one sentence; describing the bad value (shown()) never fails, whatever the file held.
- A key's range is declared once (its class's RANGES) and checked by check_ranges(); a number is checked without
  converting it, so a 5,000-digit integer is refused, not overflowed.
"""

from __future__ import annotations

import dataclasses
import math
import reprlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class ConfigError(ValueError):
    """A configuration value is impossible. ``key`` is the dotted scenario key."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message


class _ShortRepr(reprlib.Repr):
    """reprlib, but a whole number too long to print (Python refuses past 4,300 digits) is described instead."""

    def repr_int(self, x: int, level: int) -> str:
        if x.bit_length() > 128:
            return f"<a whole number of {x.bit_length()} bits>"
        return super().repr_int(x, level)


_SHORT = _ShortRepr()
_SHORT.maxstring = 40
_SHORT.maxother = 40
_SHORT.maxlevel = 3


def shown(value: object) -> str:
    """A value as an error message quotes it: short, and safe for anything a file can hold (a 5,000-digit number, a
    list nested a thousand deep, a megabyte of text) so that describing a bad value never fails itself."""
    return _SHORT.repr(value)


def _number(value: float) -> str:
    """1e-05, 0.1, 4, 31622400: a bound as a person writes it."""
    if isinstance(value, int):
        return str(value)
    if value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return repr(float(value))


@dataclass(frozen=True, slots=True)
class Range:
    """The plausible values of one numeric key, in the key's unit: from ``low`` to ``high``. ``above`` and ``below``
    exclude the end itself (a period must be greater than 0, not 0)."""

    low: float
    high: float
    unit: str = ""
    above: bool = False
    below: bool = False

    def holds(self, value: float) -> bool:
        low_ok = value > self.low if self.above else value >= self.low
        high_ok = value < self.high if self.below else value <= self.high
        return low_ok and high_ok

    @property
    def interval(self) -> str:
        """As the documentation spells it: ``(0, 20] s``."""
        text = (f"{'(' if self.above else '['}{_number(self.low)}, {_number(self.high)}"
                f"{')' if self.below else ']'}")
        return f"{text} {self.unit}" if self.unit else text

    def words(self) -> str:
        """As an error message spells it: ``greater than 0 and at most 20 s``."""
        low, high = _number(self.low), _number(self.high)
        if not self.above and not self.below:
            text = f"from {low} to {high}"
        else:
            text = (f"{'greater than' if self.above else 'at least'} {low} and "
                    f"{'below' if self.below else 'at most'} {high}")
        return f"{text} {self.unit}" if self.unit else text


def _is_number(value: object, whole: bool) -> bool:
    if isinstance(value, bool):
        return False
    if whole:
        return isinstance(value, int)
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, int)  # exact, however large: the range check refuses it without converting it


def check_number(value: object, span: Range, key: str, whole: bool, entry: str = "") -> None:
    """ConfigError naming ``key`` unless ``value`` is a number (a whole one if ``whole``) inside ``span``."""
    if not (_is_number(value, whole) and span.holds(value)):  # type: ignore[arg-type]
        kind = "a whole number" if whole else "a number"
        raise ConfigError(key, f"{entry}must be {kind} {span.words()} (got {shown(value)})")


def check_ranges(config: Any, section: str) -> None:
    """Every key of ``config`` listed in its class's RANGES is inside its range; a list (``landings_m``) entry by
    entry. ``section`` is the table as spelt in the file: ``car``, ``events[2]``."""
    kinds = {spec.name: str(spec.type) for spec in dataclasses.fields(config)}
    ranges: Mapping[str, Range] = type(config).RANGES
    for name, span in ranges.items():
        kind = kinds[name]
        value = getattr(config, name)
        key = f"{section}.{name}"
        if kind.startswith("tuple["):
            whole = kind.startswith("tuple[int")
            if not isinstance(value, tuple):
                raise ConfigError(key, f"must be a list (got {shown(value)})")
            for index, entry in enumerate(value):
                check_number(entry, span, key, whole, entry=f"entry {index} ")
        else:
            check_number(value, span, key, whole=kind == "int")


__all__ = ["ConfigError", "Range", "check_number", "check_ranges", "shown"]
