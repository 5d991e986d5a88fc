"""The fault kinds not covered by the service procedures (tests/sim/test_procedures.py), tests/sim/test_modes.py
and tests/sim/test_rescue.py, each as a procedure: first check in the simulated shaft that the fault really
happened, then assert the controller's reaction (docs/faults.md) and the recovery."""

import pytest

from carctl.core.controller import Phase
from carctl.core.signals import EventKind, Mode
from carctl.core.supervisor import Fault
from carctl.core.waiting import waiting_for
from sim.procedures import SimulatedCar

LANDINGS_M = (0.0, 2.9, 5.8, 8.7, 11.6, 14.5)


def test_a_runaway_drive_is_stopped_by_its_speed_deviation_before_overspeed_and_stays_latched() -> None:
    """With the deviation judged tightly (0.25 m/s for 0.1 s; the defaults, 0.3 m/s for 0.5 s, leave room for a
    loaded controller and let overspeed act first on a runaway at rated speed)."""
    car = SimulatedCar({"car": {"speed_deviation_m_s": 0.25, "speed_deviation_s": 0.1}})
    car.press_car_call(5)
    car.wait_until(lambda: car.shaft.speed_m_s > 0.5, within_s=20, what="accelerating")
    planned_then = car.shaft.speed_m_s
    car.inject("drive_runaway")
    fastest = car.fastest_until(lambda: Fault.SPEED_DEVIATION in car.faults, within_s=3, what="speed deviation")
    fastest = max(fastest, car.fastest_until(lambda: car.shaft.speed_m_s == 0.0, within_s=3, what="stopped"))
    # It really ran away from the plan (more than the 0.25 m/s margin), and was stopped before 110 % of rated.
    assert fastest > planned_then + 0.25 and fastest < 1.10
    assert Fault.OVERSPEED not in car.faults
    assert car.sim.report(0.0)["safety_violations"] == 0
    # Latched: with the drive repaired the car still stands until the maintenance reset.
    car.clear("drive_runaway")
    car.run_for(60.0)
    assert Fault.SPEED_DEVIATION in car.faults and car.shaft.speed_m_s == 0.0 and car.phase is Phase.HALTED
    car.reset_faults()
    car.wait_until(lambda: car.phase is Phase.STANDING and car.shaft.speed_m_s == 0.0, within_s=30,
                   what="recovered to a landing")
    assert abs(car.shaft.position_m - LANDINGS_M[car.landing]) <= 0.010 and not car.faults
    car.press_car_call(0)
    car.wait_doors("open", within_s=40, at=0)


def test_with_a_loose_deviation_margin_overspeed_still_stops_a_runaway_before_the_governor_trips() -> None:
    car = SimulatedCar({"car": {"speed_deviation_m_s": 1.0}})
    car.press_car_call(5)
    car.wait_until(lambda: car.shaft.speed_m_s > 0.5, within_s=20, what="accelerating")
    car.inject("drive_runaway")
    fastest = car.fastest_until(lambda: Fault.OVERSPEED in car.faults, within_s=3, what="overspeed")
    fastest = max(fastest, car.fastest_until(lambda: car.shaft.speed_m_s == 0.0, within_s=3, what="stopped"))
    assert fastest >= 1.10 and fastest < 1.15  # past rated speed, stopped before the governor's 115 %
    assert car.sim.report(0.0)["safety_violations"] == 0


def runaway_in_inspection_near_the_top(car: SimulatedCar) -> None:
    """The mechanic drives the car up on the inspection buttons; 10 cm below the top landing the drive runs away."""
    car.ride_to(4)
    car.switch_mode("inspection")
    car.run_for(0.5)
    car.hold_inspection("up")
    car.wait_until(lambda: car.shaft.position_m > LANDINGS_M[5] - 0.10, within_s=30, what="near the top")
    car.inject("drive_runaway")


