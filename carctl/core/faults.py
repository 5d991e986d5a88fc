"""The faults the core knows: one table of code, level, latch rule and meaning.

Rules of this module:
- FAULTS is the one place a fault is defined. Every fault is raised and cleared by the supervisor's update_faults(),
  whoever finds its condition (detect(), the door machine, the input watch, a phase handler): one event per raise
  and one per clear.
- A latched fault stays until a deliberate reset arrives with its condition gone; latched faults outlive the
  process (the runtime keeps latched() of the active set on disk and hands it back to initial_state()).
- The detail of a FAULT_RAISED event is 'name:code:levelN' (fault_detail); parse_fault_detail reads it back.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from carctl.core.records import IdentityEnum


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


class Fault(IdentityEnum):
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
    SPEED_DEVIATION = "speed_deviation"
    STANDSTILL_UNCONFIRMED = "standstill_unconfirmed"
    TERMINAL_SPEED = "terminal_speed"
    SLOWDOWN_SWITCH = "slowdown_switch"
    DOOR_OPEN_FAILED = "door_open_failed"
    DOOR_CLOSE_FAILED = "door_close_failed"
    OVERLOAD = "overload"
    LIGHT_CURTAIN_BLOCKED = "light_curtain_blocked"
    LANDING_BUTTON_STUCK = "landing_button_stuck"
    REFERENCE_NOT_FOUND = "reference_not_found"
    LATCH_RECORD_UNREADABLE = "latch_record_unreadable"
    CONTROLLER_ERROR = "controller_error"
    LATCH_RECORD_UNWRITABLE = "latch_record_unwritable"
    LANDING_TABLE_REFUSED = "landing_table_refused"
    ALARM_MODEM_DEAD = "alarm_modem_dead"
    ALARM_TEST_FAILED = "alarm_test_failed"
    ALARM_BATTERY = "alarm_battery"
    BRAKE_NOT_LIFTED = "brake_not_lifted"
    BRAKE_NOT_DROPPED = "brake_not_dropped"
    BRAKE_CONTACTS_DISAGREE = "brake_contacts_disagree"
    BRAKE_SLIPPING = "brake_slipping"
    BRAKE_TEST_UNANSWERED = "brake_test_unanswered"
    BRAKE_TEST_TORQUE_HELD = "brake_test_torque_held"
    BRAKE_TEST_OVERDUE = "brake_test_overdue"


FAULTS: dict[Fault, FaultSpec] = {
    Fault.DRIVE_STALE: FaultSpec(11, FaultLevel.STOP_NOW, False, "drive status older than its declared rate"),
    Fault.CAR_TOP_STALE: FaultSpec(12, FaultLevel.STOP_NOW, False, "car-top board silent: door state unknown"),
    # Without the car panel the passengers have no alarm button, no door-open button and no car calls: the car
    # lets them out at the next landing and takes no one until it answers again.
    Fault.CAR_PANEL_STALE: FaultSpec(13, FaultLevel.STOP_AT_NEXT_LANDING, False,
                                     "car operating panel silent: no alarm, door or call buttons in the car"),
    Fault.LANDING_STALE: FaultSpec(14, FaultLevel.DISPLAY, False, "a landing board silent"),
    # Shown, not a stop (the car is already held): after a stop it has not been seen at rest for the settling time
    # within STANDSTILL_UNCONFIRMED_S, so it cannot take up service; says what it waits for (standstill.py).
    Fault.STANDSTILL_UNCONFIRMED: FaultSpec(16, FaultLevel.DISPLAY, False,
                                            "the car cannot be confirmed at rest after a stop (creeping, a speed or "
                                            "position that will not settle, a drive still reporting it runs)"),
    Fault.DRIVE_FAULT: FaultSpec(21, FaultLevel.STOP_NOW, False, "the drive reports a fault code"),
    Fault.SAFETY_CHAIN_OPEN: FaultSpec(22, FaultLevel.STOP_NOW, False,
                                       "safety chain open while running or with the doors locked"),
    # Brake monitoring (EN 81-20 5.6.7.3, brake.py, braketest.py): latched, since only a competent person may put a
    # car whose brake has failed back into service. The motor dragging the car against a brake that did not lift,
    # or a car standing with its whole brake lifted, is a stop at once.
    Fault.BRAKE_NOT_LIFTED: FaultSpec(23, FaultLevel.STOP_NOW, True,
                                      "a brake contact not seen lifted within car.brake_lift_limit_s of the drive "
                                      "opening the brake"),
    Fault.BRAKE_NOT_DROPPED: FaultSpec(24, FaultLevel.STOP_NOW, True,
                                       "the brake contacts not seen dropped within car.brake_drop_limit_s of the "
                                       "drive closing the brake"),
    # One circuit hanging (or its contact or wire failed) with the other dropped: the dropped circuit still holds
    # the car (each circuit alone holds it with rated load, EN 81-20 5.9.2.2.2.1), but the second is gone: no new
    # trip until a technician has looked.
    Fault.BRAKE_CONTACTS_DISAGREE: FaultSpec(25, FaultLevel.NO_NEW_TRIPS, True,
                                             "the brake circuits' contacts disagree with the car standing"),
    Fault.BRAKE_SLIPPING: FaultSpec(26, FaultLevel.STOP_NOW, True,
                                    "the periodic brake test: the car moved against the closed brake under the "
                                    "drive's test torque"),
    # Shown, not a stop: the brake has not been found bad, but the test the configuration asks for is not being
    # made (a drive without the test, or not set up for it: docs/drive-parameters.md).
    Fault.BRAKE_TEST_UNANSWERED: FaultSpec(27, FaultLevel.DISPLAY, False,
                                           "the drive did not answer the periodic brake test's request, or did "
                                           "not hold its test torque through the hold"),
    # The register map's way to end a test torque the drive holds on to is a quick stop; meanwhile nothing departs
    # or opens the doors at the landing (braketest.py).
    Fault.BRAKE_TEST_TORQUE_HELD: FaultSpec(19, FaultLevel.STOP_NOW, False,
                                            "the drive still reports its brake-test torque 1 s after the test's "
                                            "request went"),
    # Shown, not a stop: nothing is known against the brake, but the test the configuration asks for is not being
    # made (faults above display only, a mode, or a car never idle hold it off).
    Fault.BRAKE_TEST_OVERDUE: FaultSpec(20, FaultLevel.DISPLAY, False,
                                        "no periodic brake test made for a whole interval past its due time"),
    Fault.OVERSPEED: FaultSpec(31, FaultLevel.STOP_NOW, True, "speed at or above 110 % of rated (governor: 115 %)"),
    Fault.SHAFT_LIMIT: FaultSpec(32, FaultLevel.STOP_NOW, True, "car beyond a terminal landing's final limit"),
    Fault.DOOR_LOCK_LOST: FaultSpec(33, FaultLevel.STOP_NOW, False, "door lock lost while running"),
    Fault.UNINTENDED_MOVEMENT: FaultSpec(34, FaultLevel.STOP_NOW, True,
                                         "car moving with the doors unlocked outside the relevelling rule"),
    # The drive does not follow its speed reference: a runaway that starts slowly (near a terminal, where overspeed
    # at 110 % of rated would come too late), a drive limiting its current, a slipping sheave.
    Fault.SPEED_DEVIATION: FaultSpec(30, FaultLevel.STOP_NOW, True,
                                     "measured speed off the planned speed by more than car.speed_deviation_m_s for "
                                     "car.speed_deviation_s"),
    # Emergency terminal speed limiting (EN 81-20 5.12.1.3, with reduced-stroke buffers): near a terminal the car
    # must be slow enough to stop before it, whatever the drive's plan says.
    Fault.TERMINAL_SPEED: FaultSpec(29, FaultLevel.STOP_NOW, True,
                                    "too fast for the distance left to a terminal landing (terminal speed limiting)"),
    # A slowdown switch that says otherwise than the trusted count, the car at rest: a switch, cam or wire that has
    # failed (or a switch configured that is not fitted). The car finishes its ride and takes no new trip.
    Fault.SLOWDOWN_SWITCH: FaultSpec(28, FaultLevel.NO_NEW_TRIPS, False,
                                     "a terminal slowdown switch disagrees with the position, the car at rest"),
    Fault.POSITION_TRACKING: FaultSpec(35, FaultLevel.STOP_NOW, True,
                                       "measured position left the planned one (encoder frozen or slipping)"),
    Fault.REFERENCE_NOT_FOUND: FaultSpec(36, FaultLevel.STOP_NOW, True,
                                         "the correction run did not pass the reference mark: position unknown"),
    # At start the runtime could not read the record of latched faults, so one of 31..36 may be standing unseen:
    # the car stays stopped, saying why, until a competent person has looked and reset it.
    Fault.LATCH_RECORD_UNREADABLE: FaultSpec(37, FaultLevel.STOP_NOW, True,
                                             "the record of latched faults could not be read: a latched fault may "
                                             "be hidden"),
    # The core raised an exception in its last step: the loop gave the drive the supervisor's safe command instead
    # (supervisor.SAFE_STOP) and the step after raises this, so the stop is a fault like any other, logged and
    # reported; it clears with the next clean step and the car recovers from rest.
    Fault.CONTROLLER_ERROR: FaultSpec(38, FaultLevel.STOP_NOW, False,
                                      "the control core failed in a cycle: the car was stopped at once"),
    # Shown, not a stop: the car is safe now, but a latched fault it raises would not survive a restart.
    Fault.LATCH_RECORD_UNWRITABLE: FaultSpec(39, FaultLevel.DISPLAY, False,
                                             "the record of latched faults cannot be written (runtime.latch_file)"),
    # Shown, not a stop: the typed landing table is a valid one, only less exact than the learned one was.
    Fault.LANDING_TABLE_REFUSED: FaultSpec(40, FaultLevel.DISPLAY, False,
                                           "the learned landing table was refused, or not written "
                                           "(runtime.learned_table): the typed table is in use"),
    Fault.DOOR_OPEN_FAILED: FaultSpec(41, FaultLevel.NO_NEW_TRIPS, False,
                                      "doors failed to open within the protection time, after the retries"),
    Fault.DOOR_CLOSE_FAILED: FaultSpec(42, FaultLevel.NO_NEW_TRIPS, False,
                                       "doors failed to close within the protection time, after the retries"),
    Fault.LIGHT_CURTAIN_BLOCKED: FaultSpec(43, FaultLevel.DISPLAY, False,
                                           "light curtain blocked longer than its limit: failed or obstructed"),
    Fault.OVERLOAD: FaultSpec(51, FaultLevel.NO_NEW_TRIPS, False, "load above rated load plus 10 % (75 kg min)"),
    Fault.LANDING_BUTTON_STUCK: FaultSpec(61, FaultLevel.DISPLAY, False,
                                          "a landing button pressed without a break: its presses are ignored"),
    # Shown, not a stop: the car runs, but a rider who holds the alarm button would get no voice call (EN 81-28 asks
    # that the alarm system's failure be known); the platform hears it like any fault.
    Fault.ALARM_MODEM_DEAD: FaultSpec(71, FaultLevel.DISPLAY, False,
                                      "the alarm's GSM module answers nothing (or its process is silent): no voice "
                                      "call"),
    Fault.ALARM_TEST_FAILED: FaultSpec(72, FaultLevel.DISPLAY, False,
                                       "the alarm's last periodic test call reached no rescue service"),
    Fault.ALARM_BATTERY: FaultSpec(73, FaultLevel.DISPLAY, False,
                                   "the alarm unit's battery cannot carry the alarm for an hour"),
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


def latched(faults: Iterable[Fault]) -> frozenset[Fault]:
    """The faults among ``faults`` that latch: what must survive a restart."""
    return frozenset(fault for fault in faults if FAULTS[fault].latched)


__all__ = ["FAULTS", "Fault", "FaultLevel", "FaultSpec", "fault_detail", "latched", "parse_fault_detail",
           "worst_level"]
