"""HALTED: wait out a stop-at-once fault, then recover to a landing.

Rules of this module:
- Nothing moves while a stop-at-once fault is active, the brake is still open, or the car has not yet been seen at
  rest for the settling time (standstill.py): the way back is chosen from where the car came to rest.
- Standing still, the car first makes sure of its position (correction.py): an untrusted position is corrected
  before it is used.
- Then, level with a landing (or, in rescue, the rescue landing) and inside its door zone, the car stands there and
  lets anyone inside out; elsewhere it closes any open door and runs to the nearest landing (in rescue, to the
  rescue landing once chosen).
"""

from __future__ import annotations


from carctl.core import correction, dispatch, standstill
from carctl.core.context import Context
from carctl.core.door import DoorPhase
from carctl.core.doorway import close_doors_now, open_doors
from carctl.core.faults import Fault
from carctl.core.modes import ModeRules, stop_now
from carctl.core.phases import HOLD, Cue, DriveRequest, enter
from carctl.core.records import replace
from carctl.core.signals import Direction, Event, Inputs
from carctl.core.state import ControllerState
from carctl.core.travel import start


def halted(ctx: Context, state: ControllerState, inputs: Inputs, rules: ModeRules, events: list[Event],
           found: set[Fault]) -> tuple[ControllerState, DriveRequest]:
    if (stop_now(state) or inputs.brake_open or inputs.drive_running
            or not standstill.may_lift_brake(state)):
        return state, HOLD
    tick = inputs.tick
    if not state.position_checked:
        state = correction.trust_on_power_up(ctx, state, inputs)
    if state.correction:
        return correction.halted_untrusted(ctx, state, inputs, rules, events)
    at = ctx.nearest_landing(inputs.position_m)
    if rules.rescue_run and state.rescue_landing >= 0:
        at = state.rescue_landing
    error_m = ctx.landings_m[at] - inputs.position_m
    level_m = ctx.rescue_level_m if rules.rescue_run else ctx.car.relevel_threshold_m
    if abs(error_m) <= level_m and inputs.in_door_zone:
        lantern = dispatch.lantern_on_arrival(state.calls, at, Direction.NONE, ctx.landing_count)
        state = enter(state, Cue.AT_LANDING, tick, landing=at, direction=lantern)
        if state.door.phase is DoorPhase.CLOSED and inputs.load_kg > ctx.car.anti_nuisance_load_kg:
            return open_doors(ctx, state, inputs, rules, events)  # let anyone inside out
        return state, HOLD
    if state.door.phase is not DoorPhase.CLOSED:
        # Stopped away from a landing with the doors open (after unintended movement): close them first.
        return close_doors_now(ctx, state, inputs, rules, events)
    if not inputs.door_locked or not rules.automatic_runs or (rules.rescue_run and state.rescue_landing < 0):
        return state, HOLD
    direction = Direction.UP if error_m > 0 else Direction.DOWN
    return start(replace(state, landing=at), direction, at, False, tick)


__all__ = ["halted"]