def test_a_runaway_in_inspection_at_the_top_is_stopped_short_of_the_final_limit_by_terminal_speed_limiting() -> None:
    car = SimulatedCar()
    runaway_in_inspection_near_the_top(car)
    car.wait_fault(Fault.TERMINAL_SPEED, within_s=2)
    car.wait_until(lambda: car.shaft.speed_m_s == 0.0, within_s=2, what="stopped")
    assert car.sim.violations == [] and car.shaft.position_m < LANDINGS_M[5] + 0.05
    car.hold_inspection(None)
    car.clear("drive_runaway")
    car.run_for(10.0)
    assert Fault.TERMINAL_SPEED in car.faults  # latched
    # The mechanic resets it and drives the car down on the inspection buttons.
    car.reset_faults()
    car.run_for(1.1)  # the car has stood still through the fault: it may move at once
    assert not car.faults
    car.hold_inspection("down")
    car.wait_until(lambda: car.shaft.position_m < LANDINGS_M[5] - 0.2, within_s=5, what="driven down")
    car.hold_inspection(None)


def test_a_runaway_in_inspection_at_the_top_trips_the_final_limit_latched() -> None:
    """Without terminal speed limiting (terminal_zone_m = 0, no slowdown switches) the same runaway leaves the car
    beyond the final limit."""
    car = SimulatedCar({"car": {"terminal_zone_m": 0.0, "terminal_switches_m": []}})
    runaway_in_inspection_near_the_top(car)
    car.wait_fault(Fault.SHAFT_LIMIT, within_s=2)
    car.wait_until(lambda: car.shaft.speed_m_s == 0.0, within_s=2, what="stopped")
    # The independent check saw the car really beyond the final limit, and the quick stop held it within 0.15 m.
    assert [violation.kind for violation in car.sim.violations] == ["left_shaft"]
    assert LANDINGS_M[5] + 0.05 < car.shaft.position_m < LANDINGS_M[5] + 0.15
    car.hold_inspection(None)
    car.clear("drive_runaway")
    car.run_for(10.0)
    assert Fault.SHAFT_LIMIT in car.faults
    # The mechanic resets it and drives the car back below the top landing on the inspection buttons.
    car.reset_faults()
    car.run_for(0.1)
    assert Fault.SHAFT_LIMIT in car.faults  # still beyond the limit: the reset waits for the condition to go
    car.hold_inspection("down")
    car.run_for(1.0)
    assert car.shaft.speed_m_s == 0.0  # no movement while a stop-at-once fault stands
    car.hold_inspection(None)


def test_the_door_lock_lost_as_the_drive_starts_stops_it_before_the_car_moves() -> None:
    car = SimulatedCar()
    car.press_car_call(3)
    car.wait_until(lambda: car.phase is Phase.STARTING and car.shaft.drive_running, within_s=20,
                   what="the drive starting")
    start_m = car.shaft.position_m
    car.inject("door_lock_lost")
    assert not car.shaft.door_locked()
    car.wait_fault(Fault.DOOR_LOCK_LOST, within_s=0.1)
    assert car.sim.commands.quick_stop and not (car.sim.commands.run_up or car.sim.commands.run_down)
    car.run_for(1.0)
    assert car.shaft.position_m == start_m and not car.shaft.brake_open and not car.shaft.drive_running
    # Not latched: with the lock made again, the fault clears and the call is served.
    car.clear("door_lock_lost")
    car.wait_until(lambda: Fault.DOOR_LOCK_LOST not in car.faults, within_s=1, what="fault cleared")
    car.wait_doors("open", within_s=30, at=3)
    assert car.sim.report(0.0)["safety_violations"] == 0


