"""At a landing: STANDING (the door cycle, serving calls, departing, idling and parking) and RELEVELLING.

Rules of this module:
- With the doors closed the car opens them for a call at this landing in the lantern's direction (a full car: only
  for a car call), the door-open button, overload, parking open, or letting passengers out; and only level with the
  landing, inside its door zone. Otherwise it departs for the next call, the recall landing, or (idle past the park
  delay) its parking landing; never with a no-new-trips fault or in a mode without automatic runs.
- While a door cycle is under way the lantern is fixed, and calls for this landing in its direction are served at
  once (the doors reopen or their dwell restarts).
- A car that sinks or rises more than relevel_threshold_m with its doors open relevels at creep speed, doors held
  open; a relevel that has not arrived after half the door zone's travel is a lost position (POSITION_TRACKING,
  raised by the supervisor), and the car halts on the same tick. A relevel that finds the landing on its other side
  (a load stepped off: the car springs up on its ropes) turns back, and the way back is timed afresh.
"""

from __future__ import annotations


from carctl.core import calls as call_registry
from carctl.core import brake, correction, dispatch, motion, standstill
from carctl.core.context import Context
from carctl.core.door import DoorPhase
from carctl.core.doorway import door_step, letting_out, open_doors
from carctl.core.faults import Fault, FaultLevel, worst_level
from carctl.core.modes import ModeRules, recall_landing
from carctl.core.phases import HOLD, Cue, DriveRequest, Run, enter
from carctl.core.records import replace
from carctl.core.signals import Direction, Event, EventKind, Inputs
from carctl.core.state import ControllerState
from carctl.core.travel import STOPPED_M_S, start


def standing(ctx: Context, state: ControllerState, inputs: Inputs, rules: ModeRules, events: list[Event],
             found: set[Fault]) -> tuple[ControllerState, DriveRequest]:
    tick = inputs.tick
    at = state.landing
    calls = state.calls
    current_door = state.door
    error_m = ctx.landings_m[at] - inputs.position_m
    # A full car does not stop for landing calls, and does not reopen for one at its own landing either.
    full_load = inputs.load_kg >= ctx.car.full_load_kg
    if current_door.phase is DoorPhase.CLOSED and (current_door.fault is None or tick >= current_door.retry_tick):
        recall = recall_landing(ctx, state, rules)
        lantern = dispatch.lantern_on_arrival(calls, at, state.direction, ctx.landing_count)
        if state.correction:
            # The count is not to be trusted: no landing is known to be level here. The doors open only on the
            # door-open button inside the door zone (the sensor is), and calls wait for the correction run.
            want_open = inputs.door_open_button
            level = inputs.in_door_zone
        else:
            # A door that failed to open is retried at once (its open_failures count), up to door_retries.
            want_open = (inputs.door_open_button or Fault.OVERLOAD in state.faults
                         or (recall == at and rules.park_open)
                         or current_door.open_failures > 0 or current_door.fault is Fault.DOOR_OPEN_FAILED
                         or letting_out(ctx, state, inputs)
                         or (at in calls.car if full_load else dispatch.wants_doors_open(calls, at, lantern)))
            level = inputs.in_door_zone and abs(error_m) <= ctx.car.relevel_threshold_m * 2
        if want_open and level and brake.holding(ctx, state, inputs):
            return open_doors(ctx, replace(state, direction=lantern, park_tick=-1), inputs, rules, events)
        if not inputs.door_locked or not inputs.door_closed_limit:
            return state, HOLD
        if abs(error_m) > ctx.building.door_zone_m and not state.correction:
            # Not where this landing is (the count jumped, or the car was moved): recover from HALTED to the
            # nearest landing rather than dispatch from a landing the car is not at.
            return enter(state, Cue.AWAY_FROM_LANDING, tick), HOLD
        if (worst_level(state.faults) >= FaultLevel.NO_NEW_TRIPS or not rules.automatic_runs
                or not standstill.may_lift_brake(state)):
            return state, HOLD
        if state.correction:
            if not rules.correction_runs:
                return state, HOLD
            return correction.start(ctx, state, inputs, events)
        if recall is not None:
            if recall != at:
                return start(state, Direction.UP if recall > at else Direction.DOWN, recall, False, tick)
            return state, HOLD
        direction = dispatch.departure_direction(calls, at, state.direction, ctx.landing_count)
        if direction is not Direction.NONE:
            return start(state, direction, -1, False, tick)
        return idle(ctx, state, rules, tick, events), HOLD

    # A door cycle is under way: the lantern is fixed; calls for this landing in its direction are served now.
    lantern = state.direction
    reopen = False
    if not state.correction and (at in calls.car if full_load else dispatch.wants_doors_open(calls, at, lantern)):
        calls = call_registry.serve(calls, tick, at, lantern, events)
        reopen = True
    new_door = current_door
    if inputs.accessible_button and not current_door.accessible:
        new_door = replace(current_door, accessible=True)
    # No relevelling on an untrusted count, nor where the mode forbids it (on the battery).
    if (abs(error_m) > ctx.car.relevel_threshold_m and inputs.in_door_zone
            and current_door.phase is not DoorPhase.CLOSED and not state.correction and rules.relevel
            and standstill.may_lift_brake(state)):
        events.append(Event(EventKind.RELEVEL_STARTED, tick, at, f"{error_m * 1000:.1f} mm"))
        run = Run(direction=Direction.UP if error_m > 0 else Direction.DOWN, target=at)
        return enter(state, Cue.RELEVEL, tick, calls=calls, door=new_door, run=run), HOLD
    new_door = door_step(ctx, state, new_door, inputs, rules, reopen, events)
    if new_door is not current_door or calls is not state.calls:
        state = replace(state, door=new_door, calls=calls)
    return state, HOLD


