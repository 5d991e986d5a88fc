"""The safety supervisor: it runs after the logic on every tick and has the last word.

Rules of this module:
- detect() turns one Inputs snapshot into the set of fault conditions present; it trusts nothing that is stale.
- Faults are typed and carry a level (display only, no new trips, stop at the next landing, stop at once) and a
  latch rule (faults.py). A latched fault (overspeed, shaft limit, unintended car movement) stays until a deliberate
  reset and the condition is gone; the others clear with their condition.
- update_faults() is the only place a fault is raised or cleared, with one event each. The conditions detect()
  finds, the door machine's and the input watch's go in before the logic; a condition the logic itself finds (a
  run that lost its position, a correction run that found no mark) goes in after it, so that its stop-at-once is
  in the same tick's commands.
- enforce() overrides the logic's commands: no run unless the doors are closed and locked, except relevelling inside
  the door zone below 0.3 m/s; no run while the car is settling after a stop at once (standstill.py); any
  stop-at-once fault drops the run and the brake test's torque and commands a quick stop; the brake test's torque
  only with no run and the doors locked; no run starts while the drive still reports its test torque.
- Nothing here depends on the face module, the platform link or the network.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from carctl.core.config import CarConfig, ControllerConfig
from carctl.core.faults import FAULTS, Fault, FaultLevel, FaultSpec, fault_detail, parse_fault_detail, worst_level
from carctl.core.rates import Freshness
from carctl.core.records import replace
from carctl.core.signals import Commands, Event, EventKind, Inputs

# Moving with the doors open is allowed only below this speed, for relevelling inside the door zone (EN 81-20).
RELEVEL_LIMIT_M_S = 0.3
# A run whose measured position strays this far from the plan has lost its position (a frozen or slipping encoder,
# a drive that does not follow): stop at once.
TRACKING_LIMIT_M = 0.25
# Below this speed the car counts as standing (encoder noise, the last millimetres of a stop).
STANDSTILL_M_S = 0.02
# What the drive and the boards get when the logic could not give an answer (the core raised): stop at once, no
# run, the door operator neither opening nor closing (the doors stay as they are), the lamps dark.
SAFE_STOP = Commands(quick_stop=True)


@dataclass(frozen=True, slots=True)
class SupervisorLimits:
    """The supervisor's thresholds, worked out once from the configuration."""

    overspeed_m_s: float
    lowest_m: float
    highest_m: float
    overload_kg: float
    freshness: Freshness
    # Terminal speed limiting: the terminal landings, how far from them it applies, the deceleration it allows for
    # and the margin over the speed that deceleration stops from.
    bottom_m: float = 0.0
    top_m: float = 0.0
    terminal_zone_m: float = 0.0
    terminal_decel_m_s2: float = 1.0
    terminal_margin_m_s: float = 0.1
    terminal_floor_m_s: float = 0.3  # never below the slow runs' speeds (inspection, correction, rescue, relevel)
    # The slowdown switches: by the bits of the switches actuated at a terminal (0-7), the speed the car must be
    # below (that of the innermost one: slowdown_limits()); no limit where no configured switch is actuated.
    slowdown_limit_m_s: tuple[float, ...] = (math.inf,) * 8
    slowdown_m: tuple[float, ...] = ()  # where the switches are, from each terminal landing

    @classmethod
    def from_config(cls, config: ControllerConfig) -> SupervisorLimits:
        landings = config.building.landings_m
        overtravel = config.building.overtravel_m
        car = config.car
        floor_m_s, decel_m_s2 = slow_runs_m_s(car), 1.25 * car.acceleration_m_s2
        margin_m_s = car.terminal_speed_margin_m_s
        return cls(car.overspeed_m_s, landings[0] - overtravel, landings[-1] + overtravel, car.overload_kg,
                   Freshness.from_config(car), bottom_m=landings[0], top_m=landings[-1],
                   terminal_zone_m=car.terminal_zone_m, terminal_decel_m_s2=decel_m_s2,
                   terminal_margin_m_s=margin_m_s, terminal_floor_m_s=floor_m_s,
                   slowdown_limit_m_s=slowdown_limits(car.terminal_switches_m, floor_m_s, decel_m_s2, margin_m_s),
                   slowdown_m=car.terminal_switches_m)


