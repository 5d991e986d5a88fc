"""The service tool's commissioning requests (Inputs.commission) in the core: each is taken by the same rules as the
cabinet's learn button, the periodic brake test and the maintenance reset key, and answered with an event that
names the reason of a refusal; nothing moves on a refused request."""

from __future__ import annotations

from dataclasses import replace

import pytest

from carctl.core.config import CarConfig, ControllerConfig
from carctl.core.controller import Controller, ControllerState, Phase
from carctl.core.faults import Fault
from carctl.core.signals import Commissioning, EventKind, Inputs, Mode

CONTROLLER = Controller(ControllerConfig())  # no periodic brake test (car.brake_test_every_h = 0)


def at_bottom(mode: Mode = Mode.INSPECTION) -> ControllerState:
    return ControllerState(mode=mode, phase=Phase.STANDING, landing=0)


def ask(state: ControllerState, request: Commissioning, tick: int = 1, controller: Controller = CONTROLLER,
        **inputs: object) -> tuple[ControllerState, object, list[str]]:
    """One step with the request; the details of the events that answer it."""
    kind = {Commissioning.LEARNING_RUN: EventKind.LEARNING, Commissioning.BRAKE_TEST: EventKind.BRAKE_TEST,
            Commissioning.FAULT_RESET: EventKind.FAULT_CLEARED}[request]
    snapshot = Inputs(tick=tick, commission=request, **{"below_reference_mark": True, **inputs})  # type: ignore
    state, commands, events = controller.step(state, snapshot)
    return state, commands, [event.detail for event in events if event.kind is kind]


def test_a_learning_run_asked_for_out_of_emergency_electrical_operation_is_refused_and_nothing_moves() -> None:
    state, commands, details = ask(at_bottom(Mode.NORMAL), Commissioning.LEARNING_RUN)
    assert details == ["refused:not_in_emergency_electrical"]
    assert state.mode is Mode.NORMAL and state.learning is None and not commands.run_up  # type: ignore[attr-defined]
    # In inspection a mechanic may be on the roof: the page, like the cabinet's button, never moves him.
    state, commands, details = ask(at_bottom(), Commissioning.LEARNING_RUN)
    assert details == ["refused:car_top_inspection"]
    assert state.mode is Mode.INSPECTION and state.learning is None and not commands.run_up  # type: ignore


def test_a_learning_run_asked_for_from_the_cabinet_at_the_bottom_starts_as_the_learn_button_starts_it() -> None:
    cabinet = at_bottom(Mode.EMERGENCY_ELECTRICAL)
    state, _, details = ask(cabinet, Commissioning.LEARNING_RUN)
    assert details == ["started"] and state.mode is Mode.LEARNING and state.learning is not None
    pressed, _, _ = CONTROLLER.step(cabinet, Inputs(tick=1, below_reference_mark=True, learn_button=True))
    assert replace(pressed, learn_button_held=False) == state  # the button's press, exactly
    again, _, details = ask(state, Commissioning.LEARNING_RUN, tick=2)
    assert details == ["refused:under_way"] and again.learning == state.learning


def test_a_learning_run_away_from_the_bottom_is_refused_as_the_button_is() -> None:
    cabinet = at_bottom(Mode.EMERGENCY_ELECTRICAL)
    _, _, details = ask(cabinet, Commissioning.LEARNING_RUN, position_m=2.9, below_reference_mark=False)
    assert details == ["refused:not_at_bottom"]
    # Not yet seen at rest after a stop at once (a brake test that found a slip, say): the brake may not lift yet.
    state, commands, details = ask(replace(cabinet, settling=True), Commissioning.LEARNING_RUN)
    assert details == ["refused:car_moving"] and state.mode is Mode.EMERGENCY_ELECTRICAL


@pytest.mark.parametrize(("state", "inputs", "why"), [
    (at_bottom(Mode.NORMAL), {}, "not_in_inspection"),
    (at_bottom(), {"door_locked": False}, "doors_not_locked"),
    (at_bottom(), {"speed_m_s": 0.2, "brake_open": True, "drive_running": True}, "car_moving"),
    (at_bottom(), {"inspection_up": True}, "car_moving"),
    (at_bottom(), {"load_kg": 80.0}, "car_occupied"),
    (replace(at_bottom(), faults=frozenset({Fault.OVERSPEED})), {}, "fault"),
    (replace(at_bottom(), correction="unreferenced"), {}, "position_unreferenced"),
    (replace(at_bottom(), brake_test_since_tick=0, brake_test_requested=True), {}, "under_way"),
])
def test_a_brake_test_is_refused_with_the_reason_and_asks_nothing_of_the_drive(
        state: ControllerState, inputs: dict[str, object], why: str) -> None:
    after, commands, details = ask(state, Commissioning.BRAKE_TEST, **inputs)
    assert details == [f"refused:{why}"]
    if why != "under_way":
        assert not commands.brake_test and after.brake_test_since_tick == -1  # type: ignore[attr-defined]


