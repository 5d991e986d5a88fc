"""Brake monitoring by the brake circuits' contacts (EN 81-20 5.6.7.3): the brake must be seen to lift when the drive
opens it and to drop when the drive closes it.

Rules of this module:
- Judged only where the configuration says contacts are fitted (car.brake_contacts: 1 or 2 circuits); the drive's
  contact bits of circuits not fitted are ignored. With none fitted (the default) nothing here runs, and the car
  behaves exactly as without it.
- The contacts are compared with the drive's brake-open bit on fresh drive statuses only (a stale drive is its own
  stop-at-once fault). From the tick they first disagree with it (or the bit changes while they do), the brake has
  car.brake_lift_limit_s (the bit set) or car.brake_drop_limit_s (the bit clear) to follow, and then to stay so for
  BRAKE_CONTACTS_STEADY_S without a break. Only steady agreement ends the time: a contact that chatters (a loose
  wire, a bouncing armature) and agrees now and then is still disagreeing. Not followed in time, or a disagreement
  after the limit before the agreement is steady:
  - brake open, a contact still dropped: BRAKE_NOT_LIFTED (the motor would drag the car against its brake);
  - brake closed, every contact lifted: BRAKE_NOT_DROPPED (nothing holds the car);
  - brake closed, some lifted: BRAKE_CONTACTS_DISAGREE (one circuit hangs, or its contact or its wire failed; the
    other still holds the car).
  (by the contacts' last disagreeing reading). Each is latched (faults.py). The condition is found on every tick
  it holds, so a reset clears the fault only once the contacts agree with the drive again, steadily.
- With contacts fitted, the doors open at a landing only while at least one circuit's contact has read dropped
  (holding) for BRAKE_CONTACTS_STEADY_S without a break: a car whose whole brake hangs lifted may move, and it must
  not move with its doors open, nor open them on one reading that happens to agree. One circuit dropped is enough
  (each alone holds the car with rated load), so a contact stuck lifted never traps anyone.
- This module owns ControllerState.brake_mismatch_since_tick, brake_mismatch_open, brake_mismatch_lifted,
  brake_agree_since_tick and brake_dropped_since_tick.
"""

from __future__ import annotations


from carctl.core.context import Context
from carctl.core.faults import Fault
from carctl.core.records import replace
from carctl.core.signals import Inputs
from carctl.core.state import ControllerState


def fitted_mask(ctx: Context) -> int:
    """The contact bits the configuration says are wired: bit i, circuit i + 1."""
    return (1 << ctx.car.brake_contacts) - 1


def watch(ctx: Context, state: ControllerState, inputs: Inputs, found: set[Fault]) -> ControllerState:
    """Time a disagreement between the contacts and the drive's brake-open bit until they agree steadily; add the
    fault it has become. Returns ``state`` itself when nothing changed."""
    if inputs.drive_age_ticks > ctx.supervisor_limits.freshness.drive:
        return state  # nothing to judge on: drive_stale stops the car
    mask = fitted_mask(ctx)
    lifted = inputs.brake_contacts_lifted & mask
    tick = inputs.tick
    timing = ctx.timing
    dropped_since = state.brake_dropped_since_tick
    if lifted == mask:
        dropped_since = -1
    elif dropped_since < 0:
        dropped_since = tick
    brake_open = inputs.brake_open
    agree = lifted == (mask if brake_open else 0)
    since = state.brake_mismatch_since_tick
    agree_since = state.brake_agree_since_tick
    mismatch_lifted = state.brake_mismatch_lifted
    if since >= 0 or not agree:
        if since < 0 or brake_open != state.brake_mismatch_open:
            since, agree_since = tick, -1  # a first disagreement, or the drive's command changed: the time starts
        if not agree:
            agree_since, mismatch_lifted = -1, lifted
        elif agree_since < 0:
            agree_since = tick
        limit = timing.brake_lift_limit if brake_open else timing.brake_drop_limit
        if agree_since >= 0 and tick - agree_since >= timing.brake_contacts_steady:
            since, agree_since = -1, -1  # followed, and held steadily since: over
        elif tick - since >= limit and (agree_since < 0 or agree_since - since >= limit):
            # Not followed in time, or not yet steadily when the time ran out: the last disagreement says which.
            if brake_open:
                found.add(Fault.BRAKE_NOT_LIFTED)
            elif mismatch_lifted == mask:
                found.add(Fault.BRAKE_NOT_DROPPED)
            else:
                found.add(Fault.BRAKE_CONTACTS_DISAGREE)
    if (since == state.brake_mismatch_since_tick and agree_since == state.brake_agree_since_tick
            and mismatch_lifted == state.brake_mismatch_lifted and dropped_since == state.brake_dropped_since_tick
            and (since < 0 or brake_open == state.brake_mismatch_open)):
        return state
    return replace(state, brake_mismatch_since_tick=since, brake_mismatch_open=brake_open,
                   brake_mismatch_lifted=mismatch_lifted, brake_agree_since_tick=agree_since,
                   brake_dropped_since_tick=dropped_since)


def holding(ctx: Context, state: ControllerState, inputs: Inputs) -> bool:
    """At least one fitted circuit's contact reads dropped, and some circuit has read so without a break for
    BRAKE_CONTACTS_STEADY_S (state as brake.watch() left it this tick): the brake holds the car (always so with none
    fitted)."""
    mask = fitted_mask(ctx)
    if not mask:
        return True
    since = state.brake_dropped_since_tick
    return (inputs.brake_contacts_lifted & mask != mask and since >= 0
            and inputs.tick - since >= ctx.timing.brake_contacts_steady)


def deadlines(ctx: Context, state: ControllerState) -> list[int]:
    """When the contacts' timers act on their own (for Controller.next_deadline_tick): a disagreement becoming a fault
    (the nearer of the two limits, a safe lower bound whichever way the brake stands), an agreement or a dropped
    contact becoming steady."""
    steady = ctx.timing.brake_contacts_steady
    found = []
    if state.brake_mismatch_since_tick >= 0:
        found.append(state.brake_mismatch_since_tick + min(ctx.timing.brake_lift_limit, ctx.timing.brake_drop_limit))
    if state.brake_agree_since_tick >= 0:
        found.append(state.brake_agree_since_tick + steady)
    if state.brake_dropped_since_tick >= 0:
        found.append(state.brake_dropped_since_tick + steady)
    return found


__all__ = ["deadlines", "fitted_mask", "holding", "watch"]
