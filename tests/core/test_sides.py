"""Doors on both sides in the core (sides.py): the two door operators reduced to the doorway of the landing, the door
machine's commands split by side, and the composed controller with a rear door, stepped with hand-made inputs."""

from dataclasses import replace

import pytest

from carctl.core import sides
from carctl.core.calls import Calls
from carctl.core.config import BuildingConfig, ConfigError, ControllerConfig
from carctl.core.controller import Controller, ControllerState, Phase
from carctl.core.door import DoorPhase, DoorState
from carctl.core.signals import EventKind, Inputs
from carctl.core.supervisor import Fault

SIDES = ("front", "rear", "both", "front", "rear", "front")
CONTROLLER = Controller(ControllerConfig(building=BuildingConfig(door_sides=SIDES)))


def standing(landing: int, **changes: object) -> ControllerState:
    return replace(ControllerState(phase=Phase.STANDING, landing=landing, park_tick=10_000, dark_tick=20_000),
                   **changes)


def at(landing: int, tick: int, **changes: object) -> Inputs:
    """A snapshot of the car level with ``landing``."""
    return Inputs(tick=tick, position_m=CONTROLLER.landings_m[landing], **changes)  # type: ignore[arg-type]


def test_the_doorway_of_a_landing_is_its_own_sides_open_and_both_doors_closed_and_locked() -> None:
    rear_open = Inputs(tick=1, door_open_limit=False, rear_door_open_limit=True, rear_door_closed_limit=False,
                       rear_door_locked=False)
    at_rear = sides.doorway(SIDES, 1, rear_open)
    assert at_rear.door_open_limit and not at_rear.door_closed_limit and not at_rear.door_locked
    at_both = sides.doorway(SIDES, 2, rear_open)
    assert not at_both.door_open_limit  # the front door is not open yet
    at_front = sides.doorway(SIDES, 0, rear_open)
    assert not at_front.door_open_limit and not at_front.door_locked  # the interlock sees the rear door everywhere
    both_open = replace(rear_open, door_open_limit=True, door_closed_limit=False, door_locked=False)
    assert sides.doorway(SIDES, 2, both_open).door_open_limit


def test_only_the_serving_sides_curtain_and_edge_count_and_the_older_board_is_the_car_tops_age() -> None:
    front_blocked = Inputs(tick=1, light_curtain_blocked=True, safety_edge=True, rear_car_top_age_ticks=4)
    assert not sides.doorway(SIDES, 1, front_blocked).light_curtain_blocked
    assert not sides.doorway(SIDES, 1, front_blocked).safety_edge
    assert sides.doorway(SIDES, 2, front_blocked).light_curtain_blocked
    rear_blocked = Inputs(tick=1, rear_light_curtain_blocked=True, rear_safety_edge=True)
    assert sides.doorway(SIDES, 1, rear_blocked).light_curtain_blocked
    assert sides.doorway(SIDES, 1, rear_blocked).safety_edge
    assert not sides.doorway(SIDES, 0, rear_blocked).light_curtain_blocked
    assert sides.doorway(SIDES, 0, front_blocked).car_top_age_ticks == 4


def test_the_door_machines_commands_go_to_the_landings_sides_and_the_other_is_held_closed() -> None:
    opening = (True, False, False, True)
    assert sides.split(SIDES, 0, opening) == (opening, sides.HELD_CLOSED)
    assert sides.split(SIDES, 1, opening) == (sides.HELD_CLOSED, opening)
    assert sides.split(SIDES, 2, opening) == (opening, opening)


def test_a_call_at_a_rear_landing_opens_the_rear_door_only() -> None:
    state = standing(1, calls=Calls(car=frozenset({1})))
    state, commands, events = CONTROLLER.step(state, at(1, 1))
    assert state.door.phase is DoorPhase.OPENING
    assert commands.rear_door_open and not commands.rear_door_close
    assert commands.door_close and not commands.door_open
    assert EventKind.DOORS_OPENING in {event.kind for event in events}


