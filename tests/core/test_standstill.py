"""The standstill rule in the core (standstill.py): settling after a stop, and saying so when it will not end."""

from dataclasses import replace

from carctl.core.config import ControllerConfig
from carctl.core.controller import Controller, Phase
from carctl.core.signals import EventKind, Inputs
from carctl.core.supervisor import Fault

CONTROLLER = Controller(ControllerConfig())
SETTLE = CONTROLLER.timing.standstill_settle
UNCONFIRMED = CONTROLLER.timing.standstill_unconfirmed


def test_a_car_that_cannot_be_seen_at_rest_is_held_and_says_why_and_takes_up_service_once_it_settles() -> None:
    state = CONTROLLER.initial_state(5.8)
    # The drive keeps reporting that it runs, though the car stands: never confirmed at rest.
    running = Inputs(tick=0, position_m=5.8, drive_running=True)
    for tick in (0, UNCONFIRMED - 1):
        state, commands, _ = CONTROLLER.step(state, replace(running, tick=tick))
        assert state.settling and not state.faults and not (commands.run_up or commands.run_down)
    assert CONTROLLER.next_deadline_tick(state, after=UNCONFIRMED - 1) == UNCONFIRMED
    state, _, events = CONTROLLER.step(state, replace(running, tick=UNCONFIRMED))
    assert state.faults == {Fault.STANDSTILL_UNCONFIRMED} and state.phase is Phase.HALTED
    assert [event.detail.split(":")[0] for event in events if event.kind is EventKind.FAULT_RAISED] == [
        "standstill_unconfirmed"]
    # The drive is put right: at rest for the settling time, the fault clears and the car takes up service.
    still = Inputs(tick=UNCONFIRMED + 1, position_m=5.8)
    for tick in (UNCONFIRMED + 1, UNCONFIRMED + 1 + SETTLE):
        state, _, _ = CONTROLLER.step(state, replace(still, tick=tick))
    state, _, _ = CONTROLLER.step(state, replace(still, tick=UNCONFIRMED + 2 + SETTLE))
    assert not state.settling and not state.faults and state.phase is Phase.STANDING


def test_a_car_creeping_on_its_brake_is_never_taken_to_be_at_rest() -> None:
    state = CONTROLLER.initial_state(5.8)
    position = 5.8
    for tick in range(0, 3 * SETTLE):
        position -= 0.01 * CONTROLLER.timing.period_s  # 10 mm/s: below the speed threshold, but moving
        state, commands, _ = CONTROLLER.step(state, Inputs(tick=tick, position_m=round(position, 4),
                                                           speed_m_s=-0.01))
        assert state.settling and not (commands.run_up or commands.run_down), tick
