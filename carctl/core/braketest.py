"""The periodic brake test (EN 81-20 5.6.7.3): the drive holds a torque against the closed brake, and the car must
not move.

Rules of this module:
- Every car.brake_test_every_h (0: never; the first test BRAKE_TEST_RETRY_S after start) the test waits for an idle
  moment: a mode whose rules allow it (normal service), the car STANDING at a landing with its doors closed and
  locked, no call, nobody in the car (watch.OCCUPIED_KG), no fault above display only (a display fault — a landing
  board silent, the alarm's modem, a refused landing table, an earlier unanswered test — has nothing to do with the
  brake, and may stand for weeks), at rest (not settling, the brake closed, the drive not running and not still
  reporting a test torque, its status fresh), the count trusted.
- Then it asks the drive to hold its test torque against the closed brake (Commands.brake_test, CONTROL bit4), and
  the position must stay within car.brake_test_slip_m of where the car stood when it asked, from that tick to the
  end: a brake that gives way while the torque rises, or under a torque the drive never reports, is as bad as one
  that gives way under the reported torque. The drive must say it holds the torque (STATUS bit12) within
  BRAKE_TEST_ANSWER_S and go on saying so for car.brake_test_hold_s. While a test is under way, and after it until
  the drive no longer reports its torque, the phase logic of a standing car is not run (the controller): nothing
  departs, parks or opens the doors.
- Every outcome is a BRAKE_TEST event:
  - "passed:<mm>": the next test one interval later;
  - "slipped:<mm>": BRAKE_SLIPPING (stop at once, latched), found on the tick the limit is passed, whether or not
    the drive has answered; the supervisor's quick stop drops the request at once;
  - "no_answer": no bit12 within the answer time, or bit12 gone before the hold ended (a torque that is not held is
    no test): BRAKE_TEST_UNANSWERED (display only) until a later request is answered through its hold, asked again
    after BRAKE_TEST_UNANSWERED_RETRY_S. Not a stop, and not a failed test: the brake has not been found bad, and an
    older drive (or one whose parameter is not set) must not take a car out of service; but a test the
    configuration asks for and that is not being made must be seen, on the display and at the platform;
  - "abandoned": the idle moment ended (a call, a button, the doors, a load, a fault, a mode, the drive's status
    stale); tried again after BRAKE_TEST_RETRY_S. The car's movement itself never abandons a test: it is what is
    measured.
- A test may also be asked for by the service tool (Inputs.commission BRAKE_TEST, requested()): only in a mode
  whose rules allow that (inspection: ModeRules.brake_test_on_request), the car at rest where the mechanic left it
  (STANDING or HALTED, no hold-to-run button held) and otherwise idle as above. It answers "started", or
  "refused:<why>" and nothing happens; then it runs, and ends, as a periodic test does (a hold-to-run button
  pressed abandons it). Where no periodic test is configured, its outcome schedules none, and a drive that does not
  answer is said by the "no_answer" event only, not by a standing fault, and none is ever overdue.
- A test the configuration asks for and that is not being made must be seen: one not made for a whole interval past
  its due time (held off by faults, a mode, a busy car) is BRAKE_TEST_OVERDUE (display only) until one is made (or
  the drive is found not to answer, which BRAKE_TEST_UNANSWERED shows). A drive that still reports its test torque
  BRAKE_TEST_ANSWER_S after the request went is BRAKE_TEST_TORQUE_HELD (stop at once: the quick stop is what ends
  the torque, docs/register-map.md) until it no longer does.
- This module owns ControllerState.brake_test_due_tick, brake_test_since_tick, brake_test_held_since_tick,
  brake_test_at_m, brake_test_unanswered, brake_test_requested, brake_test_overdue_tick and
  brake_test_torque_since_tick.
"""

from __future__ import annotations


from carctl.core.context import Context
from carctl.core.door import DoorPhase
from carctl.core.faults import Fault, FaultLevel, worst_level
from carctl.core.modes import ModeRules
from carctl.core.phases import Phase
from carctl.core.records import replace
from carctl.core.signals import Event, EventKind, Inputs
from carctl.core.state import ControllerState
from carctl.core.supervisor import STANDSTILL_M_S
from carctl.core.watch import OCCUPIED_KG


def first_due_tick(ctx: Context) -> int:
    """When the first test is due after start (-1: no test configured)."""
    return ctx.timing.brake_test_retry if ctx.timing.brake_test_every else -1