def test_a_safety_contact_opening_mid_run_stops_the_car_until_it_closes() -> None:
    car = SimulatedCar()
    car.press_car_call(5)
    car.wait_until(lambda: 4.0 < car.shaft.position_m < 6.0, within_s=20, what="mid-run")
    car.inject("safety_chain_open")
    assert not car.shaft.safety_chain_closed()
    car.wait_fault(Fault.SAFETY_CHAIN_OPEN, within_s=0.1)
    car.wait_until(lambda: car.shaft.speed_m_s == 0.0, within_s=2, what="stopped by the trip")
    stopped_m = car.shaft.position_m
    car.run_for(30.0)
    assert car.shaft.position_m == stopped_m and car.phase is Phase.HALTED
    car.clear("safety_chain_open")
    car.wait_until(lambda: car.phase is Phase.STANDING and car.shaft.speed_m_s == 0.0, within_s=30,
                   what="recovered to the nearest landing")
    nearest = min(range(6), key=lambda n: abs(LANDINGS_M[n] - stopped_m))
    assert car.landing == nearest and abs(car.shaft.position_m - LANDINGS_M[nearest]) <= 0.010
    car.press_car_call(5)
    car.wait_doors("open", within_s=40, at=5)
    assert car.sim.report(0.0)["safety_violations"] == 0


def test_doors_that_will_not_open_stop_new_trips_until_they_do() -> None:
    car = SimulatedCar({"car": {"door_fault_retry_s": 30.0}})
    car.inject("door_jam")  # closed and jammed
    car.add_passenger(0, 3)
    car.wait_until(lambda: car.phase is Phase.STANDING and car.landing == 0, within_s=5, what="standing")
    car.press_hall_call(0, "up")
    car.wait_fault(Fault.DOOR_OPEN_FAILED, within_s=60)
    assert car.doors == "closed" and car.shaft.door_open_fraction() == 0.0
    # No new trips: a call elsewhere is registered but the car stays.
    car.press_hall_call(4, "down")
    car.run_for(20.0)
    assert car.landing == 0 and car.sim.trips == 0
    car.clear("door_jam")
    car.wait_doors("open", within_s=40, at=0)
    car.wait_until(lambda: Fault.DOOR_OPEN_FAILED not in car.faults, within_s=1, what="fault cleared")
    car.wait_until(lambda: car.sim.flow.finished, within_s=60, what="the passenger delivered")
    car.wait_doors("open", within_s=60, at=4)


def test_a_silent_car_top_board_stops_the_car_at_once_and_it_recovers_when_the_board_answers() -> None:
    car = SimulatedCar()
    car.press_car_call(5)
    car.wait_until(lambda: 4.0 < car.shaft.position_m < 6.0, within_s=20, what="mid-run")
    car.inject("car_top_silent")
    car.wait_fault(Fault.CAR_TOP_STALE, within_s=0.2)
    assert car.sim._previous_inputs is not None and car.sim._previous_inputs.car_top_age_ticks > 5
    car.wait_until(lambda: car.shaft.speed_m_s == 0.0, within_s=2, what="stopped")
    car.run_for(10.0)
    assert car.phase is Phase.HALTED and not car.shaft.in_door_zone()
    car.clear("car_top_silent")
    car.wait_doors("open", within_s=40, at=5)  # the car call was kept
    assert car.sim.report(0.0)["safety_violations"] == 0


def test_a_silent_car_panel_lets_the_passengers_out_at_the_next_landing_and_takes_no_one_until_it_answers() -> None:
    """Level 3, stop at the next landing: without the car panel a passenger has no alarm, door or call button."""
    car = SimulatedCar({"car": {"park_delay_s": 600.0}})
    rider = car.add_passenger(0, 5)
    car.wait_until(lambda: car.sim.flow.in_car, within_s=30, what="passenger aboard")
    car.wait_until(lambda: 3.0 < car.shaft.position_m < 4.0, within_s=30, what="on the way up")
    faulted_m = car.shaft.position_m
    car.inject("car_panel_silent")
    car.wait_fault(Fault.CAR_PANEL_STALE, within_s=1)
    car.wait_doors("open", within_s=20)
    assert car.landing in (2, 3, 4) and car.shaft.landings_m[car.landing] > faulted_m  # the next one, not the 5th
    stopped_at = car.landing
    # Held open while someone is inside; no new trip for a landing call meanwhile.
    car.press_hall_call(0, "up")
    car.run_for(60.0)
    assert car.doors == "open" and car.landing == stopped_at and car.sim.trips == 1 and rider in car.sim.flow.in_car
    # The panel answers again: the passenger's call is heard, the car takes them home, then answers the landing.
    car.clear("car_panel_silent")
    car.wait_until(lambda: Fault.CAR_PANEL_STALE not in car.faults, within_s=1, what="fault cleared")
    car.wait_until(lambda: rider in car.sim.flow.finished, within_s=60, what="passenger delivered")
    car.wait_doors("open", within_s=60, at=0)
    assert car.sim.report(0.0)["safety_violations"] == 0