def idle(ctx: Context, state: ControllerState, rules: ModeRules, tick: int, events: list[Event]) -> ControllerState:
    """No calls: show no direction; after the park delay (at once where the mode parks out of service), return to
    the parking landing with the doors closed."""
    if state.direction is not Direction.NONE:
        state = replace(state, direction=Direction.NONE)
    if state.park_tick < 0:
        return replace(state, park_tick=tick + (0 if rules.park_out_of_service else ctx.timing.park_delay))
    car = ctx.car
    home = (car.out_of_service_landing if rules.park_out_of_service and car.out_of_service_landing >= 0
            else car.home_landing)
    if tick >= state.park_tick and rules.park_at_home and state.landing != home:
        events.append(Event(EventKind.PARKING, tick, home))
        direction = Direction.UP if home > state.landing else Direction.DOWN
        return start(state, direction, home, True, tick)[0]
    return state


def relevelling(ctx: Context, state: ControllerState, inputs: Inputs, rules: ModeRules, events: list[Event],
                found: set[Fault]) -> tuple[ControllerState, DriveRequest]:
    car = ctx.car
    run = state.run
    error_m = ctx.landings_m[state.landing] - inputs.position_m
    # The doors keep their cycle, but may not close while the car creeps.
    new_door = door_step(ctx, state, state.door, inputs, rules, False, events, creeping=True)
    if new_door is not state.door:
        state = replace(state, door=new_door)
    if run is not None and abs(error_m) > car.level_tolerance_m and (run.direction is Direction.UP) != (error_m > 0):
        # The landing is now on the other side: the car crossed it, the count following (a load stepping off
        # mid-relevel lifts the car on its ropes by centimetres at once). The relevel turns back with a creep of
        # its own to time, not the time left of the first: the first did not fail to arrive.
        run = replace(run, direction=Direction.UP if error_m > 0 else Direction.DOWN)
        state = replace(state, run=run, phase_tick=inputs.tick)
    if run is not None and inputs.tick - state.phase_tick > ctx.relevel_timeout:
        # A relevel covers millimetres; one still creeping after this long is not getting there (a frozen
        # encoder would creep the car, doors open, out of the door zone): stop at once, latched.
        found.add(Fault.POSITION_TRACKING)
        return enter(state, Cue.TRACKING_LOST, inputs.tick, run=None), HOLD
    if run is not None and (abs(error_m) > car.level_tolerance_m or abs(inputs.speed_m_s) >= STOPPED_M_S):
        direction = Direction.UP if error_m > 0 else Direction.DOWN
        return state, DriveRequest(direction, motion.levelling_speed_m_s(error_m, car.relevel_speed_m_s,
                                                                         car.position_gain_per_s))
    if run is not None:
        return replace(state, run=None), HOLD
    if inputs.brake_open or inputs.drive_running:
        return state, HOLD
    return enter(state, Cue.BRAKE_CLOSED, inputs.tick), HOLD


__all__ = ["idle", "relevelling", "standing"]
