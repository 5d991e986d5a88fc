"""Inspection and emergency electrical operation: the car moves only on hold-to-run buttons (where
ModeRules.hold_to_run): the car-top inspection station's, or the controller cabinet's (hold_to_run_from_cabinet).

Rules of this module:
- Entering such a mode ends any automatic run at once (the drive ramps down, the car HALTs) and the car waits for
  the buttons; a stop that is already under way (STOPPING) finishes.
- The car moves at most at the inspection speed (the cabinet's: car.eeo_speed_m_s), only while exactly one button
  is held, with the doors closed and locked and no stop-at-once fault the mode does not bridge, and never past a
  terminal landing (the speed tapers to its level): from beyond one, only back towards the shaft.
- A start and a reversal wait for the car to stop; a button held when the mode begins (or stuck) moves nothing until
  it has been let go. Released, the car stands where it is: STANDING if level with a landing inside its door zone,
  else HALTED.
- The count is the limit only while it can be trusted: a terminal's slowdown switches that say the car is nearer
  than the count does stop it going on towards that terminal, and from the cabinet (the final limit bridged) an
  untrusted count moves the car only where the switches can still stop it.
- Moving far faster than hold-to-run drives (by car.speed_deviation_m_s, for 0.1 s) is speed_deviation, a stop
  at once; a count that does not follow the drive's speed reading (countwatch.py) is position_tracking. A button
  held through a stop, a stale reading or open doors must be let go and pressed again. With an untrusted count
  and no slowdown switches, only down to the reference mark.
"""

from __future__ import annotations

import math

from carctl.core import countwatch, motion, standstill
from carctl.core.context import Context
from carctl.core.door import DoorPhase
from carctl.core.faults import Fault
from carctl.core.modes import ModeRules, stop_now
from carctl.core.phases import HOLD, Cue, DriveRequest, Phase, enter
from carctl.core.records import replace
from carctl.core.signals import Direction, Event, Inputs
from carctl.core.state import ControllerState
from carctl.core.supervisor import SLOWDOWN_SWITCH_TOLERANCE_M

# A hold-to-run speed far above its own is judged over this long at most (speed deviation's own time, 0.5 s by
# default, would let a runaway from 0.55 m/s reach overspeed first): a reading or two of noise is forgiven.
HOLD_TO_RUN_DEVIATION_S = 0.1

# The phases an automatic run is in; the hold-to-run rule ends them.
AUTOMATIC_RUN_PHASES = frozenset({Phase.RUNNING, Phase.STARTING, Phase.RELEVELLING, Phase.CORRECTING})
# The phases from which the buttons move the car (with the doors closed).
HOLD_TO_RUN_PHASES = frozenset({Phase.STANDING, Phase.HALTED, Phase.INSPECTING})


def end_automatic_run(state: ControllerState, tick: int) -> ControllerState:
    """The hold-to-run rule takes over from an automatic run: stop now, and wait for the buttons."""
    if state.phase in AUTOMATIC_RUN_PHASES:
        return enter(state, Cue.HAND_CONTROL, tick, run=None)
    return state


def takes_the_buttons(state: ControllerState) -> bool:
    return state.phase in HOLD_TO_RUN_PHASES and state.door.phase is DoorPhase.CLOSED


