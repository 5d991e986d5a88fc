"""Every numeric key of every configuration class has a plausible range: NaN, infinities and absurd magnitudes are
refused naming the key as it is spelt in the file. A key added later without a range fails here."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest

from carctl.core.config import BuildingConfig, CarConfig, ConfigError, ControllerConfig
from carctl.runtime import config as firmware
from carctl.tomlconfig import ConfigFileError
from sim import scenario
from sim.physics import PhysicsConfig
from sim.scenario import ScriptedEvent
from sim.traffic import TrafficConfig

NUMERIC = {"int", "float", "tuple[int, ...]", "tuple[float, ...]"}
ABSURD_FLOATS = (math.nan, math.inf, -math.inf, 1e308, -1e308)
ABSURD_INTS = (2**63, -(2**63), 10**5000)

GOOD_FIRMWARE: dict[str, Any] = {"drive": {"endpoint": "tcp://127.0.0.1:5020"}, "panel": {"port": "/dev/ttyAMA0"}}
GOOD_EVENT: dict[str, Any] = {"t_s": 1.0, "type": "car_call", "landing": 1}
# (class, the table as spelt in the file, how a file with one key of that table is loaded)
SCENARIO_TABLES = [(BuildingConfig, "building"), (CarConfig, "car"), (PhysicsConfig, "physics"),
                   (TrafficConfig, "traffic")]
FIRMWARE_TABLES = [(firmware.DriveSection, "drive"), (firmware.PanelSection, "panel"),
                   (firmware.RuntimeSection, "runtime"), (firmware.FaceSection, "face"),
                   (firmware.PlatformSection, "platform"), (firmware.ServiceSection, "service")]
ALL_CLASSES = [cls for cls, _ in SCENARIO_TABLES + FIRMWARE_TABLES] + [ScriptedEvent]


def numeric_fields(cls: type) -> list[dataclasses.Field[Any]]:
    return [spec for spec in dataclasses.fields(cls) if str(spec.type) in NUMERIC]


def absurd_values(spec: dataclasses.Field[Any]) -> tuple[object, ...]:
    return ABSURD_INTS + ABSURD_FLOATS if "int" in str(spec.type) else ABSURD_FLOATS + ABSURD_INTS


def with_value(spec: dataclasses.Field[Any], value: object) -> object:
    """The TOML value that puts ``value`` into the key; for a list key, as one entry of an otherwise good list."""
    if spec.name == "landings_m":
        return [0.0, value]
    if spec.name == "population":
        return [0, 5, 5, 5, 5, value]
    if str(spec.type).startswith("tuple"):
        return [value]
    return value


def cases(tables: list[tuple[type, str]]) -> list[Any]:
    return [pytest.param(cls, section, spec, id=f"{section}.{spec.name}")
            for cls, section in tables for spec in numeric_fields(cls)]


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=lambda cls: cls.__name__)
def test_every_numeric_key_has_a_range_and_its_default_is_inside_it(cls: type) -> None:
    numeric = {spec.name for spec in numeric_fields(cls)}
    assert set(cls.RANGES) == numeric, f"{cls.__name__}: keys without a range, or ranges without a key"
    for spec in numeric_fields(cls):
        if spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING:
            continue
        default = spec.default_factory() if spec.default is dataclasses.MISSING else spec.default
        values = default if isinstance(default, tuple) else (default,)
        assert all(cls.RANGES[spec.name].holds(value) for value in values), f"{cls.__name__}.{spec.name}"


@pytest.mark.parametrize(("cls", "section", "spec"), cases(SCENARIO_TABLES))
def test_scenario_numbers_out_of_range_are_refused_naming_the_key(cls: type, section: str,
                                                                 spec: dataclasses.Field[Any]) -> None:
    for value in absurd_values(spec):
        with pytest.raises(scenario.ScenarioError) as error:
            scenario.from_dict({section: {spec.name: with_value(spec, value)}})
        assert error.value.key == f"{section}.{spec.name}", value
        assert "\n" not in str(error.value) and len(str(error.value)) < 400


@pytest.mark.parametrize("spec", numeric_fields(ScriptedEvent), ids=lambda spec: spec.name)
def test_event_numbers_out_of_range_are_refused_naming_the_event(spec: dataclasses.Field[Any]) -> None:
    for value in absurd_values(spec):
        with pytest.raises(scenario.ScenarioError) as error:
            scenario.from_dict({"events": [GOOD_EVENT, {**GOOD_EVENT, spec.name: value}]})
        assert error.value.key == f"events[1].{spec.name}", value


@pytest.mark.parametrize(("cls", "section", "spec"), cases(FIRMWARE_TABLES))
def test_firmware_numbers_out_of_range_are_refused_naming_the_key(cls: type, section: str,
                                                                 spec: dataclasses.Field[Any]) -> None:
    for value in absurd_values(spec):
        table = {**GOOD_FIRMWARE.get(section, {}), spec.name: value}
        with pytest.raises(firmware.FirmwareConfigError) as error:
            firmware.from_dict({**GOOD_FIRMWARE, section: table})
        assert error.value.key == f"{section}.{spec.name}", value
        assert "\n" not in str(error.value) and len(str(error.value)) < 400


@pytest.mark.parametrize(("key", "value"), [("park_delay_s", 1e308), ("control_period_s", 1e-300),
                                            ("door_retries", 2**63), ("rated_speed_m_s", math.nan)])
def test_the_core_refuses_them_when_constructed_directly(key: str, value: object) -> None:
    """The core validates its own configuration, wherever the values come from (a file, the platform, a test)."""
    with pytest.raises(ConfigError) as error:
        CarConfig(**{key: value})  # type: ignore[arg-type]
    assert error.value.key == f"car.{key}"


def test_free_landings_must_exist_in_the_building() -> None:
    with pytest.raises(ConfigError) as error:
        ControllerConfig(car=CarConfig(free_landings=(0, 6)))
    assert error.value.key == "car.free_landings"


def test_examples_of_the_issue_name_key_and_range() -> None:
    expected = {
        ("car", "park_delay_s", 1e308): "car.park_delay_s: must be a number from 0 to 86400 s (got 1e+308)",
        ("car", "control_period_s", 1e-300): "car.control_period_s: must be a number from 0.005 to 0.1 s",
        ("traffic", "rate_pct_per_5min", 1e300): "traffic.rate_pct_per_5min: must be a number from 0 to 100 %",
        ("car", "door_retries", 2**63): "car.door_retries: must be a whole number from 1 to 10",
    }
    for (section, key, value), message in expected.items():
        with pytest.raises(ConfigFileError) as error:
            scenario.from_dict({section: {key: value}})
        assert str(error.value).startswith(message)


def test_a_missing_required_event_key_is_named() -> None:
    with pytest.raises(scenario.ScenarioError) as error:
        scenario.from_dict({"events": [{"type": "car_call", "landing": 1}]})
    assert error.value.key == "events[0].t_s"


def test_plausible_values_whose_product_no_run_could_hold_are_refused() -> None:
    """Each of rate, population and duration is plausible, but together they would be half a billion passengers."""
    with pytest.raises(scenario.ScenarioError) as error:
        scenario.from_dict({"building": {"population": [0, 1000, 1000, 1000, 1000, 1000]},
                            "traffic": {"rate_pct_per_5min": 100.0, "duration_s": 366 * 86400.0}})
    assert error.value.key == "traffic.rate_pct_per_5min" and "passengers" in error.value.message
