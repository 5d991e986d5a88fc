"""The rate keeper reports lag and missed cycles instead of hiding them; real-time setup is a clean no-op here."""

import time

from carctl.runtime.ratekeeper import RateKeeper
from carctl.runtime.realtime import set_realtime


def test_a_stall_is_counted_as_missed_cycles_and_the_schedule_moves_on() -> None:
    keeper = RateKeeper(0.01)
    keeper.keep()
    time.sleep(0.05)  # the work of this cycle overran by several periods
    lag = keeper.keep()
    assert lag >= 0.03
    assert keeper.missed >= 3
    assert keeper.lagging
    assert keeper.frame == 2
    # No burst afterwards: the next frame is a period away, not in the past.
    assert keeper.keep() < 0.01 + 0.05


def test_percentiles_come_from_the_recorded_lags() -> None:
    keeper = RateKeeper(0.005)
    for _ in range(20):
        keeper.keep()
    assert 0.0 <= keeper.percentile_ms(0.5) <= keeper.percentile_ms(0.99)
    assert len(keeper.lags_s) == 20


def test_priority_zero_asks_for_nothing() -> None:
    result = set_realtime(0, None)
    assert not result.fifo and result.priority == 0