def inspecting(ctx: Context, state: ControllerState, inputs: Inputs, rules: ModeRules, events: list[Event],
               found: set[Fault]) -> tuple[ControllerState, DriveRequest]:
    car = ctx.car
    if rules.hold_to_run_from_cabinet:
        up, down, top_speed_m_s = inputs.eeo_up, inputs.eeo_down, car.eeo_speed_m_s
    else:
        up, down, top_speed_m_s = inputs.inspection_up, inputs.inspection_down, car.inspection_speed_m_s
    if _interrupted(ctx, state, inputs, rules):
        # Held through a stop, a stale reading or open doors: the press that follows must be a new one.
        if state.hold_to_run_armed:
            state = replace(state, hold_to_run_armed=False)
    elif not state.hold_to_run_armed:
        if up or down:
            return state, HOLD  # held since before the mode began, or through an interruption: let go first
        state = replace(state, hold_to_run_armed=True)
    if not state.hold_to_run_armed:
        up = down = False
    if state.correction == "unreferenced" and not inputs.position_unreferenced:
        # The drive referenced its count at the mark on the way: the count jumped, and is judged afresh from here.
        state = countwatch.resting(replace(state, correction=""))
    moving = inputs.brake_open or inputs.drive_running
    if state.phase is Phase.INSPECTING and moving:
        state, runaway = running_away(ctx, state, inputs, top_speed_m_s)
        if runaway:
            found.add(Fault.SPEED_DEVIATION)  # raised this tick: its stop at once is in this tick's commands
            return state, HOLD
        # Asking for a run: a button held (a start or a reversal is not asked for until the car has stopped).
        state, lost = countwatch.watch(ctx, state, inputs, asking=(up or down) and not stop_now(state))
        if lost:
            found.add(Fault.POSITION_TRACKING)  # the count does not follow the drive: it cannot stop the car
            return countwatch.resting(state), HOLD
    elif state.count_moved_tick >= 0:
        state = countwatch.resting(state)
    direction = Direction.UP if up and not down else Direction.DOWN if down and not up else Direction.NONE
    if direction is not Direction.NONE and (stop_now(state)
                                            or not inputs.door_locked or not inputs.door_closed_limit
                                            or not standstill.may_lift_brake(state)):
        direction = Direction.NONE
    remaining_m = 0.0
    if direction is not Direction.NONE:
        limit_m = ctx.landings_m[-1] if direction is Direction.UP else ctx.landings_m[0]
        remaining_m = (limit_m - inputs.position_m) * direction
        if state.correction:
            # The count is untrusted: the slowdown switches, where fitted, are the terminal stop (no taper by a count
            # that means nothing). Without them: down to the reference mark only (the drive references its count
            # there, and the count is the limit again), and from the cabinet not at all.
            remaining_m = math.inf
            if car.terminal_switches_m:
                if not _switches_leave_room(ctx, inputs, direction):
                    direction = Direction.NONE
            elif rules.hold_to_run_from_cabinet or direction is Direction.UP or inputs.below_reference_mark:
                direction = Direction.NONE
        elif remaining_m <= car.level_tolerance_m or _switches_say_nearer(ctx, inputs, direction, remaining_m):
            direction = Direction.NONE  # at the terminal landing, or nearer it than the count says: no further
    if direction is not Direction.NONE and moving and (state.phase is not Phase.INSPECTING
                                                       or direction is not state.direction):
        return state, HOLD  # a start or a reversal waits for the car to stop
    if direction is Direction.NONE:
        if state.phase is not Phase.INSPECTING or moving:
            return state, HOLD
        at = ctx.nearest_landing(inputs.position_m)
        level = abs(ctx.landings_m[at] - inputs.position_m) <= car.relevel_threshold_m and inputs.in_door_zone
        cue = Cue.AT_LANDING if level else Cue.AWAY_FROM_LANDING
        return enter(state, cue, inputs.tick, landing=at, direction=Direction.NONE), HOLD
    if state.phase is not Phase.INSPECTING or state.direction is not direction:
        state = enter(state, Cue.HOLD_TO_RUN, inputs.tick, direction=direction, run=None)
    return state, DriveRequest(direction, motion.levelling_speed_m_s(remaining_m, top_speed_m_s,
                                                                     car.position_gain_per_s))


def running_away(ctx: Context, state: ControllerState, inputs: Inputs,
                 top_speed_m_s: float) -> tuple[ControllerState, bool]:
    """Far faster than a slow run drives (hold-to-run, the learning run), for as long as speed deviation allows: the
    drive is not following (a runaway at this speed would reach overspeed, 110 % of rated, only much later). The
    state with the deviation's start kept, and whether it has lasted too long (speed_deviation)."""
    if abs(inputs.speed_m_s) > top_speed_m_s + ctx.car.speed_deviation_m_s:
        since = state.deviating_since_tick
        if since < 0:
            return replace(state, deviating_since_tick=inputs.tick), False
        if inputs.tick - since >= min(ctx.timing.speed_deviation,
                                      max(2, math.ceil(HOLD_TO_RUN_DEVIATION_S / ctx.timing.period_s))):
            return replace(state, deviating_since_tick=-1), True
    elif state.deviating_since_tick >= 0:
        return replace(state, deviating_since_tick=-1), False
    return state, False


def _interrupted(ctx: Context, state: ControllerState, inputs: Inputs, rules: ModeRules) -> bool:
    """The buttons cannot move the car now, or cannot be believed: a stop-at-once fault, doors not closed and locked,
    or a stale reading of the station's board."""
    fresh = ctx.supervisor_limits.freshness
    stale = (inputs.cabinet_age_ticks > fresh.cabinet_hold_to_run if rules.hold_to_run_from_cabinet
             else inputs.car_top_age_ticks > fresh.hold_to_run)
    return stale or stop_now(state) or not inputs.door_locked or not inputs.door_closed_limit


def _switches_say_nearer(ctx: Context, inputs: Inputs, direction: Direction, remaining_m: float) -> bool:
    """The slowdown switches of the terminal ahead say the car is nearer it than the count does (the count has
    slipped)."""
    bits = inputs.slowdown_top if direction is Direction.UP else inputs.slowdown_bottom
    return any(bits >> index & 1 and remaining_m > distance + SLOWDOWN_SWITCH_TOLERANCE_M
               for index, distance in enumerate(ctx.car.terminal_switches_m))


def _switches_leave_room(ctx: Context, inputs: Inputs, direction: Direction) -> bool:
    """With no count to go by: switches are fitted and the innermost one of the terminal ahead is not reached."""
    switches = ctx.car.terminal_switches_m
    if not switches:
        return False
    bits = inputs.slowdown_top if direction is Direction.UP else inputs.slowdown_bottom
    return not bits >> switches.index(min(switches)) & 1


__all__ = ["AUTOMATIC_RUN_PHASES", "HOLD_TO_RUN_PHASES", "end_automatic_run", "inspecting", "running_away",
           "takes_the_buttons"]
