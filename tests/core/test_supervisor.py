"""The supervisor: detection, latching, reset, and its last word on the drive commands."""

import pytest

from dataclasses import replace

from carctl.core.config import CarConfig, ControllerConfig
from carctl.core.signals import Commands, Event, EventKind, Inputs
from carctl.core.supervisor import (FAULTS, Fault, FaultLevel, SupervisorLimits, detect, enforce, update_faults,
                                    worst_level)

LIMITS = SupervisorLimits.from_config(ControllerConfig())
# With terminal slowdown switches 0.5 m and 0.25 m from each terminal landing.
SWITCHED = SupervisorLimits.from_config(ControllerConfig(car=CarConfig(terminal_switches_m=(0.5, 0.25))))


def test_healthy_standing_car_has_no_faults() -> None:
    assert detect(Inputs(tick=1), LIMITS, False) == set()


@pytest.mark.parametrize(("inputs", "fault"), [
    (Inputs(tick=1, drive_age_ticks=4), Fault.DRIVE_STALE),
    (Inputs(tick=1, car_top_age_ticks=6), Fault.CAR_TOP_STALE),
    (Inputs(tick=1, speed_m_s=1.10), Fault.OVERSPEED),
    (Inputs(tick=1, speed_m_s=-1.2, door_locked=True), Fault.OVERSPEED),
    (Inputs(tick=1, position_m=14.56), Fault.SHAFT_LIMIT),
    (Inputs(tick=1, position_m=-0.06), Fault.SHAFT_LIMIT),
    (Inputs(tick=1, drive_fault_code=0x21), Fault.DRIVE_FAULT),
    (Inputs(tick=1, load_kg=706), Fault.OVERLOAD),
    (Inputs(tick=1, speed_m_s=0.5, door_locked=False, door_closed_limit=False, in_door_zone=False,
            drive_running=True), Fault.UNINTENDED_MOVEMENT),
    (Inputs(tick=1, speed_m_s=0.35, door_locked=False, in_door_zone=True), Fault.UNINTENDED_MOVEMENT),
    (Inputs(tick=1, speed_m_s=0.0, door_locked=False, drive_running=True), Fault.DOOR_LOCK_LOST),
    (Inputs(tick=1, drive_running=True, safety_chain_closed=False), Fault.SAFETY_CHAIN_OPEN),
    (Inputs(tick=1, drive_running=False, safety_chain_closed=False), Fault.SAFETY_CHAIN_OPEN),  # tripped already
])
def test_each_condition_is_detected(inputs: Inputs, fault: Fault) -> None:
    assert fault in detect(inputs, LIMITS, False)


@pytest.mark.parametrize(("top", "bottom", "speed_m_s", "trusted", "raised"), [
    # Default switches 0.5 m and 0.25 m from each terminal: limits sqrt(2 x 0.75 x d) + 0.1 m/s = 0.966 and 0.712.
    (0b001, 0, 0.95, True, False),  # past the outer switch, below its limit
    (0b001, 0, 0.98, True, True),  # ... above it
    (0b011, 0, 0.75, True, True),  # past both: the inner switch's limit
    (0b011, 0, 0.70, True, False),
    (0b011, 0, -0.98, True, False),  # moving away from the top terminal
    (0, 0b011, -0.75, True, True),  # towards the bottom
    (0, 0b011, 0.75, True, False),
    (0b011, 0, 0.75, False, True),  # judged whatever the count says, trusted or not
    (0b100, 0, 0.98, True, False),  # a switch the configuration does not name limits nothing
])
def test_the_slowdown_switches_limit_the_speed_whatever_the_count_says(top: int, bottom: int, speed_m_s: float,
                                                                       trusted: bool, raised: bool) -> None:
    # In the middle of the shaft by the count: the count-based limit would let any speed pass.
    inputs = Inputs(tick=1, position_m=7.0, speed_m_s=speed_m_s, slowdown_top=top, slowdown_bottom=bottom)
    assert (Fault.TERMINAL_SPEED in detect(inputs, SWITCHED, False, position_trusted=trusted)) is raised
    # A stale car-top reading is not judged: car_top_stale has stopped the car.
    stale = Inputs(tick=1, position_m=7.0, speed_m_s=speed_m_s, slowdown_top=top, slowdown_bottom=bottom,
                   car_top_age_ticks=6)
    assert Fault.TERMINAL_SPEED not in detect(stale, SWITCHED, False, position_trusted=trusted)


@pytest.mark.parametrize(("position_m", "top", "bottom", "agree"), [
    (7.0, 0, 0, True),  # mid-shaft: nothing actuated
    (14.5, 0b11, 0, True),  # at the top landing: both top switches
    (14.1, 0b01, 0, True),  # 0.4 m below it: the outer one only
    (14.5, 0b01, 0, False),  # the inner one dead (or not fitted)
    (7.0, 0b01, 0, False),  # stuck actuated mid-shaft (a broken wire reads as actuated)
    (0.0, 0, 0b11, True),
    (0.0, 0b11, 0b11, False),  # top switches at the bottom landing: wiring
    (7.0, 0b100, 0, False),  # a bit for a switch the configuration does not name
    (14.0, 0, 0, True),  # right at the outer switch (0.5 m): within the tolerance either way
    (14.0, 0b01, 0, True),
])
def test_a_slowdown_switch_that_disagrees_with_the_count_at_rest_is_a_fault(position_m: float, top: int,
                                                                             bottom: int, agree: bool) -> None:
    inputs = Inputs(tick=1, position_m=position_m, slowdown_top=top, slowdown_bottom=bottom)
    assert (Fault.SLOWDOWN_SWITCH not in detect(inputs, SWITCHED, False)) is agree
    # Not judged on an untrusted count, nor while moving (the reading and the count are not taken together).
    assert Fault.SLOWDOWN_SWITCH not in detect(inputs, SWITCHED, False, position_trusted=False)
    assert Fault.SLOWDOWN_SWITCH not in detect(replace(inputs, speed_m_s=0.1), SWITCHED, False)


