"""Brake monitoring and the periodic brake test (issue 16, EN 81-20 5.6.7.3; docs/faults.md, "Brake monitoring and
the brake test"), as procedures in the lockstep simulator: each first checks that the brake's fault really happened
in the shaft, then the controller's reaction."""

from __future__ import annotations

from typing import Any

import pytest

from carctl.core.phases import Phase
from carctl.core.signals import EventKind
from carctl.core.supervisor import Fault
from sim.procedures import SimulatedCar

# A gearless machine's two brake circuits, each with its contact wired to the drive.
TWO_CONTACTS: dict[str, Any] = {"car": {"brake_contacts": 2}, "physics": {"brake_contacts": 2}}


def brake_tested_hourly(**physics: object) -> dict[str, Any]:
    return {"car": {"brake_test_every_h": 1.0}, "physics": physics}


def brake_tests(car: SimulatedCar) -> list[str]:
    return [event.detail for event in car.events_of(EventKind.BRAKE_TEST)]


def test_a_healthy_brake_with_two_contacts_serves_as_before_and_raises_nothing() -> None:
    car = SimulatedCar(TWO_CONTACTS)
    car.ride_to(4)
    car.ride_to(0)
    assert car.faults == frozenset() and car.sim.violation_count == 0
    assert car.shaft.brake_contacts() == 0  # standing: both dropped (they read lifted during the runs)


def test_a_brake_that_does_not_lift_stops_the_run_at_once_and_blocks_the_car_until_the_reset() -> None:
    car = SimulatedCar(TWO_CONTACTS)
    car.inject("brake_stuck_closed")
    car.press_car_call(3)
    car.wait_until(lambda: car.shaft.brake_open, within_s=10, what="the drive opens the brake")
    assert car.shaft.brake_contacts() == 0 and car.shaft.speed_m_s == 0.0  # the brake did not lift
    took_s = car.wait_fault(Fault.BRAKE_NOT_LIFTED, within_s=2.0)
    assert 0.4 <= took_s <= 0.6 + 0.1  # car.brake_lift_limit_s, give or take the status's ticks
    car.wait_until(lambda: not car.shaft.brake_open, within_s=0.2, what="the brake dropped by the quick stop")
    assert car.sim.commands.quick_stop
    car.clear("brake_stuck_closed")
    car.run_for(30.0)
    assert Fault.BRAKE_NOT_LIFTED in car.faults and car.landing == 0  # latched: no new run
    assert car.shaft.brake_lifts == 1 and car.shaft.position_m == 0.0  # the one attempt, which moved nothing
    car.restart_controller()  # latched faults survive a restart
    car.run_for(5.0)
    assert Fault.BRAKE_NOT_LIFTED in car.faults and car.landing == 0
    car.reset_faults()
    car.run_for(0.1)
    assert Fault.BRAKE_NOT_LIFTED not in car.faults
    car.press_car_call(3)
    car.wait_doors("open", within_s=60, at=3)
    assert car.sim.violation_count == 0


def test_a_brake_that_does_not_drop_is_a_latched_fault_and_the_doors_stay_closed_on_a_free_car() -> None:
    car = SimulatedCar(TWO_CONTACTS)
    car.inject("brake_stuck_open")
    car.press_car_call(2)
    car.wait_until(lambda: car.shaft.brake_hanging, within_s=30, what="stopped with the brake hanging")
    assert car.shaft.brake_contacts() == 0b11 and not car.shaft.brake_open  # the drive dropped it; it hangs
    took_s = car.wait_fault(Fault.BRAKE_NOT_DROPPED, within_s=2.0)
    assert took_s <= 0.6
    # Nothing holds the car: it creeps until the rope gripper stops it, outside the door zone, doors closed.
    car.wait_until(lambda: car.shaft.gripped and car.shaft.speed_m_s == 0.0, within_s=10, what="gripped")
    assert car.doors == "closed" and car.shaft.door_locked()
    assert car.sim.violation_count == 0
    car.press_car_call(4)
    car.run_for(20.0)
    assert car.shaft.speed_m_s == 0.0 and Fault.BRAKE_NOT_DROPPED in car.faults
    car.reset_faults()  # refused while the contacts still read lifted
    car.run_for(1.0)
    assert Fault.BRAKE_NOT_DROPPED in car.faults


