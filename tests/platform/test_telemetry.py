"""State and event messages for the platform, and the trapped-passenger alarm, from a simulated car."""

from __future__ import annotations

from dataclasses import replace

from carctl.core.signals import EventKind, Inputs
from carctl.core.supervisor import Fault
from carctl.platform.telemetry import TRAPPED_AFTER_S, TrappedDetector, event_message, state_message
from sim.procedures import SimulatedCar


def now_inputs(car: SimulatedCar) -> Inputs:
    """The inputs the car sees now (the simulator skips idle ticks, so take the last ones at the current tick)."""
    inputs = car.sim._previous_inputs
    assert inputs is not None
    return replace(inputs, tick=car.sim.tick)


def test_state_message_carries_the_running_state() -> None:
    car = SimulatedCar()
    car.press_car_call(3)
    car.wait_doors("open", within_s=30, at=3)
    car.set_extra_load(315.0)
    car.run_for(0.1)
    inputs = car.sim._previous_inputs
    assert inputs is not None
    message = state_message(car.sim.state, inputs, 630.0, face_on=False, loop_lag_p99_ms=0.08, time_s=100.0)
    assert message["landing"] == 3 and message["door"] in ("open", "opening")
    assert message["load_pct"] == 50.0 and message["mode"] == "normal" and message["faults"] == []


def test_fault_and_mode_events_become_platform_events_with_categories() -> None:
    car = SimulatedCar()
    car.press_car_call(4)
    car.wait_until(lambda: car.shaft.position_m > 3.0, within_s=30, what="moving")
    car.inject("drive_fault")
    car.wait_fault(Fault.DRIVE_FAULT, within_s=1.0)
    car.switch_mode("out_of_service")
    car.run_for(0.1)
    messages = [m for m in (event_message(e, 0.02, 1.0, car.shaft.drive_fault_code) for e in car.events)
                if m is not None]
    raised = next(m for m in messages if m["kind"] == "fault_raised")
    assert raised["category"] == "faults_and_alarms" and raised["fault"] == "drive_fault" and raised["code"] == 21
    assert raised["drive_code"] == 0x21  # the drive's own code: overcurrent
    assert raised["level"] == 4 and "drive" in raised["meaning"]
    mode = next(m for m in messages if m["kind"] == "mode_changed")
    assert (mode["mode_from"], mode["mode_to"], mode["category"]) == ("normal", "out_of_service", "running_state")
    assert len({m["id"] for m in messages}) == len(messages)
    assert not any(m["kind"] == EventKind.DOORS_OPEN.value for m in messages)  # the platform does not need those


def test_a_rescue_and_a_correction_run_reach_the_platform() -> None:
    car = SimulatedCar()
    car.press_car_call(4)
    car.wait_until(lambda: 6.3 < car.shaft.position_m < 7.3, within_s=30, what="between landings")
    car.inject("power_loss")
    car.wait_doors("open", within_s=30)
    car.clear("power_loss")
    car.inject("position_lost")
    car.wait_doors("closed", within_s=30)
    car.wait_until(lambda: not car.shaft.position_unreferenced, within_s=60, what="referenced")
    car.run_for(1.0)
    messages = [m for m in (event_message(e, 0.02, 1.0) for e in car.events) if m is not None]
    rescued = [m for m in messages if m["kind"] == "rescued"]
    assert [(m["category"], m["landing"]) for m in rescued] == [("faults_and_alarms", 3)]
    corrections = [(m["stage"], m["reason"]) for m in messages if m["kind"] == "correction_run"]
    assert corrections == [("started", "unreferenced"), ("done", "")]
    modes = [(m["mode_from"], m["mode_to"]) for m in messages if m["kind"] == "mode_changed"]
    assert modes == [("normal", "rescue"), ("rescue", "normal")]


def test_a_passenger_stuck_between_floors_raises_one_alarm_after_30_s() -> None:
    car = SimulatedCar()
    car.set_extra_load(80.0)
    car.press_car_call(5)
    car.wait_until(lambda: 6.5 < car.shaft.position_m < 7.5, within_s=30, what="between landings")
    car.inject("drive_fault")  # and it does not clear
    detector = TrappedDetector(car.sim.period_s)
    alarms = []
    for _ in range(int((TRAPPED_AFTER_S + 5) / 0.5)):
        car.run_for(0.5)
        alarm = detector.update(car.sim.state, now_inputs(car))
        if alarm:
            alarms.append((car.t_s, alarm))
    assert len(alarms) == 1
    assert alarms[0][1]["cause"] == "outside the door zone" and alarms[0][1]["waited_s"] >= TRAPPED_AFTER_S
    car.clear("drive_fault")
    car.wait_doors("open", within_s=60)
    assert detector.update(car.sim.state, now_inputs(car)) is None and not detector.alarmed


def test_an_empty_car_stuck_is_not_an_entrapment() -> None:
    car = SimulatedCar()
    car.press_car_call(5)
    car.wait_until(lambda: 6.5 < car.shaft.position_m < 7.5, within_s=30, what="between landings")
    car.inject("drive_fault")
    detector = TrappedDetector(car.sim.period_s)
    for _ in range(80):
        car.run_for(0.5)
        assert detector.update(car.sim.state, now_inputs(car)) is None
