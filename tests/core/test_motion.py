"""The jerk-limited planner against Peters' ideal lift kinematics, worked out here independently."""

import pytest

from carctl.core.motion import Limits, plan, stopping_distance_m
from tests.reference import peters_flight_time_s

LIMITS = Limits(speed_m_s=1.0, acceleration_m_s2=0.6, jerk_m_s3=1.0)


@pytest.mark.parametrize("distance_m", [0.02, 0.3, 0.5, 1.0, 2.27, 2.9, 5.8, 14.5, 40.0])
def test_rest_to_rest_is_time_optimal(distance_m: float) -> None:
    profile = plan(0.0, 0.0, distance_m, LIMITS)
    assert profile is not None
    assert profile.duration_s == pytest.approx(peters_flight_time_s(distance_m, 1.0, 0.6, 1.0), rel=1e-6)
    assert profile.length_m == pytest.approx(distance_m, abs=1e-6)


@pytest.mark.parametrize("distance_m", [0.5, 2.9, 14.5])
def test_profile_respects_the_limits(distance_m: float) -> None:
    profile = plan(0.0, 0.0, distance_m, LIMITS)
    assert profile is not None
    steps = 2000
    previous_accel = 0.0
    for i in range(steps + 1):
        t = profile.duration_s * i / steps
        _, speed, accel = profile.sample(t)
        assert -1e-9 <= speed <= LIMITS.speed_m_s + 1e-9
        assert abs(accel) <= LIMITS.acceleration_m_s2 + 1e-9
        if i:
            dt = profile.duration_s / steps
            assert abs(accel - previous_accel) <= LIMITS.jerk_m_s3 * dt + 1e-9
        previous_accel = accel
    end = profile.sample(profile.duration_s)
    assert end == (pytest.approx(distance_m), 0.0, 0.0)


@pytest.mark.parametrize(("speed", "accel", "distance"), [(1.0, 0.0, 3.0), (0.6, 0.4, 2.0), (0.8, -0.3, 1.5),
                                                          (0.3, 0.6, 5.0)])
def test_replan_from_a_moving_state_stops_exactly_there(speed: float, accel: float, distance: float) -> None:
    profile = plan(speed, accel, distance, LIMITS)
    assert profile is not None
    position, final_speed, final_accel = profile.sample(profile.duration_s - 1e-12)
    assert position == pytest.approx(distance, abs=1e-6)
    assert final_speed == pytest.approx(0.0, abs=1e-6)
    assert final_accel == pytest.approx(0.0, abs=1e-5)


def test_a_stop_closer_than_the_stopping_distance_is_refused() -> None:
    needed = stopping_distance_m(1.0, 0.0, LIMITS)
    # From rated speed: decelerate at the jerk limit to 0.6 m/s², hold, and back: v²/2a + v·a/2j.
    assert needed == pytest.approx(1.0 / (2 * 0.6) + 1.0 * 0.6 / (2 * 1.0), rel=1e-9)
    assert plan(1.0, 0.0, needed * 0.9, LIMITS) is None
    assert plan(1.0, 0.0, needed * 1.01, LIMITS) is not None