def test_one_contact_stuck_lifted_stops_new_trips_but_lets_the_passengers_out() -> None:
    car = SimulatedCar(TWO_CONTACTS)
    car.ride_to(2)
    car.inject("brake_contact_stuck")
    assert car.shaft.brake_contacts() == 0b10
    car.wait_fault(Fault.BRAKE_CONTACTS_DISAGREE, within_s=1.0)
    car.press_car_call(5)
    car.run_for(20.0)
    assert car.landing == 2 and car.shaft.brake_lifts == 1  # the ride to 2 only: no new trip
    car.press_door_open()
    car.wait_doors("open", within_s=10, at=2)  # one circuit holds the car: the doors still open
    car.clear("brake_contact_stuck")
    car.run_for(0.2)  # the key clears the fault only once the contacts have agreed steadily (0.1 s, brake.py)
    car.reset_faults()
    car.run_for(0.1)
    assert Fault.BRAKE_CONTACTS_DISAGREE not in car.faults
    car.wait_doors("open", within_s=60, at=5)


def test_without_contacts_configured_the_drives_contact_bits_are_not_judged() -> None:
    """The default: car.brake_contacts = 0. A drive that reports contacts (or reports nonsense in bits 10-11) changes
    nothing."""
    car = SimulatedCar({"physics": {"brake_contacts": 2}})
    car.inject("brake_contact_stuck")
    car.ride_to(3)
    assert car.faults == frozenset()


def test_a_healthy_brake_passes_the_periodic_test_and_service_goes_on() -> None:
    car = SimulatedCar(brake_tested_hourly())
    car.wait_until(lambda: bool(brake_tests(car)), within_s=700, what="the first brake test")
    assert brake_tests(car) == ["passed:0"]
    assert car.faults == frozenset() and car.phase is Phase.STANDING
    car.press_car_call(3)
    car.wait_doors("open", within_s=30, at=3)
    car.wait_until(lambda: len(brake_tests(car)) == 2, within_s=3700, what="the next brake test, an hour on")
    assert brake_tests(car) == ["passed:0", "passed:0"] and car.sim.violation_count == 0


def test_a_weak_brake_is_found_by_the_periodic_test_and_blocks_the_car() -> None:
    car = SimulatedCar(brake_tested_hourly())
    car.inject("weak_brake")
    car.ride_to(2)
    assert car.faults == frozenset()  # it holds the car in service: only the test can find it
    car.wait_fault(Fault.BRAKE_SLIPPING, within_s=700)
    assert brake_tests(car)[-1].startswith("slipped:")
    car.wait_until(lambda: car.shaft.speed_m_s == 0.0, within_s=2.0, what="held again once the torque went")
    assert not car.sim.commands.brake_test and car.sim.commands.quick_stop
    lifts = car.shaft.brake_lifts
    car.press_hall_call(4, "down")
    car.run_for(30.0)
    assert car.shaft.brake_lifts == lifts and Fault.BRAKE_SLIPPING in car.faults
    car.restart_controller()
    car.run_for(2.0)
    assert Fault.BRAKE_SLIPPING in car.faults


def test_a_call_during_the_test_ends_it_and_is_served_at_once() -> None:
    car = SimulatedCar(brake_tested_hourly())
    car.wait_until(lambda: car.sim.commands.brake_test, within_s=700, what="a brake test under way")
    car.press_hall_call(4, "down")
    car.wait_doors("open", within_s=30, at=4)
    assert brake_tests(car) == ["abandoned"] and car.faults == frozenset()


def test_a_drive_that_does_not_answer_the_test_shows_it_and_serves_on() -> None:
    car = SimulatedCar(brake_tested_hourly(brake_test=False))
    car.wait_fault(Fault.BRAKE_TEST_UNANSWERED, within_s=700)
    assert brake_tests(car) == ["no_answer"]
    car.press_car_call(3)
    car.wait_doors("open", within_s=30, at=3)  # display only


