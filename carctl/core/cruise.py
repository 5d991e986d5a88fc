"""The cruise law: what Controller.step() returns, tick after tick, for a car in a plain run when only its motion
changes. The lockstep simulator uses it to step a run without building a snapshot and a command record every tick.

Rules of this module:
- Pure, and derived from step(): cruise() looks at one tick's state, inputs and commands (a step that returned its
  state unchanged, with no events) and answers with a Cruise only when every part of step() but the RUNNING
  handler's arithmetic is provably idle for any later tick whose inputs differ from these only in tick, position_m,
  speed_m_s, in_door_zone and below_reference_mark (which only a door not locked, an entrapment watch with a door
  fault, a correction, learning or inspection run, or relevelling would look at, all refused): normal service, no
  fault active or found, no press, recognition, alarm, light curtain, entrapment, brake test, learning, settling or
  deviation, the doors locked, the drive fresh and running with its brake open, no slowdown switch actuated. A
  landing button seen held is allowed until it counts as released or stuck. Anything else: None, and the caller
  steps.
- A car with a rear door: step() sees the snapshot as the doorway of the state's landing (sides.doorway), a pure
  function of the landing and of fields outside MOTION_FIELDS that passes the motion fields through; the landing
  is fixed while the state is, and holds_for() holds the rear board's fields to the quiet step's, so every tick the
  law answers for has the quiet step's doorway but for the motion. The conditions above are asked of that doorway,
  and of the raw readings both doors locked and neither light curtain blocked (the doorway drops the curtain of a
  side not serving the landing). The operators' commands are split by side from the door machine's state and the
  landing (sides.split, outputs.py): commands_at() keeps the quiet step's, rear outputs included.
- Cruise.holds_for(inputs) tells whether a tick's inputs are such (MOTION_FIELDS); for a tick whose inputs are,
  Cruise.reference(tick, position_m, speed_m_s) is the speed reference step() would command at that tick, its state
  the one given, unchanged, and no events; or -1.0 where step() may do anything else (the plan's end or a levelling
  reached, a tracking or speed deviation, a fault the motion could raise: overspeed, the shaft's limits, terminal
  speed, the slowdown switches below standstill speed; a timer of the state falling due). Its whole commands are
  commands_at(): those given but for the speed reference and the position indicator's landing. The arithmetic is
  travel.follow() and supervisor.terminal_speed_exceeded(), the very functions step() calls, so the two agree to
  the bit.
- Cruise.compiled() is reference() as one function with the law's constants bound and travel.follow()'s and
  Profile.sample()'s arithmetic written out, the same operations in the same order (a cruised tick is a quarter of
  the lockstep's day, and most of its cost was calls and attribute lookups): it answers what reference() answers,
  to the bit, and tests/sim/test_cruise.py checks that on every tick it is asked for. A change to follow() or
  sample() is a change to compiled() too.
- A conservative refusal costs one ordinary step; a wrong answer would change the trace: tests/sim/test_cruise.py
  checks every answer against step() over a recorded busy morning, and tests/sim/test_lockstep.py a day both ways.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable
from dataclasses import fields

from carctl.core import braketest, sides, travel, watch
from carctl.core.context import Context
from carctl.core.modes import RULES
from carctl.core.phases import Phase
from carctl.core.records import replace
from carctl.core.signals import AlarmPhase, Commands, Direction, Inputs
from carctl.core.state import ControllerState
from carctl.core.supervisor import STANDSTILL_M_S, TRACKING_LIMIT_M, detect, terminal_speed_exceeded

NEVER = 1 << 62
# The inputs that may differ from the quiet step's on a tick the law answers for; every other field must be equal
# (Cruise.holds_for).
MOTION_FIELDS = frozenset({"tick", "position_m", "speed_m_s", "in_door_zone", "below_reference_mark"})
_STEADY_NAMES = tuple(spec.name for spec in fields(Inputs) if spec.name not in MOTION_FIELDS)


def _steady_fields(inputs: Inputs) -> tuple[object, ...]:
    return tuple([getattr(inputs, name) for name in _STEADY_NAMES])


class Cruise:
    """The run's law for the ticks after a quiet step (cruise()); reference() per tick."""

    __slots__ = ("ctx", "quiet", "state", "commands", "run", "direction", "top_m_s", "deviation_m_s", "limits",
                 "midpoints_m", "clear_low_m", "clear_high_m", "standstill_m_s", "until_tick")

    def __init__(self, ctx: Context, state: ControllerState, inputs: Inputs, commands: Commands) -> None:
        self.ctx = ctx
        self.quiet = _steady_fields(inputs)
        self.state = state
        self.commands = commands
        self.run = state.run
        self.direction = Direction.UP if commands.run_up else Direction.DOWN
        self.top_m_s = ctx.car.rated_speed_m_s  # not a rescue run (cruise() refuses one)
        self.deviation_m_s = ctx.car.speed_deviation_m_s
        self.limits = ctx.supervisor_limits
        self.midpoints_m = ctx.midpoints_m
        zone_m = self.limits.terminal_zone_m
        self.clear_low_m = self.limits.bottom_m + zone_m + 1e-6 if zone_m > 0.0 else -math.inf
        self.clear_high_m = self.limits.top_m - zone_m - 1e-6 if zone_m > 0.0 else math.inf
        # Below standstill speed the slowdown switches are checked against the count (supervisor.detect): only
        # where there are any.
        self.standstill_m_s = STANDSTILL_M_S if self.limits.slowdown_m else -1.0
        # The first tick an unchanged state may act on a timer: a brake test falls due or overdue (an abandoned
        # test keeps its overdue tick, which then comes before the retry's due tick), a landing button seen held
        # counts as released or as stuck (watch.watch_inputs, which looks at nothing else here).
        self.until_tick = min([NEVER, *braketest.deadlines(ctx, state), *watch.deadlines(ctx, state)])

    def holds_for(self, inputs: Inputs) -> bool:
        """These inputs differ from the quiet step's only where the law lets them (MOTION_FIELDS)."""
        return _steady_fields(inputs) == self.quiet

    def reference(self, tick: int, position_m: float, speed_m_s: float) -> float:
        """The speed reference step() commands at ``tick`` for this position and speed (the drive's reported ones),
        everything else as at the quiet step; -1.0 where step() may do anything else."""
        if tick >= self.until_tick:
            return -1.0
        speed = -speed_m_s if speed_m_s < 0 else speed_m_s
        limits = self.limits
        if (speed < self.standstill_m_s or speed >= limits.overspeed_m_s
                or not limits.lowest_m <= position_m <= limits.highest_m):
            return -1.0
        # Farther than the terminal zone from both terminal landings (by a margin beyond any rounding) the terminal
        # speed check cannot find anything; within it, it is asked.
        if not self.clear_low_m < position_m < self.clear_high_m and terminal_speed_exceeded(
                limits, position_m, speed_m_s, speed):
            return -1.0
        verdict, direction, reference, off_m_s = travel.follow(self.ctx, self.run, tick, position_m,  # type: ignore[arg-type]
                                                               speed_m_s, self.top_m_s)
        if verdict != travel.FOLLOWING or direction is not self.direction or off_m_s > self.deviation_m_s:
            return -1.0
        return reference

    def compiled(self) -> Callable[[int, float, float], float]:
        """reference() as one function, its constants bound and the arithmetic of travel.follow() (the running
        branch's plan and the levelling creep) and motion.Profile.sample() written out in the same operations and
        order: the same answer, to the bit, for every tick, position and speed."""
        ctx, run, limits, car = self.ctx, self.run, self.limits, self.ctx.car
        profile = run.profile
        assert profile is not None
        until_tick, standstill_m_s = self.until_tick, self.standstill_m_s
        overspeed_m_s, lowest_m, highest_m = limits.overspeed_m_s, limits.lowest_m, limits.highest_m
        clear_low_m, clear_high_m = self.clear_low_m, self.clear_high_m
        start_tick, period_s, origin_m, direction = run.start_tick, ctx.timing.period_s, run.origin_m, run.direction
        duration_s, length_m = profile.duration_s, profile.length_m
        starts_s, last = profile.starts_s, len(profile.starts_s) - 1
        # Per segment: its start state and jerk; ``accel / 2`` as sample() has it (the jerk's terms are not
        # constants: sample() multiplies by dt first).
        segments = tuple(zip(profile.distance_m, profile.speed_m_s, profile.accel_m_s2,
                             [accel / 2 for accel in profile.accel_m_s2], profile.jerk_m_s3))
        lag_s, gain_per_s = car.drive_lag_s, car.position_gain_per_s
        ceiling_m_s = self.top_m_s * 1.05
        deviation_m_s = self.deviation_m_s
        # follow()'s direction: the run's while on the plan; while levelling, the run's or its reverse by the sign of
        # the error. The law answers only where it is the commands' direction.
        along_run = direction is self.direction
        against_run = Direction(-direction) is self.direction
        target_m, tolerance_m = ctx.landings_m[run.target], car.level_tolerance_m
        give_up_s = duration_s + travel.LEVELLING_TIMEOUT_S
        relevel_m_s, stopped_m_s = car.relevel_speed_m_s, travel.STOPPED_M_S

        def reference(tick: int, position_m: float, speed_m_s: float) -> float:
            if tick >= until_tick:
                return -1.0
            speed = -speed_m_s if speed_m_s < 0 else speed_m_s
            if speed < standstill_m_s or speed >= overspeed_m_s or not lowest_m <= position_m <= highest_m:
                return -1.0
            if not clear_low_m < position_m < clear_high_m and terminal_speed_exceeded(
                    limits, position_m, speed_m_s, speed):
                return -1.0
            t_s = (tick - start_tick) * period_s
            if t_s >= duration_s:
                planned_m, planned_speed, planned_accel = length_m, 0.0, 0.0
            else:
                index = last
                while index > 0 and starts_s[index] > t_s:
                    index -= 1
                dt = t_s - starts_s[index]
                distance_m, speed0, accel, half_accel, jerk = segments[index]
                planned_m = distance_m + dt * (speed0 + dt * (half_accel + dt * jerk / 6))
                planned_speed = speed0 + dt * (accel + dt * jerk / 2)
                planned_accel = accel + dt * jerk
            behind_m = planned_m - (position_m - origin_m) * direction
            if abs(behind_m) > TRACKING_LIMIT_M:
                return -1.0
            along_m_s = speed_m_s * direction
            if t_s < duration_s:
                wanted = planned_speed + lag_s * planned_accel + gain_per_s * behind_m
                floor = 0.0 if 0.0 > wanted else wanted
                answer = ceiling_m_s if ceiling_m_s < floor else floor
                if not along_run or abs(along_m_s - answer) > deviation_m_s:
                    return -1.0
                return answer
            error_m = (target_m - position_m) * direction
            if abs(error_m) <= tolerance_m and abs(speed_m_s) < stopped_m_s or t_s > give_up_s:
                return -1.0
            creep = gain_per_s * abs(error_m)
            if not (along_run if error_m > 0 else against_run) or along_m_s - relevel_m_s > deviation_m_s:
                return -1.0
            return creep if creep < relevel_m_s else relevel_m_s

        return reference

    def commands_at(self, position_m: float, speed_ref_m_s: float) -> Commands:
        """step()'s whole commands at a tick reference() answered for: the quiet step's, but for the speed reference
        and the landing the position indicator shows."""
        landing = bisect.bisect_left(self.midpoints_m, position_m)
        if landing == self.commands.position_landing:
            return replace(self.commands, speed_ref_m_s=speed_ref_m_s)
        return replace(self.commands, speed_ref_m_s=speed_ref_m_s, position_landing=landing)


