"""Scenario files (TOML): the building, the car, the shaft physics, the traffic and scripted events.

Rules of this module:
- The key names are a contract (DESIGN.md); every key and default is in docs/scenarios.md. Keys are added, never
  renamed.
- Every problem is a ScenarioError naming the key as it is spelt in the file (``car.rated_speed_m_s``,
  ``events[2].landing``). Unknown keys are refused too, so that a misspelt key is not silently ignored.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from carctl.core.config import BuildingConfig, CarConfig, ConfigError, ControllerConfig
from carctl.tomlconfig import ConfigFileError, build_table
from carctl.core.signals import Mode
from sim.physics import PhysicsConfig
from sim.traffic import PATTERNS, TrafficConfig

EVENT_TYPES = ("hall_call", "car_call", "passenger", "fault", "clear_fault", "seat_occupied", "seat_free",
               "accessible_call", "obstruct", "mode", "door_open_button", "door_close_button", "fault_reset",
               "load", "fire_detected", "fire_detector_reset", "controller_restart")
# Rescue is entered only on the drive's on-battery signal (a power_loss fault), never requested.
REQUESTABLE_MODES = tuple(mode.value for mode in Mode if mode is not Mode.RESCUE)
FAULT_KINDS = ("drive_fault", "comm_loss", "door_jam", "light_curtain_blocked", "power_loss", "encoder_freeze",
               "overload", "brake_slip", "position_lost", "reference_fault", "drive_runaway", "door_lock_lost",
               "safety_chain_open", "car_top_silent", "car_panel_silent", "landing_silent")


class ScenarioError(ConfigFileError):
    """A scenario that cannot be run. ``key`` names the offending key."""


@dataclass(frozen=True, slots=True)
class ScriptedEvent:
    t_s: float
    type: str
    landing: int = -1
    direction: str = ""
    origin: int = -1
    destination: int = -1
    kind: str = ""
    mode: str = ""
    duration_s: float = 0.0
    load_kg: float = 0.0


@dataclass(frozen=True, slots=True)
class Scenario:
    controller: ControllerConfig = field(default_factory=ControllerConfig)
    physics: PhysicsConfig = field(default_factory=PhysicsConfig)
    traffic: TrafficConfig = field(default_factory=TrafficConfig)
    events: tuple[ScriptedEvent, ...] = ()
    name: str = "default"


def _build(cls: type, table: Any, section: str) -> Any:
    return build_table(cls, table, section, ScenarioError)


def from_dict(data: dict[str, Any], name: str = "scenario") -> Scenario:
    known_tables = {"building", "car", "physics", "traffic", "events"}
    for key in data:
        if key not in known_tables:
            raise ScenarioError(key, f"unknown table (known: {', '.join(sorted(known_tables))})")
    building_table = dict(data.get("building", {}))
    if "landings_m" in building_table and "population" not in building_table and isinstance(
            building_table["landings_m"], list):
        count = len(building_table["landings_m"])
        main = building_table.get("main_landing", 0)
        building_table["population"] = [0 if i == main else 5 for i in range(count)]
    building = _build(BuildingConfig, building_table, "building")
    car = _build(CarConfig, data.get("car", {}), "car")
    try:
        controller = ControllerConfig(building, car)
    except ConfigError as error:
        raise ScenarioError(error.key, error.message) from None
    physics = _build(PhysicsConfig, data.get("physics", {}), "physics")
    traffic = _build(TrafficConfig, data.get("traffic", {}), "traffic")
    if traffic.pattern not in PATTERNS:
        raise ScenarioError("traffic.pattern", f"must be one of {', '.join(PATTERNS)} (got {traffic.pattern!r})")
    for key in ("rate_pct_per_5min", "incoming_pct", "outgoing_pct", "interfloor_pct", "drain_s"):
        if getattr(traffic, key) < 0:
            raise ScenarioError(f"traffic.{key}", "must be 0 or greater")
    if traffic.passenger_mass_kg <= 0:
        raise ScenarioError("traffic.passenger_mass_kg", "must be greater than 0")
    if traffic.duration_s <= 0:
        raise ScenarioError("traffic.duration_s", f"must be greater than 0 (got {traffic.duration_s})")
    if traffic.pattern == "residential" and traffic.incoming_pct + traffic.outgoing_pct + traffic.interfloor_pct <= 0:
        raise ScenarioError("traffic.incoming_pct", "the residential mix needs at least one positive share")
    raw_events = data.get("events", [])
    if not isinstance(raw_events, list):
        raise ScenarioError("events", "must be an array of tables ([[events]])")
    events = tuple(_event(raw, index, building.landing_count) for index, raw in enumerate(raw_events))
    return Scenario(controller, physics, traffic, tuple(sorted(events, key=lambda e: e.t_s)), name)


def _event(raw: Any, index: int, landing_count: int) -> ScriptedEvent:
    where = f"events[{index}]"
    if not isinstance(raw, dict):
        raise ScenarioError(where, "must be a table")
    event = _build(ScriptedEvent, raw, where)
    if event.t_s < 0:
        raise ScenarioError(f"{where}.t_s", f"must be 0 or greater (got {event.t_s})")
    if event.type not in EVENT_TYPES:
        raise ScenarioError(f"{where}.type", f"must be one of {', '.join(EVENT_TYPES)} (got {event.type!r})")

    def landing_key(key: str) -> None:
        value = getattr(event, key)
        if key not in raw:
            raise ScenarioError(f"{where}.{key}", f"is required for a {event.type} event")
        if not 0 <= value < landing_count:
            raise ScenarioError(f"{where}.{key}",
                                f"landing {value} does not exist (the building has landings 0..{landing_count - 1})")

    if event.type in ("hall_call", "car_call", "accessible_call", "fire_detected", "fire_detector_reset"):
        landing_key("landing")
    if event.type == "hall_call":
        if event.direction not in ("up", "down"):
            raise ScenarioError(f"{where}.direction", f"must be 'up' or 'down' (got {event.direction!r})")
        if (event.direction == "up" and event.landing == landing_count - 1) or (
                event.direction == "down" and event.landing == 0):
            raise ScenarioError(f"{where}.direction", f"landing {event.landing} has no {event.direction} button")
    if event.type == "passenger":
        landing_key("origin")
        landing_key("destination")
        if event.origin == event.destination:
            raise ScenarioError(f"{where}.destination", "must differ from origin")
    if event.type in ("fault", "clear_fault") and event.kind not in FAULT_KINDS:
        raise ScenarioError(f"{where}.kind", f"must be one of {', '.join(FAULT_KINDS)} (got {event.kind!r})")
    if event.type == "mode" and event.mode not in REQUESTABLE_MODES:
        raise ScenarioError(f"{where}.mode", f"must be one of {', '.join(REQUESTABLE_MODES)} (got {event.mode!r})")
    if event.type == "obstruct" and event.duration_s <= 0:
        raise ScenarioError(f"{where}.duration_s", "must be greater than 0 for an obstruct event")
    return event


def load(path: str | Path) -> Scenario:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ScenarioError("", f"{path}: cannot read the scenario ({error.strerror})") from None
    except UnicodeDecodeError:
        raise ScenarioError("", f"{path}: not a UTF-8 text file") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ScenarioError("", f"{path}: not valid TOML ({error})") from None
    return from_dict(data, path.stem)
