"""The alarm (EN 81-28): a rider holding the alarm button gets a call to the rescue service, and is told so.

Rules of this module:
- A hold of the alarm button for car.alarm_press_s starts an alarm; a shorter touch (a brush, a bag against the
  panel) does nothing. The button is a level the sense step trusts only while the car panel's reading is fresh.
- The alarm goes idle → requested → transmitted → voice connected, by a table of the moves each phase allows: the
  hold makes it requested; the alarm's channel (the modem process) reports it transmitted (received by the rescue
  service) and voice connected; only the rescuer's reset at the car ends it (→ idle, "cancelled"), never the
  platform, never a release of the button. A new hold while an alarm is active changes nothing (it is already out),
  and a button held through the reset starts nothing until it is let go: the call is ended for at least a cycle, and
  a stuck button cannot undo the rescuer's reset. Only a turn of the reset key after a pause of alarm_press ends an
  alarm: a key left turned, or a stuck contact, which the board reports again after every acknowledgement, cannot
  cancel the alarms that come after it. While the car panel's reading is stale the button is neither held nor let
  go: a bus glitch does not turn a jammed button into a new alarm.
- Filtering, exactly as EN 81-28 allows it and no more: a hold is held back only while the car stands in the door
  zone with its doors fully open, so the rider can simply walk out; it is still logged (an ALARM event "filtered").
  Never held back in rescue, after a stop-at-once fault, or while someone is held in the car (the trapped-passenger
  condition is being timed, watch.py).
- The commands follow the phase: the call wanted from requested on; the yellow lamp from transmitted on, the green
  one while a voice connection holds (a report without one, whatever else it says, puts the green lamp out). The
  rider hears "your call has been received, help is on the way" when the rescue service first has the alarm and
  when the platform's operator acknowledges it (which changes nothing else: only the reset at the car ends an
  alarm).
"""

from __future__ import annotations


from carctl.core.context import Context
from carctl.core.door import DoorPhase
from carctl.core.phases import Phase
from carctl.core.records import replace
from carctl.core.signals import AlarmPhase, Event, EventKind, Inputs
from carctl.core.state import ControllerState

# What the alarm's channel reports may move the alarm on, never back: (transmitted, voice) → the phase it means.
_REPORTED = {(False, False): AlarmPhase.REQUESTED, (True, False): AlarmPhase.TRANSMITTED,
             (False, True): AlarmPhase.VOICE_CONNECTED, (True, True): AlarmPhase.VOICE_CONNECTED}
# The moves each phase allows on a report (the reset is allowed from every active phase).
_MOVES = {
    AlarmPhase.REQUESTED: (AlarmPhase.TRANSMITTED, AlarmPhase.VOICE_CONNECTED),
    AlarmPhase.TRANSMITTED: (AlarmPhase.VOICE_CONNECTED,),
    # A voice connection that ends leaves the alarm transmitted (the yellow lamp stays, the green goes out).
    AlarmPhase.VOICE_CONNECTED: (AlarmPhase.TRANSMITTED,),
}


