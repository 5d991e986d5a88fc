"""Automatic rescue after a power failure, and the correction run after a restart with an untrusted position, as
procedures against the lockstep simulator. Each first checks in the simulated shaft that the mains really failed
(the drive tripped, the car stopped outside the door zone) or that the count really is wrong, then asserts the
reaction and the recovery."""

from carctl.core.controller import Phase
from carctl.core.signals import EventKind, Mode
from carctl.core.supervisor import Fault
from carctl.protocol.drive_map import DriveFaultCode
from sim.procedures import SimulatedCar

LANDINGS_M = (0.0, 2.9, 5.8, 8.7, 11.6, 14.5)


def stop_between_landings_by_a_power_failure(car: SimulatedCar, low_m: float, high_m: float) -> None:
    """Ride up with whoever is in the car, cut the mains between two landings, and check it really happened."""
    car.press_car_call(5)
    car.wait_until(lambda: low_m < car.shaft.position_m < high_m and car.shaft.speed_m_s > 0.5, within_s=60,
                   what="running between the landings")
    car.inject("power_loss")
    car.run_for(0.1)
    assert car.shaft.drive_fault_code == DriveFaultCode.UNDERVOLTAGE and not car.shaft.on_battery
    car.wait_until(lambda: car.shaft.speed_m_s == 0.0, within_s=2, what="stopped by the trip")
    assert not car.shaft.in_door_zone(), "the car must be stranded between landings for this procedure"


def test_a_light_car_is_rescued_upwards_to_the_next_landing_and_waits_open_for_the_mains() -> None:
    car = SimulatedCar({"car": {"park_delay_s": 600.0}})
    car.add_passenger(0, 5, mass_kg=75.0)  # car + 75 kg is lighter than the counterweight (car + 283 kg)
    car.wait_until(lambda: len(car.sim.flow.in_car) == 1, within_s=30, what="passenger aboard")
    stop_between_landings_by_a_power_failure(car, 6.3, 7.3)
    stranded_m = car.shaft.position_m
    # The rescue device takes over after 3 s; the car goes up (the easier way) at rescue speed and opens.
    car.wait_until(lambda: car.sim.state.mode is Mode.RESCUE, within_s=4, what="rescue mode")
    assert car.shaft.on_battery
    fastest = car.fastest_until(lambda: car.doors == "open", within_s=30, what="doors open")
    assert car.landing == 3 and car.shaft.position_m > stranded_m
    assert abs(car.shaft.position_m - LANDINGS_M[3]) <= 0.010
    assert fastest <= 0.2 * 1.05
    rescued = car.events_of(EventKind.RESCUED)
    assert [event.landing for event in rescued] == [3]
    assert car.sim.commands.rescue_notice
    # Everyone can leave: the passenger steps out at landing 3 although they wanted 5.
    car.wait_until(lambda: not car.sim.flow.in_car, within_s=10, what="passenger out")
    assert [passenger.destination for passenger in car.sim.flow.evacuated] == [5]
    # Out of service on the battery: calls are not taken, the doors stay open, the car stays.
    car.press_hall_call(0, "up")
    car.press_car_call(5)
    car.run_for(300.0)
    assert not car.sim.state.calls.any() and car.doors == "open" and car.landing == 3
    assert car.sim.state.mode is Mode.RESCUE and car.sim.report(0.0)["safety_violations"] == 0
    # The mains return: back to normal service, the doors close after the dwell, a call is served.
    car.clear("power_loss")
    car.run_for(0.1)
    assert car.sim.state.mode is Mode.NORMAL and not car.sim.commands.rescue_notice
    car.wait_doors("closed", within_s=15)
    car.press_hall_call(1, "up")
    car.wait_doors("open", within_s=30, at=1)
    modes = [event.detail for event in car.events_of(EventKind.MODE_CHANGED)]
    assert modes == ["normal->rescue", "rescue->normal"]
    assert car.sim.report(0.0)["safety_violations"] == 0


