"""The logic's Commands for one tick, before the supervisor's last word (supervisor.enforce).

Rules of this module:
- The run bits go out only in a phase that drives the car (STARTING, RUNNING, INSPECTING, CORRECTING, and
  RELEVELLING while it creeps), in the direction the phase handler asked for; otherwise no speed either.
- The gong sounds on arrival; the announcement names the landing arrived at, or the home landing of a resident
  the car has just recognised and is now taking there.
- The door machine's commands go to the door operator; on a car with a rear door, to the side(s) serving the
  landing, the other held closed (sides.py).
- Lamps show the registered calls; the buzzer sounds while nudging and on overload; light and fan follow energy
  saving; the rescue notice is held once a rescue has released the passengers. The brake test's torque is asked for
  while a test is under way (braketest.py).
- Commands are built on every stepped tick by make_commands() (records.fast_constructor), whose parameters are the
  fields in their order: it sets the frozen record's slots directly, at half the dataclass constructor's cost.
  tests/core/test_outputs.py checks its result against Commands(...) built with keywords.
"""

from __future__ import annotations

import bisect

from carctl.core import alarm, door, sides
from carctl.core.context import Context
from carctl.core.faults import Fault
from carctl.core.phases import DriveRequest, Phase
from carctl.core.records import fast_constructor
from carctl.core.signals import AlarmPhase, Commands, Commissioning, Direction, Event, EventKind, Inputs
from carctl.core.state import ControllerState

# Each value passed in the fields' order (make_commands' parameters are the fields: records.py).
make_commands = fast_constructor(Commands)


def commands(ctx: Context, state: ControllerState, inputs: Inputs, drive: DriveRequest,
             events: list[Event]) -> Commands:
    # Each value is named as its field and passed in the fields' order (make_commands' parameters are checked
    # against the fields by the test), so the call below reads like the keyword form.
    phase = state.phase
    running = (phase is Phase.RUNNING or phase is Phase.STARTING or phase is Phase.INSPECTING
               or phase is Phase.CORRECTING or (phase is Phase.RELEVELLING and state.run is not None))
    run_up = running and drive.direction is Direction.UP
    run_down = running and drive.direction is Direction.DOWN
    speed_ref_m_s = drive.speed_m_s if running else 0.0
    door_state = state.door
    door_open, door_close = door.door_commands(door_state)
    door_nudge, door_slow = door_state.nudging, door_state.accessible
    rear_open = rear_close = rear_nudge = rear_slow = False
    if ctx.rear_door:  # the door machine's commands to the side(s) of this landing, the other held closed
        (door_open, door_close, door_nudge, door_slow), (rear_open, rear_close, rear_nudge, rear_slow) = sides.split(
            ctx.door_sides, state.landing, (door_open, door_close, door_nudge, door_slow))
    calls = state.calls
    arrived = -1
    announce_landing = -1
    if events:
        for event in events:
            if event.kind is EventKind.ARRIVED:
                arrived = announce_landing = event.landing
            elif event.kind is EventKind.RECOGNISED and announce_landing < 0 and event.landing in calls.car:
                announce_landing = event.landing  # "going to floor N" for a resident the car recognised
    overload_lamp = bool(state.faults) and Fault.OVERLOAD in state.faults
    lit = not state.dark
    if state.alarm is AlarmPhase.IDLE and state.alarm_prompt_until_tick < 0:  # nearly every tick: nothing to show
        alarm_call = transmitted_lamp = voice_lamp = alarm_prompt = False
    else:
        alarm_call, transmitted_lamp, voice_lamp, alarm_prompt = alarm.lamps(state, inputs.tick)
    return make_commands(
        run_up, run_down, speed_ref_m_s,
        False,  # quick_stop: the supervisor's to command
        # fault_reset: passed on to the drive, the key's or the service tool's (the same deliberate reset)
        inputs.fault_reset or inputs.commission is Commissioning.FAULT_RESET,
        door_open, door_close,
        door_nudge,  # the door machine's nudging
        door_slow,  # the door machine's accessible stop: a slower close
        door_state.nudging or overload_lamp,  # buzzer
        arrived >= 0,  # gong
        announce_landing,
        calls.car, calls.up, calls.down,  # car_call_lamps, hall_up_lamps, hall_down_lamps
        bisect.bisect_left(ctx.midpoints_m, inputs.position_m),  # position_landing
        state.direction,  # direction: the travel direction, or the lantern's
        overload_lamp,
        lit, lit,  # car_light, car_fan
        state.rescued,  # rescue_notice
        alarm_call, transmitted_lamp, voice_lamp,  # alarm_call, alarm_transmitted_lamp, alarm_voice_lamp
        alarm_prompt,
        state.brake_test_since_tick >= 0,  # brake_test: the drive holds its test torque (braketest.py)
        rear_open, rear_close, rear_nudge, rear_slow,  # rear_door_open .. rear_door_slow (sides.py)
    )


__all__ = ["commands", "make_commands"]
