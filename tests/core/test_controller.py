"""The composed controller, stepped directly with hand-made inputs."""

from dataclasses import replace

from carctl.core.calls import Calls
from carctl.core.config import ControllerConfig
from carctl.core.controller import Controller, ControllerState, Phase
from carctl.core.door import DoorPhase, DoorState
from carctl.core.modes import RULES
from carctl.core.rescue import rescue_target
from carctl.core.signals import Direction, EventKind, Inputs, Mode
from carctl.core.supervisor import Fault

CONTROLLER = Controller(ControllerConfig())


def standing(**changes: object) -> ControllerState:
    return replace(ControllerState(phase=Phase.STANDING, landing=0, park_tick=10_000, dark_tick=20_000), **changes)


SETTLE = CONTROLLER.timing.standstill_settle  # ticks at rest before the brake may be lifted after a stop


def settled(state: ControllerState, inputs: Inputs) -> ControllerState:
    """``state`` after the car has been seen at rest (``inputs``, from its tick on) for the settling time."""
    for tick in (inputs.tick, inputs.tick + SETTLE - 1):
        state, _, _ = CONTROLLER.step(state, replace(inputs, tick=tick))
    return state


def test_power_up_recovers_into_service_at_a_landing() -> None:
    state = CONTROLLER.initial_state(0.0)
    assert state.phase is Phase.HALTED and state.settling
    # Nothing has shown the car at rest yet: it waits the settling time, then takes up service.
    state = settled(state, Inputs(tick=0))
    assert state.phase is Phase.HALTED
    state, commands, _ = CONTROLLER.step(state, Inputs(tick=SETTLE))
    assert state.phase is Phase.STANDING and not commands.run_up and not commands.run_down


def test_same_state_and_inputs_give_the_same_outputs() -> None:
    state = standing(calls=Calls(car=frozenset({3})))
    inputs = Inputs(tick=5, car_calls_pressed=frozenset({4}))
    first = CONTROLLER.step(state, inputs)
    second = CONTROLLER.step(state, inputs)
    assert first == second


def test_a_waiting_car_returns_its_state_unchanged() -> None:
    state = standing()
    new, commands, events = CONTROLLER.step(state, Inputs(tick=50))
    assert new is state and events == ()
    assert CONTROLLER.next_deadline_tick(state, after=50) == 10_000


def test_call_starts_a_run_only_with_doors_closed_and_locked() -> None:
    state = standing(calls=Calls(car=frozenset({3})))
    unlocked = Inputs(tick=1, door_locked=False)
    new, commands, _ = CONTROLLER.step(state, unlocked)
    assert new.phase is Phase.STANDING and not commands.run_up
    new, commands, _ = CONTROLLER.step(state, Inputs(tick=1))
    assert new.phase is Phase.STARTING and commands.run_up and commands.speed_ref_m_s == 0.0


def test_brake_open_starts_the_profile_towards_the_next_stop() -> None:
    state = standing(calls=Calls(car=frozenset({3})))
    state, _, _ = CONTROLLER.step(state, Inputs(tick=1))
    state, commands, events = CONTROLLER.step(state, Inputs(tick=20, brake_open=True, drive_running=True))
    assert state.phase is Phase.RUNNING and state.run is not None and state.run.target == 3
    assert [e.kind for e in events] == [EventKind.RUN_STARTED]
    state, commands, _ = CONTROLLER.step(state, Inputs(tick=60, brake_open=True, drive_running=True,
                                                       position_m=0.05, speed_m_s=0.3, in_door_zone=True))
    assert commands.run_up and 0.0 < commands.speed_ref_m_s <= 1.05


def test_arrival_opens_doors_serves_the_call_and_sounds_the_gong() -> None:
    state = standing(calls=Calls(car=frozenset({2})), phase=Phase.STOPPING, direction=Direction.UP)
    from carctl.core.controller import Run
    state = replace(state, run=Run(Direction.UP, 2))
    state, commands, events = CONTROLLER.step(state, Inputs(tick=400, position_m=5.8))
    kinds = [e.kind for e in events]
    assert EventKind.ARRIVED in kinds and EventKind.DOORS_OPENING in kinds
    assert commands.gong and commands.announce_landing == 2 and commands.door_open
    assert state.calls.car == frozenset() and state.landing == 2


def test_door_open_request_is_refused_outside_the_door_zone() -> None:
    state = standing(calls=Calls(car=frozenset({0})))
    new, commands, _ = CONTROLLER.step(state, Inputs(tick=3, in_door_zone=False, position_m=0.3))
    assert not commands.door_open


def test_mode_change_withdraws_calls_the_mode_does_not_serve() -> None:
    state = standing(calls=Calls(car=frozenset({3}), up=frozenset({1}), down=frozenset({4})))
    new, _, events = CONTROLLER.step(state, Inputs(tick=1, mode_request=Mode.OUT_OF_SERVICE))
    assert new.mode is Mode.OUT_OF_SERVICE
    assert new.calls.car == {3} and not new.calls.up and not new.calls.down  # the ride in progress is finished
    assert events[0].kind is EventKind.MODE_CHANGED
    new, _, events = CONTROLLER.step(new, Inputs(tick=2, hall_up_pressed=frozenset({2})))
    assert not new.calls.up and events[0].kind is EventKind.CALL_REFUSED


def test_fire_return_cancels_every_call() -> None:
    state = standing(calls=Calls(car=frozenset({3}), up=frozenset({1})), landing=4)
    new, _, _ = CONTROLLER.step(state, Inputs(tick=1, mode_request=Mode.FIRE, position_m=11.6))
    assert not new.calls.any()


