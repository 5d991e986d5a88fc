"""Inspection and emergency electrical operation: the car moves only on hold-to-run buttons (where
ModeRules.hold_to_run): the car-top inspection station's, or the controller cabinet's (hold_to_run_from_cabinet).

Rules of this module:
- Entering such a mode ends any automatic run at once (the drive ramps down, the car HALTs) and the car waits for
  the buttons; a stop that is already under way (STOPPING) finishes.
- The car moves at most at the inspection speed (the cabinet's: car.eeo_speed_m_s), only while exactly one button
  is held, with the doors closed and locked and no stop-at-once fault the mode does not bridge, and never past a
  terminal landing (the speed tapers to its level): from beyond one, only back towards the shaft.
- A reversal waits for the car to stop. Released, the car stands where it is: STANDING if level with a landing
  inside its door zone, else HALTED.
"""

from __future__ import annotations

from carctl.core import motion, standstill
from carctl.core.context import Context
from carctl.core.door import DoorPhase
from carctl.core.faults import Fault
from carctl.core.modes import ModeRules, stop_now
from carctl.core.phases import HOLD, Cue, DriveRequest, Phase, enter
from carctl.core.signals import Direction, Event, Inputs
from carctl.core.state import ControllerState

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
    direction = Direction.UP if up and not down else Direction.DOWN if down and not up else Direction.NONE
    if direction is not Direction.NONE and (stop_now(state)
                                            or not inputs.door_locked or not inputs.door_closed_limit
                                            or not standstill.may_lift_brake(state)):
        direction = Direction.NONE
    remaining_m = 0.0
    if direction is not Direction.NONE:
        limit_m = ctx.landings_m[-1] if direction is Direction.UP else ctx.landings_m[0]
        remaining_m = (limit_m - inputs.position_m) * direction
        if remaining_m <= car.level_tolerance_m:
            direction = Direction.NONE  # at the terminal landing: no further
    moving = inputs.brake_open or inputs.drive_running
    if (direction is not Direction.NONE and state.phase is Phase.INSPECTING and direction is not state.direction
            and moving):
        return state, HOLD  # reversing: stop first
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


__all__ = ["AUTOMATIC_RUN_PHASES", "HOLD_TO_RUN_PHASES", "end_automatic_run", "inspecting", "takes_the_buttons"]
