"""Independent checks of the simulated motion: Peters' flight time and the CIBSE Guide D round trip time."""

import pytest

from carctl.core.controller import Phase
from sim.lockstep import Lockstep
from sim.procedures import SimulatedCar
from sim.scenario import from_dict
from tests.reference import cibse_round_trip_time_s, peters_flight_time_s


@pytest.mark.parametrize(("limits", "floors"), [
    ({}, 1), ({}, 2), ({}, 5),
    ({"rated_speed_m_s": 1.6, "acceleration_m_s2": 0.8, "jerk_m_s3": 1.2}, 1),
    ({"rated_speed_m_s": 1.6, "acceleration_m_s2": 0.8, "jerk_m_s3": 1.2}, 5),
    ({"rated_speed_m_s": 0.63, "acceleration_m_s2": 0.4, "jerk_m_s3": 0.6}, 3),
])
def test_single_run_takes_the_time_optimal_time(limits: dict[str, float], floors: int) -> None:
    car = SimulatedCar({"car": limits})
    config = car.sim.config.car
    car.press_car_call(floors)
    car.wait_until(lambda: car.shaft.speed_m_s != 0.0, within_s=5, what="moving")
    flight_s = car.wait_until(lambda: car.shaft.speed_m_s == 0.0, within_s=60, what="stopped")
    ideal_s = peters_flight_time_s(2.9 * floors, config.rated_speed_m_s, config.acceleration_m_s2,
                                   config.jerk_m_s3)
    assert flight_s == pytest.approx(ideal_s, rel=0.03)
    assert car.phase in (Phase.STOPPING, Phase.STANDING)
    assert abs(car.shaft.position_m - 2.9 * floors) <= 0.005  # levelled within ±5 mm


@pytest.mark.slow
def test_saturated_up_peak_round_trip_matches_cibse() -> None:
    """Seven landings, six above the main one with equal population; more arrivals than the car can carry, so
    every trip leaves full. No dwell beyond the passenger transfers, as the formula assumes."""
    landings = [2.9 * i for i in range(7)]
    scenario = from_dict({
        "building": {"landings_m": landings, "population": [0] + [60] * 6},
        "car": {"dwell_s": 0.0, "dwell_after_curtain_s": 0.0, "capacity_persons": 8, "rated_load_kg": 630.0,
                "park_delay_s": 600.0},
        "traffic": {"pattern": "up_peak", "rate_pct_per_5min": 30.0, "duration_s": 3600.0, "drain_s": 0.0,
                    "seed": 7},
    })
    sim = Lockstep(scenario, keep_events=True)
    sim.run()
    assert sim.event_log is not None
    main_openings = [event.tick * sim.period_s for event in sim.event_log
                     if event.kind.value == "arrived" and event.landing == 0]
    # Ignore the first ten minutes while the queue builds; every later trip leaves full.
    steady = [t for t in main_openings if t >= 600.0]
    assert len(steady) >= 30
    simulated_rtt = (steady[-1] - steady[0]) / (len(steady) - 1)
    car = scenario.controller.car
    physics = scenario.physics
    performance_time = (peters_flight_time_s(2.9, car.rated_speed_m_s, car.acceleration_m_s2, car.jerk_m_s3)
                        + car.door_close_s + car.door_open_s + physics.brake_open_s + physics.door_lock_s)
    formula_rtt = cibse_round_trip_time_s(car.capacity_persons, 6, 2.9, car.rated_speed_m_s, performance_time,
                                          car.transfer_s)
    assert simulated_rtt == pytest.approx(formula_rtt, rel=0.05)
