"""What keeps the car from serving, in one word for the health record and the platform's state message.

Rules of this module:
- One answer, the first that holds of: the car is beyond a final limit (only emergency electrical operation from the
  cabinet can bring it back: docs/modes.md), a latched fault the mode does not bridge holds it (the maintenance
  reset), a hold-to-run mode has the car (inspection or the cabinet), a latched fault waits for the reset, a fault
  waits for its condition to clear, the count must be referenced by a correction run first (correction.py; from the
  cabinet, with no slowdown switches, this keeps the buttons from moving the car at all), the car is being
  confirmed at rest after a stop (standstill.py), a mode that takes no calls has it (fire, out of service,
  rescue: the mode's name). Nothing holds: "" (the car serves).
- The words are a contract read by people and by the platform (docs/faults.md): add, never rename.
"""

from __future__ import annotations

from carctl.core.faults import FAULTS, Fault, FaultLevel
from carctl.core.modes import RULES, stop_now
from carctl.core.state import ControllerState
from carctl.core.supervisor import SupervisorLimits

BEYOND_FINAL_LIMIT = "emergency_electrical_operation"
HOLD_TO_RUN = "hold_to_run"
MAINTENANCE_RESET = "maintenance_reset"
FAULT_TO_CLEAR = "fault_to_clear"
STANDSTILL = "standstill"
CORRECTION_RUN = "correction_run"


def waiting_for(state: ControllerState, position_m: float | None, limits: SupervisorLimits | None) -> str:
    """``position_m``: the drive's last position (None before it has answered); ``limits``: the final limits (None:
    not judged)."""
    faults = state.faults
    rules = RULES[state.mode]
    if (Fault.SHAFT_LIMIT in faults and position_m is not None and limits is not None
            and not rules.hold_to_run_from_cabinet and not limits.lowest_m <= position_m <= limits.highest_m):
        return BEYOND_FINAL_LIMIT
    latched = [fault for fault in faults if FAULTS[fault].latched]
    if latched and stop_now(state) and any(fault not in rules.bridged_faults for fault in latched):
        return MAINTENANCE_RESET  # even the buttons cannot move it before the reset
    if rules.hold_to_run:
        if state.correction and rules.hold_to_run_from_cabinet and limits is not None and not limits.slowdown_m:
            return CORRECTION_RUN  # the cabinet will not move a car whose count cannot be trusted, with no switches
        return HOLD_TO_RUN
    if latched:
        return MAINTENANCE_RESET
    if any(FAULTS[fault].level >= FaultLevel.NO_NEW_TRIPS for fault in faults):
        return FAULT_TO_CLEAR
    if state.correction:
        return CORRECTION_RUN
    if state.settling:
        return STANDSTILL
    if not rules.car_calls and not rules.landing_calls:
        return state.mode.value  # fire, out_of_service, rescue: the car serves no calls in this mode
    return ""


__all__ = ["BEYOND_FINAL_LIMIT", "CORRECTION_RUN", "FAULT_TO_CLEAR", "HOLD_TO_RUN", "MAINTENANCE_RESET", "STANDSTILL",
           "waiting_for"]
