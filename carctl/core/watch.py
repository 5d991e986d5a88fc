"""The input watch: inputs that are fresh but say something is wrong by how long they last.

Rules of this module:
- A light curtain blocked for light_curtain_fault_s has probably failed or is obstructed: LIGHT_CURTAIN_BLOCKED
  (display only) while it stays blocked.
- A landing button seen pressed without a break for stuck_button_s is stuck: LANDING_BUTTON_STUCK, a CALL_REFUSED
  event naming the landing and direction once, and its presses are dropped until it has been seen released for
  BUTTON_RELEASED_S.
- A passenger is trapped when the car holds load (more than OCCUPIED_KG) and has stood, HALTED or STANDING, outside
  the door zone, or with its doors failing to open, for TRAPPED_AFTER_S: one TRAPPED_PASSENGER event per entrapment,
  its detail the cause and the seconds waited (trapped_detail), and a TRAPPED_PASSENGER_ENDED event when it ends.
  It is judged on the state after the tick's logic.
- The alarm button is reported on each edge: ALARM_BUTTON "pressed" and "released".
- This module only reports conditions; the supervisor raises and clears the faults (update_faults).
"""

from __future__ import annotations


from carctl.core.context import Context
from carctl.core.door import DoorPhase
from carctl.core.faults import Fault
from carctl.core.phases import Phase
from carctl.core.records import replace
from carctl.core.signals import Event, EventKind, Inputs
from carctl.core.state import ControllerState
from carctl.core.timing import TRAPPED_AFTER_S

# More load than this is someone in the car.
OCCUPIED_KG = 20.0
OUTSIDE_THE_DOOR_ZONE = "outside the door zone"
DOORS_FAIL_TO_OPEN = "doors fail to open"


def watch_inputs(ctx: Context, state: ControllerState, inputs: Inputs,
                 found: set[Fault], events: list[Event]) -> tuple[ControllerState, frozenset[int], frozenset[int]]:
    """A light curtain blocked too long, and stuck landing buttons. Returns the state and the landing presses
    that count (those of stuck buttons dropped)."""
    tick = inputs.tick
    timing = ctx.timing
    curtain = state.curtain_since_tick
    if not inputs.light_curtain_blocked:
        curtain = -1
    elif curtain < 0:
        curtain = tick
    elif tick - curtain >= timing.curtain_fault:
        found.add(Fault.LIGHT_CURTAIN_BLOCKED)
    released = ctx.button_released
    streaks = {(landing, direction): (first, last) for landing, direction, first, last in state.button_streaks}
    pressed = [(landing, 1) for landing in inputs.hall_up_pressed]
    pressed += [(landing, -1) for landing in inputs.hall_down_pressed]
    for key in pressed:
        first, last = streaks.get(key, (tick, tick))
        streaks[key] = (first if tick - last <= released else tick, tick)
    stuck = set()
    for key, (first, last) in list(streaks.items()):
        if tick - last > released:
            del streaks[key]  # released
        elif tick - first >= timing.stuck_button:
            stuck.add(key)
            if first + timing.stuck_button == tick:
                events.append(Event(EventKind.CALL_REFUSED, tick, key[0],
                                    f"{'up' if key[1] > 0 else 'down'}:button stuck"))
    hall_up, hall_down = inputs.hall_up_pressed, inputs.hall_down_pressed
    if stuck:
        found.add(Fault.LANDING_BUTTON_STUCK)
        hall_up = frozenset(landing for landing in hall_up if (landing, 1) not in stuck)
        hall_down = frozenset(landing for landing in hall_down if (landing, -1) not in stuck)
    ordered = tuple(sorted((landing, direction, first, last) for (landing, direction), (first, last)
                           in streaks.items()))
    if curtain != state.curtain_since_tick or ordered != state.button_streaks:
        state = replace(state, curtain_since_tick=curtain, button_streaks=ordered)
    return state, hall_up, hall_down


def alarm_button(state: ControllerState, inputs: Inputs, events: list[Event]) -> ControllerState:
    """An event on each press and release of the alarm button."""
    if inputs.alarm_button == state.alarm_pressed:
        return state
    events.append(Event(EventKind.ALARM_BUTTON, inputs.tick, -1, "pressed" if inputs.alarm_button else "released"))
    return replace(state, alarm_pressed=bool(inputs.alarm_button))


def entrapment_cause(state: ControllerState, inputs: Inputs) -> str:
    """Why someone in the car cannot get out ("" if they can, or no one is in it)."""
    if inputs.load_kg <= OCCUPIED_KG:
        return ""
    if not inputs.in_door_zone and (state.phase is Phase.HALTED or state.phase is Phase.STANDING):
        return OUTSIDE_THE_DOOR_ZONE
    if state.door.fault is not None and state.door.phase is not DoorPhase.OPEN:
        return DOORS_FAIL_TO_OPEN
    return ""


def watch_entrapment(ctx: Context, state: ControllerState, inputs: Inputs, events: list[Event]) -> ControllerState:
    """Count how long someone has been held; one event when it becomes an entrapment, one when it ends."""
    tick = inputs.tick
    since = state.trapped_since_tick
    cause = entrapment_cause(state, inputs)
    if not cause:
        if since < 0:
            return state
        if state.trapped:
            waited_s = (tick - since) * ctx.timing.period_s
            events.append(Event(EventKind.TRAPPED_PASSENGER_ENDED, tick, -1, f"{waited_s:.1f}"))
        return replace(state, trapped_since_tick=-1, trapped=False)
    if since < 0:
        return replace(state, trapped_since_tick=tick)
    if state.trapped or tick - since < ctx.timing.trapped_after:
        return state
    events.append(Event(EventKind.TRAPPED_PASSENGER, tick, -1,
                        trapped_detail(cause, (tick - since) * ctx.timing.period_s)))
    return replace(state, trapped=True)


def trapped_detail(cause: str, waited_s: float) -> str:
    """The detail of a TRAPPED_PASSENGER event: '<cause>:<seconds waited, to 0.1 s>'."""
    return f"{cause}:{waited_s:.1f}"


def parse_trapped_detail(detail: str) -> tuple[str, float]:
    """(cause, waited_s) from a TRAPPED_PASSENGER event's detail."""
    cause, _, waited = detail.rpartition(":")
    return cause, float(waited)


def deadlines(ctx: Context, state: ControllerState) -> list[int]:
    """The ticks at which the watch may act on an unchanged state (for Controller.next_deadline_tick)."""
    ticks = []
    if state.trapped_since_tick >= 0 and not state.trapped:
        ticks.append(state.trapped_since_tick + ctx.timing.trapped_after)
    if state.curtain_since_tick >= 0:
        ticks.append(state.curtain_since_tick + ctx.timing.curtain_fault)
    for _, _, first, last in state.button_streaks:
        ticks += [last + ctx.button_released + 1, first + ctx.timing.stuck_button]
    return ticks


__all__ = ["DOORS_FAIL_TO_OPEN", "OCCUPIED_KG", "OUTSIDE_THE_DOOR_ZONE", "TRAPPED_AFTER_S", "alarm_button",
           "deadlines", "entrapment_cause", "parse_trapped_detail", "trapped_detail", "watch_entrapment",
           "watch_inputs"]