def slow_runs_m_s(car: CarConfig) -> float:
    """The fastest of the runs that slow down by the position gain, not by the profile's deceleration (inspection,
    emergency electrical operation, correction, rescue, relevelling): terminal speed limiting never goes below it."""
    return max(car.inspection_speed_m_s, car.eeo_speed_m_s, car.correction_speed_m_s, car.rescue_speed_m_s,
               car.relevel_speed_m_s)


def slowdown_limits(switches_m: tuple[float, ...], floor_m_s: float, decel_m_s2: float,
                    margin_m_s: float) -> tuple[float, ...]:
    """For each combination of a terminal's slowdown switches actuated (bit i: the switch at switches_m[i]), the
    speed the car must stay below: the terminal speed limit at the innermost switch actuated, as the count-based
    check works it out at that distance (never below the slow runs' speeds, plus the margin)."""
    at_switch = [max(floor_m_s, math.sqrt(2.0 * decel_m_s2 * distance)) + margin_m_s for distance in switches_m]
    return tuple(min((limit for index, limit in enumerate(at_switch) if mask >> index & 1), default=math.inf)
                 for mask in range(8))


# A switch is judged against the count only this far from where it acts: its cam's length and setting, the rope's
# stretch, a count's small error.
SLOWDOWN_SWITCH_TOLERANCE_M = 0.1


def slowdown_switches_agree(inputs: Inputs, limits: SupervisorLimits) -> bool:
    """Every slowdown switch reads as the trusted count says it should, the car at rest; a bit of a switch the
    configuration does not name never should be set."""
    configured = (1 << len(limits.slowdown_m)) - 1
    if (inputs.slowdown_top | inputs.slowdown_bottom) & ~configured:
        return False
    for index, distance in enumerate(limits.slowdown_m):
        for left_m, bits in ((limits.top_m - inputs.position_m, inputs.slowdown_top),
                             (inputs.position_m - limits.bottom_m, inputs.slowdown_bottom)):
            if abs(left_m - distance) > SLOWDOWN_SWITCH_TOLERANCE_M and bool(bits >> index & 1) != (left_m <= distance):
                return False
    return True


def terminal_speed_exceeded(limits: SupervisorLimits, position_m: float, speed_m_s: float, speed: float) -> bool:
    """Terminal speed limiting (by the count): towards a terminal landing, no faster than the speed from which the
    allowed deceleration stops the car at it, but never below the slow runs' own speeds (inspection and levelling
    slow down by the position gain, not by the profile's deceleration); a zone of 0 turns it off. ``speed_m_s``
    signed, ``speed`` its magnitude. (detect() and the cruise law, cruise.py, both ask this.)"""
    if limits.terminal_zone_m <= 0.0:
        left_m = 1.0
    elif speed_m_s > 0.0:
        left_m = limits.top_m - position_m
    elif speed_m_s < 0.0:
        left_m = position_m - limits.bottom_m
    else:
        left_m = limits.terminal_zone_m + 1.0
    return left_m < limits.terminal_zone_m and speed > limits.terminal_floor_m_s + limits.terminal_margin_m_s and (
        speed > math.sqrt(2.0 * limits.terminal_decel_m_s2 * max(0.0, left_m)) + limits.terminal_margin_m_s)