def test_a_silent_landing_board_is_shown_and_the_car_serves_what_it_can_hear() -> None:
    car = SimulatedCar()
    car.inject("landing_silent")
    car.wait_fault(Fault.LANDING_STALE, within_s=2)
    car.press_hall_call(4, "down")  # not heard
    car.press_car_call(1)
    car.wait_doors("open", within_s=30, at=1)
    assert 4 not in car.sim.state.calls.down
    car.clear("landing_silent")
    car.wait_until(lambda: not car.faults, within_s=1, what="faults cleared")
    car.press_hall_call(4, "down")
    car.wait_doors("open", within_s=30, at=4)


def test_a_latched_fault_survives_a_controller_restart_until_the_maintenance_reset() -> None:
    """EN 81-20 5.6.7: only a competent person resets an overspeed; a controller restart (the firmware keeps its
    latches on disk) brings the latch back before the first drive command. (The deviation margin is loosened so
    that the runaway reaches overspeed.)"""
    car = SimulatedCar({"car": {"speed_deviation_m_s": 1.0}})
    car.press_car_call(5)
    car.wait_until(lambda: car.shaft.speed_m_s > 0.5, within_s=20, what="accelerating")
    car.inject("drive_runaway")
    car.wait_fault(Fault.OVERSPEED, within_s=3)
    car.wait_until(lambda: car.shaft.speed_m_s == 0.0, within_s=3, what="stopped")
    car.clear("drive_runaway")
    stopped_m = car.shaft.position_m
    car.restart_controller()
    car.run_for(0.02)  # one tick: the restored latch is raised by the first step, before its commands
    assert Fault.OVERSPEED in car.faults
    assert [event.detail for event in car.events_of(EventKind.FAULT_RAISED)][-1].startswith("overspeed")
    car.run_for(30.0)
    assert Fault.OVERSPEED in car.faults and car.shaft.position_m == stopped_m
    car.reset_faults()
    car.wait_until(lambda: car.phase is Phase.STANDING and car.shaft.speed_m_s == 0.0, within_s=30,
                   what="recovered to a landing")
    assert not car.faults and car.sim.violation_count == 0


def _beyond_the_top_final_limit() -> SimulatedCar:
    """A runaway in inspection with no terminal speed limiting leaves the car beyond the top final limit, latched,
    and the mechanic has left the car top (inspection off)."""
    car = SimulatedCar({"car": {"terminal_zone_m": 0.0, "terminal_switches_m": []}})
    runaway_in_inspection_near_the_top(car)
    car.wait_fault(Fault.SHAFT_LIMIT, within_s=2)
    car.wait_until(lambda: car.shaft.speed_m_s == 0.0, within_s=2, what="stopped")
    car.hold_inspection(None)
    car.clear("drive_runaway")
    car.switch_mode("normal")
    car.run_for(3.0)
    assert car.shaft.position_m > LANDINGS_M[5] + 0.05 and Fault.SHAFT_LIMIT in car.faults
    return car


