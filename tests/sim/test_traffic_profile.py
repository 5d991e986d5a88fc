"""A building's day as a scenario describes it ([traffic] hourly_rate_pct_per_5min): arrivals at each hour's own rate,
none in an hour whose rate is 0, the same every day of the run; a list that is not one rate an hour is refused."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import pytest

from sim.scenario import ScenarioError, from_dict, load
from sim.traffic import TrafficConfig, expected_passengers, stream

POPULATION = (0, 6, 6, 6, 6, 6, 6)
PERIOD_S = 0.02
HOUR_S = 3600.0


def arrivals_by_hour(traffic: TrafficConfig) -> Counter[int]:
    return Counter(int(p.arrival_tick * PERIOD_S // HOUR_S) for p in stream(traffic, POPULATION, 0, PERIOD_S))


def test_each_hour_has_its_own_rate_and_a_quiet_hour_has_no_one() -> None:
    hourly = [0.0] * 24
    hourly[7] = 20.0  # the morning peak
    hourly[18] = 5.0  # the evening, a quarter of it
    traffic = TrafficConfig(hourly_rate_pct_per_5min=tuple(hourly), duration_s=2 * 86400.0, seed=5)
    counts = arrivals_by_hour(traffic)
    assert set(counts) == {7, 18, 31, 42}  # the same hours on the second day, and no others
    # 20 % of 36 residents per 5 minutes is 86.4 an hour; 5 % is 21.6: each within 5 standard deviations.
    for hour, rate_pct in ((7, 20.0), (31, 20.0), (18, 5.0), (42, 5.0)):
        expected = rate_pct / 100.0 * 36 / 300.0 * HOUR_S
        assert abs(counts[hour] - expected) < 5 * math.sqrt(expected), (hour, counts[hour], expected)
    assert expected_passengers(traffic, POPULATION, 0) == pytest.approx(2 * (86.4 + 21.6))


def test_a_day_at_one_rate_every_hour_draws_as_many_as_that_rate_all_day() -> None:
    flat = TrafficConfig(rate_pct_per_5min=4.0, duration_s=86400.0)
    hourly = TrafficConfig(hourly_rate_pct_per_5min=(4.0,) * 24, duration_s=86400.0)
    assert expected_passengers(hourly, POPULATION, 0) == pytest.approx(expected_passengers(flat, POPULATION, 0))
    made = sum(arrivals_by_hour(hourly).values())
    expected = expected_passengers(flat, POPULATION, 0)
    assert abs(made - expected) < 5 * math.sqrt(expected)


def test_a_part_of_an_hour_counts_its_part() -> None:
    hourly = [0.0] * 24
    hourly[0] = 10.0
    traffic = TrafficConfig(hourly_rate_pct_per_5min=tuple(hourly), duration_s=1800.0)
    assert expected_passengers(traffic, POPULATION, 0) == pytest.approx(10.0 / 100.0 * 36 / 300.0 * 1800.0)
    assert all(p.arrival_tick * PERIOD_S < 1800.0 for p in stream(traffic, POPULATION, 0, PERIOD_S))


@pytest.mark.parametrize("hourly", [[3.0] * 23, [3.0] * 25, [3.0] * 23 + [101.0], [3.0] * 23 + [-1.0]])
def test_a_list_that_is_not_one_rate_an_hour_is_refused_naming_the_key(hourly: list[float]) -> None:
    with pytest.raises(ScenarioError) as error:
        from_dict({"traffic": {"hourly_rate_pct_per_5min": hourly}})
    assert error.value.key == "traffic.hourly_rate_pct_per_5min"


def test_the_shipped_day_of_a_walk_up_is_a_day_with_its_peaks() -> None:
    scenario = load(Path(__file__).parent.parent.parent / "sim" / "scenarios" / "walk_up_day.toml")
    hourly = scenario.traffic.hourly_rate_pct_per_5min
    assert len(hourly) == 24 and scenario.traffic.duration_s == 86400.0
    mean = sum(hourly) / 24
    assert max(hourly) >= 2 * mean and min(hourly) <= mean / 4  # peaks, and a quiet night