def test_without_switches_configured_any_switch_bit_is_a_fault() -> None:
    assert Fault.SLOWDOWN_SWITCH in detect(Inputs(tick=1, position_m=14.5, slowdown_top=0b1), LIMITS, False)
    assert Fault.SLOWDOWN_SWITCH not in detect(Inputs(tick=1, position_m=14.5), LIMITS, False)


def test_a_chain_opened_by_open_doors_is_not_a_fault() -> None:
    opened = Inputs(tick=1, safety_chain_closed=False, door_locked=False, door_closed_limit=False,
                    door_open_limit=True, in_door_zone=False)
    assert Fault.SAFETY_CHAIN_OPEN not in detect(opened, LIMITS, False)


def test_stale_drive_data_is_not_used() -> None:
    present = detect(Inputs(tick=1, drive_age_ticks=10, speed_m_s=5.0, position_m=99.0), LIMITS, False)
    assert present == {Fault.DRIVE_STALE}


def test_relevelling_inside_the_zone_is_not_a_fault() -> None:
    inputs = Inputs(tick=1, speed_m_s=0.05, door_locked=False, in_door_zone=True, drive_running=True)
    assert detect(inputs, LIMITS, relevelling=True) == set()


def test_latched_fault_stays_until_reset_and_condition_gone() -> None:
    events: list[Event] = []
    active = update_faults(frozenset(), {Fault.UNINTENDED_MOVEMENT}, False, 1, events)
    assert active == {Fault.UNINTENDED_MOVEMENT}
    assert events[0].kind is EventKind.FAULT_RAISED
    assert update_faults(active, set(), False, 2, events) is active  # condition gone, no reset: stays
    still = update_faults(active, {Fault.UNINTENDED_MOVEMENT}, True, 3, events)
    assert still == active  # reset while the condition persists does nothing
    cleared = update_faults(active, set(), True, 4, events)
    assert cleared == frozenset()
    assert events[-1].kind is EventKind.FAULT_CLEARED


def test_unlatched_fault_clears_with_its_condition() -> None:
    active = update_faults(frozenset(), {Fault.DRIVE_STALE}, False, 1, [])
    assert update_faults(active, set(), False, 2, []) == frozenset()


def test_every_fault_has_a_level_and_code() -> None:
    codes = [spec.code for spec in FAULTS.values()]
    assert len(set(codes)) == len(codes)
    assert set(FAULTS) == set(Fault)
    for fault in (Fault.OVERSPEED, Fault.SHAFT_LIMIT, Fault.UNINTENDED_MOVEMENT):
        assert FAULTS[fault].latched and FAULTS[fault].level is FaultLevel.STOP_NOW
    assert worst_level(frozenset({Fault.OVERLOAD, Fault.LANDING_STALE})) == FaultLevel.NO_NEW_TRIPS
    assert worst_level(frozenset({Fault.OVERLOAD, Fault.CAR_PANEL_STALE})) == FaultLevel.STOP_AT_NEXT_LANDING


def test_no_run_with_doors_unlocked() -> None:
    events: list[Event] = []
    run = Commands(run_up=True, speed_ref_m_s=0.5)
    out = enforce(run, frozenset(), Inputs(tick=1, door_locked=False), False, 1, events)
    assert not out.run_up and out.quick_stop and out.speed_ref_m_s == 0.0
    assert events[0].kind is EventKind.COMMAND_BLOCKED


def test_relevel_run_allowed_only_in_zone_and_slow() -> None:
    relevel = Commands(run_down=True, speed_ref_m_s=0.05)
    in_zone = Inputs(tick=1, door_locked=False, in_door_zone=True)
    assert enforce(relevel, frozenset(), in_zone, True, 1, []) is relevel
    outside = Inputs(tick=1, door_locked=False, in_door_zone=False)
    assert not enforce(relevel, frozenset(), outside, True, 1, []).run_down
    fast = Commands(run_down=True, speed_ref_m_s=0.5)
    assert not enforce(fast, frozenset(), in_zone, True, 1, []).run_down


def test_stop_now_fault_overrides_everything() -> None:
    run = Commands(run_up=True, speed_ref_m_s=1.0)
    out = enforce(run, frozenset({Fault.OVERSPEED}), Inputs(tick=1), False, 1, [])
    assert (out.run_up, out.run_down, out.speed_ref_m_s, out.quick_stop) == (False, False, 0.0, True)


def test_both_directions_at_once_is_blocked() -> None:
    out = enforce(Commands(run_up=True, run_down=True), frozenset(), Inputs(tick=1), False, 1, [])
    assert not out.run_up and not out.run_down


def test_every_fault_is_in_the_fault_table_and_the_remedies() -> None:
    """docs/faults.md and docs/fault-remedies.md name each fault with its code: a fault added without them would
    leave the technician at the car with nothing to go on."""
    from pathlib import Path

    from carctl.core.faults import FAULTS

    docs = Path(__file__).resolve().parents[2] / "docs"
    table, remedies = (docs / "faults.md").read_text(), (docs / "fault-remedies.md").read_text()
    for fault, spec in FAULTS.items():
        assert f"| {spec.code} | `{fault.value}` |" in table, fault
        assert f"## {spec.code} `{fault.value}`" in remedies, fault
