"""The safety supervisor: it runs after the logic on every tick and has the last word.

Rules of this module:
- detect() turns one Inputs snapshot into the set of fault conditions present; it trusts nothing that is stale.
- Faults are typed and carry a level (display only, no new trips, stop at the next landing, stop at once) and a
  latch rule. A latched fault (overspeed, shaft limit, unintended car movement) stays until a deliberate reset and
  the condition is gone; the others clear with their condition.
- enforce() overrides the logic's commands: no run unless the doors are closed and locked, except relevelling inside
  the door zone below 0.3 m/s; any stop-at-once fault drops the run and commands a quick stop.
- Nothing here depends on the face module, the platform link or the network.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace

from carctl.core.config import ControllerConfig
from carctl.core.rates import Freshness
from carctl.core.signals import Commands, Event, EventKind, Inputs

# Moving with the doors open is allowed only below this speed, for relevelling inside the door zone (EN 81-20).
RELEVEL_LIMIT_M_S = 0.3
# A run whose measured position strays this far from the plan has lost its position (a frozen or slipping encoder,
# a drive that does not follow): stop at once.
TRACKING_LIMIT_M = 0.25
# Below this speed the car counts as standing (encoder noise, the last millimetres of a stop).
STANDSTILL_M_S = 0.02


class FaultLevel(enum.IntEnum):
    DISPLAY = 1
    NO_NEW_TRIPS = 2
    STOP_AT_NEXT_LANDING = 3
    STOP_NOW = 4


@dataclass(frozen=True, slots=True)
class FaultSpec:
    code: int
    level: FaultLevel
    latched: bool
    meaning: str


class Fault(enum.Enum):
    DRIVE_STALE = "drive_stale"
    CAR_TOP_STALE = "car_top_stale"
    CAR_PANEL_STALE = "car_panel_stale"
    LANDING_STALE = "landing_stale"
    DRIVE_FAULT = "drive_fault"
    SAFETY_CHAIN_OPEN = "safety_chain_open"
    OVERSPEED = "overspeed"
    SHAFT_LIMIT = "shaft_limit"
    DOOR_LOCK_LOST = "door_lock_lost"
    UNINTENDED_MOVEMENT = "unintended_movement"
    POSITION_TRACKING = "position_tracking"
    DOOR_OPEN_FAILED = "door_open_failed"
    DOOR_CLOSE_FAILED = "door_close_failed"
    OVERLOAD = "overload"
    LIGHT_CURTAIN_BLOCKED = "light_curtain_blocked"
    LANDING_BUTTON_STUCK = "landing_button_stuck"
    REFERENCE_NOT_FOUND = "reference_not_found"


FAULTS: dict[Fault, FaultSpec] = {
    Fault.DRIVE_STALE: FaultSpec(11, FaultLevel.STOP_NOW, False, "drive status older than its declared rate"),
    Fault.CAR_TOP_STALE: FaultSpec(12, FaultLevel.STOP_NOW, False, "car-top board silent: door state unknown"),
    # Without the car panel the passengers have no alarm button, no door-open button and no car calls: the car
    # lets them out at the next landing and takes no one until it answers again.
    Fault.CAR_PANEL_STALE: FaultSpec(13, FaultLevel.STOP_AT_NEXT_LANDING, False,
                                     "car operating panel silent: no alarm, door or call buttons in the car"),
    Fault.LANDING_STALE: FaultSpec(14, FaultLevel.DISPLAY, False, "a landing board silent"),
    Fault.DRIVE_FAULT: FaultSpec(21, FaultLevel.STOP_NOW, False, "the drive reports a fault code"),
    Fault.SAFETY_CHAIN_OPEN: FaultSpec(22, FaultLevel.STOP_NOW, False,
                                       "safety chain open while running or with the doors locked"),
    Fault.OVERSPEED: FaultSpec(31, FaultLevel.STOP_NOW, True, "speed at or above 110 % of rated (governor: 115 %)"),
    Fault.SHAFT_LIMIT: FaultSpec(32, FaultLevel.STOP_NOW, True, "car beyond a terminal landing's final limit"),
    Fault.DOOR_LOCK_LOST: FaultSpec(33, FaultLevel.STOP_NOW, False, "door lock lost while running"),
    Fault.UNINTENDED_MOVEMENT: FaultSpec(34, FaultLevel.STOP_NOW, True,
                                         "car moving with the doors unlocked outside the relevelling rule"),
    Fault.POSITION_TRACKING: FaultSpec(35, FaultLevel.STOP_NOW, True,
                                       "measured position left the planned one (encoder frozen or slipping)"),
    Fault.REFERENCE_NOT_FOUND: FaultSpec(36, FaultLevel.STOP_NOW, True,
                                         "the correction run did not pass the reference mark: position unknown"),
    Fault.DOOR_OPEN_FAILED: FaultSpec(41, FaultLevel.NO_NEW_TRIPS, False,
                                      "doors failed to open within the protection time, after the retries"),
    Fault.DOOR_CLOSE_FAILED: FaultSpec(42, FaultLevel.NO_NEW_TRIPS, False,
                                       "doors failed to close within the protection time, after the retries"),
    Fault.LIGHT_CURTAIN_BLOCKED: FaultSpec(43, FaultLevel.DISPLAY, False,
                                           "light curtain blocked longer than its limit: failed or obstructed"),
    Fault.OVERLOAD: FaultSpec(51, FaultLevel.NO_NEW_TRIPS, False, "load above rated load plus 10 % (75 kg min)"),
    Fault.LANDING_BUTTON_STUCK: FaultSpec(61, FaultLevel.DISPLAY, False,
                                          "a landing button pressed without a break: its presses are ignored"),
}


def fault_detail(fault: Fault) -> str:
    """The detail of a FAULT_RAISED event: 'name:code:levelN' (parse_fault_detail reads it back)."""
    spec = FAULTS[fault]
    return f"{fault.value}:{spec.code}:level{int(spec.level)}"


def parse_fault_detail(detail: str) -> tuple[str, int, int]:
    """(name, code, level) from a FAULT_RAISED event's detail."""
    name, code, level = detail.split(":")
    return name, int(code), int(level.removeprefix("level"))


