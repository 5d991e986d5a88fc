"""Doors on both sides: which car door serves the landing, and the two door operators seen as one doorway.

Rules of this module:
- Each landing is served by the front door, the rear door or both (building.door_sides); a car with no rear side
  anywhere has one door and never comes here (the controller and the outputs skip this module), so it behaves, and
  its commands read, exactly as before the rear door existed.
- The door machine (door.py) runs one door cycle for the doorway of the car's landing: doorway() reduces the two
  operators' readings to what that machine sees. Open means every door of the landing's side(s) at its open limit;
  closed and locked means every fitted door closed and locked, the side that stayed shut included, so the
  supervisor's interlock, the door machine's closed limit and every check of ``door_locked`` cover both doors. Only
  the light curtain and safety edge of the side(s) serving the landing count: someone leaning on the shut front door
  does not hold the rear one open. The car-top readings are as old as the older of the two boards.
- split() sends the door machine's commands to the side(s) of the landing; the other operator is held closed.
- A fault of either door is the doorway's fault, raised and cleared as any door fault (door.py, supervisor.py).
"""

from __future__ import annotations


from carctl.core.records import replace
from carctl.core.signals import Inputs

# The door operators' commands for one side: (open, close, nudge, slow).
DoorOutputs = tuple[bool, bool, bool, bool]
HELD_CLOSED: DoorOutputs = (False, True, False, False)


def serves_front(side: str) -> bool:
    return side != "rear"


def serves_rear(side: str) -> bool:
    return side != "front"


def doorway(door_sides: tuple[str, ...], landing: int, inputs: Inputs) -> Inputs:
    """The snapshot as the core sees it on a car with a rear door: the door fields describe the doorway of
    ``landing`` (module rules)."""
    side = door_sides[landing]
    front, rear = serves_front(side), serves_rear(side)
    open_limit = (not front or inputs.door_open_limit) and (not rear or inputs.rear_door_open_limit)
    return replace(
        inputs,
        car_top_age_ticks=max(inputs.car_top_age_ticks, inputs.rear_car_top_age_ticks),
        door_open_limit=open_limit,
        door_closed_limit=inputs.door_closed_limit and inputs.rear_door_closed_limit,
        door_locked=inputs.door_locked and inputs.rear_door_locked,
        light_curtain_blocked=(front and inputs.light_curtain_blocked) or (rear and inputs.rear_light_curtain_blocked),
        safety_edge=(front and inputs.safety_edge) or (rear and inputs.rear_safety_edge),
    )


def split(door_sides: tuple[str, ...], landing: int, doorway_outputs: DoorOutputs) -> tuple[DoorOutputs, DoorOutputs]:
    """(front, rear): the door machine's commands for the operator(s) serving ``landing``; the other held closed."""
    side = door_sides[landing]
    return (doorway_outputs if serves_front(side) else HELD_CLOSED,
            doorway_outputs if serves_rear(side) else HELD_CLOSED)


__all__ = ["HELD_CLOSED", "DoorOutputs", "doorway", "serves_front", "serves_rear", "split"]
