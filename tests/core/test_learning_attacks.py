"""The shaft learning run (core/learning.py) against shafts and drives as they come: vanes that make it report a table
the car must not level by, a run that moves the car while the car-top inspection switch says a mechanic may be on its
roof, and a drive or a count that fails while the car runs on its own."""

from __future__ import annotations

from dataclasses import replace

from carctl.core.signals import EventKind, Mode

from tests.core.test_learning import (CONTROLLER, PERIOD_S, from_the_cabinet_at_bottom, in_inspection_at_bottom,
                                       inputs_at, learn)

TYPED_M = CONTROLLER.landings_m  # 0.0, 2.9, 5.8, 8.7, 11.6, 14.5


def test_a_top_vane_a_little_below_the_typed_top_does_not_give_a_table_with_one_landing_too_many() -> None:
    """The top vane fitted 0.25 m below the typed top landing (the drawings' top storey a little off): its middle is
    more than a door zone from the typed top, so the run passes through it as if it were not the top, leaves it by
    its upper edge and stops at the typed top outside any vane. The vane count (one for each vane entered) is right,
    but the edges are odd in number, and table_from() makes seven landings of them for a six-landing building,
    reported as "done:" (the last one 0.15 m above the real top vane)."""
    vanes = TYPED_M[:5] + (14.25,)
    state, details, _ = learn(from_the_cabinet_at_bottom(), vanes_m=vanes)
    assert details[0] == "started", details  # the run really went up the shaft
    assert not details[-1].startswith("done:"), details[-1]
    assert state.learned is None or len(state.learned.landings_m) == len(TYPED_M), state.learned


def test_a_vane_fitted_far_from_its_landing_is_not_learned_as_that_landing() -> None:
    """Landing 2's vane fitted 1.5 m above its sill (nearer landing 3's typed height than its own): the count is
    right and no two vanes are close, so the run learns landing 2 at 7.30 m and the car will level there, in its door
    zone by the misplaced vane, and open its doors where there is no landing door. Nothing compares a learned height
    with the typed one it replaces (a few centimetres is what learning is for; metres is a vane in the wrong place)."""
    vanes = TYPED_M[:2] + (7.3,) + TYPED_M[3:]
    state, details, _ = learn(from_the_cabinet_at_bottom(), vanes_m=vanes)
    assert details[0] == "started", details  # the run really went up the shaft
    assert not details[-1].startswith("done:"), details[-1]
    assert state.learned is None, state.learned.landings_m


def test_the_cabinet_learn_button_does_not_drive_the_car_while_the_car_top_inspection_switch_is_on() -> None:
    """Inspection is the car-top switch: a mechanic may be on the roof. The project's own rule for the cabinet's
    emergency electrical operation is that such a mechanic is never moved from below (docs/modes.md, EN 81-20
    5.12.1.6), and in inspection the car moves only while a car-top button is held. A press of the cabinet's learn
    button, with no car-top button held, sends the car up the whole shaft at inspection speed to the top headroom."""
    state = in_inspection_at_bottom()
    position_m = 0.0
    for tick in range(int(5.0 / PERIOD_S)):
        inputs = inputs_at(tick, position_m, learn_button=tick < 3)
        assert not inputs.inspection_up and not inputs.inspection_down  # nobody holds a car-top button
        state, commands, events = CONTROLLER.step(state, inputs)
        assert not commands.run_up and not commands.run_down, (
            tick, [event.detail for event in events if event.kind is EventKind.LEARNING])
        position_m += commands.speed_ref_m_s * PERIOD_S if commands.run_up else 0.0


