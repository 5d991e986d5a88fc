"""The input watch: inputs that are fresh but say something is wrong by how long they last.

Rules of this module:
- A light curtain blocked for light_curtain_fault_s has probably failed or is obstructed: LIGHT_CURTAIN_BLOCKED
  (display only) while it stays blocked.
- A landing button seen pressed without a break for stuck_button_s is stuck: LANDING_BUTTON_STUCK, a CALL_REFUSED
  event naming the landing and direction once, and its presses are dropped until it has been seen released for
  BUTTON_RELEASED_S.
- This module only reports conditions; the supervisor raises and clears the faults (update_faults).
"""

from __future__ import annotations

from dataclasses import replace

from carctl.core.context import Context
from carctl.core.faults import Fault
from carctl.core.signals import Event, EventKind, Inputs
from carctl.core.state import ControllerState


def watching(state: ControllerState, inputs: Inputs) -> bool:
    """Whether watch_inputs has anything to look at this tick (a cheap test for the hot path)."""
    return bool(inputs.light_curtain_blocked or state.curtain_since_tick >= 0 or inputs.hall_up_pressed
                or inputs.hall_down_pressed or state.button_streaks)


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


def deadlines(ctx: Context, state: ControllerState) -> list[int]:
    """The ticks at which the watch may act on an unchanged state (for Controller.next_deadline_tick)."""
    ticks = []
    if state.curtain_since_tick >= 0:
        ticks.append(state.curtain_since_tick + ctx.timing.curtain_fault)
    for _, _, first, last in state.button_streaks:
        ticks += [last + ctx.button_released + 1, first + ctx.timing.stuck_button]
    return ticks


__all__ = ["deadlines", "watch_inputs", "watching"]
