"""Stopping safely (docs/faults.md, "Recovery after a stop at once"): after any stop at once the car does not lift
its brake or start a run until it is at rest, and then recovers from where it stopped. Each procedure first checks
in the simulated shaft that the stop really happened at speed, then asserts the reaction."""

import pytest

from carctl.core.faults import Fault
from carctl.core.signals import EventKind
from sim.procedures import SimulatedCar

LANDINGS_M = (0.0, 2.9, 5.8, 8.7, 11.6, 14.5)
PERIOD_S = 0.02
# Terminal slowdown switches fitted 0.5 m and 0.25 m from each terminal landing (docs/commissioning.md).
SWITCHES = {"car": {"terminal_switches_m": [0.5, 0.25]}}


def _run_at_rated_speed(car: SimulatedCar, direction: str) -> None:
    """A run of four floors, watched until the car cruises at rated speed between landings."""
    if direction == "up":
        car.press_car_call(5)
    else:
        car.ride_to(5)
        car.wait_doors("closed", within_s=30)
        car.press_car_call(0)
    car.wait_until(lambda: abs(car.shaft.speed_m_s) > 0.95, within_s=20, what="cruising at rated speed")


def _watch_recovery(car: SimulatedCar, seconds: float) -> list[str]:
    """Step ``seconds`` and return what went wrong: a run commanded while the car still moved on its closed brake,
    or a run started the other way while the car was moving."""
    problems: list[str] = []
    seen_events = len(car.events)
    for _ in range(round(seconds / PERIOD_S)):
        car.run_for(PERIOD_S)
        shaft, commands = car.shaft, car.sim.commands
        if (commands.run_up or commands.run_down) and not shaft.brake_open and abs(shaft.speed_m_s) > 0.001:
            problems.append(f"run commanded while sliding at {shaft.speed_m_s:.3f} m/s ({car.describe()})")
        for event in car.events[seen_events:]:
            if event.kind is EventKind.RUN_STARTED and abs(shaft.speed_m_s) > 0.001:
                problems.append(f"run_started {event.detail} at {shaft.speed_m_s:.3f} m/s")
        seen_events = len(car.events)
    return problems


@pytest.mark.parametrize("direction", ["up", "down"])
@pytest.mark.parametrize("fault, cycles", [("comm_loss", 3), ("comm_loss", 6), ("comm_loss", 11),
                                           ("comm_loss", 20), ("comm_loss", 50), ("drive_frozen", 6),
                                           ("drive_frozen", 20), ("drive_fault", 3), ("safety_chain_open", 3)])
def test_after_a_transient_stop_at_speed_the_brake_lifts_only_at_rest(fault: str, cycles: int,
                                                                      direction: str) -> None:
    car = SimulatedCar()
    _run_at_rated_speed(car, direction)
    car.inject(fault)
    dropped_at_speed = False
    for _ in range(cycles):
        car.run_for(PERIOD_S)
        dropped_at_speed |= not car.shaft.brake_open and abs(car.shaft.speed_m_s) > 0.5
    car.clear(fault)
    for _ in range(10):  # a drive that answers again: the controller's own stop comes a few cycles late
        car.run_for(PERIOD_S)
        dropped_at_speed |= not car.shaft.brake_open and abs(car.shaft.speed_m_s) > 0.5
    # It really stopped at once: the brake dropped with the car at speed.
    assert dropped_at_speed, car.describe()
    problems = _watch_recovery(car, 20.0)
    assert problems == [], problems[:3]
    assert car.sim.report(0.0)["safety_violations"] == 0, car.sim.violations
    # Then it serves: it finishes the call it was on.
    target = 5 if direction == "up" else 0
    car.wait_doors("open", within_s=60, at=target)
    assert not car.faults, car.describe()


def test_the_brake_stays_on_for_the_settling_time_after_the_car_comes_to_rest() -> None:
    car = SimulatedCar()
    _run_at_rated_speed(car, "up")
    car.inject("comm_loss")
    car.run_for(0.2)
    car.clear("comm_loss")
    rest_s = car.wait_until(lambda: car.shaft.speed_m_s == 0.0, within_s=3, what="at rest")
    assert rest_s > 0.0
    lifted_s = car.wait_until(lambda: car.sim.commands.run_up or car.sim.commands.run_down, within_s=10,
                              what="the recovery run commanded")
    # The default settling time is 1 s of standstill confirmed by a fresh, unchanging status.
    assert lifted_s >= 1.0 - 2 * PERIOD_S, lifted_s


