"""Directional collective: order of stops, reversal, lantern, full-load bypass."""

from carctl.core.calls import Calls
from carctl.core.dispatch import departure_direction, lantern_on_arrival, next_stop, wants_doors_open
from carctl.core.signals import Direction

UP, DOWN, NONE = Direction.UP, Direction.DOWN, Direction.NONE


def calls(car=(), up=(), down=()) -> Calls:
    return Calls(frozenset(car), frozenset(up), frozenset(down))


def test_car_calls_in_the_order_reached() -> None:
    c = calls(car=(5, 2, 4))
    assert next_stop(c, 1, UP, 6, False) == 2
    assert next_stop(c, 3, UP, 6, False) == 4


def test_landing_calls_only_in_the_direction_of_travel() -> None:
    c = calls(up=(2,), down=(3,), car=(5,))
    assert next_stop(c, 1, UP, 6, False) == 2
    assert next_stop(c, 3, UP, 6, False) == 5  # the down call at 3 is passed going up


def test_farthest_opposite_call_is_the_reversal_point() -> None:
    c = calls(down=(3, 5))
    assert next_stop(c, 1, UP, 6, False) == 5


def test_nothing_ahead() -> None:
    assert next_stop(calls(car=(0,)), 2, UP, 6, False) is None


def test_full_load_bypasses_landing_calls() -> None:
    c = calls(up=(2,), car=(4,))
    assert next_stop(c, 1, UP, 6, True) == 4


def test_reverse_only_when_nothing_lies_ahead() -> None:
    assert departure_direction(calls(car=(5,), up=(1,)), 3, UP, 6) is UP
    assert departure_direction(calls(up=(1,)), 3, UP, 6) is DOWN
    assert departure_direction(calls(), 3, UP, 6) is NONE


def test_idle_car_heads_for_the_nearest_call() -> None:
    assert departure_direction(calls(car=(5,), up=(2,)), 3, NONE, 6) is DOWN
    assert departure_direction(calls(car=(4,), up=(2,)), 3, NONE, 6) is UP  # a tie goes up


def test_lantern_keeps_direction_while_calls_lie_ahead() -> None:
    assert lantern_on_arrival(calls(car=(5,)), 3, UP, 6) is UP
    assert lantern_on_arrival(calls(down=(3,)), 3, UP, 6) is DOWN
    assert lantern_on_arrival(calls(car=(1,)), 3, UP, 6) is DOWN
    assert lantern_on_arrival(calls(), 3, UP, 6) is NONE
    assert lantern_on_arrival(calls(up=(3,), down=(3,)), 3, NONE, 6) is UP


def test_doors_open_for_calls_served_here() -> None:
    assert wants_doors_open(calls(car=(3,)), 3, DOWN)
    assert wants_doors_open(calls(up=(3,)), 3, UP)
    assert not wants_doors_open(calls(up=(3,)), 3, DOWN)
