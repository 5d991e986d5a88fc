"""Directional (selective) collective control for one car.

Rules of this module:
- Car calls are served in the order the car reaches their landings; landing calls only in the direction of travel,
  except the farthest call against it, where the car reverses (LOOK, not SCAN).
- The car reverses only when no call lies ahead.
- The lantern chosen on arrival is the direction the car will leave in; it is fixed while the doors are open
  (controller.py), and the car serves that direction first.
- A full car bypasses landing calls; they stay registered for the next pass.
- "Ahead" starts at the first landing the car can still stop at, which the caller works out from the stopping
  distance (motion.py).
"""

from __future__ import annotations

from carctl.core.calls import Calls
from carctl.core.signals import Direction


def next_stop(calls: Calls, first: int, direction: Direction, landing_count: int, full_load: bool) -> int | None:
    """The next landing to stop at, looking from landing index ``first`` (inclusive) in ``direction``."""
    if direction is Direction.UP:
        order = range(first, landing_count)
        with_travel, against = calls.up, calls.down
    elif direction is Direction.DOWN:
        order = range(first, -1, -1)
        with_travel, against = calls.down, calls.up
    else:
        return None
    car = calls.car
    reversal = None
    for landing in order:
        if landing in car or (not full_load and landing in with_travel):
            return landing
        if not full_load and landing in against:
            reversal = landing  # the farthest one wins, as the loop goes outwards
    return reversal


def calls_ahead(calls: Calls, first: int, direction: Direction, landing_count: int) -> bool:
    """Any call at landing ``first`` or beyond in ``direction`` (car calls and landing calls of both directions)."""
    if direction is Direction.UP:
        return any(landing >= first for landing in calls.car | calls.up | calls.down)
    if direction is Direction.DOWN:
        return any(landing <= first for landing in calls.car | calls.up | calls.down)
    return False


def departure_direction(calls: Calls, landing: int, current: Direction, landing_count: int) -> Direction:
    """Direction for a car standing at ``landing`` with its doors closed: keep going while calls lie ahead."""
    if current is not Direction.NONE:
        if calls_ahead(calls, landing + current, current, landing_count):
            return current
        opposite = Direction(-current)
        if calls_ahead(calls, landing + opposite, opposite, landing_count):
            return opposite
        return Direction.NONE
    # An idle car heads for the nearest call; a tie goes up, where most residents of a walk-up live.
    pending = calls.car | calls.up | calls.down
    if not pending:
        return Direction.NONE
    nearest = min(pending, key=lambda call: (abs(call - landing), -call))
    if nearest > landing:
        return Direction.UP
    if nearest < landing:
        return Direction.DOWN
    return Direction.NONE


def lantern_on_arrival(calls: Calls, landing: int, travel: Direction, landing_count: int) -> Direction:
    """The direction the car will leave ``landing`` in, shown while its doors are open."""
    if travel is not Direction.NONE:
        if landing in calls.hall(travel) or calls_ahead(calls, landing + travel, travel, landing_count):
            return travel
        opposite = Direction(-travel)
        if landing in calls.hall(opposite) or calls_ahead(calls, landing + opposite, opposite, landing_count):
            return opposite
        return Direction.NONE
    if landing in calls.up:
        return Direction.UP
    if landing in calls.down:
        return Direction.DOWN
    return departure_direction(calls, landing, Direction.NONE, landing_count)


def wants_doors_open(calls: Calls, landing: int, lantern: Direction) -> bool:
    """Whether a call at ``landing`` is served by opening the doors there with ``lantern`` shown."""
    if landing in calls.car:
        return True
    if lantern is Direction.UP:
        return landing in calls.up
    if lantern is Direction.DOWN:
        return landing in calls.down
    return landing in calls.up or landing in calls.down
