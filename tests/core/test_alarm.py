"""The alarm (EN 81-28), stepped through the controller tick by tick: a hold starts it, a brush does not; it is held
back only at open doors in the door zone; the channel's reports light the rider's lamps; only the reset ends it."""

from dataclasses import replace

from carctl.core.config import ControllerConfig
from carctl.core.controller import Controller
from carctl.core.door import DoorPhase, DoorState
from carctl.core.faults import Fault
from carctl.core.phases import Phase
from carctl.core.signals import AlarmPhase, Commands, EventKind, Inputs, Mode
from carctl.core.state import ControllerState

CONTROLLER = Controller(ControllerConfig())
PRESS = CONTROLLER.timing.alarm_press  # 1 s at 20 ms: 50 ticks
IDLE_LONG = 10**6  # no parking or energy-saving timer runs out during a test


def alarms(events: tuple) -> list[str]:
    return [event.detail for event in events if event.kind is EventKind.ALARM]


def between_floors() -> tuple[ControllerState, Inputs]:
    """A car halted between landings by a drive fault, doors closed, someone inside."""
    state = ControllerState(phase=Phase.HALTED, landing=2, faults=frozenset({Fault.DRIVE_FAULT}), position_checked=True,
                            settling=True, still_since_tick=0, still_at_m=7.0)
    return state, Inputs(tick=0, drive_fault_code=0x21, position_m=7.0, in_door_zone=False, load_kg=80.0)


def open_at_a_landing() -> tuple[ControllerState, Inputs]:
    """A car in service standing at landing 0 with its doors fully open (the rider can walk out)."""
    doors = DoorState(DoorPhase.OPEN, deadline_tick=IDLE_LONG)
    state = ControllerState(phase=Phase.STANDING, landing=0, door=doors, position_checked=True, park_tick=IDLE_LONG,
                            dark_tick=-1)
    return state, Inputs(tick=0, door_open_limit=True, door_closed_limit=False, door_locked=False, load_kg=80.0)


def hold(state: ControllerState, inputs: Inputs, ticks: range, **changes: object) -> tuple[ControllerState, Commands,
                                                                                        list[str]]:
    seen: list[str] = []
    commands = Commands()
    for tick in ticks:
        state, commands, events = CONTROLLER.step(state, replace(inputs, tick=tick, alarm_button=True, **changes))
        seen += alarms(events)
    return state, commands, seen


def test_a_hold_of_alarm_press_s_starts_an_alarm_and_a_brush_does_not() -> None:
    state, inputs = between_floors()
    brushed, _, seen = hold(state, inputs, range(1, PRESS))  # one tick short
    brushed, _, events = CONTROLLER.step(brushed, replace(inputs, tick=PRESS))  # let go
    assert seen == [] and alarms(events) == [] and brushed.alarm is AlarmPhase.IDLE
    # The simulator may skip ticks of an unchanged state: the controller names the tick the hold becomes an alarm.
    held, _, _ = hold(state, inputs, range(1, 2))
    assert CONTROLLER.next_deadline_tick(held, after=1) <= 1 + PRESS
    state, commands, seen = hold(state, inputs, range(1, PRESS + 2))
    assert seen == ["requested"] and state.alarm is AlarmPhase.REQUESTED and state.alarm_since_tick == PRESS + 1
    assert commands.alarm_call and not commands.alarm_transmitted_lamp and not commands.alarm_voice_lamp
    # Letting go does not end it, nor does a new hold start another.
    state, _, events = CONTROLLER.step(state, replace(inputs, tick=PRESS + 10))
    assert state.alarm is AlarmPhase.REQUESTED and alarms(events) == []
    state, _, seen = hold(state, inputs, range(PRESS + 11, 3 * PRESS))
    assert seen == [] and state.alarm is AlarmPhase.REQUESTED


