"""Recorded core inputs and commands as JSON-ready dicts, for golden replays and incident analysis.

A recording replayed through Controller.step from the same initial state must give the same commands, bit for bit
(floats survive JSON exactly: json writes the shortest repr that round-trips).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from carctl.core.signals import Commands, Commissioning, Direction, Inputs, Mode

_SETS = {"car_calls_pressed", "hall_up_pressed", "hall_down_pressed", "car_call_lamps", "hall_up_lamps",
         "hall_down_lamps", "fire_detected"}


def to_dict(record: Inputs | Commands) -> dict[str, Any]:
    """Only the fields that differ from the defaults, so a recording stays small."""
    out: dict[str, Any] = {}
    for spec in dataclasses.fields(record):
        value = getattr(record, spec.name)
        default = spec.default
        if value == default and spec.name != "tick":
            continue
        if spec.name in _SETS:
            value = sorted(value)
        elif isinstance(value, (Mode, Commissioning)):
            value = value.value
        elif isinstance(value, Direction):
            value = int(value)
        out[spec.name] = value
    return out


def _from_dict(cls: type, data: dict[str, Any]) -> Any:
    known = {spec.name for spec in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key not in known:
            raise ValueError(f"unknown field {key!r} for {cls.__name__}")
        if key in _SETS:
            value = frozenset(value)
        elif key == "mode_request" and value is not None:
            value = Mode(value)
        elif key == "commission" and value is not None:
            value = Commissioning(value)
        elif key == "direction":
            value = Direction(value)
        values[key] = value
    return cls(**values)


def inputs_from_dict(data: dict[str, Any]) -> Inputs:
    return _from_dict(Inputs, data)  # type: ignore[no-any-return]


def commands_from_dict(data: dict[str, Any]) -> Commands:
    return _from_dict(Commands, data)  # type: ignore[no-any-return]