def test_a_brake_test_in_inspection_is_held_and_passes_and_schedules_nothing_where_none_is_configured() -> None:
    state, commands, details = ask(at_bottom(), Commissioning.BRAKE_TEST, tick=10)
    assert details == ["started"] and commands.brake_test  # type: ignore[attr-defined]
    hold = CONTROLLER.timing.brake_test_hold
    state, commands, _ = CONTROLLER.step(state, Inputs(tick=11, brake_test_torque=True, below_reference_mark=True))
    assert commands.brake_test and state.phase is Phase.STANDING
    # The mechanic's buttons move nothing while the torque is held... (the test keeps the car standing)
    state, commands, events = CONTROLLER.step(state, Inputs(tick=11 + hold, brake_test_torque=True,
                                                            position_m=0.001, below_reference_mark=True))
    assert [event.detail for event in events if event.kind is EventKind.BRAKE_TEST] == ["passed:1"]
    assert not commands.brake_test and state.brake_test_due_tick == -1 and not state.brake_test_requested
    assert CONTROLLER.step(state, Inputs(tick=10 ** 7))[0].brake_test_since_tick == -1  # no periodic test follows


def test_a_requested_brake_test_between_landings_finds_a_slip_and_latches_it() -> None:
    halted = ControllerState(mode=Mode.INSPECTION, phase=Phase.HALTED, landing=1)
    state, _, details = ask(halted, Commissioning.BRAKE_TEST, tick=5, position_m=4.0, in_door_zone=False)
    assert details == ["started"]
    state, _, _ = CONTROLLER.step(state, Inputs(tick=6, brake_test_torque=True, position_m=4.0, in_door_zone=False))
    state, commands, events = CONTROLLER.step(state, Inputs(tick=7, brake_test_torque=True, position_m=4.009,
                                                            in_door_zone=False))
    assert [event.detail for event in events if event.kind is EventKind.BRAKE_TEST] == ["slipped:9"]
    assert Fault.BRAKE_SLIPPING in state.faults and commands.quick_stop and not commands.brake_test


def test_a_requested_brake_test_is_abandoned_by_an_inspection_button_and_an_unanswered_one_raises_no_fault() -> None:
    state, _, _ = ask(at_bottom(), Commissioning.BRAKE_TEST, tick=1)
    state, commands, events = CONTROLLER.step(state, Inputs(tick=2, inspection_down=True, below_reference_mark=True))
    assert [event.detail for event in events if event.kind is EventKind.BRAKE_TEST] == ["abandoned"]
    assert not commands.brake_test
    state, _, _ = ask(at_bottom(), Commissioning.BRAKE_TEST, tick=1)
    answer_by = 1 + CONTROLLER.timing.brake_test_answer
    state, _, events = CONTROLLER.step(state, Inputs(tick=answer_by, below_reference_mark=True))
    assert [event.detail for event in events if event.kind is EventKind.BRAKE_TEST] == ["no_answer"]
    state, _, _ = CONTROLLER.step(state, Inputs(tick=answer_by + 1, below_reference_mark=True))
    assert not state.faults and state.brake_test_due_tick == -1  # said by the event; no periodic test to wait for


def test_the_periodic_test_is_not_made_in_inspection_and_a_request_is_not_made_in_normal_service() -> None:
    controller = Controller(ControllerConfig(car=CarConfig(brake_test_every_h=1.0)))
    state = replace(controller.initial_state(0.0), mode=Mode.INSPECTION, phase=Phase.STANDING, settling=False)
    due = state.brake_test_due_tick
    assert not controller.step(state, Inputs(tick=due))[1].brake_test
    normal = replace(state, mode=Mode.NORMAL)
    _, commands, details = ask(normal, Commissioning.BRAKE_TEST, tick=due - 5, controller=controller)
    assert details == ["refused:not_in_inspection"] and not commands.brake_test  # type: ignore[attr-defined]


def test_a_reset_from_the_service_tool_clears_as_the_key_does_only_what_has_gone() -> None:
    latched = replace(at_bottom(), faults=frozenset({Fault.OVERSPEED, Fault.SHAFT_LIMIT}))
    # The car is beyond the top final limit: shaft_limit's condition is still there, overspeed's is gone.
    state, commands, details = ask(latched, Commissioning.FAULT_RESET, position_m=14.6, below_reference_mark=False)
    assert details == ["overspeed"] and state.faults == {Fault.SHAFT_LIMIT}
    assert commands.fault_reset  # type: ignore[attr-defined]  # passed on to the drive, as the key's reset
    by_key, key_commands, _ = CONTROLLER.step(latched, Inputs(tick=1, position_m=14.6, fault_reset=True))
    assert by_key.faults == state.faults and key_commands.fault_reset
    kept, _, details = ask(latched, Commissioning.LEARNING_RUN, position_m=14.6)
    assert kept.faults == latched.faults  # only the reset request resets