def test_the_channel_lights_the_lamps_and_only_the_reset_at_the_car_ends_the_alarm() -> None:
    state, inputs = between_floors()
    state, _, _ = hold(state, inputs, range(1, PRESS + 2))
    tick = PRESS + 2
    steps = [({"alarm_transmitted": True}, "transmitted", (True, True, False)),
             ({"alarm_transmitted": True, "alarm_voice": True}, "voice_connected", (True, True, True)),
             ({"alarm_transmitted": True}, "transmitted", (True, True, False)),  # the call ended: green off
             ({}, None, (True, True, False)),  # the channel silent: never back to requested
             ({"alarm_reset": True}, "cancelled", (False, False, False))]
    for changes, detail, lamps in steps:
        state, commands, events = CONTROLLER.step(state, replace(inputs, tick=tick, **changes))
        assert alarms(events) == ([detail] if detail else []), changes
        assert (commands.alarm_call, commands.alarm_transmitted_lamp, commands.alarm_voice_lamp) == lamps, changes
        tick += 1
    assert state.alarm is AlarmPhase.IDLE and state.alarm_since_tick == -1
    # A reset with no alarm is nothing.
    state, _, events = CONTROLLER.step(state, replace(inputs, tick=tick, alarm_reset=True))
    assert alarms(events) == []


def test_at_open_doors_in_the_door_zone_a_hold_is_logged_not_sent_until_the_doors_close() -> None:
    state, inputs = open_at_a_landing()
    state, commands, seen = hold(state, inputs, range(1, 3 * PRESS))
    assert seen == ["filtered"] and state.alarm is AlarmPhase.IDLE and not commands.alarm_call
    # Still held when the doors are no longer fully open: out it goes.
    state, commands, events = CONTROLLER.step(state, replace(inputs, tick=3 * PRESS, alarm_button=True,
                                                             door_open_limit=False))
    assert alarms(events) == ["requested"] and commands.alarm_call


def test_never_held_back_in_rescue_or_after_a_stop_at_once() -> None:
    """(Someone trapped is never at open doors in the door zone: the entrapment is outside the zone, or doors that
    fail to open; alarm.py still names the case.)"""
    state, inputs = open_at_a_landing()
    cases = {
        "rescue": (replace(state, mode=Mode.RESCUE, resume_mode=Mode.NORMAL), replace(inputs, on_battery=True)),
        "stop at once": (replace(state, faults=frozenset({Fault.DRIVE_FAULT})), replace(inputs, drive_fault_code=0x21)),
    }
    for name, (start, given) in cases.items():
        _, commands, seen = hold(start, given, range(1, PRESS + 2))
        assert seen == ["requested"] and commands.alarm_call, name


def test_a_button_read_from_a_silent_panel_is_not_held() -> None:
    """The sense step passes the button only while the car panel's reading is fresh (tests/protocol/test_sense.py);
    here: a hold interrupted by a release restarts the timing."""
    state, inputs = between_floors()
    state, _, seen = hold(state, inputs, range(1, PRESS - 5))
    state, _, _ = CONTROLLER.step(state, replace(inputs, tick=PRESS - 5))
    state, _, seen = hold(state, inputs, range(PRESS - 4, 2 * PRESS - 6))
    assert seen == [] and state.alarm is AlarmPhase.IDLE


