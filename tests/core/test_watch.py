"""The input watch, stepped through the controller: the alarm button and entrapment, tick by tick."""

from dataclasses import replace

from carctl.core.config import ControllerConfig
from carctl.core.controller import Controller
from carctl.core.door import DoorPhase, DoorState
from carctl.core.faults import Fault
from carctl.core.phases import Phase
from carctl.core.signals import EventKind, Inputs
from carctl.core.state import ControllerState
from carctl.core.watch import parse_trapped_detail, trapped_detail

CONTROLLER = Controller(ControllerConfig())
AFTER = CONTROLLER.timing.trapped_after  # 30 s at 20 ms


def kinds(events: tuple) -> list[EventKind]:
    return [event.kind for event in events]


def test_the_alarm_button_gives_an_event_on_each_edge_only() -> None:
    state = CONTROLLER.step(CONTROLLER.initial_state(0.0), Inputs(tick=0))[0]
    state, _, events = CONTROLLER.step(state, Inputs(tick=1, alarm_button=True))
    assert [(e.kind, e.detail) for e in events] == [(EventKind.ALARM_BUTTON, "pressed")]
    held, _, events = CONTROLLER.step(state, Inputs(tick=2, alarm_button=True))
    assert events == () and held is state
    state, _, events = CONTROLLER.step(held, Inputs(tick=3))
    assert [(e.kind, e.detail) for e in events] == [(EventKind.ALARM_BUTTON, "released")]


def stuck_between_floors() -> tuple[ControllerState, Inputs]:
    """A car halted by a drive fault that stays, between landings, with someone inside (at rest since its stop)."""
    state = ControllerState(phase=Phase.HALTED, landing=2, faults=frozenset({Fault.DRIVE_FAULT}), position_checked=True,
                            settling=True, still_since_tick=0, still_at_m=7.0)
    return state, Inputs(tick=0, drive_fault_code=0x21, position_m=7.0, in_door_zone=False, load_kg=80.0)


def test_someone_held_between_floors_for_30_s_is_one_entrapment_and_its_end_is_reported() -> None:
    state, inputs = stuck_between_floors()
    state, _, events = CONTROLLER.step(state, inputs)
    assert state.trapped_since_tick == 0 and events == ()
    # The simulator may skip ticks of an unchanged state: the controller names the tick it must be woken at.
    assert CONTROLLER.next_deadline_tick(state, after=0) == AFTER
    waiting, _, events = CONTROLLER.step(state, replace(inputs, tick=AFTER - 1))
    assert waiting is state and events == ()
    state, commands, events = CONTROLLER.step(state, replace(inputs, tick=AFTER))
    assert [(e.kind, e.detail) for e in events] == [(EventKind.TRAPPED_PASSENGER, "outside the door zone:30.0")]
    assert commands.quick_stop  # the entrapment changes nothing the car does
    state, _, events = CONTROLLER.step(state, replace(inputs, tick=AFTER + 500))
    assert events == () and state.trapped
    state, _, events = CONTROLLER.step(state, replace(inputs, tick=AFTER + 600, load_kg=0.0))
    assert [(e.kind, e.detail) for e in events] == [(EventKind.TRAPPED_PASSENGER_ENDED, "42.0")]
    assert state.trapped_since_tick == -1 and not state.trapped


def test_an_empty_car_or_a_shorter_wait_is_no_entrapment() -> None:
    state, inputs = stuck_between_floors()
    empty = replace(inputs, load_kg=15.0)
    for tick in (0, AFTER, 2 * AFTER):
        state, _, events = CONTROLLER.step(state, replace(empty, tick=tick))
        assert EventKind.TRAPPED_PASSENGER not in kinds(events) and state.trapped_since_tick == -1
    state, _, _ = CONTROLLER.step(state, replace(inputs, tick=3 * AFTER))
    state, _, events = CONTROLLER.step(state, replace(inputs, tick=4 * AFTER - 1, load_kg=0.0))
    assert events == () and state.trapped_since_tick == -1  # it ended before it was an entrapment: no event


def test_doors_that_fail_to_open_at_a_landing_trap_the_passengers() -> None:
    jammed = DoorState(DoorPhase.CLOSED, fault=Fault.DOOR_OPEN_FAILED, retry_tick=10 * AFTER)
    state = ControllerState(phase=Phase.STANDING, landing=0, door=jammed, park_tick=10 * AFTER, dark_tick=10 * AFTER,
                            position_checked=True)
    inputs = Inputs(tick=0, load_kg=160.0)
    state, _, _ = CONTROLLER.step(state, inputs)
    state, _, events = CONTROLLER.step(state, replace(inputs, tick=AFTER))
    trapped = [e for e in events if e.kind is EventKind.TRAPPED_PASSENGER]
    assert len(trapped) == 1 and parse_trapped_detail(trapped[0].detail) == ("doors fail to open", 30.0)


def test_the_detail_reads_back() -> None:
    assert parse_trapped_detail(trapped_detail("outside the door zone", 31.04)) == ("outside the door zone", 31.0)