def test_a_car_beyond_the_final_limit_is_brought_back_by_emergency_electrical_operation() -> None:
    """docs/modes.md "Emergency electrical operation": from the controller cabinet, the final limit bridged, on the
    hold-to-run buttons, at most car.eeo_speed_m_s, only back towards the shaft; then the reset and normal service."""
    car = _beyond_the_top_final_limit()
    limits = car.sim.controller.context.supervisor_limits

    def waiting() -> str:  # what the health record and the platform say the car waits for
        return waiting_for(car.sim.state, car.shaft.encoder_m(), limits)

    assert waiting() == "emergency_electrical_operation"
    car.reset_faults()
    car.run_for(1.0)
    assert Fault.SHAFT_LIMIT in car.faults  # its condition stands: the reset cannot clear it
    assert waiting() == "emergency_electrical_operation"
    car.emergency_electrical(True)
    car.run_for(0.5)
    assert car.sim.state.mode is Mode.EMERGENCY_ELECTRICAL and waiting() == "hold_to_run"
    car.hold_eeo("up")  # farther out: refused
    car.run_for(1.5)
    lifts_before = car.shaft.brake_lifts
    car.run_for(1.5)
    assert car.shaft.speed_m_s == 0.0 and car.shaft.brake_lifts == lifts_before
    car.hold_eeo("down")  # back towards the shaft, the final limit bridged
    fastest_m_s = 0.0
    for _ in range(100):
        car.run_for(0.02)
        fastest_m_s = max(fastest_m_s, abs(car.shaft.speed_m_s))
    assert car.shaft.brake_lifts == lifts_before + 1 and fastest_m_s <= 0.25 + 1e-9
    car.wait_until(lambda: car.shaft.position_m < LANDINGS_M[5] - 0.02, within_s=10, what="back below the top landing")
    car.hold_eeo(None)  # released: the car stops
    car.wait_until(lambda: car.shaft.speed_m_s == 0.0, within_s=1, what="stopped on release")
    assert Fault.SHAFT_LIMIT in car.faults  # still latched, now with its condition gone
    car.emergency_electrical(False)
    car.run_for(0.5)
    assert waiting() == "maintenance_reset"
    car.emergency_electrical(True)
    car.run_for(0.5)
    car.reset_faults()
    car.run_for(0.2)
    assert Fault.SHAFT_LIMIT not in car.faults
    car.emergency_electrical(False)
    car.run_for(2.0)
    assert car.sim.state.mode is Mode.NORMAL
    car.press_car_call(0)
    car.wait_doors("open", within_s=60)
    assert waiting() == ""
    assert car.landing == 0 and car.sim.violations[-1:] and [v.kind for v in car.sim.violations] == ["left_shaft"]


def test_emergency_electrical_operation_gives_way_to_inspection_and_never_bridges_the_doors() -> None:
    car = SimulatedCar()
    car.ride_to(2)
    car.emergency_electrical(True)
    car.run_for(0.5)
    assert car.sim.state.mode is Mode.EMERGENCY_ELECTRICAL
    # Calls are not served, and the doors never open on their own.
    car.press_car_call(4)
    car.run_for(5.0)
    assert car.landing == 2
    # A landing door's lock contact open: the buttons move nothing.
    car.inject("door_lock_lost")
    car.hold_eeo("up")
    car.run_for(2.0)
    assert car.shaft.speed_m_s == 0.0 and abs(car.shaft.position_m - LANDINGS_M[2]) < 0.02
    car.hold_eeo(None)
    car.clear("door_lock_lost")
    car.run_for(2.0)
    # The car-top inspection switch takes the car from the cabinet: its buttons no longer move it.
    car.inspection_switch(True)
    car.run_for(0.5)
    assert car.sim.state.mode is Mode.INSPECTION
    car.hold_eeo("up")
    car.run_for(2.0)
    assert car.shaft.speed_m_s == 0.0 and abs(car.shaft.position_m - LANDINGS_M[2]) < 0.02
    car.hold_eeo(None)
    # The platform cannot take it out of a key-switch mode either.
    car.switch_mode("normal")
    car.run_for(0.5)
    assert car.sim.state.mode is Mode.INSPECTION
    # Inspection off, the cabinet switch still on: emergency electrical operation again, and its buttons move it.
    car.inspection_switch(False)
    car.run_for(0.5)
    assert car.sim.state.mode is Mode.EMERGENCY_ELECTRICAL
    car.hold_eeo("up")
    car.wait_until(lambda: car.shaft.position_m > LANDINGS_M[2] + 0.3, within_s=5, what="moved up from the cabinet")
    car.hold_eeo(None)
    car.wait_until(lambda: car.shaft.speed_m_s == 0.0, within_s=1, what="stopped on release")