def test_a_heavy_car_is_rescued_downwards() -> None:
    car = SimulatedCar()
    car.set_extra_load(450.0)  # car + 450 kg outweighs the counterweight by 167 kg
    stop_between_landings_by_a_power_failure(car, 6.3, 7.3)
    stranded_m = car.shaft.position_m
    fastest = car.fastest_until(lambda: car.doors == "open", within_s=40, what="doors open")
    assert car.landing == 2 and car.shaft.position_m < stranded_m
    assert abs(car.shaft.position_m - LANDINGS_M[2]) <= 0.010 and fastest <= 0.21
    assert [event.landing for event in car.events_of(EventKind.RESCUED)] == [2]
    assert car.shaft.drive_fault_code == 0  # the battery-fed drive managed it: no overcurrent trip


def test_the_simulated_rescue_device_cannot_lift_the_heavy_side() -> None:
    """The other half of the evidence: a controller told the wrong balance (it believes the counterweight is only
    the empty car) rescues a light car downwards, lifting the counterweight's surplus, and the battery-fed drive
    trips. The car stays stranded, out of the door zone, and the passenger is not released."""
    car = SimulatedCar({"car": {"balance_fraction": 0.0}})
    car.add_passenger(0, 5, mass_kg=75.0)
    car.wait_until(lambda: len(car.sim.flow.in_car) == 1, within_s=30, what="passenger aboard")
    stop_between_landings_by_a_power_failure(car, 6.3, 7.3)
    car.wait_until(lambda: car.shaft.drive_fault_code == DriveFaultCode.OVERCURRENT, within_s=10,
                   what="overcurrent on the battery")
    car.run_for(60.0)
    assert not car.shaft.in_door_zone() and car.doors == "closed" and not car.events_of(EventKind.RESCUED)


def test_a_car_standing_at_a_landing_when_the_mains_fail_opens_there_without_moving() -> None:
    car = SimulatedCar()
    car.ride_to(4)
    car.wait_until(lambda: car.landing == 4 and car.phase is Phase.STANDING, within_s=30, what="standing at 4")
    car.inject("power_loss")
    car.run_for(0.1)
    assert car.shaft.drive_fault_code == DriveFaultCode.UNDERVOLTAGE
    car.wait_doors("open", within_s=10, at=4)
    assert car.sim.trips == 1 and [event.landing for event in car.events_of(EventKind.RESCUED)] == [4]


def test_the_doors_stop_while_the_mains_are_off_and_finish_once_the_battery_takes_over() -> None:
    car = SimulatedCar()
    car.press_car_call(2)
    car.wait_until(lambda: car.doors == "opening", within_s=30, what="doors opening")
    car.inject("power_loss")
    car.run_for(0.5)
    fraction = car.shaft.door_open_fraction()
    car.run_for(2.0)
    assert car.shaft.door_open_fraction() == fraction and 0 < fraction < 1  # the door operator has no power
    car.wait_doors("open", within_s=5, at=2)
    assert car.sim.state.mode is Mode.RESCUE and car.sim.commands.rescue_notice


def test_no_rescue_run_in_inspection_a_mechanic_may_be_on_the_car_top() -> None:
    car = SimulatedCar()
    car.set_extra_load(450.0)
    stop_between_landings_by_a_power_failure(car, 6.3, 7.3)
    car.switch_mode("inspection")
    car.run_for(30.0)
    assert car.shaft.on_battery and car.sim.state.mode is Mode.INSPECTION
    assert not car.shaft.in_door_zone() and car.sim.trips == 1
    car.switch_mode("normal")  # inspection off, still on the battery: the rescue runs now
    car.run_for(0.1)
    assert car.sim.state.mode is Mode.RESCUE
    car.wait_doors("open", within_s=40, at=2)


