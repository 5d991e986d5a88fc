"""The drive's count checked against the drive's own speed reading, in the slow runs that have no plan to be judged
by: the shaft learning run and the hold-to-run moves (inspection, emergency electrical operation).

Rules of this module:
- A normal run is judged against its plan (travel.py, position_tracking). These runs have none, and in emergency
  electrical operation the final-limit switch is bridged: the count is then the only terminal stop, and a count that
  stops (a broken encoder coupling, a slipping wheel) would let the car go on through the top.
- While the car moves (brake open or drive running), the count must go as far as the speed reading says (its motor
  encoder, a second source), less TRACKING_LIMIT_M and COUNT_SCALE_TOLERANCE of the distance, judged afresh over
  every COUNT_WINDOW_M (two encoders' scales differ: rope creep, sheave wear; a difference of scale must not add up
  over a whole shaft). The count ahead of the reading is not judged: a loop that lags reads less distance than the
  car went, and a count ahead only stops the car early.
- While the handler asks for a run and the drive runs with its brake open, the count must move by COUNT_STEP_M at
  least every COUNT_STILL_S (or car.start_timeout_s, if shorter): a count and a speed reading that freeze together
  (one encoder feeds both).
- Either is position_tracking (the handler adds it: stop at once, latched). Standing, the watch rests, and a
  standing car's state is returned unchanged.
"""

from __future__ import annotations


from carctl.core.context import Context
from carctl.core.records import replace
from carctl.core.signals import Inputs
from carctl.core.state import ControllerState
from carctl.core.supervisor import TRACKING_LIMIT_M

# How much the shaft encoder's distance may fall short of the motor encoder's, as a part of the distance (a few
# per cent of scale between them, with margin).
COUNT_SCALE_TOLERANCE = 0.05
# The distance (by the speed reading) over which the count is judged before the judgement starts afresh.
COUNT_WINDOW_M = 1.0
# The least the count must move, while the drive runs with its brake open, in COUNT_STILL_S: from the brake's opening
# a start covers 5 mm in well under a second (0.15 s at 0.6 m/s2 once the brake has lifted), and at 0.25 m/s the
# car covers it in 20 ms.
COUNT_STEP_M = 0.005
COUNT_STILL_S = 1.0


def watch(ctx: Context, state: ControllerState, inputs: Inputs, asking: bool) -> tuple[ControllerState, bool]:
    """The state with the watch brought up to this tick, and whether the count has failed it. ``asking``: the
    handler asks the drive for a run this tick."""
    tick = inputs.tick
    position_m = inputs.position_m
    if not (inputs.brake_open or inputs.drive_running):
        if state.count_moved_tick < 0:
            return state, False
        return replace(state, count_moved_tick=-1, reckoned_m=0.0), False
    if state.count_moved_tick < 0:
        return replace(state, count_from_m=position_m, reckoned_m=0.0, count_seen_m=position_m,
                       count_moved_tick=tick), False
    reckoned_m = state.reckoned_m + inputs.speed_m_s * ctx.timing.period_s
    counted_m = position_m - state.count_from_m
    behind_m = abs(reckoned_m) - (counted_m if reckoned_m >= 0.0 else -counted_m)
    if behind_m > TRACKING_LIMIT_M + COUNT_SCALE_TOLERANCE * abs(reckoned_m):
        return state, True
    if abs(reckoned_m) >= COUNT_WINDOW_M:  # judged over this window: the next one starts here
        state = replace(state, count_from_m=position_m)
        reckoned_m = 0.0
    running = asking and inputs.drive_running and inputs.brake_open
    if abs(position_m - state.count_seen_m) >= COUNT_STEP_M or not running:
        return replace(state, reckoned_m=reckoned_m, count_seen_m=position_m, count_moved_tick=tick), False
    still = min(ctx.timing.start_timeout, round(COUNT_STILL_S / ctx.timing.period_s))
    if tick - state.count_moved_tick > still:
        return state, True
    return replace(state, reckoned_m=reckoned_m), False


def resting(state: ControllerState) -> ControllerState:
    """The watch at rest (a run that ended with the car still moving starts afresh with the next one)."""
    return state if state.count_moved_tick < 0 else replace(state, count_moved_tick=-1, reckoned_m=0.0)


__all__ = ["COUNT_SCALE_TOLERANCE", "COUNT_STEP_M", "COUNT_STILL_S", "COUNT_WINDOW_M", "resting", "watch"]
