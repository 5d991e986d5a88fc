"""The cruise law: what Controller.step() returns, tick after tick, for a car in a plain run when only its motion
changes. The lockstep simulator uses it to step a run without building a snapshot and a command record every tick.

Rules of this module:
- Pure, and derived from step(): cruise() looks at one tick's state, inputs and commands (a step that returned its
  state unchanged, with no events) and answers with a Cruise only when every part of step() but the RUNNING
  handler's arithmetic is provably idle for any later tick whose inputs differ from these only in tick, position_m,
  speed_m_s, in_door_zone and below_reference_mark (which only a door not locked, an entrapment watch with a door
  fault, a correction, learning or inspection run, or relevelling would look at, all refused): normal service, no
  fault active or found, no press, recognition, alarm, light curtain, entrapment, brake test, learning, settling,
  deviation or rear door, the doors locked, the drive fresh and running with its brake open, no slowdown switch
  actuated. A landing button seen held is allowed until it counts as released or stuck. Anything else: None, and
  the caller steps.
- Cruise.holds_for(inputs) tells whether a tick's inputs are such (MOTION_FIELDS); for a tick whose inputs are,
  Cruise.reference(tick, position_m, speed_m_s) is the speed reference step() would command at that tick, its state
  the one given, unchanged, and no events; or -1.0 where step() may do anything else (the plan's end or a levelling
  reached, a tracking or speed deviation, a fault the motion could raise: overspeed, the shaft's limits, terminal
  speed, the slowdown switches below standstill speed; a timer of the state falling due). Its whole commands are
  commands_at(): those given but for the speed reference and the position indicator's landing. The arithmetic is
  travel.follow() and supervisor.terminal_speed_exceeded(), the very functions step() calls, so the two agree to
  the bit.
- A conservative refusal costs one ordinary step; a wrong answer would change the trace: tests/sim/test_cruise.py
  checks every answer against step() over a recorded busy morning, and tests/sim/test_lockstep.py a day both ways.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import fields

from carctl.core import travel, watch
from carctl.core.context import Context
from carctl.core.modes import RULES
from carctl.core.phases import Phase
from carctl.core.records import replace
from carctl.core.signals import AlarmPhase, Commands, Direction, Inputs
from carctl.core.state import ControllerState
from carctl.core.supervisor import STANDSTILL_M_S, detect, terminal_speed_exceeded

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
        # The first tick an unchanged state may act on a timer: a brake test falls due, a landing button seen held
        # counts as released or as stuck (watch.watch_inputs, which looks at nothing else here).
        due = state.brake_test_due_tick
        self.until_tick = min([due if due >= 0 else NEVER, *watch.deadlines(ctx, state)])

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
    if state.phase is not Phase.RUNNING or state.run is None or state.run.profile is None or ctx.rear_door:
        return None
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
    return Cruise(ctx, state, inputs, commands)


__all__ = ["MOTION_FIELDS", "Cruise", "cruise"]
