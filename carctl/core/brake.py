"""Brake monitoring by the brake circuits' contacts (EN 81-20 5.6.7.3): the brake must be seen to lift when the drive
opens it and to drop when the drive closes it.

Rules of this module:
- Judged only where the configuration says contacts are fitted (car.brake_contacts: 1 or 2 circuits); the drive's
  contact bits of circuits not fitted are ignored. With none fitted (the default) nothing here runs, and the car
  behaves exactly as without it.
- The contacts are compared with the drive's brake-open bit on fresh drive statuses only (a stale drive is its own
  stop-at-once fault). From the tick they first disagree with it, the brake has car.brake_lift_limit_s (the bit
  set) or car.brake_drop_limit_s (the bit clear) to follow. Still disagreeing then:
  - brake open, a contact still dropped: BRAKE_NOT_LIFTED (the motor would drag the car against its brake);
  - brake closed, every contact lifted: BRAKE_NOT_DROPPED (nothing holds the car);
  - brake closed, some lifted: BRAKE_CONTACTS_DISAGREE (one circuit hangs, or its contact or its wire failed; the
    other still holds the car).
  Each is latched (faults.py). The condition is found on every tick it holds, so a reset clears the fault only once
  the contacts agree with the drive again.
- With contacts fitted, the doors open at a landing only while at least one circuit's contact reads dropped
  (holding): a car whose whole brake hangs lifted may move, and it must not move with its doors open. One circuit
  dropped is enough (each alone holds the car with rated load), so a contact stuck lifted never traps anyone.
- This module owns ControllerState.brake_mismatch_since_tick.
"""

from __future__ import annotations

from dataclasses import replace

from carctl.core.context import Context
from carctl.core.faults import Fault
from carctl.core.signals import Inputs
from carctl.core.state import ControllerState


def fitted_mask(ctx: Context) -> int:
    """The contact bits the configuration says are wired: bit i, circuit i + 1."""
    return (1 << ctx.car.brake_contacts) - 1


def watch(ctx: Context, state: ControllerState, inputs: Inputs, found: set[Fault]) -> ControllerState:
    """Time a disagreement between the contacts and the drive's brake-open bit; add the fault it has become."""
    if inputs.drive_age_ticks > ctx.supervisor_limits.freshness.drive:
        return state  # nothing to judge on: drive_stale stops the car
    mask = fitted_mask(ctx)
    lifted = inputs.brake_contacts_lifted & mask
    if lifted == (mask if inputs.brake_open else 0):
        return state if state.brake_mismatch_since_tick < 0 else replace(state, brake_mismatch_since_tick=-1)
    tick = inputs.tick
    since = state.brake_mismatch_since_tick
    if since < 0:
        return replace(state, brake_mismatch_since_tick=tick)
    timing = ctx.timing
    if tick - since < (timing.brake_lift_limit if inputs.brake_open else timing.brake_drop_limit):
        return state
    if inputs.brake_open:
        found.add(Fault.BRAKE_NOT_LIFTED)
    elif lifted == mask:
        found.add(Fault.BRAKE_NOT_DROPPED)
    else:
        found.add(Fault.BRAKE_CONTACTS_DISAGREE)
    return state


def holding(ctx: Context, inputs: Inputs) -> bool:
    """At least one fitted circuit's contact reads dropped: the brake holds the car (always so with none fitted)."""
    mask = fitted_mask(ctx)
    return not mask or inputs.brake_contacts_lifted & mask != mask


def deadlines(ctx: Context, state: ControllerState) -> list[int]:
    """When a disagreement becomes a fault (for Controller.next_deadline_tick): the nearer of the two limits, a safe
    lower bound whichever way the brake stands."""
    since = state.brake_mismatch_since_tick
    if since < 0:
        return []
    return [since + min(ctx.timing.brake_lift_limit, ctx.timing.brake_drop_limit)]


__all__ = ["deadlines", "fitted_mask", "holding", "watch"]
