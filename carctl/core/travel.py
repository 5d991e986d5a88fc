"""A run from start to stop: STARTING, RUNNING (the profile, then levelling) and STOPPING.

Rules of this module:
- A run starts with the run bits and no speed, and plans its profile only once the drive has opened the brake, from
  where the car then is; the stop is the next call in the direction of travel, the recall landing, or the run's own
  target (parking, recovery), whichever the car can still reach first.
- While running, the speed reference follows the profile, led by the drive's lag and pulled onto the planned
  position; then the car creeps onto the landing. A new call, a mode change or a stop-at-next-landing fault may
  commit it to a nearer stop if it can still stop there (retarget), never to a farther one.
- A measured position that strays more than TRACKING_LIMIT_M from the plan is reported (POSITION_TRACKING, raised by
  the supervisor) and the car halts on the same tick; so is a measured speed off the speed reference the drive is
  given by more than car.speed_deviation_m_s for car.speed_deviation_s (SPEED_DEVIATION: the drive is not
  following), or above the creep speed by as much while levelling.
- STOPPING ends when the drive has closed the brake and stopped running, and, with brake contacts fitted, a circuit
  reads dropped (brake.holding): a car whose brake hangs lifted stays STOPPING, doors closed, until
  BRAKE_NOT_DROPPED halts it.
- On arrival the lantern is set for the direction the car will leave in, and the doors open if a call is served
  here, the mode parks open here, or passengers are to be let out.
"""

from __future__ import annotations


from carctl.core import brake, dispatch, motion
from carctl.core.context import Context
from carctl.core.doorway import letting_out, open_doors
from carctl.core.faults import Fault, FaultLevel, worst_level
from carctl.core.modes import ModeRules, recall_landing
from carctl.core.phases import HOLD, Cue, DriveRequest, Run, enter
from carctl.core.records import replace
from carctl.core.signals import Direction, Event, EventKind, Inputs
from carctl.core.state import ControllerState
from carctl.core.supervisor import TRACKING_LIMIT_M

# The levelling at the end of a run gives up after this long past the plan and stops where it is.
LEVELLING_TIMEOUT_S = 5.0
# The car counts as stopped for ending a run below this speed.
STOPPED_M_S = 0.01


def start(state: ControllerState, direction: Direction, target: int, parking: bool,
          tick: int) -> tuple[ControllerState, DriveRequest]:
    """Set the run bits towards ``target`` (-1: the next call in ``direction``); the profile waits for the brake."""
    run = Run(direction=direction, target=target, parking=parking)
    return (enter(state, Cue.DEPART, tick, direction=direction, run=run, park_tick=-1, deviating_since_tick=-1),
            DriveRequest(direction, 0.0))


def limits(ctx: Context, inputs: Inputs, rules: ModeRules) -> motion.Limits:
    if rules.rescue_run:
        return ctx.rescue_limits
    return ctx.seat_limits if inputs.seat_occupied else ctx.normal_limits


def starting(ctx: Context, state: ControllerState, inputs: Inputs, rules: ModeRules, events: list[Event],
             found: set[Fault]) -> tuple[ControllerState, DriveRequest]:
    run = state.run
    assert run is not None
    tick = inputs.tick
    if not inputs.door_locked:
        return enter(state, Cue.DOORS_UNLOCKED, tick, run=None), HOLD
    if not inputs.brake_open:
        if tick - state.phase_tick >= ctx.timing.start_timeout:
            events.append(Event(EventKind.COMMAND_BLOCKED, tick, state.landing, "drive did not start"))
            return enter(state, Cue.DRIVE_DID_NOT_START, tick, run=None), HOLD
        return state, DriveRequest(run.direction, 0.0)
    target = run.target
    if target < 0 or recall_landing(ctx, state, rules) is None:
        first = ctx.first_stoppable(inputs.position_m + run.direction * 0.05, run.direction)
        nearer = dispatch.next_stop(state.calls, first, run.direction, ctx.landing_count,
                                    inputs.load_kg >= ctx.car.full_load_kg)
        if nearer is not None and (target < 0 or (nearer - target) * run.direction < 0):
            target = nearer
    if target < 0:
        return enter(state, Cue.NOTHING_TO_SERVE, tick, run=None), HOLD
    distance = (ctx.landings_m[target] - inputs.position_m) * run.direction
    profile = motion.plan(0.0, 0.0, max(0.0, distance), limits(ctx, inputs, rules))
    events.append(Event(EventKind.RUN_STARTED, tick, target, "up" if run.direction > 0 else "down"))
    run = Run(direction=run.direction, target=target, origin_m=inputs.position_m, start_tick=tick, profile=profile,
              parking=run.parking)
    state = enter(state, Cue.BRAKE_OPEN, tick, run=run)
    return running(ctx, state, inputs, rules, events, found)


