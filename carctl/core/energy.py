"""Energy saving: the car light and fan go off when the car has stood idle, and on again at the first call.

Rules of this module:
- Idle is: standing at a landing with the doors closed, no call registered, no button pressed and no one
  recognised, in a mode that allows it (ModeRules.energy_saving: never in fire service, inspection or rescue).
- The light and fan go off after car.energy_saving_after_s of idleness (0: never), with an ENERGY_SAVING event "on";
  the first call or button turns them on in the same tick (the call registers first, so the car is lit before its
  doors open), with ENERGY_SAVING "off". A car halted by a fault keeps its light on.
- The state keeps the tick the light goes off (dark_tick, -1 while not idle) and whether it is off (dark).
"""

from __future__ import annotations


from carctl.core.context import Context
from carctl.core.door import DoorPhase
from carctl.core.modes import ModeRules
from carctl.core.phases import Phase
from carctl.core.records import replace
from carctl.core.signals import Event, EventKind, Inputs
from carctl.core.state import ControllerState


def energy_saving(ctx: Context, state: ControllerState, inputs: Inputs, rules: ModeRules,
                  events: list[Event]) -> ControllerState:
    idle = (rules.energy_saving and ctx.timing.energy_saving > 0 and state.phase is Phase.STANDING
            and state.door.phase is DoorPhase.CLOSED and not state.calls.any() and not inputs.door_open_button
            and not inputs.door_close_button and not inputs.recognitions)
    tick = inputs.tick
    if not idle:
        if state.dark:
            events.append(Event(EventKind.ENERGY_SAVING, tick, -1, "off"))
            return replace(state, dark=False, dark_tick=-1)
        return replace(state, dark_tick=-1) if state.dark_tick >= 0 else state
    if state.dark:
        return state
    if state.dark_tick < 0:
        return replace(state, dark_tick=tick + ctx.timing.energy_saving)
    if tick >= state.dark_tick:
        events.append(Event(EventKind.ENERGY_SAVING, tick, -1, "on"))
        return replace(state, dark=True)
    return state


def deadlines(state: ControllerState) -> list[int]:
    """The tick at which energy saving may act on an unchanged state (for Controller.next_deadline_tick)."""
    return [] if state.dark else [state.dark_tick]


__all__ = ["deadlines", "energy_saving"]