def test_a_cabinet_button_held_when_the_switch_is_turned_moves_nothing_until_let_go() -> None:
    car = SimulatedCar()
    car.ride_to(2)
    car.sim.cabinet = (True, True, False)  # the switch turned with "up" held (or stuck)
    car.run_for(2.0)
    assert car.sim.state.mode is Mode.EMERGENCY_ELECTRICAL and abs(car.shaft.position_m - LANDINGS_M[2]) < 0.005
    car.hold_eeo(None)
    car.run_for(0.2)
    car.hold_eeo("up")
    car.wait_until(lambda: car.shaft.position_m > LANDINGS_M[2] + 0.2, within_s=3, what="moved once let go")
    car.hold_eeo(None)
    # Switched on mid-run with a button held: the run ends, and nothing starts the other way while the car moves.
    car.emergency_electrical(False)
    car.run_for(3.0)
    car.press_car_call(5)
    car.wait_until(lambda: car.shaft.speed_m_s > 0.9, within_s=20, what="at rated speed")
    car.sim.cabinet = (True, False, True)
    for _ in range(200):
        car.run_for(0.02)
        commands = car.sim.commands
        assert not (commands.run_down and car.shaft.speed_m_s > 0.001), car.describe()


def test_a_runaway_from_the_cabinet_is_stopped_by_its_speed_long_before_overspeed() -> None:
    car = SimulatedCar()
    car.ride_to(2)
    car.emergency_electrical(True)
    car.run_for(0.5)
    car.hold_eeo("up")
    car.wait_until(lambda: car.shaft.speed_m_s > 0.1, within_s=3, what="moving")
    car.inject("drive_runaway")
    car.wait_fault(Fault.SPEED_DEVIATION, within_s=2)
    car.wait_until(lambda: car.shaft.speed_m_s == 0.0, within_s=2, what="stopped")
    assert Fault.OVERSPEED not in car.faults and car.sim.violations == []


@pytest.mark.parametrize("switches", [[], [0.5, 0.25]])
def test_the_cabinet_does_not_trust_a_lost_count_to_stop_the_car_at_the_terminal(switches: list[float]) -> None:
    """The drive loses its count with the car at the top landing: the count says 0 m. The cabinet's "up" would run
    to the top landing's level by that count, 14.5 m beyond it. Without slowdown switches nothing may move it; with
    them, not towards a terminal whose innermost switch is reached (here the top), still away from it."""
    car = SimulatedCar({"car": {"terminal_switches_m": switches}})
    car.ride_to(5)
    car.wait_doors("closed", within_s=30)
    car.inject("position_lost")
    car.emergency_electrical(True)
    car.run_for(1.5)
    car.hold_eeo("up")
    car.run_for(3.0)
    assert car.shaft.position_m < LANDINGS_M[5] + 0.01 and car.sim.violations == [], car.describe()
    car.hold_eeo(None)
    car.run_for(0.2)
    car.hold_eeo("down")
    car.run_for(2.0)
    moved_down = car.shaft.position_m < LANDINGS_M[5] - 0.1
    assert moved_down is bool(switches), car.describe()