# What follow() found: the run goes on, its position strayed from the plan, or the car has levelled (or given up).
FOLLOWING, TRACKING_LOST, LEVELLED = 0, 1, 2


def follow(ctx: Context, run: Run, tick: int, position_m: float, speed_m_s: float,
           top_m_s: float) -> tuple[int, Direction, float, float]:
    """The RUNNING handler's arithmetic for one tick: (verdict, direction, speed reference, how far the measured speed
    is off what it must be). running() and the cruise law (cruise.py) both take it from here, so they agree to the
    bit."""
    profile = run.profile
    assert profile is not None
    car = ctx.car
    direction = run.direction
    t_s = (tick - run.start_tick) * ctx.timing.period_s
    planned_m, planned_speed, planned_accel = profile.sample(t_s)
    travelled_m = (position_m - run.origin_m) * direction
    if abs(planned_m - travelled_m) > TRACKING_LIMIT_M:
        return TRACKING_LOST, direction, 0.0, 0.0
    along_m_s = speed_m_s * direction
    if t_s < profile.duration_s:
        speed = motion.speed_reference_m_s(planned_speed, planned_accel, planned_m - travelled_m,
                                           car.drive_lag_s, car.position_gain_per_s)
        # min(max(speed, 0.0), top_m_s * 1.05), without the two calls (the same value: max and min keep the first
        # argument unless the second is strictly beyond it).
        floor = 0.0 if 0.0 > speed else speed
        ceiling = top_m_s * 1.05
        reference = ceiling if ceiling < floor else floor
        # The drive must follow the reference it is given (the plan, led by the lag and pulled onto the planned
        # position): measured against it, not against the plan, so that the position correction is not taken for
        # a deviation.
        return FOLLOWING, direction, reference, abs(along_m_s - reference)
    error_m = (ctx.landings_m[run.target] - position_m) * run.direction
    if abs(error_m) <= car.level_tolerance_m and abs(speed_m_s) < STOPPED_M_S or (
            t_s > profile.duration_s + LEVELLING_TIMEOUT_S):
        return LEVELLED, run.direction, 0.0, 0.0
    creep = motion.levelling_speed_m_s(error_m, car.relevel_speed_m_s, car.position_gain_per_s)
    # While creeping onto the landing it must stay below the creep speed.
    return (FOLLOWING, run.direction if error_m > 0 else Direction(-run.direction), creep,
            along_m_s - car.relevel_speed_m_s)


def running(ctx: Context, state: ControllerState, inputs: Inputs, rules: ModeRules, events: list[Event],
            found: set[Fault]) -> tuple[ControllerState, DriveRequest]:
    run = state.run
    assert run is not None and run.profile is not None
    tick = inputs.tick
    top_m_s = ctx.rescue_limits.speed_m_s if rules.rescue_run else ctx.car.rated_speed_m_s
    verdict, direction, reference, off_m_s = follow(ctx, run, tick, inputs.position_m, inputs.speed_m_s, top_m_s)
    if verdict == TRACKING_LOST:
        found.add(Fault.POSITION_TRACKING)
        return enter(state, Cue.TRACKING_LOST, tick, run=None), HOLD
    if verdict == LEVELLED:
        return enter(state, Cue.LEVELLED, tick, deviating_since_tick=-1), HOLD
    if off_m_s > ctx.car.speed_deviation_m_s:
        since = state.deviating_since_tick
        if since < 0:
            state = replace(state, deviating_since_tick=tick)
        elif tick - since >= ctx.timing.speed_deviation:
            found.add(Fault.SPEED_DEVIATION)
            return enter(state, Cue.TRACKING_LOST, tick, run=None, deviating_since_tick=-1), HOLD
    elif state.deviating_since_tick >= 0:
        state = replace(state, deviating_since_tick=-1)
    return state, DriveRequest(direction, reference)


