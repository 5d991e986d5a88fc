"""The shaft learning run (docs/modes.md, "Shaft learning run") in the lockstep simulator: a shaft whose vanes are
not where the typed table says, learned and then levelled within accuracy; the refusals and the interruption, each
first checked to have really arisen in the simulated shaft."""

from __future__ import annotations

from carctl.core.phases import Phase
from carctl.core.signals import EventKind, Mode
from sim.procedures import SimulatedCar

OFFSETS_MM = [0, 27, -18, 12, -9, 15]
STOPPING_ACCURACY_MM = 10.0


def _levelling_errors_mm(car: SimulatedCar) -> dict[int, float]:
    """Ride to every landing and measure, on the shaft's truth, how far the car stands from its sill."""
    errors: dict[int, float] = {}
    for landing in (3, 5, 1, 4, 2, 0):
        car.ride_to(landing)
        car.wait_idle(within_s=60.0)
        errors[landing] = (car.shaft.position_m - car.shaft.landings_m[landing]) * 1000.0
    return errors


def _learning_details(car: SimulatedCar) -> list[str]:
    return [event.detail for event in car.events_of(EventKind.LEARNING)]


def test_learning_against_offset_vanes_then_every_landing_is_level_within_accuracy() -> None:
    car = SimulatedCar({"building": {"landing_offsets_mm": OFFSETS_MM},
                        "events": [{"t_s": 400.0, "type": "learn"}]})
    assert car.shaft.landings_m[1] == 2.927  # the shaft really has its vanes off the typed table
    before = _levelling_errors_mm(car)
    for landing, offset_mm in enumerate(OFFSETS_MM):  # levelled on the typed table: off by the offsets
        assert abs(before[landing] + offset_mm) < 3.0, (landing, before)
    assert car.sim.report(0.0)["levelling_error_mm"]["max"] > 25.0  # and the report shows it
    car.wait_until(lambda: bool(car.sim.learnings), within_s=400.0, what="the scripted learning run over")
    car.wait_until(lambda: car.sim.state.mode is Mode.NORMAL, within_s=30.0, what="back in normal service")
    details = _learning_details(car)
    assert details[0] == "started" and details[-1].startswith("done:"), details
    learned = car.sim.controller.landings_m
    for typed_m, learned_m, offset_mm in zip(car.sim.config.building.landings_m, learned, OFFSETS_MM):
        assert abs((learned_m - typed_m) * 1000.0 - offset_mm) < 5.0, learned
    after = _levelling_errors_mm(car)
    assert all(abs(error) <= STOPPING_ACCURACY_MM for error in after.values()), after
    assert car.sim.report(0.0)["safety_violations"] == 0


def test_learning_refused_unless_from_the_cabinet_at_the_bottom_terminal() -> None:
    car = SimulatedCar()
    car.press_learn()
    assert _learning_details(car) == ["refused:not_in_emergency_electrical"]
    car.inspection_switch(True)  # the car-top switch: a mechanic may be on the roof, even with the car at the bottom
    car.run_for(1.0)
    assert car.sim.state.mode is Mode.INSPECTION and car.landing == 0
    car.press_learn()
    car.run_for(2.0)
    assert _learning_details(car)[-1] == "refused:car_top_inspection"
    assert car.shaft.speed_m_s == 0.0 and car.sim.state.mode is Mode.INSPECTION  # nothing moved
    car.inspection_switch(False)
    car.ride_to(2)
    car.wait_idle(within_s=60.0)
    car.emergency_electrical(True)
    car.run_for(1.0)
    assert car.sim.state.mode is Mode.EMERGENCY_ELECTRICAL and car.landing == 2
    car.press_learn()
    car.run_for(2.0)
    assert _learning_details(car)[-1] == "refused:not_at_bottom"
    assert car.shaft.speed_m_s == 0.0 and car.sim.state.mode is Mode.EMERGENCY_ELECTRICAL  # nothing moved
    assert car.sim.state.learned is None


def test_learning_refused_when_a_vane_is_missing() -> None:
    car = SimulatedCar({"physics": {"missing_vanes": [3]}})
    assert len(car.shaft.vanes_m) == 5  # the shaft really lacks a vane
    typed = car.sim.controller.landings_m
    assert car.learn() == "refused:vane_count:5!=6"
    assert car.sim.controller.landings_m == typed and car.sim.state.learned is None
    assert car.sim.report(0.0)["safety_violations"] == 0


def test_learning_refused_when_two_vanes_are_closer_than_landings_can_be() -> None:
    # Landing 2's vane 2.48 m low: 0.42 m above landing 1's, a gap of 20 mm between the two vanes.
    car = SimulatedCar({"building": {"landing_offsets_mm": [0, 0, -2480, 0, 0, 0]}})
    assert round(car.shaft.landings_m[2] - car.shaft.landings_m[1], 3) == 0.42
    typed = car.sim.controller.landings_m
    assert car.learn() == "refused:vanes_too_close:1-2"
    assert car.sim.controller.landings_m == typed and car.sim.state.learned is None


def test_learning_refused_when_two_vanes_run_together() -> None:
    car = SimulatedCar({"building": {"landing_offsets_mm": [0, 0, -2550, 0, 0, 0]}})
    typed = car.sim.controller.landings_m
    assert car.learn() == "refused:vanes_too_close:1-2"
    assert car.sim.controller.landings_m == typed


def test_an_interrupted_learning_run_learns_nothing_and_keeps_the_table() -> None:
    car = SimulatedCar({"building": {"landing_offsets_mm": OFFSETS_MM}})
    typed = car.sim.controller.landings_m
    car.emergency_electrical(True)
    car.run_for(1.0)
    car.press_learn()
    car.wait_until(lambda: car.shaft.position_m > 4.0, within_s=60.0, what="the learning run well under way")
    assert car.sim.state.mode is Mode.LEARNING and car.phase is Phase.INSPECTING
    car.emergency_electrical(False)  # the technician turns the cabinet's switch off mid-run
    car.run_for(2.0)
    assert _learning_details(car) == ["started", "interrupted:mode"]
    assert car.sim.state.learned is None and car.sim.controller.landings_m == typed
    assert car.sim.state.mode is Mode.NORMAL
    car.wait_idle(within_s=60.0)  # left between landings, it goes to the nearest one
    assert car.sim.report(0.0)["safety_violations"] == 0


def test_a_learning_run_stops_for_doors_that_open() -> None:
    car = SimulatedCar()
    car.emergency_electrical(True)
    car.run_for(1.0)
    car.press_learn()
    car.wait_until(lambda: car.shaft.position_m > 1.0, within_s=60.0, what="the learning run under way")
    car.inject("door_lock_lost")
    car.run_for(3.0)
    assert car.shaft.speed_m_s == 0.0
    assert _learning_details(car)[-1] in ("interrupted:doors", "interrupted:fault")
    assert car.sim.state.mode is Mode.EMERGENCY_ELECTRICAL and car.sim.state.learned is None


def test_a_learning_run_stops_when_the_car_top_switch_is_turned_on() -> None:
    car = SimulatedCar()
    car.emergency_electrical(True)
    car.run_for(1.0)
    car.press_learn()
    car.wait_until(lambda: car.shaft.position_m > 1.0, within_s=60.0, what="the learning run under way")
    car.inspection_switch(True)  # someone on the roof: the car-top station takes the car
    car.run_for(3.0)
    assert car.shaft.speed_m_s == 0.0 and car.sim.state.mode is Mode.INSPECTION
    assert _learning_details(car)[-1] == "interrupted:mode" and car.sim.state.learned is None
