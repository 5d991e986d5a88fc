"""The controller's side of the doors: what it asks of the door machine (door.py) on each tick, and why.

Rules of this module:
- The door machine decides the door's moves; this module only reduces the controller's situation to DoorInputs:
  an open request (a call served here, an arrival, a recovery), a close request (the door-close button, or standing
  away from a landing), and holding open (relevelling, overload, parked open at the recall landing, or letting the
  passengers out on a stop-at-the-next-landing fault).
- Every move of the door machine becomes an event; a door fault is reported in the door state and raised by the
  supervisor like any other.
"""

from __future__ import annotations


from carctl.core import calls as call_registry
from carctl.core import door
from carctl.core.context import Context
from carctl.core.door import DoorInputs, DoorPhase, DoorState, Stimulus
from carctl.core.faults import Fault, FaultLevel, worst_level
from carctl.core.modes import ModeRules, recall_landing
from carctl.core.phases import HOLD, DriveRequest
from carctl.core.records import replace
from carctl.core.signals import Event, EventKind, Inputs
from carctl.core.state import ControllerState

DOOR_EVENTS = {
    Stimulus.OPEN_REQUEST: EventKind.DOORS_OPENING,
    Stimulus.OPEN_LIMIT: EventKind.DOORS_OPEN,
    Stimulus.CLOSE_REQUEST: EventKind.DOORS_CLOSING,
    Stimulus.NUDGE: EventKind.NUDGING,
    Stimulus.REOPEN: EventKind.DOORS_REOPENED,
    Stimulus.CLOSED_LIMIT: EventKind.DOORS_CLOSED,
    Stimulus.OPEN_TIMEOUT: EventKind.DOORS_CLOSING,
    Stimulus.CLOSE_TIMEOUT: EventKind.DOORS_REOPENED,
}


def letting_out(ctx: Context, state: ControllerState, inputs: Inputs) -> bool:
    """A stop-at-the-next-landing fault with someone in the car: the doors open there and stay open until the
    car is empty."""
    return (bool(state.faults) and worst_level(state.faults) >= FaultLevel.STOP_AT_NEXT_LANDING
            and inputs.load_kg > ctx.car.anti_nuisance_load_kg)


def door_step(ctx: Context, state: ControllerState, current: DoorState, inputs: Inputs, rules: ModeRules,
              reopen: bool, events: list[Event], open_request: bool = False, creeping: bool = False,
              close_now: bool = False) -> DoorState:
    """One tick of the door machine from ``current``, with an event for the move it made (if any)."""
    parked_open = rules.park_open and state.landing == recall_landing(ctx, state, rules)
    seen = DoorInputs(
        open_request=open_request,
        close_request=inputs.door_close_button or close_now,
        reopen_request=reopen,
        hold_open=creeping or parked_open or Fault.OVERLOAD in state.faults or letting_out(ctx, state, inputs),
        auto_close=rules.auto_close,
        open_limit=inputs.door_open_limit,
        closed_locked=inputs.door_closed_limit and inputs.door_locked,
        light_curtain=inputs.light_curtain_blocked,
        safety_edge=inputs.safety_edge,
        open_button=inputs.door_open_button,
    )
    new_door, stimulus = door.update(current, inputs.tick, seen, ctx.timing)
    if stimulus is not None:
        fault = new_door.fault
        events.append(Event(DOOR_EVENTS[stimulus], inputs.tick, -1, fault.value if fault is not None else ""))
    return new_door


def open_doors(ctx: Context, state: ControllerState, inputs: Inputs, rules: ModeRules,
               events: list[Event]) -> tuple[ControllerState, DriveRequest]:
    """Serve the calls at this landing in the lantern's direction and open (a closed door starts a fresh cycle)."""
    at = state.landing
    accessible = at in state.calls.accessible
    calls = call_registry.serve(state.calls, inputs.tick, at, state.direction, events)
    current = state.door
    opened = current
    if current.phase is DoorPhase.CLOSED:
        opened = DoorState(open_failures=current.open_failures, accessible=accessible, fault=current.fault)
    new_door = door_step(ctx, state, opened, inputs, rules, False, events, open_request=True)
    return replace(state, calls=calls, door=new_door, park_tick=-1), HOLD


def close_doors_now(ctx: Context, state: ControllerState, inputs: Inputs, rules: ModeRules,
                    events: list[Event]) -> tuple[ControllerState, DriveRequest]:
    """Standing still away from a landing with the doors not closed: close them, without waiting for a dwell."""
    new_door = door_step(ctx, state, state.door, inputs, rules, False, events, close_now=True)
    return (replace(state, door=new_door) if new_door is not state.door else state), HOLD


__all__ = ["DOOR_EVENTS", "close_doors_now", "door_step", "letting_out", "open_doors"]