def retarget(ctx: Context, state: ControllerState, inputs: Inputs, rules: ModeRules) -> ControllerState:
    """A new call, a mode change or a stop-at-next-landing fault while running: commit to a nearer stop if
    the car can still stop there."""
    run = state.run
    assert run is not None and run.profile is not None
    t_s = (inputs.tick - run.start_tick) * ctx.timing.period_s
    if t_s >= run.profile.duration_s:
        return state
    planned_m, planned_speed, planned_accel = run.profile.sample(t_s)
    run_limits = limits(ctx, inputs, rules)
    stop_m = run.origin_m + run.direction * (
        planned_m + motion.stopping_distance_m(planned_speed, planned_accel, run_limits))
    first = ctx.first_stoppable(stop_m, run.direction)
    if not 0 <= first < ctx.landing_count:
        return state
    recall = recall_landing(ctx, state, rules)
    if worst_level(state.faults) >= FaultLevel.STOP_AT_NEXT_LANDING:
        candidate: int | None = first
    elif recall is not None:
        candidate = recall if (recall - first) * run.direction >= 0 else first
    else:
        candidate = dispatch.next_stop(state.calls, first, run.direction, ctx.landing_count,
                                       inputs.load_kg >= ctx.car.full_load_kg)
    if candidate is None or candidate == run.target:
        return state
    if (candidate - run.target) * run.direction > 0 and recall is None:
        return state  # farther than the committed stop: it is served after this one
    remaining = (ctx.landings_m[candidate] - run.origin_m) * run.direction - planned_m
    profile = motion.plan(planned_speed, planned_accel, remaining, run_limits)
    if profile is None:
        return state
    origin = run.origin_m + run.direction * planned_m
    return replace(state, run=Run(direction=run.direction, target=candidate, origin_m=origin,
                                  start_tick=inputs.tick, profile=profile, parking=run.parking))


def stopping(ctx: Context, state: ControllerState, inputs: Inputs, rules: ModeRules, events: list[Event],
             found: set[Fault]) -> tuple[ControllerState, DriveRequest]:
    if inputs.brake_open or inputs.drive_running or not brake.holding(ctx, state, inputs):
        return state, HOLD  # with brake contacts fitted, also until one reads dropped (brake.py)
    tick = inputs.tick
    run = state.run
    at = ctx.nearest_landing(inputs.position_m)
    travel = run.direction if run is not None else state.direction
    state = enter(state, Cue.BRAKE_CLOSED, tick, landing=at, run=None)
    if run is None:
        return state, HOLD
    lantern = dispatch.lantern_on_arrival(state.calls, at, travel, ctx.landing_count)
    parked_open = rules.park_open and at == recall_landing(ctx, state, rules)
    if not (dispatch.wants_doors_open(state.calls, at, lantern) or parked_open or letting_out(ctx, state, inputs)):
        return replace(state, direction=lantern), HOLD
    events.append(Event(EventKind.ARRIVED, tick, at, "up" if lantern > 0 else "down" if lantern < 0 else ""))
    return open_doors(ctx, replace(state, direction=lantern), inputs, rules, events)


__all__ = ["FOLLOWING", "LEVELLED", "LEVELLING_TIMEOUT_S", "STOPPED_M_S", "TRACKING_LOST", "follow", "limits", "retarget",
           "running", "start", "starting", "stopping"]