def test_without_a_rescue_device_the_car_waits_and_after_the_mains_return_makes_a_correction_run() -> None:
    car = SimulatedCar({"physics": {"rescue_device": False}})
    stop_between_landings_by_a_power_failure(car, 6.3, 7.3)
    car.run_for(120.0)
    assert car.sim.state.mode is Mode.NORMAL and not car.shaft.in_door_zone()  # nothing to move it with
    stranded_m = car.shaft.position_m
    # The mains return: the drive restarts with its count at zero, unreferenced, although the car is at ~6.8 m.
    car.clear("power_loss")
    assert car.shaft.position_unreferenced and abs(car.shaft.encoder_m()) < 0.001
    def corrected() -> bool:
        assert car.phase is not Phase.CORRECTING or car.shaft.door_locked()
        return not car.shaft.position_unreferenced

    fastest = car.fastest_until(corrected, within_s=60, what="count referenced at the mark")
    car.run_for(car.sim.period_s)
    assert [event.detail for event in car.events_of(EventKind.CORRECTION_RUN)] == ["started:unreferenced", "done"]
    assert fastest <= 0.25 * 1.05 and car.shaft.position_m < stranded_m
    # The run stops just past the mark; the car then levels at the nearest landing on the corrected position.
    car.wait_until(lambda: car.phase is Phase.STANDING, within_s=30, what="standing after the recovery")
    assert car.landing == 0 and abs(car.shaft.position_m - LANDINGS_M[0]) <= 0.010
    assert abs(car.shaft.encoder_m() - car.shaft.position_m) <= 0.001
    assert Fault.SHAFT_LIMIT not in car.faults  # the count ran negative on the way; it was not believed
    car.press_car_call(4)
    car.wait_doors("open", within_s=40, at=4)
    assert abs(car.shaft.position_m - LANDINGS_M[4]) <= 0.010
    assert car.sim.report(0.0)["safety_violations"] == 0


def test_a_controller_restart_with_the_count_lost_corrects_upwards_from_below_the_mark() -> None:
    car = SimulatedCar()
    car.inject("position_lost")  # at the bottom landing, below the mark: the count reads 0 and is unreferenced
    assert car.shaft.below_mark and car.shaft.position_unreferenced
    car.restart_controller()
    car.press_car_call(3)  # a call made meanwhile waits for the correction, then is served
    car.wait_until(lambda: not car.shaft.position_unreferenced, within_s=20, what="referenced")
    assert car.sim.state.direction > 0
    car.wait_doors("open", within_s=40, at=3)
    assert abs(car.shaft.position_m - LANDINGS_M[3]) <= 0.010
    assert [event.detail for event in car.events_of(EventKind.CORRECTION_RUN)] == ["started:unreferenced", "done"]


def test_a_count_that_disagrees_with_the_door_zone_sensor_at_power_up_is_corrected() -> None:
    car = SimulatedCar()
    car.ride_to(3)
    car.wait_until(lambda: car.phase is Phase.STANDING, within_s=10, what="standing at 3")
    # The count slipped by half a floor while the controller was down; the drive still claims it is referenced.
    car.shaft.count_offset_m = -1.45
    assert car.shaft.in_door_zone() and not car.shaft.position_unreferenced
    car.restart_controller()
    car.wait_until(lambda: car.phase is Phase.CORRECTING, within_s=2, what="correction run")
    assert [event.detail for event in car.events_of(EventKind.CORRECTION_RUN)] == ["started:zone_mismatch"]
    car.wait_until(lambda: car.phase is Phase.STANDING and car.shaft.speed_m_s == 0.0, within_s=60,
                   what="standing after the correction")
    assert car.landing == 0 and abs(car.shaft.position_m - LANDINGS_M[0]) <= 0.010
    assert abs(car.shaft.encoder_m() - car.shaft.position_m) <= 0.001


def test_a_correction_run_that_does_not_reference_stops_latched_until_a_mechanic_resets_it() -> None:
    car = SimulatedCar()
    car.ride_to(2)
    car.inject("position_lost")
    car.inject("reference_fault")  # the drive will not re-reference at the mark
    car.restart_controller()
    car.wait_fault(Fault.REFERENCE_NOT_FOUND, within_s=60)
    assert car.shaft.below_mark and car.shaft.position_unreferenced  # it did pass the mark
    car.wait_until(lambda: car.shaft.speed_m_s == 0.0, within_s=2, what="stopped")
    car.run_for(60.0)
    assert Fault.REFERENCE_NOT_FOUND in car.faults and car.phase is Phase.HALTED and car.shaft.speed_m_s == 0.0
    # The mechanic repairs the reference input and turns the reset key: the run is made again, upwards now.
    car.clear("reference_fault")
    car.reset_faults()
    car.wait_until(lambda: not car.shaft.position_unreferenced, within_s=20, what="referenced")
    car.wait_until(lambda: car.phase is Phase.STANDING, within_s=30, what="standing")
    assert car.landing == 0 and abs(car.shaft.position_m - LANDINGS_M[0]) <= 0.010
    assert car.sim.report(0.0)["safety_violations"] == 0
