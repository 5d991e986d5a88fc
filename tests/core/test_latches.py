"""Latched faults survive a restart (the core's half): restored before the first command, reset only deliberately."""

from dataclasses import replace

from carctl.core.calls import Calls
from carctl.core.config import ControllerConfig
from carctl.core.controller import Controller, latched_faults
from carctl.core.faults import FAULTS, Fault, FaultLevel
from carctl.core.phases import Phase
from carctl.core.signals import EventKind, Inputs

CONTROLLER = Controller(ControllerConfig())


def raised(events: tuple) -> list[str]:
    return [event.detail.split(":")[0] for event in events if event.kind is EventKind.FAULT_RAISED]


def test_restored_latches_hold_the_car_from_its_first_command_until_the_maintenance_reset() -> None:
    state = CONTROLLER.initial_state(0.0, latched=frozenset({Fault.OVERSPEED, Fault.UNINTENDED_MOVEMENT}))
    state = replace(state, calls=Calls(car=frozenset({4})))
    assert latched_faults(state) == {Fault.OVERSPEED, Fault.UNINTENDED_MOVEMENT}  # to keep even before the step
    state, commands, events = CONTROLLER.step(state, Inputs(tick=0))
    assert raised(events) == ["overspeed", "unintended_movement"]  # one event each, so the log and platform see them
    assert commands.quick_stop and not commands.run_up and not commands.run_down
    assert state.faults == {Fault.OVERSPEED, Fault.UNINTENDED_MOVEMENT} and state.phase is Phase.HALTED
    for tick in range(1, 2000, 97):  # the conditions are long gone; only the reset clears them
        state, commands, events = CONTROLLER.step(state, Inputs(tick=tick))
        assert commands.quick_stop and not commands.run_up and not raised(events)
    state, _, events = CONTROLLER.step(state, Inputs(tick=2000, fault_reset=True))
    assert not state.faults and {e.detail for e in events if e.kind is EventKind.FAULT_CLEARED} == {
        "overspeed", "unintended_movement"}
    assert latched_faults(state) == frozenset()
    state, commands, _ = CONTROLLER.step(state, Inputs(tick=2001))
    state, commands, _ = CONTROLLER.step(state, Inputs(tick=2002))
    assert state.phase is Phase.STARTING and commands.run_up  # back in service: the car call is served


def test_a_restored_latch_whose_condition_stands_survives_the_reset() -> None:
    beyond = Inputs(tick=0, position_m=14.6)  # past the top landing's final limit
    state = CONTROLLER.initial_state(14.6, latched={Fault.SHAFT_LIMIT})
    state, _, _ = CONTROLLER.step(state, beyond)
    state, _, _ = CONTROLLER.step(state, replace(beyond, tick=1, fault_reset=True))
    assert Fault.SHAFT_LIMIT in state.faults


def test_an_unreadable_record_is_a_latched_stop_never_no_faults() -> None:
    spec = FAULTS[Fault.LATCH_RECORD_UNREADABLE]
    assert spec.latched and spec.level is FaultLevel.STOP_NOW and spec.code == 37
    state = CONTROLLER.initial_state(0.0, latched=None)
    assert latched_faults(state) == {Fault.LATCH_RECORD_UNREADABLE}
    state, commands, events = CONTROLLER.step(state, Inputs(tick=0))
    assert raised(events) == ["latch_record_unreadable"] and commands.quick_stop
    state, commands, _ = CONTROLLER.step(state, Inputs(tick=5000))
    assert state.faults == {Fault.LATCH_RECORD_UNREADABLE} and state.phase is Phase.HALTED
    state, _, _ = CONTROLLER.step(state, Inputs(tick=5001, fault_reset=True))
    state, _, _ = CONTROLLER.step(state, Inputs(tick=5002))
    assert not state.faults and state.phase is Phase.STANDING


def test_only_faults_that_latch_are_kept_and_restored() -> None:
    state = CONTROLLER.initial_state(0.0, latched={Fault.DRIVE_FAULT, Fault.POSITION_TRACKING})
    assert latched_faults(state) == {Fault.POSITION_TRACKING}
    state, _, events = CONTROLLER.step(state, Inputs(tick=0, drive_fault_code=0x21))
    assert state.faults == {Fault.DRIVE_FAULT, Fault.POSITION_TRACKING}
    assert latched_faults(state) == {Fault.POSITION_TRACKING}  # the drive fault clears with the drive's code
    assert sorted(raised(events)) == ["drive_fault", "position_tracking"]


def test_a_restart_carries_the_latch_over() -> None:
    state = CONTROLLER.initial_state(0.0)
    state, _, _ = CONTROLLER.step(state, Inputs(tick=0))
    state, _, events = CONTROLLER.step(state, Inputs(tick=1, speed_m_s=1.2))
    assert raised(events) == ["overspeed"]
    restarted = CONTROLLER.initial_state(0.0, latched=latched_faults(state))
    restarted, commands, events = CONTROLLER.step(restarted, Inputs(tick=0))
    assert restarted.faults == {Fault.OVERSPEED} and commands.quick_stop and raised(events) == ["overspeed"]
    fresh, commands, events = CONTROLLER.step(CONTROLLER.initial_state(0.0), Inputs(tick=0))
    assert not fresh.faults and not commands.quick_stop and not raised(events)
