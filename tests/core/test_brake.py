"""Brake monitoring by the contacts (core/brake.py) and the periodic brake test (core/braketest.py), tick by tick."""

from __future__ import annotations

from dataclasses import replace

from carctl.core.brake import holding, watch
from carctl.core.config import CarConfig, ControllerConfig
from carctl.core.context import Context
from carctl.core.controller import Controller
from carctl.core.faults import Fault
from carctl.core.phases import Phase
from carctl.core.signals import Commands, Event, EventKind, Inputs
from carctl.core.state import ControllerState
from carctl.core.supervisor import enforce


def context(contacts: int) -> Context:
    return Context.from_config(ControllerConfig(car=CarConfig(brake_contacts=contacts)))


def judged(ctx: Context, snapshots: list[Inputs]) -> list[set[Fault]]:
    state = ControllerState()
    found_each = []
    for inputs in snapshots:
        found: set[Fault] = set()
        state = watch(ctx, state, inputs, found)
        found_each.append(found)
    return found_each


def test_each_disagreement_becomes_its_fault_after_its_limit_and_not_before() -> None:
    ctx = context(2)
    limit = ctx.timing.brake_lift_limit  # 25 ticks at 0.5 s
    for brake_open, lifted, fault in ((True, 0b01, Fault.BRAKE_NOT_LIFTED), (True, 0b00, Fault.BRAKE_NOT_LIFTED),
                                      (False, 0b11, Fault.BRAKE_NOT_DROPPED),
                                      (False, 0b10, Fault.BRAKE_CONTACTS_DISAGREE)):
        found = judged(ctx, [Inputs(tick=tick, brake_open=brake_open, brake_contacts_lifted=lifted)
                             for tick in range(limit + 1)])
        assert found[limit - 1] == set() and found[limit] == {fault}, (brake_open, lifted)


def test_contacts_that_follow_the_drive_a_little_late_are_no_fault() -> None:
    ctx = context(2)
    snapshots = [Inputs(tick=tick, brake_open=True, brake_contacts_lifted=0b11 if tick >= 10 else 0b01)
                 for tick in range(100)]
    assert all(not found for found in judged(ctx, snapshots))


def test_without_contacts_configured_the_bits_are_not_judged_and_one_contact_reads_bit10_only() -> None:
    snapshots = [Inputs(tick=tick, brake_open=False, brake_contacts_lifted=0b11) for tick in range(100)]
    assert all(not found for found in judged(context(0), snapshots))
    assert holding(context(0), ControllerState(), snapshots[0])
    one = [Inputs(tick=tick, brake_open=True, brake_contacts_lifted=0b01) for tick in range(100)]
    assert all(not found for found in judged(context(1), one))  # bit11, not fitted, is ignored


def test_a_stale_drive_status_is_not_judged() -> None:
    ctx = context(2)
    snapshots = [Inputs(tick=tick, drive_age_ticks=5, brake_open=False, brake_contacts_lifted=0b11)
                 for tick in range(100)]
    assert all(not found for found in judged(ctx, snapshots))


def test_the_controller_wakes_for_a_disagreement_that_is_about_to_become_a_fault() -> None:
    """Controller.next_deadline_tick covers the limit, so the lockstep's idle skip cannot jump over the fault."""
    controller = Controller(ControllerConfig(car=CarConfig(brake_contacts=2)))
    state = replace(ControllerState(), brake_mismatch_since_tick=100)
    assert controller.next_deadline_tick(state, after=100) <= 100 + controller.timing.brake_drop_limit


def standing_car(every_h: float = 1.0) -> tuple[Controller, ControllerState]:
    controller = Controller(ControllerConfig(car=CarConfig(brake_test_every_h=every_h)))
    state = replace(controller.initial_state(0.0), phase=Phase.STANDING, settling=False)
    return controller, state


def test_an_unanswered_request_is_a_display_fault_asked_again_an_hour_later_and_cleared_by_an_answer() -> None:
    controller, state = standing_car()
    due = state.brake_test_due_tick
    assert due == controller.timing.brake_test_retry  # the first test ten minutes after start
    state, commands, _ = controller.step(state, Inputs(tick=due))
    assert commands.brake_test and state.brake_test_since_tick == due
    answer_by = due + controller.timing.brake_test_answer
    assert controller.next_deadline_tick(state, after=due) == answer_by
    state, commands, events = controller.step(state, Inputs(tick=answer_by))
    assert not commands.brake_test and [e.detail for e in events if e.kind is EventKind.BRAKE_TEST] == ["no_answer"]
    state, commands, events = controller.step(state, Inputs(tick=answer_by + 1))
    assert state.faults == {Fault.BRAKE_TEST_UNANSWERED} and not commands.quick_stop  # display only
    again = answer_by + controller.timing.brake_test_unanswered_retry
    assert state.brake_test_due_tick == again
    state, commands, _ = controller.step(state, Inputs(tick=again))
    assert commands.brake_test  # asked again, the display fault no obstacle
    state, commands, _ = controller.step(state, Inputs(tick=again + 1, brake_test_torque=True))
    state, commands, _ = controller.step(state, Inputs(tick=again + 2, brake_test_torque=True))
    assert Fault.BRAKE_TEST_UNANSWERED not in state.faults


