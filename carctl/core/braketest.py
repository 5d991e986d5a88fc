"""The periodic brake test (EN 81-20 5.6.7.3): the drive holds a torque against the closed brake, and the car must
not move.

Rules of this module:
- Every car.brake_test_every_h (0: never; the first test BRAKE_TEST_RETRY_S after start) the test waits for an idle
  moment: a mode whose rules allow it (normal service), the car STANDING at a landing with its doors closed and
  locked, no call, nobody in the car (watch.OCCUPIED_KG), no fault but an earlier unanswered test, at rest (not
  settling, the brake closed, the drive not running, its status fresh), the count trusted.
- Then it asks the drive to hold its test torque against the closed brake (Commands.brake_test, CONTROL bit4).
  The drive must say it holds it (STATUS bit12) within BRAKE_TEST_ANSWER_S; from then, for car.brake_test_hold_s,
  the position must stay within car.brake_test_slip_m of where it was when the torque came. While a test is under
  way the phase logic is not run (the controller): nothing departs, parks or opens the doors.
- Every outcome is a BRAKE_TEST event:
  - "passed:<mm>": the next test one interval later;
  - "slipped:<mm>": BRAKE_SLIPPING (stop at once, latched), found on the tick the limit is passed; the supervisor's
    quick stop drops the request at once;
  - "no_answer": BRAKE_TEST_UNANSWERED (display only) until a later request is answered, asked again after
    BRAKE_TEST_UNANSWERED_RETRY_S. Not a stop, and not a failed test: the brake has not been found bad, and an
    older drive (or one whose parameter is not set) must not take a car out of service; but a test the
    configuration asks for and that is not being made must be seen, on the display and at the platform;
  - "abandoned": the idle moment ended (a call, a button, the doors, a load, a fault, a mode, the drive's status
    stale); tried again after BRAKE_TEST_RETRY_S. The car's movement itself never abandons a test: it is what is
    measured.
- This module owns ControllerState.brake_test_due_tick, brake_test_since_tick, brake_test_held_since_tick,
  brake_test_at_m and brake_test_unanswered.
"""

from __future__ import annotations

from dataclasses import replace

from carctl.core import watch
from carctl.core.context import Context
from carctl.core.door import DoorPhase
from carctl.core.faults import Fault
from carctl.core.modes import ModeRules
from carctl.core.phases import Phase
from carctl.core.signals import Event, EventKind, Inputs
from carctl.core.state import ControllerState
from carctl.core.supervisor import STANDSTILL_M_S


def first_due_tick(ctx: Context) -> int:
    """When the first test is due after start (-1: no test configured)."""
    return ctx.timing.brake_test_retry if ctx.timing.brake_test_every else -1


def _idle(ctx: Context, state: ControllerState, inputs: Inputs, rules: ModeRules) -> bool:
    """The car may be tested now (the rules above). Its speed and settling are left out: under test they are what a
    slipping brake changes; so is the drive's running bit, which a drive may set while it holds the test torque."""
    faults = state.faults
    return (rules.brake_test and state.phase is Phase.STANDING and state.door.phase is DoorPhase.CLOSED
            and state.door.fault is None and inputs.door_locked and inputs.door_closed_limit
            and not state.calls.any() and not inputs.door_open_button and not inputs.door_close_button
            and inputs.load_kg <= watch.OCCUPIED_KG and not state.correction
            and (not faults or faults == {Fault.BRAKE_TEST_UNANSWERED})
            and inputs.drive_age_ticks <= ctx.supervisor_limits.freshness.drive and not inputs.brake_open)


def brake_test(ctx: Context, state: ControllerState, inputs: Inputs, rules: ModeRules, events: list[Event],
               found: set[Fault]) -> ControllerState:
    """Start a due test at an idle moment, or carry one on (called while one is due or under way)."""
    tick = inputs.tick
    timing = ctx.timing
    if state.brake_test_since_tick < 0:
        speed = inputs.speed_m_s if inputs.speed_m_s >= 0.0 else -inputs.speed_m_s
        if state.settling or speed >= STANDSTILL_M_S or inputs.drive_running or not _idle(ctx, state, inputs, rules):
            return state
        return replace(state, brake_test_since_tick=tick, brake_test_held_since_tick=-1)
    held_since = state.brake_test_held_since_tick
    if held_since >= 0:
        moved_m = abs(inputs.position_m - state.brake_test_at_m)
        if moved_m > ctx.car.brake_test_slip_m:
            found.add(Fault.BRAKE_SLIPPING)
            return _end(state, tick, timing.brake_test_every, f"slipped:{moved_m * 1000:.0f}", events)
    if not _idle(ctx, state, inputs, rules):
        return _end(state, tick, timing.brake_test_retry, "abandoned", events)
    if held_since < 0:
        if inputs.brake_test_torque:
            return replace(state, brake_test_held_since_tick=tick, brake_test_at_m=inputs.position_m,
                           brake_test_unanswered=False)
        if tick - state.brake_test_since_tick >= timing.brake_test_answer:
            return replace(_end(state, tick, timing.brake_test_unanswered_retry, "no_answer", events),
                           brake_test_unanswered=True)
        return state
    if tick - held_since >= timing.brake_test_hold:
        moved_m = abs(inputs.position_m - state.brake_test_at_m)
        return _end(state, tick, timing.brake_test_every, f"passed:{moved_m * 1000:.0f}", events)
    return state


def _end(state: ControllerState, tick: int, next_after: int, outcome: str, events: list[Event]) -> ControllerState:
    events.append(Event(EventKind.BRAKE_TEST, tick, state.landing, outcome))
    return replace(state, brake_test_since_tick=-1, brake_test_held_since_tick=-1,
                   brake_test_due_tick=tick + next_after)


def deadlines(ctx: Context, state: ControllerState) -> list[int]:
    """When an unchanged state may act on its own (for Controller.next_deadline_tick): a test due, the drive's time to
    answer, the end of the hold."""
    if state.brake_test_since_tick < 0:
        return [state.brake_test_due_tick] if state.brake_test_due_tick >= 0 else []
    if state.brake_test_held_since_tick < 0:
        return [state.brake_test_since_tick + ctx.timing.brake_test_answer]
    return [state.brake_test_held_since_tick + ctx.timing.brake_test_hold]


__all__ = ["brake_test", "deadlines", "first_due_tick"]
