"""Scenario files: the contract keys load; bad files are refused naming the key."""

from pathlib import Path

import pytest

from sim.scenario import ScenarioError, from_dict, load

SCENARIOS = Path(__file__).parent.parent.parent / "sim" / "scenarios"


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.toml")), ids=lambda p: p.name)
def test_shipped_scenarios_load(path: Path) -> None:
    scenario = load(path)
    assert scenario.controller.building.landing_count >= 2


def test_design_example_loads_with_its_meaning() -> None:
    scenario = from_dict({
        "building": {"landings_m": [0.0, 2.9, 5.8, 8.7, 11.6, 14.5], "main_landing": 0,
                     "population": [0, 5, 5, 5, 5, 5]},
        "car": {"rated_speed_m_s": 1.0, "acceleration_m_s2": 0.6, "jerk_m_s3": 1.0, "capacity_persons": 8,
                "rated_load_kg": 630, "door_open_s": 2.5, "door_close_s": 3.0, "dwell_s": 3.0,
                "transfer_s": 1.2, "home_landing": 0, "control_period_s": 0.02},
        "traffic": {"pattern": "residential", "rate_pct_per_5min": 6.0, "duration_s": 3600, "seed": 1},
        "events": [{"t_s": 12.0, "type": "hall_call", "landing": 3, "direction": "down"}],
    })
    assert scenario.controller.car.rated_load_kg == 630.0
    assert scenario.events[0].landing == 3 and scenario.events[0].direction == "down"


@pytest.mark.parametrize(("data", "key"), [
    ({"building": {"landings_m": [0.0, 3.0, 2.0]}}, "building.landings_m"),
    ({"building": {"landings_m": "high"}}, "building.landings_m"),
    ({"car": {"rated_speed_m_s": 0}}, "car.rated_speed_m_s"),
    ({"car": {"rated_speed_m_s": -1.0}}, "car.rated_speed_m_s"),
    ({"car": {"jerk_m_s3": 0.0}}, "car.jerk_m_s3"),
    ({"car": {"acceleration_m_s2": -0.5}}, "car.acceleration_m_s2"),
    ({"car": {"capacity_persons": 0}}, "car.capacity_persons"),
    ({"car": {"capacity_persons": "eight"}}, "car.capacity_persons"),
    ({"car": {"rated_sped_m_s": 1.0}}, "car.rated_sped_m_s"),
    ({"car": {"home_landing": 9}}, "car.home_landing"),
    ({"traffic": {"pattern": "lunch"}}, "traffic.pattern"),
    ({"traffic": {"duration_s": 0}}, "traffic.duration_s"),
    ({"lift": {}}, "lift"),
    ({"events": [{"t_s": 1.0, "type": "hall_call", "landing": 7, "direction": "up"}]}, "events[0].landing"),
    ({"events": [{"t_s": 1.0, "type": "car_call"}]}, "events[0].landing"),
    ({"events": [{"t_s": 1.0, "type": "hall_call", "landing": 5, "direction": "up"}]}, "events[0].direction"),
    ({"events": [{"t_s": 1.0, "type": "teleport"}]}, "events[0].type"),
    ({"events": [{"t_s": -1.0, "type": "car_call", "landing": 1}]}, "events[0].t_s"),
    ({"events": [{"t_s": 1.0, "type": "fault", "kind": "meteor"}]}, "events[0].kind"),
    ({"events": [{"t_s": 1.0, "type": "passenger", "origin": 2, "destination": 2}]}, "events[0].destination"),
    ({"events": [{"t_s": 1.0, "type": "mode", "mode": "party"}]}, "events[0].mode"),
    ({"events": [{"t_s": 1.0, "type": "rescue"}]}, "events[0].action"),
    ({"events": [{"t_s": 1.0, "type": "rescue", "action": "explode"}]}, "events[0].action"),
    ({"events": [{"t_s": 1.0, "type": "rescue", "action": "busy", "number": "110;ATH"}]}, "events[0].number"),
    ({"events": [{"t_s": 1.0, "type": "rescue", "action": "hangup", "number": "110"}]}, "events[0].number"),
    ({"events": [{"t_s": 1.0, "type": "rescue", "action": "busy", "number": 110}]}, "events[0].number"),
])
def test_bad_scenarios_are_refused_naming_the_key(data: dict, key: str) -> None:
    with pytest.raises(ScenarioError) as error:
        from_dict(data)
    assert error.value.key == key
    assert str(error.value).startswith(key)


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="cannot read"):
        load(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[car\nrated_speed_m_s = 1\n")
    with pytest.raises(ScenarioError, match="not valid TOML"):
        load(broken)
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ScenarioError, match="UTF-8"):
        load(binary)
