"""Emergency electrical operation (core/inspection.py, hold_to_run_from_cabinet) with a count that stops telling the
truth: the person at the cabinet cannot see the car, and relies on the controller to stop it at the terminal."""

from __future__ import annotations

from carctl.core.config import ControllerConfig
from carctl.core.controller import Controller, ControllerState, Phase
from carctl.core.signals import Inputs, Mode

CONTROLLER = Controller(ControllerConfig())
PERIOD_S = CONTROLLER.config.car.control_period_s


def test_a_count_frozen_under_a_held_cabinet_button_does_not_take_the_car_past_the_top_final_limit() -> None:
    """EEO: the shaft_limit fault is bridged, and the only terminal stop is the count ("never farther past a terminal
    landing: ... tapering to the terminal landing's level", docs/modes.md). The shaft encoder's count freezes at
    13.0 m while the car goes up at the EEO speed and the drive's speed reading says so. The speed check of
    hold-to-run only looks for a car far faster than asked; nothing compares the count with the speed: the car goes
    up through the top landing and its final limit for as long as the button is held, with the car-top far from the
    cabinet operator's sight. (Without slowdown switches, the default.)"""
    state = ControllerState(mode=Mode.EMERGENCY_ELECTRICAL, phase=Phase.HALTED, landing=4, settling=False)
    top_limit_m = CONTROLLER.landings_m[-1] + CONTROLLER.config.building.overtravel_m
    true_m, moving = 13.0, False
    for tick in range(int(30.0 / PERIOD_S)):
        inputs = Inputs(tick=tick, position_m=13.0, eeo_up=tick >= 2, brake_open=moving, drive_running=moving,
                        speed_m_s=CONTROLLER.config.car.eeo_speed_m_s if moving else 0.0)
        state, commands, _ = CONTROLLER.step(state, inputs)
        moving = commands.run_up
        true_m += commands.speed_ref_m_s * PERIOD_S if moving else 0.0
        assert true_m < top_limit_m, (tick, round(true_m, 3), state.phase, state.faults)
