"""Rescue on the rescue device's battery: one low-speed run to the landing the load makes easiest, then out.

Rules of this module:
- The rescue landing is chosen once the car stands still on the battery (brake closed, drive idle, its status
  fresh, the position trusted): the landing the car is level at, within twice the relevelling threshold; else the
  first landing in the direction the load makes easier (down for a car heavier than its counterweight, up for a
  lighter one); near balance, the nearer landing.
- The run goes there at rescue speed (travel.py asks ModeRules.rescue_run), the doors park open there, and the
  rescue notice is held from the moment the passengers are released (a RESCUED event) until the mains return.
- Which mode is in force (entering rescue on the battery, leaving it when the mains return) is modes.py's.
"""

from __future__ import annotations


from carctl.core.context import Context
from carctl.core.door import DoorPhase
from carctl.core.faults import Fault
from carctl.core.phases import Phase
from carctl.core.records import replace
from carctl.core.signals import Direction, Event, EventKind, Inputs
from carctl.core.state import ControllerState
from carctl.core.travel import STOPPED_M_S

# Within this fraction of the rated load of balance either direction is as easy for the rescue device: the nearer
# landing is taken.
RESCUE_BALANCED_FRACTION = 0.05


def rescue(ctx: Context, state: ControllerState, inputs: Inputs, events: list[Event]) -> ControllerState:
    """Choose the rescue landing once the car stands still on the battery; report the release of the
    passengers once the doors open there."""
    if state.rescue_landing < 0:
        if (state.correction or (state.phase is not Phase.HALTED and state.phase is not Phase.STANDING)
                or inputs.brake_open or inputs.drive_running or abs(inputs.speed_m_s) >= STOPPED_M_S
                or Fault.DRIVE_STALE in state.faults):
            return state
        return replace(state, rescue_landing=rescue_target(ctx, inputs))
    if (not state.rescued and state.phase is Phase.STANDING and state.landing == state.rescue_landing
            and state.door.phase is not DoorPhase.CLOSED):
        events.append(Event(EventKind.RESCUED, inputs.tick, state.landing, f"{inputs.load_kg:.0f} kg"))
        return replace(state, rescued=True)
    return state


def rescue_target(ctx: Context, inputs: Inputs) -> int:
    """The landing the car is level at (within the levelling accuracy); else the first landing in the direction
    the load makes easier (down for a car heavier than its counterweight, up for a lighter one); near balance,
    the nearer landing."""
    car = ctx.car
    position = inputs.position_m
    nearest = ctx.nearest_landing(position)
    level_m = ctx.rescue_level_m
    if inputs.in_door_zone and abs(ctx.landings_m[nearest] - position) <= level_m:
        return nearest
    balance_kg = car.balance_fraction * car.rated_load_kg
    if abs(inputs.load_kg - balance_kg) <= RESCUE_BALANCED_FRACTION * car.rated_load_kg:
        return nearest
    lighter = Direction.DOWN if inputs.load_kg > balance_kg else Direction.UP
    landing = ctx.first_stoppable(position + lighter * level_m, lighter)
    if 0 <= landing < ctx.landing_count:
        return landing
    return nearest  # beyond the terminal landing in that direction: the only way is back


__all__ = ["RESCUE_BALANCED_FRACTION", "rescue", "rescue_target"]