def test_a_slipped_count_does_not_take_the_car_past_the_top_from_the_cabinet() -> None:
    """The count has slipped behind the car (still referenced): by the count the top landing is farther than it is.
    The top's slowdown switches say otherwise, and the cabinet's "up" stops there, inside the shaft."""
    car = SimulatedCar({"car": {"terminal_switches_m": [0.5, 0.25]}})
    car.ride_to(4)
    car.wait_doors("closed", within_s=30)
    car.inject("encoder_slip")
    car.shaft.count_offset_m += 0.4  # as after 10 m of slipping
    car.emergency_electrical(True)
    car.run_for(1.5)
    car.hold_eeo("up")
    car.run_for(25.0)
    assert car.sim.violations == [] and car.shaft.position_m <= LANDINGS_M[5] + 0.01, car.describe()


@pytest.mark.parametrize("switch", ["cabinet", "car_top"])
def test_a_hold_to_run_switch_turned_mid_run_ends_the_run_by_its_ramp_with_no_fault(switch: str) -> None:
    car = SimulatedCar()
    car.press_car_call(5)
    car.wait_until(lambda: car.shaft.speed_m_s > 0.9, within_s=20, what="at rated speed")
    (car.emergency_electrical if switch == "cabinet" else car.inspection_switch)(True)
    car.wait_until(lambda: car.shaft.speed_m_s == 0.0, within_s=5, what="stopped")
    car.run_for(2.0)
    assert not car.faults and not car.sim.state.settling, car.describe()  # a ramp, not a quick stop


@pytest.mark.parametrize("silenced", ["car_top_silent", "landing_silent"])
def test_a_button_held_through_a_silent_board_must_be_pressed_again(silenced: str) -> None:
    car = SimulatedCar()
    car.ride_to(2)
    if silenced == "car_top_silent":
        car.inspection_switch(True)
        car.run_for(0.5)
        car.hold_inspection("up")
    else:
        car.emergency_electrical(True)
        car.run_for(0.5)
        car.hold_eeo("up")
    car.wait_until(lambda: car.shaft.speed_m_s > 0.1, within_s=3, what="moving on the button")
    car.inject(silenced)
    car.run_for(1.0)
    car.clear(silenced)
    car.run_for(4.0)  # the button still held (stuck): nothing moves
    assert car.shaft.speed_m_s == 0.0, car.describe()
    stood_m = car.shaft.position_m
    car.run_for(2.0)
    assert car.shaft.position_m == stood_m
    (car.hold_inspection if silenced == "car_top_silent" else car.hold_eeo)(None)
    car.run_for(0.2)
    (car.hold_inspection if silenced == "car_top_silent" else car.hold_eeo)("up")
    car.wait_until(lambda: car.shaft.position_m > stood_m + 0.1, within_s=3, what="moving on a new press")


def test_inspection_on_an_unreferenced_count_goes_down_to_the_mark_and_then_serves_the_mechanic() -> None:
    """The drive lost its count (it reads 0 m with the car at landing 3) and no slowdown switches are fitted: by
    that count "up" would run a whole shaft past the top. Up is refused; down runs to the reference mark, where the
    drive references its count, and from then on inspection goes by the count again, both ways."""
    car = SimulatedCar()
    car.ride_to(3)
    car.wait_doors("closed", within_s=30)
    car.inspection_switch(True)
    car.run_for(0.5)
    car.inject("position_lost")
    car.run_for(1.5)
    car.hold_inspection("up")
    car.run_for(2.0)
    assert abs(car.shaft.position_m - LANDINGS_M[3]) < 0.01, car.describe()
    car.hold_inspection(None)
    car.run_for(0.2)
    car.hold_inspection("down")
    car.wait_until(lambda: not car.shaft.position_unreferenced, within_s=60, what="referenced at the mark")
    car.wait_until(lambda: car.shaft.speed_m_s == 0.0, within_s=5, what="stopped by the count's bottom landing")
    assert abs(car.shaft.position_m - LANDINGS_M[0]) < 0.01 and car.sim.violations == [], car.describe()
    car.hold_inspection(None)
    car.run_for(0.2)
    car.hold_inspection("up")
    car.wait_until(lambda: car.shaft.position_m > 1.0, within_s=10, what="up again, by the count")
    car.hold_inspection(None)