@pytest.mark.parametrize("kind", ["brake_stuck_closed", "brake_stuck_open", "brake_contact_stuck", "weak_brake"])
def test_a_scenario_file_takes_the_brake_faults(kind: str) -> None:
    car = SimulatedCar({"events": [{"t_s": 1.0, "type": "fault", "kind": kind}]})
    car.run_for(1.0)
    assert kind in car.shaft.injected


def test_the_simulated_drive_on_the_wire_reports_the_contacts_and_answers_the_brake_test_in_its_registers() -> None:
    """`sim serve`'s Modbus drive runs the same shaft as the lockstep: what a master writes to CONTROL (bit4) the
    shaft's drive acts on, and STATUS carries the contacts (bits 10-11) and the torque held (bit12)."""
    from carctl.core.config import ControllerConfig
    from carctl.protocol import drive_map
    from sim.drive import SimulatedDrive
    from sim.panels import PanelBoards
    from sim.physics import PhysicsConfig, Shaft

    shaft = Shaft(ControllerConfig(), PhysicsConfig(brake_contacts=2))
    drive = SimulatedDrive(shaft, PanelBoards(shaft, 6, 0))

    def write(command: drive_map.DriveCommand, watchdog: int) -> int:
        drive.registers[drive_map.CONTROL:drive_map.CONTROL + 3] = drive_map.encode_command(command, watchdog)
        drive.step(watchdog * 0.02)
        return drive.registers[drive_map.STATUS]

    status = write(drive_map.DriveCommand(brake_test=True), 1)
    assert status & drive_map.BRAKE_TEST_TORQUE and not status & (drive_map.BRAKE_CONTACT_1 | drive_map.BRAKE_CONTACT_2)
    status = write(drive_map.DriveCommand(), 2)
    assert not status & drive_map.BRAKE_TEST_TORQUE
    for watchdog in range(3, 40):  # a run: the brake lifts after physics.brake_open_s
        status = write(drive_map.DriveCommand(run_up=True, speed_ref_m_s=0.5), watchdog)
    assert status & drive_map.BRAKE_OPEN and status & drive_map.BRAKE_CONTACT_1 and status & drive_map.BRAKE_CONTACT_2
    shaft.inject("brake_contact_stuck")
    for watchdog in range(40, 200):
        status = write(drive_map.DriveCommand(), watchdog)
    assert not status & drive_map.BRAKE_OPEN and status & 0x1C00 == drive_map.BRAKE_CONTACT_2


def test_a_fault_the_drive_had_before_a_comm_loss_trip_stands_after_its_reset() -> None:
    """An overcurrent trip injected, then the controller silent (killed) until the drive trips on comm loss, then
    heard again with the fault-reset bit: the reset ends the comm-loss trip, and the overcurrent fault is still
    there (the car must not be released by a controller restart; hil_tests/test_alarm_platform_wire.py)."""
    from carctl.core.config import ControllerConfig
    from carctl.protocol import drive_map
    from sim.drive import SimulatedDrive
    from sim.panels import PanelBoards
    from sim.physics import DRIVE_FAULT_CODES, PhysicsConfig, Shaft

    shaft = Shaft(ControllerConfig(), PhysicsConfig())
    drive = SimulatedDrive(shaft, PanelBoards(shaft, 6, 0))

    def write(command: drive_map.DriveCommand, watchdog: int, now_s: float) -> None:
        drive.registers[drive_map.CONTROL:drive_map.CONTROL + 3] = drive_map.encode_command(command, watchdog)
        drive.step(now_s)

    write(drive_map.DriveCommand(), 1, 0.0)
    shaft.inject("drive_fault")
    write(drive_map.DriveCommand(), 2, 0.02)
    assert shaft.drive_fault_code == DRIVE_FAULT_CODES["drive_fault"]
    write(drive_map.DriveCommand(), 2, 2.0)  # the watchdog unchanged for 2 s: the comm-loss trip
    assert drive.comm_loss_trip
    write(drive_map.DriveCommand(fault_reset=True), 3, 2.02)
    assert not drive.comm_loss_trip and shaft.drive_fault_code == DRIVE_FAULT_CODES["drive_fault"]
    shaft.clear("drive_fault")
    write(drive_map.DriveCommand(), 4, 2.04)
    assert shaft.drive_fault_code == 0