def test_at_a_landing_served_from_both_sides_both_doors_open_and_the_machine_waits_for_both_limits() -> None:
    state = standing(2, calls=Calls(car=frozenset({2})))
    state, commands, _ = CONTROLLER.step(state, at(2, 1))
    assert commands.door_open and commands.rear_door_open
    front_only = at(2, 2, door_open_limit=True, door_closed_limit=False, door_locked=False,
                        rear_door_closed_limit=False, rear_door_locked=False)
    state, _, _ = CONTROLLER.step(state, front_only)
    assert state.door.phase is DoorPhase.OPENING
    state, _, _ = CONTROLLER.step(state, replace(front_only, tick=3, rear_door_open_limit=True))
    assert state.door.phase is DoorPhase.OPEN


def test_no_run_while_the_rear_door_is_not_locked_even_at_a_front_landing() -> None:
    state = standing(0, calls=Calls(car=frozenset({3})))
    new, commands, _ = CONTROLLER.step(state, Inputs(tick=1, rear_door_locked=False))
    assert new.phase is Phase.STANDING and not (commands.run_up or commands.run_down)
    new, commands, _ = CONTROLLER.step(state, Inputs(tick=1))
    assert new.phase is Phase.STARTING


def test_a_rear_lock_lost_while_the_drive_runs_is_door_lock_lost_and_a_quick_stop() -> None:
    _, commands, events = CONTROLLER.step(standing(0), Inputs(tick=1, drive_running=True, rear_door_locked=False))
    raised = {event.detail.split(":")[0] for event in events if event.kind is EventKind.FAULT_RAISED}
    assert Fault.DOOR_LOCK_LOST.value in raised
    assert commands.quick_stop and not (commands.run_up or commands.run_down)


def test_the_rear_curtain_reopens_a_closing_rear_door_and_the_front_one_does_not() -> None:
    closing = standing(1, door=DoorState(phase=DoorPhase.CLOSING, deadline_tick=1_000))
    doors_between = dict(rear_door_closed_limit=False, rear_door_locked=False)
    state, commands, _ = CONTROLLER.step(closing, at(1, 1, light_curtain_blocked=True, **doors_between))
    assert state.door.phase is DoorPhase.CLOSING and commands.rear_door_close
    state, commands, _ = CONTROLLER.step(closing, at(1, 1, rear_light_curtain_blocked=True, **doors_between))
    assert state.door.phase is DoorPhase.OPENING and commands.rear_door_open and commands.door_close


def test_a_car_with_one_door_sends_no_rear_door_command() -> None:
    one_door = Controller(ControllerConfig())
    state = standing(0, calls=Calls(car=frozenset({0})))
    _, commands, _ = one_door.step(state, Inputs(tick=1, rear_door_locked=False, rear_light_curtain_blocked=True))
    assert commands.door_open
    assert not (commands.rear_door_open or commands.rear_door_close or commands.rear_door_nudge
                or commands.rear_door_slow)


@pytest.mark.parametrize(("sides_given", "says"), [
    (("front", "rear"), "one entry per landing"),
    (("front", "rear", "front", "left", "front", "front"), "entry 3 must be one of front, rear, both"),
])
def test_door_sides_are_one_known_side_per_landing(sides_given: tuple[str, ...], says: str) -> None:
    with pytest.raises(ConfigError, match=says) as error:
        BuildingConfig(door_sides=sides_given)
    assert error.value.key == "building.door_sides"


def test_the_rear_door_is_fitted_only_where_a_landing_names_it() -> None:
    assert not BuildingConfig().rear_door and BuildingConfig().door_side(3) == "front"
    assert not BuildingConfig(door_sides=("front",) * 6).rear_door
    assert BuildingConfig(door_sides=SIDES).rear_door and BuildingConfig(door_sides=SIDES).door_side(2) == "both"
