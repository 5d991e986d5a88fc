"""Recover only from standstill: after a stop at once, no run and no brake lift until the car is at rest.

A car on its brake is not at rest. After a stop at once the brake drops with the car at speed and the car slides
on it for up to a second; a fault that clears meanwhile (a few lost drive answers) must not lift the brake again at
speed, nor start a run the other way.

Rules of this module:
- The car is *settling* from the moment a stop at once is commanded (the supervisor's quick stop, for any reason:
  a stop-at-once fault, a blocked command) and from the moment a fresh drive status shows it moving on its closed
  brake (the drive dropped the run on its own: a trip the controller never saw, a lost link). It is also settling
  at power-up: nothing has yet shown it at rest.
- It stops settling only when fresh drive statuses have shown it at rest for the settling time (car.standstill_
  settle_s, default 1 s): speed below supervisor.STANDSTILL_M_S, the brake closed, the drive not running, and the
  position not changing by more than STANDSTILL_POSITION_M, and no stop-at-once fault is active. Movement or a
  stale status starts the timing over. The standstill is timed while the fault is still active, so a car that stood
  at rest through a long fault is ready the tick after it clears; a new stop after settling ended starts it again.
- While settling, no phase lifts the brake (may_lift_brake); the supervisor overrides any run commanded anyway
  (enforce), and a phase that was driving the car is abandoned for HALTED (the controller). The recovery is then
  chosen from where the car came to rest (recovery.py), never from where it was heading.
- Settling longer than STANDSTILL_UNCONFIRMED_S (10 s) with no stop-at-once fault to explain it raises the
  display-level STANDSTILL_UNCONFIRMED, so that a car held by a creeping brake or a drive that never reports rest
  says why; it clears when the car settles.
- This module owns ControllerState.settling, settling_since_tick, still_since_tick and still_at_m.
"""

from __future__ import annotations


from carctl.core.context import Context
from carctl.core.modes import stop_now
from carctl.core.records import replace
from carctl.core.signals import Commands, Inputs
from carctl.core.state import ControllerState
from carctl.core.supervisor import STANDSTILL_M_S
from carctl.core.timing import STANDSTILL_UNCONFIRMED_S

# The position may wander this much while the car counts as standing still (a count's last step, rope stretch as
# someone shifts their weight); more is movement.
STANDSTILL_POSITION_M = 0.005


def watch(ctx: Context, state: ControllerState, inputs: Inputs) -> ControllerState:
    """Start settling when a fresh status shows the car moving on its closed brake; while settling, time the
    standstill and end it once the settling time is over."""
    fresh = inputs.drive_age_ticks <= ctx.supervisor_limits.freshness.drive
    speed = inputs.speed_m_s if inputs.speed_m_s >= 0.0 else -inputs.speed_m_s
    if not state.settling:
        if fresh and not inputs.brake_open and speed >= STANDSTILL_M_S:
            return replace(state, settling=True, settling_since_tick=inputs.tick, still_since_tick=-1)
        return state
    if state.settling_since_tick < 0:
        state = replace(state, settling_since_tick=inputs.tick)
    at_rest = fresh and speed < STANDSTILL_M_S and not inputs.brake_open and not inputs.drive_running
    if not at_rest:
        return state if state.still_since_tick < 0 else replace(state, still_since_tick=-1)
    tick = inputs.tick
    if state.still_since_tick < 0 or abs(inputs.position_m - state.still_at_m) > STANDSTILL_POSITION_M:
        return replace(state, still_since_tick=tick, still_at_m=inputs.position_m)
    if tick - state.still_since_tick >= ctx.timing.standstill_settle:
        if stop_now(state):
            return state  # at rest long enough; still stopped by the fault, and ready the tick after it clears
        return replace(state, settling=False, settling_since_tick=-1, still_since_tick=-1)
    return state


def unconfirmed(ctx: Context, state: ControllerState, tick: int) -> bool:
    """Settling for longer than STANDSTILL_UNCONFIRMED_S with no stop-at-once fault to explain it."""
    return (state.settling and 0 <= state.settling_since_tick <= tick - ctx.timing.standstill_unconfirmed
            and not stop_now(state))


def after_commands(state: ControllerState, commands: Commands) -> ControllerState:
    """A quick stop commanded this tick (after the supervisor's last word): the car settles from here."""
    if commands.quick_stop and not state.settling:
        return replace(state, settling=True, settling_since_tick=-1, still_since_tick=-1)
    return state


def may_lift_brake(state: ControllerState) -> bool:
    """Whether a phase may start anything that lifts the brake (a run, a relevel, a correction run, an inspection
    or rescue run)."""
    return not state.settling


def deadlines(ctx: Context, state: ControllerState) -> list[int]:
    """When an unchanged, settling state ends its settling on its own (for Controller.next_deadline_tick); under a
    stop-at-once fault it ends only when the fault clears, which changes the state anyway."""
    if not state.settling or stop_now(state):
        return []
    ticks = [state.settling_since_tick + ctx.timing.standstill_unconfirmed] if state.settling_since_tick >= 0 else []
    if state.still_since_tick >= 0:
        ticks.append(state.still_since_tick + ctx.timing.standstill_settle)
    return ticks


__all__ = ["STANDSTILL_POSITION_M", "STANDSTILL_UNCONFIRMED_S", "after_commands", "deadlines", "may_lift_brake",
           "unconfirmed", "watch"]
