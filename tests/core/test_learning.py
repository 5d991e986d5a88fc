"""The shaft learning run (core/learning.py), stepped with hand-made inputs: a car that follows the speed reference
exactly past vanes placed by the test."""

from __future__ import annotations

from dataclasses import replace

import pytest

from carctl.core.config import ConfigError, ControllerConfig
from carctl.core.controller import Controller, ControllerState, Phase
from carctl.core.learned import LearningRun
from carctl.core.learning import landings_from_detail, table_from, with_learned_landings
from carctl.core.signals import EventKind, Inputs, Mode

CONTROLLER = Controller(ControllerConfig())
PERIOD_S = CONTROLLER.config.car.control_period_s
TRUE_M = (0.0, 2.927, 5.782, 8.712, 11.591, 14.515)


def in_inspection_at_bottom() -> ControllerState:
    return ControllerState(mode=Mode.INSPECTION, phase=Phase.STANDING, landing=0)


def from_the_cabinet_at_bottom() -> ControllerState:
    """Where a learning run starts: emergency electrical operation (the cabinet has the car, the car-top switch is
    off), the car standing at the bottom landing."""
    return ControllerState(mode=Mode.EMERGENCY_ELECTRICAL, phase=Phase.STANDING, landing=0)


def inputs_at(tick: int, position_m: float, vanes_m: tuple[float, ...] = TRUE_M, **changes: object) -> Inputs:
    zone_m = CONTROLLER.config.building.door_zone_m
    return Inputs(tick=tick, position_m=position_m, in_door_zone=any(abs(position_m - vane) <= zone_m
                                                                      for vane in vanes_m),
                  below_reference_mark=position_m < 0.5, **changes)  # type: ignore[arg-type]


def learn(state: ControllerState, vanes_m: tuple[float, ...] = TRUE_M, stop_at_m: float | None = None,
          max_ticks: int = 20_000) -> tuple[ControllerState, list[str], float]:
    """Press the learn button and follow the drive requests; the LEARNING events' details and where the car ends."""
    position_m, details, tick = 0.0, [], 0
    for tick in range(max_ticks):
        speed_m_s = 0.0
        inputs = inputs_at(tick, position_m, vanes_m, learn_button=tick < 3)
        if stop_at_m is not None and position_m >= stop_at_m:
            inputs = replace(inputs, mode_request=Mode.NORMAL)  # the inspection switch turned off
            stop_at_m = None
        state, commands, events = CONTROLLER.step(state, inputs)
        details += [event.detail for event in events if event.kind is EventKind.LEARNING]
        if commands.run_up:
            speed_m_s = commands.speed_ref_m_s
        position_m += speed_m_s * PERIOD_S
        if details and details[-1] != "started":
            break
    return state, details, position_m


def test_a_typed_top_too_far_from_the_top_vane_finds_too_few_vanes() -> None:
    vanes = TRUE_M[:5] + (15.2,)  # the top landing 0.7 m above the typed one: never reached
    state, details, end_m = learn(from_the_cabinet_at_bottom(), vanes_m=vanes)
    assert details[-1] == "refused:vane_count:5!=6" and abs(end_m - CONTROLLER.landings_m[-1]) < 0.005


def test_the_run_learns_every_landing_from_the_vanes_to_a_few_millimetres() -> None:
    state, details, end_m = learn(from_the_cabinet_at_bottom())
    assert details[0] == "started" and details[-1].startswith("done:"), details
    assert state.learned is not None and state.mode is Mode.EMERGENCY_ELECTRICAL and state.learning is None
    for learned_m, true_m in zip(state.learned.landings_m, TRUE_M):
        assert abs(learned_m - true_m) < 0.003
    assert landings_from_detail(details[-1]) == state.learned.landings_m
    assert abs(end_m - TRUE_M[-1]) < 0.005  # stopped level with the top vane
    assert state.learned.vane_edges_m[0][0] is None and state.learned.vane_edges_m[-1][1] is None


