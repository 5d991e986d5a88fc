"""The call registry: register on a press, cancel only when served, anti-nuisance, mode withdrawal."""

from carctl.core.calls import Calls, apply_anti_nuisance, register, serve, withdraw
from carctl.core.signals import EMPTY, Direction, Event, EventKind


def _register(calls: Calls, car=EMPTY, up=EMPTY, down=EMPTY, accessible=False, accept_car=True,
              accept_hall=True) -> tuple[Calls, list[Event]]:
    events: list[Event] = []
    result = register(calls, 7, 6, frozenset(car), frozenset(up), frozenset(down), accessible, accept_car,
                      accept_hall, events)
    return result, events


def test_press_registers_once() -> None:
    calls, events = _register(Calls(), car={3}, up={1}, down={4})
    assert (calls.car, calls.up, calls.down) == ({3}, {1}, {4})
    assert [e.kind for e in events] == [EventKind.CALL_REGISTERED] * 3
    again, events = _register(calls, car={3})
    assert again is calls
    assert events == []


def test_terminal_landings_have_one_hall_button() -> None:
    calls, events = _register(Calls(), up={5}, down={0})
    assert not calls.up and not calls.down
    assert [e.kind for e in events] == [EventKind.CALL_REFUSED, EventKind.CALL_REFUSED]


def test_unknown_landing_is_refused() -> None:
    calls, events = _register(Calls(), car={9})
    assert not calls.car
    assert events[0].kind is EventKind.CALL_REFUSED


def test_mode_that_refuses_landing_calls() -> None:
    calls, events = _register(Calls(), car={2}, up={1}, accept_hall=False)
    assert calls.car == {2} and not calls.up
    assert EventKind.CALL_REFUSED in [e.kind for e in events]


def test_accessible_press_flags_the_car_call() -> None:
    calls, _ = _register(Calls(), car={4}, accessible=True)
    assert calls.accessible == {4}


def test_serve_cancels_only_the_lantern_direction() -> None:
    calls = Calls(car=frozenset({2}), up=frozenset({2}), down=frozenset({2}))
    events: list[Event] = []
    served = serve(calls, 9, 2, Direction.UP, events)
    assert served.car == set() and served.up == set() and served.down == {2}
    assert {e.detail for e in events} == {"car:served", "up:served"}


def test_serve_elsewhere_changes_nothing() -> None:
    calls = Calls(car=frozenset({2}))
    assert serve(calls, 9, 3, Direction.UP, []) is calls


def test_anti_nuisance_cancels_car_calls_in_an_empty_car() -> None:
    calls = Calls(car=frozenset({1, 2, 3, 4, 5}), up=frozenset({1}))
    events: list[Event] = []
    cleared = apply_anti_nuisance(calls, 3, 0.0, 3, 20.0, events)
    assert cleared.car == set() and cleared.up == {1}
    assert len(events) == 5
    assert apply_anti_nuisance(calls, 3, 150.0, 3, 20.0, []) is calls


def test_withdraw_for_a_mode() -> None:
    calls = Calls(car=frozenset({1}), up=frozenset({2}), down=frozenset({3}))
    events: list[Event] = []
    kept = withdraw(calls, 1, True, False, "out_of_service", events)
    assert kept.car == {1} and not kept.up and not kept.down
    assert {e.detail for e in events} == {"up:out_of_service", "down:out_of_service"}
