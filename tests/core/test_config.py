"""Configuration validation: impossible values are refused with the key named."""

import pytest

from carctl.core.config import BuildingConfig, CarConfig, ConfigError, ControllerConfig, Timing


def test_defaults_are_the_default_building() -> None:
    config = ControllerConfig()
    assert config.building.landings_m == (0.0, 2.9, 5.8, 8.7, 11.6, 14.5)
    assert config.car.rated_speed_m_s == 1.0
    assert config.car.capacity_persons == 8
    assert config.car.rated_load_kg == 630.0


@pytest.mark.parametrize(("landings", "fragment"), [
    ((0.0, 2.9, 2.9), "increasing"),
    ((0.0, 5.0, 3.0), "increasing"),
    ((0.0,), "at least 2"),
    ((0.0, float("nan")), "must be a number"),
])
def test_landings_must_increase(landings: tuple[float, ...], fragment: str) -> None:
    with pytest.raises(ConfigError) as error:
        BuildingConfig(landings_m=landings, population=tuple(0 for _ in landings))
    assert error.value.key == "building.landings_m"
    assert fragment in str(error.value)


@pytest.mark.parametrize("key", ["rated_speed_m_s", "acceleration_m_s2", "jerk_m_s3", "rated_load_kg",
                                 "control_period_s"])
@pytest.mark.parametrize("value", [0.0, -1.0])
def test_motion_limits_must_be_positive(key: str, value: float) -> None:
    with pytest.raises(ConfigError) as error:
        CarConfig(**{key: value})
    assert error.value.key == f"car.{key}"


@pytest.mark.parametrize("value", [0, -3, 2.5])
def test_capacity_must_be_a_positive_whole_number(value: object) -> None:
    with pytest.raises(ConfigError) as error:
        CarConfig(capacity_persons=value)  # type: ignore[arg-type]
    assert error.value.key == "car.capacity_persons"


def test_home_landing_must_exist() -> None:
    with pytest.raises(ConfigError) as error:
        ControllerConfig(car=CarConfig(home_landing=6))
    assert error.value.key == "car.home_landing"


def test_population_needs_one_entry_per_landing() -> None:
    with pytest.raises(ConfigError) as error:
        BuildingConfig(population=(0, 5))
    assert error.value.key == "building.population"


def test_overload_follows_en81_rule() -> None:
    # 630 kg rated: 10 % is 63 kg, below the 75 kg minimum margin.
    assert CarConfig().overload_kg == pytest.approx(705.0)
    assert CarConfig(rated_load_kg=1000.0).overload_kg == pytest.approx(1100.0)


def test_timing_converts_seconds_to_ticks() -> None:
    timing = Timing.from_config(CarConfig(dwell_s=3.0, control_period_s=0.02))
    assert timing.dwell == 150
    assert timing.door_open_protection == 500


@pytest.mark.parametrize(("switches", "says"), [
    ((0.5, 0.4, 0.3, 0.2), "at most 3 distinct"),
    ((0.5, 0.5), "at most 3 distinct"),
    ((4.0,), "less than half the travel"),
    ((0.01,), "car.terminal_switches_m"),
])
def test_terminal_slowdown_switches_are_few_distinct_and_inside_their_half_of_the_shaft(
        switches: tuple[float, ...], says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        # A shaft of 7 m travel: 3.5 m on either side.
        ControllerConfig(building=BuildingConfig(landings_m=(0.0, 3.5, 7.0), population=(0, 5, 5)),
                         car=CarConfig(terminal_switches_m=switches))