def test_a_drive_that_runs_away_during_the_learning_run_is_stopped_as_in_inspection() -> None:
    """The learning run asks for the inspection speed (0.25 m/s). A drive that does not follow (a speed loop gone
    wrong, a lost encoder feedback) and takes the car up at 0.9 m/s is judged by nothing but overspeed (110 % of
    rated, 1.1 m/s) and, at the very top, terminal speed limiting: learning() has no check of its own, where
    inspection.py stops a hold-to-run car that is far faster than asked within 0.1 s (speed_deviation), because
    "a runaway at this speed would reach overspeed only much later". Two seconds at 0.9 m/s: 1.8 m of travel."""
    state = from_the_cabinet_at_bottom()
    position_m, moving, started = 0.0, False, False
    for tick in range(int(2.0 / PERIOD_S)):
        inputs = inputs_at(tick, position_m, learn_button=tick < 3, brake_open=moving, drive_running=moving,
                           speed_m_s=0.9 if moving else 0.0)
        state, commands, _ = CONTROLLER.step(state, inputs)
        started = started or state.mode is Mode.LEARNING
        moving = commands.run_up
        position_m += 0.9 * PERIOD_S if moving else 0.0
    assert started and position_m > 0.0  # the run really started, and the drive really ran away
    assert position_m < 0.5 and not commands.run_up, (position_m, state.faults)


def test_a_count_that_freezes_during_the_learning_run_does_not_take_the_car_through_the_top() -> None:
    """The shaft encoder's count freezes at 12.0 m, past landing 4 (a broken coupling, a slipping wheel), while the car
    goes on up at the inspection speed and the drive's own speed reading (its motor encoder) says so. In a normal run this is position_tracking within
    0.25 m; learning() compares the count with nothing: the door-zone sensor still sees the real top vane, whose
    edges are recorded at 12.0 m (a vane of length 0 is not refused), the target stays the typed top 2.5 m "ahead",
    and the run goes on until its timeout, a whole shaft's time from the start: the car is carried past the top
    landing and its final limit (14.55 m) towards the headroom, with nothing in the controller stopping it."""
    state = from_the_cabinet_at_bottom()
    true_m, moving = 0.0, False
    top_limit_m = TYPED_M[-1] + CONTROLLER.config.building.overtravel_m
    for tick in range(int(120.0 / PERIOD_S)):
        count_m = min(true_m, 12.0)
        inputs = inputs_at(tick, true_m, learn_button=tick < 3, brake_open=moving, drive_running=moving)
        inputs = replace(inputs, position_m=count_m, speed_m_s=0.25 if moving else 0.0)
        state, commands, events = CONTROLLER.step(state, inputs)
        moving = commands.run_up
        true_m += commands.speed_ref_m_s * PERIOD_S if moving else 0.0
        assert true_m < top_limit_m, (tick, round(true_m, 3), state.mode, state.faults)
        if state.learning is None and tick > 3:
            break
    assert true_m > 12.0, true_m  # the count really froze under a moving car


def test_a_count_that_freezes_with_the_speed_reading_it_gives_does_not_take_the_car_through_the_top() -> None:
    """The variant where the drive derives its speed reading from the same frozen count: both read still while the
    drive runs with its brake open and the car goes on up. The count must move while the drive is asked to run."""
    state = from_the_cabinet_at_bottom()
    true_m, moving = 0.0, False
    top_limit_m = TYPED_M[-1] + CONTROLLER.config.building.overtravel_m
    for tick in range(int(120.0 / PERIOD_S)):
        count_m = min(true_m, 12.0)
        inputs = inputs_at(tick, true_m, learn_button=tick < 3, brake_open=moving, drive_running=moving)
        inputs = replace(inputs, position_m=count_m, speed_m_s=0.25 if moving and count_m < 12.0 else 0.0)
        state, commands, _ = CONTROLLER.step(state, inputs)
        moving = commands.run_up
        true_m += commands.speed_ref_m_s * PERIOD_S if moving else 0.0
        assert true_m < top_limit_m, (tick, round(true_m, 3), state.mode, state.faults)
        if state.learning is None and tick > 3:
            break
    assert true_m > 12.0, true_m  # the count really froze under a moving car
    assert "position_tracking" in {fault.value for fault in state.faults}, state.faults