def cruise(ctx: Context, state: ControllerState, inputs: Inputs, commands: Commands) -> Cruise | None:
    """The cruise law after a step that took ``state`` and ``inputs`` and returned ``state`` itself, ``commands``
    and no events; None unless the module's conditions all hold."""
    if state.phase is not Phase.RUNNING or state.run is None or state.run.profile is None:
        return None
    raw = inputs
    if ctx.rear_door:
        # Both doors shut and locked and neither curtain blocked, read raw (the doorway below would hide the curtain
        # of the side not serving the landing); then the conditions as step() sees the snapshot: the doorway of the
        # landing, which the state (unchanged) fixes for every tick the law answers for.
        if not raw.rear_door_locked or raw.rear_light_curtain_blocked or raw.light_curtain_blocked:
            return None
        inputs = sides.doorway(ctx.door_sides, state.landing, raw)
    rules = RULES[state.mode]
    if (rules.rescue_run or rules.recall_main_landing or rules.hold_to_run or rules.learning_run
            or ctx.car.brake_contacts):
        return None
    if (state.faults or state.restored or state.settling or state.correction or state.door.fault is not None
            or state.brake_test_unanswered or state.brake_test_since_tick >= 0 or state.deviating_since_tick >= 0
            or state.learning is not None or state.authorised or state.curtain_since_tick >= 0
            or state.trapped_since_tick >= 0 or state.alarm is not AlarmPhase.IDLE
            or state.alarm_held_since_tick >= 0 or state.alarm_prompt_until_tick >= 0 or state.alarm_pressed
            or state.dark_tick >= 0 or state.dark):
        return None
    if (inputs.mode_request is not None or inputs.on_battery or inputs.learn_button is not state.learn_button_held
            or inputs.position_unreferenced or not inputs.brake_open or not inputs.drive_running
            or not inputs.door_locked or not inputs.safety_chain_closed or inputs.light_curtain_blocked
            or inputs.car_calls_pressed or inputs.hall_up_pressed or inputs.hall_down_pressed or inputs.recognitions
            or inputs.fault_reset or inputs.alarm_button or inputs.alarm_reset or inputs.alarm_test
            or inputs.slowdown_top or inputs.slowdown_bottom):
        return None
    if commands.run_up == commands.run_down or commands.quick_stop or commands.brake_test:
        return None
    if detect(inputs, ctx.supervisor_limits, False, True):
        return None
    return Cruise(ctx, state, raw, commands)


__all__ = ["MOTION_FIELDS", "Cruise", "cruise"]