def first_overdue_tick(ctx: Context) -> int:
    """When the first test is overdue if none has been made (-1: no test configured)."""
    return ctx.timing.brake_test_retry + ctx.timing.brake_test_every if ctx.timing.brake_test_every else -1


def watch(ctx: Context, state: ControllerState, inputs: Inputs, found: set[Fault]) -> ControllerState:
    """The test's standing conditions (called while one may hold): unanswered, overdue, a test torque the drive still
    reports with no test asked for. Returns ``state`` itself when nothing changed."""
    tick = inputs.tick
    if state.brake_test_unanswered:
        found.add(Fault.BRAKE_TEST_UNANSWERED)
    if 0 <= state.brake_test_overdue_tick <= tick:
        found.add(Fault.BRAKE_TEST_OVERDUE)
    since = state.brake_test_torque_since_tick
    if inputs.brake_test_torque and state.brake_test_since_tick < 0:
        if since < 0:
            return replace(state, brake_test_torque_since_tick=tick)
        if tick - since >= ctx.timing.brake_test_answer:
            found.add(Fault.BRAKE_TEST_TORQUE_HELD)
    elif since >= 0:
        return replace(state, brake_test_torque_since_tick=-1)
    return state


def holds_the_car(state: ControllerState, inputs: Inputs) -> bool:
    """A test is under way, or the drive still reports its test torque at a landing: the phase logic waits (nothing
    departs, parks or opens the doors against a torque that a brake giving way would turn into movement)."""
    return state.brake_test_since_tick >= 0 or (inputs.brake_test_torque and state.phase is Phase.STANDING)


def _idle(ctx: Context, state: ControllerState, inputs: Inputs, rules: ModeRules) -> bool:
    return not why_not_idle(ctx, state, inputs, rules)


def why_not_idle(ctx: Context, state: ControllerState, inputs: Inputs, rules: ModeRules) -> str:
    """Why the car may not be tested now ("" when it may: the rules above). Its speed and settling are left out:
    under test they are what a slipping brake changes; so is the drive's running bit, which a drive may set while it
    holds the test torque."""
    if state.brake_test_requested:
        if not rules.brake_test_on_request:
            return "not_in_inspection"
        if (state.phase is not Phase.STANDING and state.phase is not Phase.HALTED or inputs.inspection_up
                or inputs.inspection_down or inputs.eeo_up or inputs.eeo_down):
            return "car_moving"
    elif not rules.brake_test or state.phase is not Phase.STANDING:
        return "not_idle"
    if worst_level(state.faults) > FaultLevel.DISPLAY:
        return "fault"
    if (state.door.phase is not DoorPhase.CLOSED or state.door.fault is not None or not inputs.door_locked
            or not inputs.door_closed_limit or inputs.door_open_button or inputs.door_close_button):
        return "doors_not_locked"
    if state.calls.any():
        return "calls"
    if inputs.load_kg > OCCUPIED_KG:
        return "car_occupied"
    if state.correction:
        return "position_unreferenced"
    if inputs.drive_age_ticks > ctx.supervisor_limits.freshness.drive:
        return "drive_silent"
    if inputs.brake_open:
        return "car_moving"
    return ""


def requested(ctx: Context, state: ControllerState, inputs: Inputs, rules: ModeRules,
              events: list[Event]) -> ControllerState:
    """The service tool asks for a test now: it starts (the drive is asked for the test torque from this tick, and
    the slip is measured from here), or is refused with the reason."""
    tick = inputs.tick
    speed = inputs.speed_m_s if inputs.speed_m_s >= 0.0 else -inputs.speed_m_s
    if state.brake_test_since_tick >= 0:
        why = "under_way"
    elif not rules.brake_test_on_request:
        why = "not_in_inspection"
    elif state.settling or speed >= STANDSTILL_M_S or inputs.drive_running or inputs.brake_test_torque:
        why = "car_moving"
    else:
        why = why_not_idle(ctx, replace(state, brake_test_requested=True), inputs, rules)
    if why:
        events.append(Event(EventKind.BRAKE_TEST, tick, state.landing, f"refused:{why}"))
        return state
    events.append(Event(EventKind.BRAKE_TEST, tick, state.landing, "started"))
    return replace(state, brake_test_since_tick=tick, brake_test_held_since_tick=-1, brake_test_requested=True,
                   brake_test_at_m=inputs.position_m)