def detect(inputs: Inputs, limits: SupervisorLimits, relevelling: bool, position_trusted: bool = True) -> set[Fault]:
    """The fault conditions present in this snapshot. An untrusted position (before a correction run has
    re-referenced it) is not held against the final limits: the shaft's own final-limit switches open the safety
    chain there."""
    present: set[Fault] = set()
    if inputs.controller_error:
        present.add(Fault.CONTROLLER_ERROR)
    if inputs.latch_record_failing:
        present.add(Fault.LATCH_RECORD_UNWRITABLE)
    if inputs.landing_table_refused:
        present.add(Fault.LANDING_TABLE_REFUSED)
    if inputs.alarm_modem_dead:
        present.add(Fault.ALARM_MODEM_DEAD)
    if inputs.alarm_test_failed:
        present.add(Fault.ALARM_TEST_FAILED)
    if inputs.alarm_battery_low:
        present.add(Fault.ALARM_BATTERY)
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
    if position_trusted:
        position = inputs.position_m
        if not limits.lowest_m <= position <= limits.highest_m:
            present.add(Fault.SHAFT_LIMIT)
        if terminal_speed_exceeded(limits, position, inputs.speed_m_s, speed):
            present.add(Fault.TERMINAL_SPEED)
    # The slowdown switches judge the same limit at their own positions whatever the count says: a count that has
    # slipped (or is not yet referenced) would otherwise let the car into the buffer at speed. Not from a stale
    # car-top reading (car_top_stale has stopped the car already).
    if (inputs.slowdown_top or inputs.slowdown_bottom) and Fault.CAR_TOP_STALE not in present:
        toward = inputs.slowdown_top if inputs.speed_m_s > 0.0 else inputs.slowdown_bottom if (
            inputs.speed_m_s < 0.0) else 0
        if toward and speed > limits.slowdown_limit_m_s[toward & 0b111]:
            present.add(Fault.TERMINAL_SPEED)
    if (limits.slowdown_m or inputs.slowdown_top or inputs.slowdown_bottom) and position_trusted and (
            speed < STANDSTILL_M_S and Fault.CAR_TOP_STALE not in present
            and not slowdown_switches_agree(inputs, limits)):
        present.add(Fault.SLOWDOWN_SWITCH)
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
            events: list[Event], settling: bool = False) -> Commands:
    """The last word on the drive commands. ``settling``: after a stop at once, the car has not yet been seen at
    rest for the settling time (standstill.py)."""
    running = commands.run_up or commands.run_down
    if faults and worst_level(faults) >= FaultLevel.STOP_NOW:
        if running or not commands.quick_stop or commands.brake_test:
            return replace(commands, run_up=False, run_down=False, speed_ref_m_s=0.0, quick_stop=True,
                           brake_test=False)
        return commands
    if commands.brake_test and (running or not inputs.door_locked):
        # The test torque only against a closed brake, the car standing with its doors locked (braketest.py).
        commands = replace(commands, brake_test=False)
    if not running:
        return commands
    if commands.run_up and commands.run_down:
        events.append(Event(EventKind.COMMAND_BLOCKED, tick, -1, "run up and down at once"))
        return replace(commands, run_up=False, run_down=False, speed_ref_m_s=0.0, quick_stop=True)
    if inputs.brake_test_torque and not inputs.brake_open:
        # The drive still pushes its brake-test torque against the closed brake: a run waits until it says it is gone.
        events.append(Event(EventKind.COMMAND_BLOCKED, tick, -1, "run while the drive holds its brake test torque"))
        return replace(commands, run_up=False, run_down=False, speed_ref_m_s=0.0)
    if settling:
        # Lifting the brake on a car that may still be sliding on it, perhaps for a run the other way.
        events.append(Event(EventKind.COMMAND_BLOCKED, tick, -1, "run before the car was at rest after a stop"))
        return replace(commands, run_up=False, run_down=False, speed_ref_m_s=0.0)
    if inputs.door_locked:
        return commands
    relevel_allowed = (relevelling and inputs.in_door_zone and abs(inputs.speed_m_s) < RELEVEL_LIMIT_M_S
                       and commands.speed_ref_m_s < RELEVEL_LIMIT_M_S)
    if relevel_allowed:
        return commands
    events.append(Event(EventKind.COMMAND_BLOCKED, tick, -1, "run with the doors not closed and locked"))
    return replace(commands, run_up=False, run_down=False, speed_ref_m_s=0.0, quick_stop=True)


__all__ = ["FAULTS", "RELEVEL_LIMIT_M_S", "SAFE_STOP", "STANDSTILL_M_S", "TRACKING_LIMIT_M", "Fault", "FaultLevel",
           "FaultSpec", "SupervisorLimits", "detect", "enforce", "fault_detail", "parse_fault_detail",
           "terminal_speed_exceeded", "update_faults", "worst_level"]
