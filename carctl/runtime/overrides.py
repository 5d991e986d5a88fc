"""Settings the platform changes on a running car, kept in a small JSON file beside the configuration.

Rules of this module:
- Only these keys: car.home_landing, car.permissions_enabled, car.free_landings, and face_enabled (the community's
  face feature on this car; it overrides processes.face, which is the installer's default). Anything else in the file is
  ignored with a note; a malformed file is ignored as a whole (the configuration file's values stand), never a crash.
- Writes are atomic (a temporary file, fsync, rename), so a crash mid-write keeps the previous settings, and they
  survive a restart: the loop applies them at start and whenever the link process says they changed.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from carctl import safejson
from carctl.filein import read_bounded
from carctl.atomicfile import remove_stale_temporaries, write_atomic
from carctl.core.config import ConfigError, ControllerConfig, shown
from carctl.runtime.state_layout import TECHNICIAN_READABLE

MAX_FILE_BYTES = 65536  # four settings; anything larger is not this file


def _landing(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1000


CHECKS = {"home_landing": _landing, "permissions_enabled": lambda v: isinstance(v, bool),
          "free_landings": lambda v: isinstance(v, list) and len(v) <= 1000 and all(_landing(n) for n in v),
          "face_enabled": lambda v: isinstance(v, bool)}
KEYS = tuple(CHECKS)
# Each setting's key as the configuration file spells it (the sentences of problem()).
CONFIG_KEYS = {"home_landing": "car.home_landing", "permissions_enabled": "car.permissions_enabled",
               "free_landings": "car.free_landings", "face_enabled": "processes.face"}


def read(path: Path) -> dict[str, Any]:
    try:
        # Read between two cycles: a FIFO put in its place would block the loop, so only a regular file is read.
        data = safejson.loads(read_bounded(path, MAX_FILE_BYTES), max_bytes=MAX_FILE_BYTES, max_depth=3)
    except (OSError, safejson.JsonRefused):
        return {}
    if not isinstance(data, dict):
        return {}
    return {key: value for key, value in data.items() if key in CHECKS and CHECKS[key](value)}


def write(path: Path, changes: dict[str, Any]) -> dict[str, Any]:
    """Merge ``changes`` into the file atomically; returns the settings now in force. The writer (the link process)
    clears temporaries left by a writer killed mid-write; the loop, which only reads, never lists the directory."""
    remove_stale_temporaries(path)
    settings = {**read(path), **{k: v for k, v in changes.items() if k in KEYS}}
    write_atomic(path, json.dumps(settings).encode(), mode=TECHNICIAN_READABLE)
    return settings


def apply(config: ControllerConfig, settings: dict[str, Any]) -> ControllerConfig:
    """The configuration with the platform's settings; an impossible value (a landing that does not exist) leaves
    the configuration as it was and raises ConfigError naming the key."""
    car = config.car
    changes: dict[str, Any] = {}
    if "home_landing" in settings:
        changes["home_landing"] = settings["home_landing"]
    if "permissions_enabled" in settings:
        changes["permissions_enabled"] = settings["permissions_enabled"]
    if "free_landings" in settings:
        free = tuple(settings["free_landings"])
        if not all(isinstance(n, int) and 0 <= n < config.building.landing_count for n in free):
            raise ConfigError("car.free_landings", f"landings must exist (0..{config.building.landing_count - 1})")
        changes["free_landings"] = free
    if not changes:
        return config
    return ControllerConfig(config.building, dataclasses.replace(car, **changes))


def problem(config: ControllerConfig, changes: dict[str, Any]) -> str | None:
    """Why the loop would not apply these settings, in one sentence naming the key, or None: a key this file does not
    hold, a value of the wrong type (read() drops those), or one the configuration refuses (apply())."""
    for key, value in changes.items():
        if key not in CHECKS:
            return f"{key}: not a setting that may be changed on a running car"
        if not CHECKS[key](value):
            return f"{CONFIG_KEYS[key]}: {shown(value)} is not a value this setting takes"
    try:
        apply(config, changes)
    except ConfigError as error:
        return str(error)
    return None
