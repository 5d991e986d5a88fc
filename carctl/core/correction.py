"""The correction run: a position the controller cannot trust is re-referenced before it is used.

Rules of this module:
- The position is not trusted while the drive reports its count unreferenced (since its power-up), or when, at
  power-up, the door-zone sensor disagrees with the count (state.correction says why). An untrusted position is
  never used to move or to level.
- The car then makes a CORRECTING run at low speed, doors closed, towards the reference mark near the bottom
  landing: down from above it, up from below it. The drive re-references its count as the car passes the mark; the
  car stops and HALTED recovers to the nearest landing on the corrected position.
- A run that passes the mark with the count still unreferenced, or finds no mark within a whole shaft's travel,
  reports REFERENCE_NOT_FOUND (latched, stop at once; raised by the supervisor).
- Only where the mode allows it (ModeRules.correction_runs: not on the battery, not in inspection).
"""

from __future__ import annotations


from carctl.core.context import Context
from carctl.core.door import DoorPhase
from carctl.core.doorway import close_doors_now
from carctl.core.faults import Fault
from carctl.core.modes import ModeRules
from carctl.core.phases import HOLD, Cue, DriveRequest, enter
from carctl.core.records import replace
from carctl.core.signals import Direction, Event, EventKind, Inputs
from carctl.core.state import ControllerState

# At power-up the door-zone sensor must agree with the position by this much before either is believed.
ZONE_CHECK_MARGIN_M = 0.02


def position_doubt(ctx: Context, inputs: Inputs) -> str:
    """At power-up, standing still: why the count is not to be trusted, or "" if it is. The door-zone sensor
    (vanes at each landing) must agree with what the count says about being in a zone."""
    if inputs.position_unreferenced:
        return "unreferenced"
    off_m = abs(ctx.landings_m[ctx.nearest_landing(inputs.position_m)] - inputs.position_m)
    zone_m = ctx.building.door_zone_m
    if inputs.in_door_zone and off_m > zone_m + ZONE_CHECK_MARGIN_M:
        return "zone_mismatch"
    if not inputs.in_door_zone and off_m < zone_m - ZONE_CHECK_MARGIN_M:
        return "zone_mismatch"
    return ""


def halted_untrusted(ctx: Context, state: ControllerState, inputs: Inputs, rules: ModeRules,
                     events: list[Event]) -> tuple[ControllerState, DriveRequest]:
    """Standing still with a position not to be trusted: finish a door cycle under way inside the door zone,
    close the doors outside it, then make the correction run."""
    if state.door.phase is not DoorPhase.CLOSED:
        if inputs.in_door_zone:
            return enter(state, Cue.AT_LANDING, inputs.tick), HOLD
        return close_doors_now(ctx, state, inputs, rules, events)
    if not inputs.door_locked or not rules.automatic_runs or not rules.correction_runs:
        return state, HOLD
    return start(ctx, state, inputs, events)


def start(ctx: Context, state: ControllerState, inputs: Inputs,
          events: list[Event]) -> tuple[ControllerState, DriveRequest]:
    """Towards the reference mark: down from above it, up from below it (the switch is made below it)."""
    direction = Direction.UP if inputs.below_reference_mark else Direction.DOWN
    events.append(Event(EventKind.CORRECTION_RUN, inputs.tick, -1, f"started:{state.correction}"))
    state = enter(state, Cue.CORRECTION_DUE, inputs.tick, direction=direction, run=None, park_tick=-1)
    return state, DriveRequest(direction, ctx.car.correction_speed_m_s)


def correcting(ctx: Context, state: ControllerState, inputs: Inputs, rules: ModeRules, events: list[Event],
               found: set[Fault]) -> tuple[ControllerState, DriveRequest]:
    """Run at correction speed until the reference switch changes: the drive re-references its count at that
    edge. Then stop; the HALTED recovery takes the car to the nearest landing on the corrected position."""
    tick = inputs.tick
    passed = inputs.below_reference_mark is (state.direction is Direction.DOWN)
    if passed and not inputs.position_unreferenced:
        events.append(Event(EventKind.CORRECTION_RUN, tick, -1, "done"))
        return enter(state, Cue.CORRECTED, tick, correction="", position_checked=True), HOLD
    if passed or tick - state.phase_tick > ctx.correction_timeout:
        # Past the mark with the drive still unreferenced, or no mark found in a whole shaft's travel.
        found.add(Fault.REFERENCE_NOT_FOUND)
        return enter(state, Cue.MARK_NOT_FOUND, tick), HOLD
    if not inputs.door_locked or not inputs.door_closed_limit:
        return enter(state, Cue.DOORS_UNLOCKED, tick), HOLD
    return state, DriveRequest(state.direction, ctx.car.correction_speed_m_s)


def trust_on_power_up(ctx: Context, state: ControllerState, inputs: Inputs) -> ControllerState:
    """The first time the car stands still after power-up: compare the count with the door-zone sensor once."""
    return replace(state, position_checked=True, correction=state.correction or position_doubt(ctx, inputs))


__all__ = ["ZONE_CHECK_MARGIN_M", "correcting", "halted_untrusted", "position_doubt", "start", "trust_on_power_up"]
