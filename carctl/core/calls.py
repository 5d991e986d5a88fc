"""The car and landing call registry.

Rules of this module:
- A call is registered by a press and cancelled only when it is served (the doors open at its landing with the
  lantern in its direction), or when the mode or the anti-nuisance rule withdraws it — always with an event.
- Which presses count depends on the mode (modes.py), never on who pressed: buttons always work.
- Pure functions over an immutable Calls value; an unchanged registry is returned as the same object.
"""

from __future__ import annotations

from dataclasses import dataclass

from carctl.core.signals import EMPTY, Direction, Event, EventKind


@dataclass(frozen=True, slots=True)
class Calls:
    car: frozenset[int] = EMPTY
    up: frozenset[int] = EMPTY
    down: frozenset[int] = EMPTY
    # Car calls registered with the accessible-call button: those stops get a longer dwell and a slower close.
    accessible: frozenset[int] = EMPTY

    def any(self) -> bool:
        return bool(self.car or self.up or self.down)

    def hall(self, direction: Direction) -> frozenset[int]:
        return self.up if direction is Direction.UP else self.down


def _valid(landings: frozenset[int], count: int) -> frozenset[int]:
    return frozenset(landing for landing in landings if 0 <= landing < count)


def register(calls: Calls, tick: int, landing_count: int, car_pressed: frozenset[int], up_pressed: frozenset[int],
             down_pressed: frozenset[int], accessible: bool, accept_car: bool, accept_hall: bool,
             events: list[Event]) -> Calls:
    """Add the pressed buttons to the registry. A press for a call already registered changes nothing."""
    new_car = _valid(car_pressed, landing_count) - calls.car if accept_car else EMPTY
    # The top landing has no up button and the bottom one no down button.
    new_up = _valid(up_pressed, landing_count - 1) - calls.up if accept_hall else EMPTY
    new_down = frozenset(n for n in down_pressed if 0 < n < landing_count) - calls.down if accept_hall else EMPTY
    refused = (car_pressed - calls.car - new_car) | (up_pressed - calls.up - new_up) | (
        down_pressed - calls.down - new_down)
    for landing in sorted(refused):
        events.append(Event(EventKind.CALL_REFUSED, tick, landing, "not accepted in this mode or landing"))
    if not (new_car or new_up or new_down):
        if accessible and car_pressed:
            return Calls(calls.car, calls.up, calls.down, calls.accessible | (calls.car & car_pressed))
        return calls
    for landing in sorted(new_car):
        events.append(Event(EventKind.CALL_REGISTERED, tick, landing, "car"))
    for landing in sorted(new_up):
        events.append(Event(EventKind.CALL_REGISTERED, tick, landing, "up"))
    for landing in sorted(new_down):
        events.append(Event(EventKind.CALL_REGISTERED, tick, landing, "down"))
    accessible_calls = calls.accessible | (new_car if accessible else EMPTY)
    return Calls(calls.car | new_car, calls.up | new_up, calls.down | new_down, accessible_calls)


def apply_anti_nuisance(calls: Calls, tick: int, load_kg: float, max_car_calls: int, empty_load_kg: float,
                        events: list[Event]) -> Calls:
    """Many car calls with a nearly empty car are a prank (children pressing every button): cancel them all."""
    if len(calls.car) <= max_car_calls or load_kg > empty_load_kg:
        return calls
    for landing in sorted(calls.car):
        events.append(Event(EventKind.CALL_CANCELLED, tick, landing, "car:anti_nuisance"))
    return Calls(EMPTY, calls.up, calls.down, EMPTY)


def serve(calls: Calls, tick: int, landing: int, lantern: Direction, events: list[Event]) -> Calls:
    """The doors open at ``landing`` showing ``lantern``: the car call there and the hall call in that direction
    are served. With no direction shown (an idle car answering its own landing), both hall calls are served."""
    car = calls.car
    up = calls.up
    down = calls.down
    if landing in car:
        car = car - {landing}
        events.append(Event(EventKind.CALL_CANCELLED, tick, landing, "car:served"))
    if landing in up and lantern is not Direction.DOWN:
        up = up - {landing}
        events.append(Event(EventKind.CALL_CANCELLED, tick, landing, "up:served"))
    if landing in down and lantern is not Direction.UP:
        down = down - {landing}
        events.append(Event(EventKind.CALL_CANCELLED, tick, landing, "down:served"))
    if car is calls.car and up is calls.up and down is calls.down:
        return calls
    return Calls(car, up, down, calls.accessible - {landing})


def withdraw(calls: Calls, tick: int, keep_car: bool, keep_hall: bool, reason: str, events: list[Event]) -> Calls:
    """A mode change withdraws the calls the new mode does not serve."""
    car = calls.car if keep_car else EMPTY
    up = calls.up if keep_hall else EMPTY
    down = calls.down if keep_hall else EMPTY
    for kind, dropped in (("car", calls.car - car), ("up", calls.up - up), ("down", calls.down - down)):
        for landing in sorted(dropped):
            events.append(Event(EventKind.CALL_CANCELLED, tick, landing, f"{kind}:{reason}"))
    if car is calls.car and up is calls.up and down is calls.down:
        return calls
    return Calls(car, up, down, calls.accessible & car)
