"""The supervisor: detection, latching, reset, and its last word on the drive commands."""

import pytest

from carctl.core.config import ControllerConfig
from carctl.core.signals import Commands, Event, EventKind, Inputs
from carctl.core.supervisor import (FAULTS, Fault, FaultLevel, SupervisorLimits, detect, enforce, update_faults,
                                    worst_level)

LIMITS = SupervisorLimits.from_config(ControllerConfig())


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
