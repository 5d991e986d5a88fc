"""Scenario files (TOML): the building, the car, the shaft physics, the traffic and scripted events.

Rules of this module:
- The key names are a contract (docs/scenarios.md); every key and default is listed there. Keys are added, never
  renamed.
- Every problem is a ScenarioError naming the key as it is spelt in the file (``car.rated_speed_m_s``,
  ``events[2].landing``). Unknown keys are refused too, so that a misspelt key is not silently ignored.
- Total: from_dict() and load() raise nothing but ScenarioError, whatever the file holds. Every number has a
  plausible range (the RANGES tables of the configuration classes, listed in docs/scenarios.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

from carctl.core.config import (DAY_S, MAX_LANDING_INDEX, YEAR_S, BuildingConfig, CarConfig, ConfigError,
                                ControllerConfig, Range, check_number, shown)
from carctl.core.signals import Mode
from carctl.tomlconfig import ConfigFileError, build_table, key_spelling, read_toml
from sim.modem import DIALLED_NUMBER, RESCUE_ACTIONS
from sim.physics import FAULT_KINDS, LANDING_OFFSET_MAX_MM, PhysicsConfig, true_landings_m
from sim.traffic import PATTERNS, TrafficConfig, expected_passengers

EVENT_TYPES = ("hall_call", "car_call", "passenger", "fault", "clear_fault", "seat_occupied", "seat_free",
               "accessible_call", "obstruct", "mode", "door_open_button", "door_close_button", "fault_reset",
               "load", "fire_detected", "fire_detector_reset", "controller_restart", "alarm",
               "alarm_reset", "rescue", "learn")
# Rescue is entered only on the drive's on-battery signal (a power_loss fault), never requested.
# Rescue is the battery's, and emergency electrical operation the cabinet's key switch (SimulatedCar.
# emergency_electrical): neither is a request.
# The learning run is the learn input's, from inspection (the event learn).
REQUESTABLE_MODES = tuple(mode.value for mode in Mode
                          if mode not in (Mode.RESCUE, Mode.EMERGENCY_ELECTRICAL, Mode.LEARNING))
__all__ = ["EVENT_TYPES", "FAULT_KINDS", "REQUESTABLE_MODES", "Scenario", "ScenarioError", "ScriptedEvent",
           "check_traffic_volume", "from_dict", "load"]
# Generated scenarios can script a year of events; a file larger than this is not a scenario.
MAX_FILE_BYTES = 64 * 1024 * 1024
# The passengers a run generates are all held in memory (about 200 bytes each). A car serves at most a few hundred
# thousand a year; this is ten times that, and still fits a laptop.
MAX_PASSENGERS = 2_000_000


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
    action: str = ""  # what the rescue centre does (a rescue event: sim/modem.py RESCUE_ACTIONS)
    number: str = ""  # ... with the calls to this number only ("" all)
    side: str = ""  # an obstruct event's door: "front" (or "", the default) or "rear" (a car with doors on both sides)

    # Checked by build_table, which knows the event's spelling in the file (events[2]).
    RANGES: ClassVar[Mapping[str, Range]] = {
        "t_s": Range(0.0, YEAR_S, "s"),
        "landing": Range(-1, MAX_LANDING_INDEX),
        "origin": Range(-1, MAX_LANDING_INDEX),
        "destination": Range(-1, MAX_LANDING_INDEX),
        "duration_s": Range(0.0, DAY_S, "s"),
        # Extra load in the car: up to well past any overload, to test the overload.
        "load_kg": Range(0.0, 5000.0, "kg"),
    }


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
    if not isinstance(data, dict):
        raise ScenarioError("", f"a scenario is a table of tables (got {type(data).__name__})")
    known_tables = {"building", "car", "physics", "traffic", "events"}
    for key in data:
        if key not in known_tables:
            raise ScenarioError(key_spelling(key), f"unknown table (known: {', '.join(sorted(known_tables))})")
    building_table = data.get("building", {})
    if isinstance(building_table, dict) and "landings_m" in building_table and "population" not in building_table \
            and isinstance(building_table["landings_m"], list):
        # The default population follows the landings given: 5 residents a landing, none at the main landing.
        count = len(building_table["landings_m"])
        main = building_table.get("main_landing", 0)
        building_table = {**building_table, "population": [0 if i == main else 5 for i in range(count)]}
    offsets_mm: object = ()
    if isinstance(building_table, dict) and "landing_offsets_mm" in building_table:
        # The shaft's truth, not the controller's: kept out of the controller's building, given to the physics.
        building_table = dict(building_table)
        offsets_mm = building_table.pop("landing_offsets_mm")
    building = _build(BuildingConfig, building_table, "building")
    car = _build(CarConfig, data.get("car", {}), "car")
    try:
        controller = ControllerConfig(building, car)
    except ConfigError as error:
        raise ScenarioError(error.key, error.message) from None
    physics = _build(PhysicsConfig, data.get("physics", {}), "physics")
    if offsets_mm != ():
        physics = replace(physics, landing_offsets_mm=_landing_offsets(offsets_mm, building))
    traffic = _build(TrafficConfig, data.get("traffic", {}), "traffic")
    if traffic.pattern not in PATTERNS:
        raise ScenarioError("traffic.pattern", f"must be one of {', '.join(PATTERNS)} (got {shown(traffic.pattern)})")
    if traffic.pattern == "residential" and traffic.incoming_pct + traffic.outgoing_pct + traffic.interfloor_pct <= 0:
        raise ScenarioError("traffic.incoming_pct", "the residential mix needs at least one positive share")
    check_traffic_volume(building, traffic)
    raw_events = data.get("events", [])
    if not isinstance(raw_events, list):
        raise ScenarioError("events", "must be an array of tables ([[events]])")
    events = tuple(_event(raw, index, building.landing_count) for index, raw in enumerate(raw_events))
    return Scenario(controller, physics, traffic, tuple(sorted(events, key=lambda e: e.t_s)), name)


def _landing_offsets(value: object, building: BuildingConfig) -> tuple[float, ...]:
    """[building] landing_offsets_mm: one number per landing, within LANDING_OFFSET_MAX_MM, the true landings still
    in increasing order."""
    key = "building.landing_offsets_mm"
    if not isinstance(value, list) or len(value) != building.landing_count:
        raise ScenarioError(key, f"must be a list of one number per landing ({building.landing_count}) "
                                 f"(got {shown(value)})")
    span = Range(-LANDING_OFFSET_MAX_MM, LANDING_OFFSET_MAX_MM, "mm")
    try:
        for index, entry in enumerate(value):
            check_number(entry, span, key, whole=False, entry=f"entry {index} ")
    except ConfigError as error:
        raise ScenarioError(error.key, error.message) from None
    offsets = tuple(float(entry) for entry in value)
    true_m = true_landings_m(building.landings_m, offsets)
    if any(upper <= lower for lower, upper in zip(true_m, true_m[1:])):
        raise ScenarioError(key, "must leave the true landings in increasing order")
    return offsets


def check_traffic_volume(building: BuildingConfig, traffic: TrafficConfig) -> None:
    """ScenarioError unless the traffic's expected passengers fit in a run (MAX_PASSENGERS): each of rate, population
    and duration may be plausible while their product is not."""
    expected = expected_passengers(traffic, building.population, building.main_landing)
    if expected > MAX_PASSENGERS:
        raise ScenarioError("traffic.rate_pct_per_5min",
                            f"{traffic.rate_pct_per_5min:g} % of {sum(building.population)} residents per 5 min for "
                            f"{traffic.duration_s:.0f} s is about {expected:,.0f} passengers, more than a run holds "
                            f"({MAX_PASSENGERS:,}); shorten traffic.duration_s or lower the rate")


def _event(raw: Any, index: int, landing_count: int) -> ScriptedEvent:
    where = f"events[{index}]"
    if not isinstance(raw, dict):
        raise ScenarioError(where, "must be a table")
    event = _build(ScriptedEvent, raw, where)
    if event.type not in EVENT_TYPES:
        raise ScenarioError(f"{where}.type", f"must be one of {', '.join(EVENT_TYPES)} (got {shown(event.type)})")

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
            raise ScenarioError(f"{where}.direction", f"must be 'up' or 'down' (got {shown(event.direction)})")
        if (event.direction == "up" and event.landing == landing_count - 1) or (
                event.direction == "down" and event.landing == 0):
            raise ScenarioError(f"{where}.direction", f"landing {event.landing} has no {event.direction} button")
    if event.type == "passenger":
        landing_key("origin")
        landing_key("destination")
        if event.origin == event.destination:
            raise ScenarioError(f"{where}.destination", "must differ from origin")
    if event.type in ("fault", "clear_fault") and event.kind not in FAULT_KINDS:
        raise ScenarioError(f"{where}.kind", f"must be one of {', '.join(FAULT_KINDS)} (got {shown(event.kind)})")
    if event.type == "mode" and event.mode not in REQUESTABLE_MODES:
        raise ScenarioError(f"{where}.mode", f"must be one of {', '.join(REQUESTABLE_MODES)} (got {shown(event.mode)})")
    if event.type == "rescue":
        if event.action not in RESCUE_ACTIONS:
            raise ScenarioError(f"{where}.action", f"must be one of {', '.join(RESCUE_ACTIONS)} (got "
                                                   f"{shown(event.action)})")
        if event.number and (event.action == "hangup" or not DIALLED_NUMBER.fullmatch(event.number)):
            raise ScenarioError(f"{where}.number", f"must be a number the car dials (+ and up to 32 digits), with "
                                                   f"answer, busy or no-answer (got {shown(event.number)})")
    if event.side not in ("", "front", "rear") or (event.side and event.type != "obstruct"):
        raise ScenarioError(f"{where}.side", f"is 'front' or 'rear', for an obstruct event only (got "
                                             f"{shown(event.side)})")
    if event.type in ("obstruct", "alarm") and event.duration_s <= 0:
        raise ScenarioError(f"{where}.duration_s", f"must be greater than 0 for an {event.type} event")
    return event


def load(path: str | Path) -> Scenario:
    path = Path(path)
    return from_dict(read_toml(path, "the scenario", MAX_FILE_BYTES, ScenarioError), path.stem)