def brake_test(ctx: Context, state: ControllerState, inputs: Inputs, rules: ModeRules, events: list[Event],
               found: set[Fault]) -> ControllerState:
    """Start a due test at an idle moment, or carry one on (called while one is due or under way)."""
    tick = inputs.tick
    timing = ctx.timing
    if state.brake_test_since_tick < 0:
        speed = inputs.speed_m_s if inputs.speed_m_s >= 0.0 else -inputs.speed_m_s
        if (state.settling or speed >= STANDSTILL_M_S or inputs.drive_running or inputs.brake_test_torque
                or not _idle(ctx, state, inputs, rules)):
            return state
        # The slip is measured from here: the torque is asked for now, and the brake may give way as it rises.
        return replace(state, brake_test_since_tick=tick, brake_test_held_since_tick=-1,
                       brake_test_at_m=inputs.position_m)
    moved_m = abs(inputs.position_m - state.brake_test_at_m)
    if moved_m > ctx.car.brake_test_slip_m:
        found.add(Fault.BRAKE_SLIPPING)  # whatever the drive says of its torque: the closed brake let the car go
        return _end(ctx, state, tick, timing.brake_test_every, f"slipped:{moved_m * 1000:.0f}", events)
    if not _idle(ctx, state, inputs, rules):
        return _end(ctx, state, tick, timing.brake_test_retry, "abandoned", events)
    held_since = state.brake_test_held_since_tick
    if held_since < 0:
        if inputs.brake_test_torque:
            return replace(state, brake_test_held_since_tick=tick, brake_test_unanswered=False)
        if tick - state.brake_test_since_tick >= timing.brake_test_answer:
            return _unanswered(ctx, state, tick, events)
        return state
    if not inputs.brake_test_torque:
        return _unanswered(ctx, state, tick, events)  # the torque went before the hold ended: no test was made
    if tick - held_since >= timing.brake_test_hold:
        return _end(ctx, state, tick, timing.brake_test_every, f"passed:{moved_m * 1000:.0f}", events)
    return state


def _unanswered(ctx: Context, state: ControllerState, tick: int, events: list[Event]) -> ControllerState:
    # A standing fault only where tests are configured: a test only asked for once is answered by the event.
    return replace(_end(ctx, state, tick, ctx.timing.brake_test_unanswered_retry, "no_answer", events),
                   brake_test_unanswered=ctx.timing.brake_test_every > 0)


def _end(ctx: Context, state: ControllerState, tick: int, next_after: int, outcome: str,
         events: list[Event]) -> ControllerState:
    events.append(Event(EventKind.BRAKE_TEST, tick, state.landing, outcome))
    every = ctx.timing.brake_test_every
    if not every:  # a requested test where none is configured schedules none, and none falls overdue
        return replace(state, brake_test_since_tick=-1, brake_test_held_since_tick=-1, brake_test_due_tick=-1,
                       brake_test_overdue_tick=-1, brake_test_requested=False)
    # Any outcome but an abandoned test says what became of the test (made, or shown as not answered): the next is
    # overdue a whole interval after it falls due.
    overdue = state.brake_test_overdue_tick if outcome == "abandoned" else tick + next_after + every
    return replace(state, brake_test_since_tick=-1, brake_test_held_since_tick=-1,
                   brake_test_due_tick=tick + next_after, brake_test_overdue_tick=overdue, brake_test_requested=False)


def deadlines(ctx: Context, state: ControllerState) -> list[int]:
    """When an unchanged state may act on its own (for Controller.next_deadline_tick): a test due, the drive's time to
    answer, the end of the hold, the test falling overdue, a test torque held too long."""
    found = []
    if state.brake_test_overdue_tick >= 0:
        found.append(state.brake_test_overdue_tick)
    if state.brake_test_torque_since_tick >= 0:
        found.append(state.brake_test_torque_since_tick + ctx.timing.brake_test_answer)
    if state.brake_test_since_tick < 0:
        if state.brake_test_due_tick >= 0:
            found.append(state.brake_test_due_tick)
    elif state.brake_test_held_since_tick < 0:
        found.append(state.brake_test_since_tick + ctx.timing.brake_test_answer)
    else:
        found.append(state.brake_test_held_since_tick + ctx.timing.brake_test_hold)
    return found


__all__ = ["brake_test", "deadlines", "first_due_tick", "first_overdue_tick", "holds_the_car", "requested", "watch",
           "why_not_idle"]
