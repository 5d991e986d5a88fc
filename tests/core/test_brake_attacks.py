"""Ways a failing brake goes unseen, or a brake test ends unsafely (core/brake.py, core/braketest.py): a contact that
chatters, a brake that gives way before the drive reports its test torque (or without that report), a torque report
that goes away, the doors opening on a test abandoned, a display fault that holds every test off."""

from __future__ import annotations

import pytest

from carctl.core.faults import Fault
from carctl.core.signals import EventKind, Inputs

from tests.core.test_brake import context, judged, standing_car

DAY_TICKS = 24 * 3600 * 50  # at 20 ms


@pytest.mark.parametrize(("brake_open", "failed", "fault"), [
    (False, 0b11, Fault.BRAKE_NOT_DROPPED),  # the drive closed the brake; the contacts say it hangs lifted
    (True, 0b01, Fault.BRAKE_NOT_LIFTED),  # the drive opened it; circuit 2 never lifts (motor drags the car)
])
def test_a_contact_that_disagrees_nine_readings_in_ten_is_still_a_fault(brake_open: bool, failed: int,
                                                                       fault: Fault) -> None:
    """A brake contact on a loose wire, or an armature that bounces, reads as the drive wants only one status in ten.
    brake.watch() starts its timer over on every single agreeing reading, so a disagreement that holds for 90 % of
    10 s never lasts the 0.5 s limit in one piece and is never raised. While the brake hangs lifted the car may
    open its doors (brake.holding() is true on the agreeing tick), and it may start runs."""
    ctx = context(2)
    agreeing = 0b11 if brake_open else 0b00
    limit = ctx.timing.brake_drop_limit
    ticks = 20 * limit  # 10 s
    snapshots = [Inputs(tick=tick, brake_open=brake_open,
                        brake_contacts_lifted=agreeing if tick % 10 == 9 else failed) for tick in range(ticks)]
    found = set().union(*judged(ctx, snapshots))
    assert fault in found, found


def test_a_brake_that_slips_while_the_drive_builds_its_test_torque_is_found() -> None:
    """The drive ramps its test torque up before it reports it holds it (STATUS bit12). The test measures the slip from
    where the car stands when that report arrives (brake_test_at_m), not from where it stood when the torque was
    asked for: a brake that lets the car go 30 mm under the rising torque, and then grips, passes as "passed:0"."""
    controller, state = standing_car()
    due = state.brake_test_due_tick
    state, commands, _ = controller.step(state, Inputs(tick=due))
    assert commands.brake_test  # the test torque asked for, the car standing at 0.000 m
    outcomes: list[str] = []
    position_m = 0.0
    for tick in range(due + 1, due + 11):  # 0.2 s of slip at 0.15 m/s while the torque rises
        position_m += 0.003
        state, commands, events = controller.step(state, Inputs(tick=tick, position_m=position_m, speed_m_s=-0.15))
        outcomes += [e.detail for e in events if e.kind is EventKind.BRAKE_TEST]
    hold = controller.timing.brake_test_hold
    for tick in range(due + 11, due + 13 + hold):  # the torque reached and reported; the brake grips again
        state, commands, events = controller.step(state, Inputs(tick=tick, position_m=position_m,
                                                                brake_test_torque=True))
        outcomes += [e.detail for e in events if e.kind is EventKind.BRAKE_TEST]
    assert Fault.BRAKE_SLIPPING in state.faults, (outcomes, state.faults)


def test_a_car_that_moves_under_the_test_torque_without_the_drives_answer_is_found() -> None:
    """A drive that applies its test torque but never sets STATUS bit12 (a parameter half set up): the car moves
    200 mm on its closed brake within the answer time and the test ends "no_answer", a display-only fault; the
    movement itself is never judged, and the brake is never found bad."""
    controller, state = standing_car()
    due = state.brake_test_due_tick
    state, commands, _ = controller.step(state, Inputs(tick=due))
    assert commands.brake_test
    outcomes: list[str] = []
    position_m = 0.0
    for tick in range(due + 1, due + 2 + controller.timing.brake_test_answer):
        position_m = min(0.2, position_m + 0.005)
        state, commands, events = controller.step(state, Inputs(tick=tick, position_m=position_m,
                                                                speed_m_s=-0.25 if position_m < 0.2 else 0.0))
        outcomes += [e.detail for e in events if e.kind is EventKind.BRAKE_TEST]
    assert outcomes, "the test did not end"
    assert Fault.BRAKE_SLIPPING in state.faults, (outcomes, state.faults)


