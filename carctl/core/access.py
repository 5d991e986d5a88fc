"""Access: who was recognised in the car (face or card), and which car calls they may make (floor permissions).

Rules of this module:
- A recognition is a request like any button, never the only way to ride: it adds the resident's landings to the
  ride's authorised landings and, with the car at a landing in a mode that takes car calls, calls their home landing
  as if they had pressed its button. A RECOGNISED event names the source and the resident (by id, never biometric
  data).
- An empty car standing with its doors closed forgets who was in it.
- With floor permissions on (car.permissions_enabled), a car call outside the free landings (car.free_landings and
  the main landing) needs someone in the car who may go there; a refused button stays dark, with a CALL_REFUSED
  event.
"""

from __future__ import annotations


from carctl.core.context import Context
from carctl.core.door import DoorPhase
from carctl.core.modes import ModeRules
from carctl.core.phases import Phase
from carctl.core.records import replace
from carctl.core.signals import Event, EventKind, Inputs
from carctl.core.state import ControllerState


def authorisations(ctx: Context, state: ControllerState, inputs: Inputs, rules: ModeRules,
                   events: list[Event]) -> tuple[ControllerState, frozenset[int]]:
    """The state with this tick's recognitions, and the car calls pressed (with those the recognitions make)."""
    car_pressed = inputs.car_calls_pressed
    authorised = state.authorised
    if (authorised and not inputs.recognitions and state.phase is Phase.STANDING
            and state.door.phase is DoorPhase.CLOSED and inputs.load_kg <= ctx.car.anti_nuisance_load_kg):
        return replace(state, authorised=frozenset()), car_pressed
    for seen in inputs.recognitions:
        authorised = authorised | seen.allowed_landings | {seen.home_landing}
        events.append(Event(EventKind.RECOGNISED, inputs.tick, seen.home_landing, f"{seen.source}:{seen.resident}"))
        at_landing = state.phase is Phase.STANDING or state.phase is Phase.RELEVELLING
        if at_landing and rules.car_calls and seen.home_landing != state.landing and (
                0 <= seen.home_landing < ctx.landing_count):
            car_pressed = car_pressed | {seen.home_landing}
    if authorised is not state.authorised:
        state = replace(state, authorised=authorised)
    return state, car_pressed


def permitted(ctx: Context, pressed: frozenset[int], authorised: frozenset[int], tick: int,
              events: list[Event]) -> frozenset[int]:
    """The car calls that may register, with floor permissions on; a refused button stays dark."""
    allowed = ctx.free_landings | authorised
    refused = pressed - allowed
    for landing in sorted(refused):
        events.append(Event(EventKind.CALL_REFUSED, tick, landing, "car:not permitted"))
    return pressed - refused if refused else pressed


__all__ = ["authorisations", "permitted"]