def test_stop_now_fault_while_running_halts() -> None:
    state = standing(calls=Calls(car=frozenset({3})))
    state, _, _ = CONTROLLER.step(state, Inputs(tick=1))
    state, _, _ = CONTROLLER.step(state, Inputs(tick=20, brake_open=True, drive_running=True))
    state, commands, _ = CONTROLLER.step(state, Inputs(tick=21, brake_open=True, drive_running=True,
                                                       drive_age_ticks=9))
    assert state.phase is Phase.HALTED and commands.quick_stop and not commands.run_up


def test_every_mode_has_rules() -> None:
    assert set(RULES) == set(Mode)
    normal = RULES[Mode.NORMAL]
    assert normal.car_calls and normal.landing_calls and normal.automatic_runs and normal.auto_close
    assert not RULES[Mode.INDEPENDENT].landing_calls and not RULES[Mode.INDEPENDENT].auto_close
    assert RULES[Mode.FIRE].recall_main_landing and RULES[Mode.FIRE].park_open
    assert not RULES[Mode.INSPECTION].automatic_runs


def test_doors_closed_state_needs_no_open_command() -> None:
    state = standing(door=DoorState(DoorPhase.CLOSED))
    _, commands, _ = CONTROLLER.step(state, Inputs(tick=1))
    assert commands.door_close and not commands.door_open


def test_a_correction_run_that_never_passes_the_mark_stops_with_a_latched_fault() -> None:
    still = Inputs(tick=0, position_unreferenced=True, position_m=3.0)
    state = settled(CONTROLLER.initial_state(3.0), still)  # ticks 0 .. SETTLE - 1 at rest after power-up
    start = SETTLE
    moving = Inputs(tick=start, position_unreferenced=True, position_m=3.0, brake_open=True, drive_running=True,
                    speed_m_s=-0.25)
    state, commands, events = CONTROLLER.step(state, replace(still, tick=start))
    assert state.phase is Phase.CORRECTING and commands.run_down and commands.speed_ref_m_s == 0.25
    assert [e.detail for e in events if e.kind is EventKind.CORRECTION_RUN] == ["started:unreferenced"]
    # The count keeps reading 3.0 (unreferenced) and the switch never changes: the mark is not found.
    limit = start + CONTROLLER.context.correction_timeout
    state, commands, _ = CONTROLLER.step(state, replace(moving, tick=limit))
    assert state.phase is Phase.CORRECTING and commands.run_down
    state, commands, events = CONTROLLER.step(state, replace(moving, tick=limit + 1))
    assert Fault.REFERENCE_NOT_FOUND in state.faults and not commands.run_down and commands.quick_stop
    # Latched: standing still, it stays until a deliberate reset, then the correction is made again.
    state = settled(state, replace(still, tick=limit + 100))  # at rest through the fault: ready once it is reset
    assert Fault.REFERENCE_NOT_FOUND in state.faults and state.phase is Phase.HALTED
    state, _, _ = CONTROLLER.step(state, replace(still, tick=limit + 100 + SETTLE, fault_reset=True))
    state, commands, _ = CONTROLLER.step(state, replace(still, tick=limit + 101 + SETTLE))
    assert state.phase is Phase.CORRECTING and commands.run_down


def test_the_correction_run_goes_up_from_below_the_mark_and_ignores_the_shaft_limit_on_an_unreferenced_count() -> None:
    below = Inputs(tick=0, position_unreferenced=True, below_reference_mark=True, position_m=-7.0)
    state = settled(CONTROLLER.initial_state(0.0), below)
    state, commands, _ = CONTROLLER.step(state, replace(below, tick=SETTLE))
    assert state.phase is Phase.CORRECTING and commands.run_up and not state.faults


def test_requests_on_the_battery_wait_for_the_mains_but_inspection_takes_over() -> None:
    state = standing()
    state, _, events = CONTROLLER.step(state, Inputs(tick=1, on_battery=True))
    assert state.mode is Mode.RESCUE and [e.detail for e in events if e.kind is EventKind.MODE_CHANGED] == [
        "normal->rescue"]
    state, _, _ = CONTROLLER.step(state, Inputs(tick=2, on_battery=True, mode_request=Mode.OUT_OF_SERVICE))
    assert state.mode is Mode.RESCUE and state.resume_mode is Mode.OUT_OF_SERVICE
    state, _, events = CONTROLLER.step(state, Inputs(tick=3))
    assert state.mode is Mode.OUT_OF_SERVICE
    state, _, _ = CONTROLLER.step(state, Inputs(tick=4, on_battery=True))
    assert state.mode is Mode.RESCUE
    state, _, _ = CONTROLLER.step(state, Inputs(tick=5, on_battery=True, mode_request=Mode.INSPECTION))
    assert state.mode is Mode.INSPECTION
    state, _, _ = CONTROLLER.step(state, Inputs(tick=6, on_battery=True))
    assert state.mode is Mode.INSPECTION  # a mechanic on the car top: no rescue run


def test_rescue_direction_follows_the_load_against_the_counterweight() -> None:
    between = 7.0  # between landings 2 (5.8 m) and 3 (8.7 m), outside the door zones
    for load_kg, landing in ((0.0, 3), (75.0, 3), (283.5, 2), (450.0, 2), (630.0, 2)):
        inputs = Inputs(tick=0, on_battery=True, position_m=between, in_door_zone=False, load_kg=load_kg)
        assert rescue_target(CONTROLLER.context, inputs) == landing, load_kg
    # Near balance either way is as easy: the nearer landing (5.8 m is nearer to 6.0 m).
    assert rescue_target(CONTROLLER.context, Inputs(tick=0, position_m=6.0, in_door_zone=False, load_kg=283.5)) == 2
    level = Inputs(tick=0, position_m=8.705, in_door_zone=True, load_kg=0.0)
    assert rescue_target(CONTROLLER.context, level) == 3