def test_the_doors_do_not_open_while_the_drive_still_holds_its_test_torque() -> None:
    """A passenger presses the door-open button at a landing in the middle of a brake test. The test is abandoned and
    its request dropped, and on that same tick the doors are commanded open, and kept opening, while the drive still
    reports (STATUS bit12) that it pushes the motor's test torque against the brake. A brake that gives way then moves
    the car with its doors opening; the doors should wait until the drive says the torque is gone."""
    controller, state = standing_car()
    due = state.brake_test_due_tick
    state, _, _ = controller.step(state, Inputs(tick=due))
    state, commands, _ = controller.step(state, Inputs(tick=due + 1, brake_test_torque=True))
    assert commands.brake_test  # the test is under way, the torque held
    for tick in range(due + 2, due + 12):  # the drive ramps its torque down over 0.2 s
        state, commands, _ = controller.step(state, Inputs(tick=tick, brake_test_torque=True, door_open_button=True))
        assert not commands.door_open, tick


@pytest.mark.parametrize("display_fault", [
    {"landing_table_refused": True},  # 40: the learned table was refused, the typed one in use
    {"alarm_modem_dead": True},  # 71: the alarm's GSM module silent
    {"landing_age_ticks": 10**6},  # 14: one landing board silent
])
def test_a_display_only_fault_does_not_stop_the_brake_test_for_ever_without_a_word(display_fault: dict) -> None:
    """The test waits for a moment with "no fault but an earlier unanswered test" (braketest._idle). A display-only
    fault that stands for weeks (a landing board with a broken wire, a refused learned table, a dead alarm modem)
    therefore holds every test off: no request, no BRAKE_TEST event, no fault saying the test is not being made,
    for as long as it stands. braketest.py's own rule is that "a test the configuration asks for and that is not
    being made must be seen"."""
    controller, state = standing_car()
    due = state.brake_test_due_tick
    asked, outcomes = False, []
    for tick in list(range(due - 2, due + 3)) + [due + day * DAY_TICKS for day in (1, 7, 30)]:
        state, commands, events = controller.step(state, Inputs(tick=tick, **display_fault))
        asked = asked or commands.brake_test
        outcomes += [event.detail for event in events if event.kind is EventKind.BRAKE_TEST]
    assert asked or outcomes or Fault.BRAKE_TEST_UNANSWERED in state.faults, (outcomes, state.faults)


def test_a_test_whose_torque_goes_away_during_the_hold_does_not_pass() -> None:
    """The drive reports the test torque held (STATUS bit12) for one status, then no longer (it tripped on its
    current limit, or its torque was never more than a blip): the hold is timed from that one status and nothing
    looks at bit12 again, so after brake_test_hold_s the test ends "passed:0" and the next one is a whole interval
    away, though the brake held no torque at all for 3 s."""
    controller, state = standing_car()
    due, hold = state.brake_test_due_tick, controller.timing.brake_test_hold
    state, _, _ = controller.step(state, Inputs(tick=due))
    state, _, _ = controller.step(state, Inputs(tick=due + 1, brake_test_torque=True))
    outcomes: list[str] = []
    for tick in range(due + 2, due + 3 + hold):
        state, _, events = controller.step(state, Inputs(tick=tick, brake_test_torque=False))
        outcomes += [event.detail for event in events if event.kind is EventKind.BRAKE_TEST]
    assert not any(outcome.startswith("passed") for outcome in outcomes), outcomes