def test_the_test_is_held_then_passes_or_finds_the_slip() -> None:
    controller, state = standing_car()
    due, hold = state.brake_test_due_tick, controller.timing.brake_test_hold
    state, _, _ = controller.step(state, Inputs(tick=due))
    state, _, _ = controller.step(state, Inputs(tick=due + 1, brake_test_torque=True))
    held = state
    # A drive may report itself running while it holds the torque.
    state, commands, events = controller.step(held, Inputs(tick=due + 1 + hold, brake_test_torque=True,
                                                           drive_running=True, position_m=0.004))
    assert [e.detail for e in events if e.kind is EventKind.BRAKE_TEST] == ["passed:4"] and not commands.brake_test
    assert state.brake_test_due_tick == due + 1 + hold + controller.timing.brake_test_every
    state, commands, events = controller.step(held, Inputs(tick=due + 5, brake_test_torque=True, position_m=0.006))
    assert [e.detail for e in events if e.kind is EventKind.BRAKE_TEST] == ["slipped:6"]
    assert Fault.BRAKE_SLIPPING in state.faults and commands.quick_stop and not commands.brake_test


def test_no_test_with_someone_in_the_car_or_the_doors_unlocked_or_off_by_default() -> None:
    controller, state = standing_car()
    due = state.brake_test_due_tick
    for inputs in (Inputs(tick=due, load_kg=75.0), Inputs(tick=due, door_locked=False)):
        _, commands, _ = controller.step(state, inputs)
        assert not commands.brake_test
    controller, state = standing_car(every_h=0.0)
    assert state.brake_test_due_tick == -1
    assert controller.step(state, Inputs(tick=10 ** 7))[0].brake_test_since_tick == -1



def test_a_torque_the_drive_keeps_after_the_test_holds_the_doors_and_is_quick_stopped_after_a_second() -> None:
    controller, state = standing_car()
    due, answer = state.brake_test_due_tick, controller.timing.brake_test_answer
    state, _, _ = controller.step(state, Inputs(tick=due))
    state, _, _ = controller.step(state, Inputs(tick=due + 1, brake_test_torque=True))
    state, commands, events = controller.step(state, Inputs(tick=due + 2, brake_test_torque=True,
                                                            door_open_button=True))
    assert [e.detail for e in events if e.kind is EventKind.BRAKE_TEST] == ["abandoned"] and not commands.brake_test
    for tick in range(due + 3, due + 4 + answer):
        state, commands, _ = controller.step(state, Inputs(tick=tick, brake_test_torque=True, door_open_button=True))
        assert not commands.door_open
    assert Fault.BRAKE_TEST_TORQUE_HELD in state.faults and commands.quick_stop
    state, commands, _ = controller.step(state, Inputs(tick=due + 4 + answer))  # the drive has let go
    assert Fault.BRAKE_TEST_TORQUE_HELD not in state.faults and not commands.quick_stop


def test_a_test_held_off_for_a_whole_interval_is_shown_overdue_until_one_is_made() -> None:
    controller, state = standing_car()
    overdue = state.brake_test_overdue_tick
    assert overdue == state.brake_test_due_tick + controller.timing.brake_test_every
    busy = Inputs(tick=overdue - 1, load_kg=400.0)  # someone in the car at every idle moment
    state, _, _ = controller.step(state, busy)
    assert Fault.BRAKE_TEST_OVERDUE not in state.faults
    assert controller.next_deadline_tick(state, after=overdue - 1) <= overdue
    state, commands, _ = controller.step(state, replace(busy, tick=overdue))
    assert Fault.BRAKE_TEST_OVERDUE in state.faults and not commands.quick_stop  # display only
    state, commands, _ = controller.step(state, Inputs(tick=overdue + 1))
    assert commands.brake_test  # the display fault does not hold the test off
    hold = controller.timing.brake_test_hold
    for tick in range(overdue + 2, overdue + 3 + hold):
        state, _, _ = controller.step(state, Inputs(tick=tick, brake_test_torque=True))
    state, _, _ = controller.step(state, Inputs(tick=overdue + 3 + hold))
    assert Fault.BRAKE_TEST_OVERDUE not in state.faults


def test_the_supervisor_starts_no_run_while_the_drive_reports_its_test_torque() -> None:
    events: list[Event] = []
    commands = enforce(Commands(run_up=True), frozenset(), Inputs(tick=0, brake_test_torque=True), False, 0, events)
    assert not commands.run_up and events and events[0].kind is EventKind.COMMAND_BLOCKED