def worst_level(faults: frozenset[Fault]) -> int:
    return max((FAULTS[fault].level for fault in faults), default=0)


@dataclass(frozen=True, slots=True)
class SupervisorLimits:
    """The supervisor's thresholds, worked out once from the configuration."""

    overspeed_m_s: float
    lowest_m: float
    highest_m: float
    overload_kg: float
    freshness: Freshness

    @classmethod
    def from_config(cls, config: ControllerConfig) -> SupervisorLimits:
        landings = config.building.landings_m
        overtravel = config.building.overtravel_m
        return cls(config.car.overspeed_m_s, landings[0] - overtravel, landings[-1] + overtravel,
                   config.car.overload_kg, Freshness.from_config(config.car))


def detect(inputs: Inputs, limits: SupervisorLimits, relevelling: bool, position_trusted: bool = True) -> set[Fault]:
    """The fault conditions present in this snapshot. An untrusted position (before a correction run has
    re-referenced it) is not held against the final limits: the shaft's own final-limit switches open the safety
    chain there."""
    present: set[Fault] = set()
    fresh = limits.freshness
    if inputs.car_top_age_ticks > fresh.car_top:
        present.add(Fault.CAR_TOP_STALE)
    if inputs.car_panel_age_ticks > fresh.car_panel:
        present.add(Fault.CAR_PANEL_STALE)
    if inputs.landing_age_ticks > fresh.landing:
        present.add(Fault.LANDING_STALE)
    if inputs.drive_age_ticks > fresh.drive:
        present.add(Fault.DRIVE_STALE)
        return present  # speed and position are not to be trusted
    if inputs.drive_fault_code:
        present.add(Fault.DRIVE_FAULT)
    speed = inputs.speed_m_s
    if speed < 0:
        speed = -speed
    if speed >= limits.overspeed_m_s:
        present.add(Fault.OVERSPEED)
    if position_trusted and not limits.lowest_m <= inputs.position_m <= limits.highest_m:
        present.add(Fault.SHAFT_LIMIT)
    if inputs.load_kg > limits.overload_kg:
        present.add(Fault.OVERLOAD)
    if not inputs.door_locked and Fault.CAR_TOP_STALE not in present:
        if speed > STANDSTILL_M_S and (not inputs.in_door_zone or speed >= RELEVEL_LIMIT_M_S):
            present.add(Fault.UNINTENDED_MOVEMENT)
        elif inputs.drive_running and not relevelling:
            present.add(Fault.DOOR_LOCK_LOST)
    # Open doors open the chain (outside the door zone) as a matter of course; with the doors locked, or while the
    # drive runs, an open chain is a safety contact that has operated. The drive trips at once, so by the next
    # status it may no longer be running: the locked doors are what still tell.
    if not inputs.safety_chain_closed and (inputs.drive_running or inputs.door_locked):
        present.add(Fault.SAFETY_CHAIN_OPEN)
    return present


def update_faults(active: frozenset[Fault], present: set[Fault], reset: bool, tick: int,
                  events: list[Event]) -> frozenset[Fault]:
    """Latch what must latch; clear what may clear. Returns ``active`` itself when nothing changed."""
    if not present and not active:
        return active
    kept = {fault for fault in active if fault in present or (FAULTS[fault].latched and not reset)}
    updated = frozenset(kept | present)
    if updated == active:
        return active
    for fault in sorted(updated - active, key=lambda f: f.value):
        events.append(Event(EventKind.FAULT_RAISED, tick, -1, fault_detail(fault)))
    for fault in sorted(active - updated, key=lambda f: f.value):
        events.append(Event(EventKind.FAULT_CLEARED, tick, -1, fault.value))
    return updated


def enforce(commands: Commands, faults: frozenset[Fault], inputs: Inputs, relevelling: bool, tick: int,
            events: list[Event]) -> Commands:
    """The last word on the drive commands."""
    running = commands.run_up or commands.run_down
    if faults and worst_level(faults) >= FaultLevel.STOP_NOW:
        if running or not commands.quick_stop:
            return replace(commands, run_up=False, run_down=False, speed_ref_m_s=0.0, quick_stop=True)
        return commands
    if not running:
        return commands
    if commands.run_up and commands.run_down:
        events.append(Event(EventKind.COMMAND_BLOCKED, tick, -1, "run up and down at once"))
        return replace(commands, run_up=False, run_down=False, speed_ref_m_s=0.0, quick_stop=True)
    if inputs.door_locked:
        return commands
    relevel_allowed = (relevelling and inputs.in_door_zone and abs(inputs.speed_m_s) < RELEVEL_LIMIT_M_S
                       and commands.speed_ref_m_s < RELEVEL_LIMIT_M_S)
    if relevel_allowed:
        return commands
    events.append(Event(EventKind.COMMAND_BLOCKED, tick, -1, "run with the doors not closed and locked"))
    return replace(commands, run_up=False, run_down=False, speed_ref_m_s=0.0, quick_stop=True)