def test_the_rider_is_told_help_is_coming_when_the_alarm_is_received_and_when_the_operator_acknowledges() -> None:
    state, inputs = between_floors()
    state, commands, _ = hold(state, inputs, range(1, PRESS + 2))
    assert not commands.alarm_prompt
    tick = PRESS + 2
    state, commands, events = CONTROLLER.step(state, replace(inputs, tick=tick, alarm_transmitted=True))
    assert alarms(events) == ["transmitted"] and commands.alarm_prompt
    prompt = CONTROLLER.timing.alarm_prompt
    assert CONTROLLER.next_deadline_tick(state, after=tick) <= tick + prompt  # the simulator wakes to end it
    state, commands, _ = CONTROLLER.step(state, replace(inputs, tick=tick + prompt, alarm_transmitted=True))
    assert not commands.alarm_prompt and state.alarm_prompt_until_tick == -1
    state, commands, events = CONTROLLER.step(state, replace(inputs, tick=tick + prompt + 1, alarm_transmitted=True,
                                                             alarm_acknowledged=True))
    assert alarms(events) == ["acknowledged"] and commands.alarm_prompt and state.alarm is AlarmPhase.TRANSMITTED
    # An acknowledgement with no alarm standing says nothing.
    idle, _ = between_floors()
    _, commands, events = CONTROLLER.step(idle, replace(inputs, tick=1, alarm_acknowledged=True))
    assert alarms(events) == [] and not commands.alarm_prompt


def test_a_periodic_tests_result_is_an_event_and_a_failure_a_display_fault() -> None:
    state, inputs = open_at_a_landing()
    state, commands, events = CONTROLLER.step(state, replace(inputs, tick=1, alarm_test="failed",
                                                             alarm_test_failed=True))
    assert [(e.kind, e.detail) for e in events if e.kind is EventKind.ALARM_TEST] == [(EventKind.ALARM_TEST,
                                                                                       "failed")]
    assert Fault.ALARM_TEST_FAILED in state.faults and not commands.quick_stop  # shown; the car runs on
    state, _, events = CONTROLLER.step(state, replace(inputs, tick=2, alarm_test="ok"))
    assert Fault.ALARM_TEST_FAILED not in state.faults


def test_a_button_held_through_the_reset_starts_nothing_until_it_is_let_go() -> None:
    state, inputs = between_floors()
    state, _, _ = hold(state, inputs, range(1, PRESS + 2), alarm_transmitted=True)
    assert state.alarm is AlarmPhase.TRANSMITTED
    state, commands, events = CONTROLLER.step(state, replace(inputs, tick=PRESS + 2, alarm_button=True,
                                                             alarm_reset=True))
    assert alarms(events) == ["cancelled"] and not commands.alarm_call and not commands.alarm_transmitted_lamp
    state, commands, seen = hold(state, inputs, range(PRESS + 3, 4 * PRESS))  # still held (stuck, or a panic)
    assert seen == [] and not commands.alarm_call and state.alarm is AlarmPhase.IDLE
    state, _, _ = CONTROLLER.step(state, replace(inputs, tick=4 * PRESS))  # let go
    state, commands, seen = hold(state, inputs, range(4 * PRESS + 1, 5 * PRESS + 2))
    assert seen == ["requested"] and commands.alarm_call and not commands.alarm_transmitted_lamp


def test_an_acknowledgement_before_the_rescue_service_has_the_alarm_says_nothing() -> None:
    state, inputs = between_floors()
    state, _, _ = hold(state, inputs, range(1, PRESS + 2))
    state, commands, events = CONTROLLER.step(state, replace(inputs, tick=PRESS + 2, alarm_acknowledged=True))
    assert alarms(events) == [] and not commands.alarm_prompt  # "help is on the way" only once it is true


def test_after_a_restart_with_no_record_to_trust_a_rider_still_gets_an_alarm_out() -> None:
    """The latch record could not be trusted: the alarm it may have held is not known, and the car is held on
    latch_record_unreadable (a stop at once). The rider's new hold still goes out, at once: the stop that holds the
    car is no reason to hold back the alarm."""
    start = CONTROLLER.initial_state(7.0, latched=None)
    _, inputs = between_floors()
    inputs = replace(inputs, drive_fault_code=0)
    state, commands, _ = CONTROLLER.step(start, replace(inputs, tick=1))
    assert Fault.LATCH_RECORD_UNREADABLE in state.faults and commands.quick_stop and state.alarm is AlarmPhase.IDLE
    state, commands, seen = hold(state, inputs, range(2, PRESS + 3))
    assert seen == ["requested"] and commands.alarm_call