@pytest.mark.parametrize("terminal", [0, 5])
def test_a_runaway_anywhere_on_the_approach_to_a_terminal_never_leaves_the_shaft(terminal: int) -> None:
    """The drive's speed loop fails (it accelerates at its limit towards the terminal, whatever the reference) at
    every point of a run's last two metres into either terminal landing: the car never goes beyond the overtravel
    (the independent check's left_shaft), and the fault that stopped it is latched."""
    origin = 2 if terminal == 0 else 3
    for metres_before in [2.0, 1.5, 1.0, 0.7, 0.5, 0.35, 0.25, 0.15, 0.08, 0.03]:
        car = SimulatedCar()
        if origin != car.landing:
            car.ride_to(origin)
            car.wait_doors("closed", within_s=30)
        car.press_car_call(terminal)
        target_m = LANDINGS_M[terminal]
        car.wait_until(lambda: abs(car.shaft.position_m - target_m) <= metres_before, within_s=30,
                       what=f"{metres_before} m before landing {terminal}")
        car.inject("drive_runaway")
        car.wait_until(lambda: car.shaft.speed_m_s == 0.0, within_s=10, what="stopped")
        report = car.sim.report(0.0)
        assert report["safety_violations"] == 0, (metres_before, report["safety_violation_log"])
        assert car.faults & {Fault.SPEED_DEVIATION, Fault.TERMINAL_SPEED, Fault.OVERSPEED, Fault.SHAFT_LIMIT}, (
            metres_before, car.describe())


@pytest.mark.parametrize("terminal", [0, 5])
def test_a_slipping_encoder_is_caught_by_the_slowdown_switches_before_the_car_leaves_the_shaft(terminal: int) -> None:
    """The drive's count advances 4 % less than the car moves (encoder_slip), and the drive still calls it
    referenced: on a run to a terminal landing the car believes itself farther from it than it is, so the count-based
    terminal speed limit is as wrong as the count. The car-top's slowdown switches sit in the shaft: passing the first
    one too fast stops the car at once, short of the landing (going down, the reference mark near the bottom puts the
    count right first, and the count-based limit acts as well)."""
    car = SimulatedCar(SWITCHES)
    if terminal == 0:
        car.ride_to(5)
        car.wait_doors("closed", within_s=30)
    car.inject("encoder_slip")
    car.press_car_call(terminal)
    car.wait_fault(Fault.TERMINAL_SPEED, within_s=40)
    car.wait_until(lambda: car.shaft.speed_m_s == 0.0, within_s=5, what="stopped")
    assert car.sim.violations == [], car.sim.violations
    assert abs(car.shaft.position_m - LANDINGS_M[terminal]) < 0.5, car.describe()


def test_without_slowdown_switches_a_slipping_encoder_takes_the_car_beyond_the_top_terminal() -> None:
    """The same slip with no switches fitted: nothing that judges the count can see it (the run follows its plan in
    the count), and the car goes on past the top landing (the independent check's left_shaft)."""
    car = SimulatedCar()  # none fitted
    car.inject("encoder_slip")
    car.press_car_call(5)
    car.wait_until(lambda: car.sim.violations, within_s=40, what="the car beyond the top final limit")
    assert car.sim.violations[0].kind == "left_shaft"


def test_a_faster_car_needs_its_outer_slowdown_switch_farther_out() -> None:
    """docs/commissioning.md's placement rule: the outermost switch where a car at rated speed is over its limit and
    can still stop before the final limit. A 1.75 m/s car in a 30 m shaft: with the 1 m/s car's switches (0.5 m,
    0.25 m) the slipping count takes it beyond the top; with one more at 1.0 m it stops inside the shaft."""
    building = {"landings_m": [0.0, 7.5, 15.0, 22.5, 30.0], "population": [0, 5, 5, 5, 5]}
    for switches, leaves in (([0.5, 0.25], True), ([1.0, 0.5, 0.25], False)):
        car = SimulatedCar({"building": building, "car": {"rated_speed_m_s": 1.75, "acceleration_m_s2": 1.0,
                                                           "terminal_switches_m": switches}})
        car.inject("encoder_slip")
        car.press_car_call(4)
        car.wait_fault(Fault.TERMINAL_SPEED, within_s=60)
        car.wait_until(lambda: car.shaft.speed_m_s == 0.0, within_s=5, what="stopped")
        assert bool(car.sim.violations) is leaves, (switches, car.describe(), car.sim.violations)