def watch_alarm(ctx: Context, state: ControllerState, inputs: Inputs, rescue: bool, stopped_at_once: bool,
                events: list[Event]) -> ControllerState:
    tick = inputs.tick
    if inputs.alarm_test:
        events.append(Event(EventKind.ALARM_TEST, tick, state.landing, inputs.alarm_test))
    phase = state.alarm
    held_since, taken, since = state.alarm_held_since_tick, state.alarm_hold_taken, state.alarm_since_tick
    prompt_until = state.alarm_prompt_until_tick if state.alarm_prompt_until_tick > tick else -1
    # A stale car panel says nothing of the button: it is taken as it was (held, let go, spent) until it answers.
    stale = inputs.car_panel_age_ticks > ctx.supervisor_limits.freshness.car_panel
    button = (held_since >= 0) if stale else inputs.alarm_button
    spent = state.alarm_hold_spent and (button or stale)
    reset_tick = state.alarm_reset_tick
    if inputs.alarm_reset:
        turned = reset_tick < 0 or tick - reset_tick > ctx.timing.alarm_press  # not a key held since before
        reset_tick = tick
        if phase is not AlarmPhase.IDLE and turned:
            events.append(Event(EventKind.ALARM, tick, state.landing, "cancelled"))
            phase, since, prompt_until = AlarmPhase.IDLE, -1, -1
            spent = button
    if not button:
        held_since, taken = -1, False
    elif held_since < 0:
        held_since = tick
    if (button and phase is AlarmPhase.IDLE and not spent and not stale
            and tick - held_since >= ctx.timing.alarm_press):
        if may_walk_out(state, inputs) and not rescue and not stopped_at_once and state.trapped_since_tick < 0:
            if not taken:  # logged once per hold; the hold goes out as soon as the doors close or the car moves
                taken = True
                events.append(Event(EventKind.ALARM, tick, state.landing, "filtered"))
        else:
            phase, since = AlarmPhase.REQUESTED, tick
            events.append(Event(EventKind.ALARM, tick, state.landing, "requested"))
    if phase is not AlarmPhase.IDLE:
        reported = _REPORTED[(inputs.alarm_transmitted, inputs.alarm_voice)]
        if phase is AlarmPhase.VOICE_CONNECTED and not inputs.alarm_voice:
            reported = AlarmPhase.TRANSMITTED  # the call has ended (or its channel restarted): the green lamp out
        if reported in _MOVES[phase]:
            if phase is AlarmPhase.REQUESTED:  # the rescue service has it, for the first time: the rider is told
                prompt_until = tick + ctx.timing.alarm_prompt
            phase = reported
            events.append(Event(EventKind.ALARM, tick, state.landing, reported.value))
        if inputs.alarm_acknowledged and phase is not AlarmPhase.REQUESTED:
            # Spoken only once a rescue service has the alarm: "help is on the way" must be true.
            prompt_until = tick + ctx.timing.alarm_prompt
            events.append(Event(EventKind.ALARM, tick, state.landing, "acknowledged"))
    if (phase, held_since, taken, since, prompt_until, spent, reset_tick) != (
            state.alarm, state.alarm_held_since_tick, state.alarm_hold_taken, state.alarm_since_tick,
            state.alarm_prompt_until_tick, state.alarm_hold_spent, state.alarm_reset_tick):
        state = replace(state, alarm=phase, alarm_held_since_tick=held_since, alarm_hold_taken=taken,
                        alarm_since_tick=since, alarm_prompt_until_tick=prompt_until, alarm_hold_spent=spent,
                        alarm_reset_tick=reset_tick)
    return state


def may_walk_out(state: ControllerState, inputs: Inputs) -> bool:
    """The car stands in the door zone with its doors fully open: the one case EN 81-28 lets an alarm be held back."""
    return (state.phase is Phase.STANDING and inputs.in_door_zone and inputs.door_open_limit
            and state.door.phase is DoorPhase.OPEN)


def deadlines(ctx: Context, state: ControllerState) -> list[int]:
    """When a button held becomes an alarm (the lockstep simulator must not skip past it)."""
    found = [state.alarm_prompt_until_tick] if state.alarm_prompt_until_tick >= 0 else []
    if state.alarm_held_since_tick >= 0 and state.alarm is AlarmPhase.IDLE:
        found.append(state.alarm_held_since_tick + ctx.timing.alarm_press)
    return found


def lamps(state: ControllerState, tick: int) -> tuple[bool, bool, bool, bool]:
    """(the call wanted, the yellow "transmitted" lamp, the green "voice connected" lamp, the prompt spoken)."""
    phase = state.alarm
    return (phase is not AlarmPhase.IDLE, phase is AlarmPhase.TRANSMITTED or phase is AlarmPhase.VOICE_CONNECTED,
            phase is AlarmPhase.VOICE_CONNECTED, state.alarm_prompt_until_tick > tick)
