"""Input sequences that once left the core's alarm wrong: a reset key held or stuck, a channel that stops
reporting the voice connection, a stale car panel under a jammed button."""

from dataclasses import replace

from carctl.core.signals import AlarmPhase

from tests.core.test_alarm import CONTROLLER, PRESS, alarms, between_floors


def run(state, inputs, ticks, **changes):
    seen, commands = [], None
    for tick in ticks:
        state, commands, events = CONTROLLER.step(state, replace(inputs, tick=tick, **changes))
        seen += alarms(events)
    return state, commands, seen


def test_a_reset_key_held_or_stuck_does_not_cancel_every_new_alarm() -> None:
    """The rescuer leaves the reset key turned, or the key's contact sticks: the board reports the key again after
    every acknowledgement (as sim serve's `button alarm_reset --hold S` does). A rider trapped afterwards holds the
    button for 3 s."""
    state, inputs = between_floors()
    state, commands, seen = run(state, inputs, range(1, 3 * PRESS), alarm_button=True, alarm_reset=True)
    # Once: ["requested", "cancelled"] one tick apart, the call wanted for 20 ms (the modem process is told True
    # then False: nothing is dialled), then nothing more until the button is let go — and every later hold the
    # same. A stuck reset input silently disables the alarm; the rider gets no call and no sign of it.
    assert state.alarm is not AlarmPhase.IDLE and commands.alarm_call, seen


def test_the_green_lamp_goes_out_when_the_channel_stops_reporting_a_voice_connection() -> None:
    """A voice connection, then the modem process restarts (crash, the process table's restart): the new process
    reports the call wanted, not transmitted, no voice — (False, False) — while it dials again."""
    state, inputs = between_floors()
    state, _, _ = run(state, inputs, range(1, PRESS + 2), alarm_button=True)
    state, _, _ = run(state, inputs, range(PRESS + 2, PRESS + 4), alarm_transmitted=True, alarm_voice=True)
    state, commands, seen = run(state, inputs, range(PRESS + 4, PRESS + 4 + 5000))  # 100 s of (False, False)
    # Once: VOICE_CONNECTED for good: the green "voice connection established" lamp stays lit while nobody is on
    # the line (and stays so if the new calls all fail).
    assert not commands.alarm_voice_lamp, (state.alarm, seen)


def test_a_stuck_button_through_the_reset_stays_spent_across_a_stale_panel_reading() -> None:
    """The rescuer resets with the button still jammed (a wheelchair against it). sense() turns a car-panel reading
    older than its maximum age into alarm_button False (protocol/sense.py), the same as a release: the car panel
    silent for more than 0.5 s (a board reboot, a loose connector, a burst of CRC errors) and the jammed button
    started a new alarm, calling the rescue service again. The reading's age says it is not to be believed."""
    state, inputs = between_floors()
    state, _, _ = run(state, inputs, range(1, PRESS + 2), alarm_button=True)
    state, _, _ = run(state, inputs, range(PRESS + 2, PRESS + 3), alarm_button=True, alarm_reset=True)
    assert state.alarm is AlarmPhase.IDLE and state.alarm_hold_spent
    state, _, _ = run(state, inputs, range(PRESS + 3, PRESS + 6), car_panel_age_ticks=10**6)  # stale: sense says
    # "not held", and the reading's age says it is not to be believed
    state, _, seen = run(state, inputs, range(PRESS + 6, 4 * PRESS), alarm_button=True)
    assert seen == [], seen