@pytest.mark.parametrize(("state", "inputs", "why"), [
    (ControllerState(mode=Mode.NORMAL, phase=Phase.STANDING), {}, "not_in_emergency_electrical"),
    (in_inspection_at_bottom(), {}, "car_top_inspection"),
    (from_the_cabinet_at_bottom(), {"position_m": 2.9, "below_reference_mark": False}, "not_at_bottom"),
    (from_the_cabinet_at_bottom(), {"door_locked": False}, "doors_not_locked"),
    (from_the_cabinet_at_bottom(), {"brake_open": True}, "car_moving"),
    (from_the_cabinet_at_bottom(), {"position_unreferenced": True}, "position_unreferenced"),
])
def test_a_press_is_refused_with_the_reason_and_nothing_moves(state: ControllerState, inputs: dict[str, object],
                                                               why: str) -> None:
    state, commands, events = CONTROLLER.step(state, replace(inputs_at(1, 0.0, learn_button=True), **inputs))
    assert [event.detail for event in events if event.kind is EventKind.LEARNING] == [f"refused:{why}"]
    assert not commands.run_up and not commands.run_down and state.learning is None


def test_a_held_button_starts_one_run_only() -> None:
    state = from_the_cabinet_at_bottom()
    state, _, events = CONTROLLER.step(state, inputs_at(1, 0.0, learn_button=True))
    assert state.mode is Mode.LEARNING
    state, _, events = CONTROLLER.step(state, inputs_at(2, 0.0, learn_button=True))
    assert not [event for event in events if event.detail == "started"]


def test_a_missing_vane_is_a_count_mismatch_and_nothing_is_learned() -> None:
    state, details, end_m = learn(from_the_cabinet_at_bottom(), vanes_m=TRUE_M[:3] + TRUE_M[4:])
    assert details[-1] == "refused:vane_count:5!=6" and state.learned is None
    assert abs(end_m - TRUE_M[-1]) < 0.005  # up to the top vane all the same: the top is not found by counting


def test_an_extra_vane_stops_the_run_as_it_is_entered() -> None:
    state, details, end_m = learn(from_the_cabinet_at_bottom(), vanes_m=tuple(sorted(TRUE_M + (7.25,))))
    assert details[-1] == "refused:vane_count:7>6" and state.learned is None
    assert end_m < TRUE_M[-1] - 0.15  # stopped as the seventh vane (the top one) was entered, not level in it


def test_vanes_too_close_are_refused() -> None:
    close = (0.0, 2.9, 3.32, 8.7, 11.6, 14.5)  # a 20 mm gap between the vanes of landings 1 and 2
    state, details, _ = learn(from_the_cabinet_at_bottom(), vanes_m=close)
    assert details[-1] == "refused:vanes_too_close:1-2" and state.learned is None


def test_a_mode_change_interrupts_the_run() -> None:
    state, details, _ = learn(from_the_cabinet_at_bottom(), stop_at_m=4.0)
    assert details == ["started", "interrupted:mode"] and state.learned is None and state.mode is Mode.NORMAL


def test_a_bottom_landing_off_the_count_zero_is_refused() -> None:
    shifted = tuple(height + 0.03 for height in TRUE_M)
    state, details, _ = learn(from_the_cabinet_at_bottom(), vanes_m=shifted)
    assert details[-1].startswith("refused:bottom_off_zero") and state.learned is None


def test_terminal_landings_take_half_the_measured_vane_length() -> None:
    run = LearningRun(started_tick=0, edges_m=(0.21, 2.71, 3.11, 5.61, 6.01, 8.69))  # vanes 0.40 m long
    table = table_from(CONTROLLER.context, run)
    assert table.landings_m == (0.01, 2.91, 5.81, 8.89)


def test_the_learned_landings_must_make_a_building() -> None:
    config = ControllerConfig()
    assert with_learned_landings(config, TRUE_M).building.landings_m == TRUE_M
    with pytest.raises(ConfigError):
        with_learned_landings(config, TRUE_M[:5])
    with pytest.raises(ConfigError):
        with_learned_landings(config, (0.0, 2.9, 3.1, 8.7, 11.6, 14.5))  # door zones overlap
    assert landings_from_detail("refused:fault") is None and landings_from_detail("done:1,x") is None
    assert landings_from_detail("done:0,nan") is None
