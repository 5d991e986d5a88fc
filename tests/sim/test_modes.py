"""Operating modes and energy saving, as procedures against the lockstep simulator: each first checks that the
situation really arose in the simulated shaft, then asserts the reaction and the recovery."""

from carctl.core.controller import Phase
from carctl.core.signals import EventKind
from sim.procedures import SimulatedCar


def energy_events(car: SimulatedCar) -> list[str]:
    return [event.detail for event in car.events_of(EventKind.ENERGY_SAVING)]


def test_an_idle_car_turns_its_light_and_fan_off_and_the_first_call_turns_them_on() -> None:
    car = SimulatedCar({"car": {"energy_saving_after_s": 60.0, "park_delay_s": 10.0}})
    car.press_car_call(3)
    car.wait_doors("open", within_s=30, at=3)
    # Doors close, the car parks at home after 10 s, then stands idle: a minute later the light and fan go off.
    car.wait_until(lambda: car.landing == 0 and car.phase is Phase.STANDING and car.doors == "closed",
                   within_s=60, what="parked at home")
    parked_s = car.t_s
    car.wait_until(lambda: not car.sim.commands.car_light, within_s=70, what="light off")
    assert 59.0 <= car.t_s - parked_s <= 61.0
    assert not car.sim.commands.car_fan and energy_events(car) == ["on"]
    # Nothing happens in the dark car until a call: then light and fan are on at once, before the doors open.
    car.run_for(600.0)
    assert not car.sim.commands.car_light
    car.press_hall_call(0, "up")
    car.run_for(car.sim.period_s)
    assert car.sim.commands.car_light and car.sim.commands.car_fan and car.doors in ("closed", "opening")
    assert energy_events(car) == ["on", "off"]
    car.wait_doors("open", within_s=10, at=0)
    assert car.sim.commands.car_light


def test_no_energy_saving_in_inspection_or_when_switched_off() -> None:
    inspected = SimulatedCar({"car": {"energy_saving_after_s": 30.0}})
    inspected.switch_mode("inspection")
    inspected.run_for(300.0)
    assert inspected.sim.state.mode.value == "inspection"
    assert inspected.sim.commands.car_light and energy_events(inspected) == []
    never = SimulatedCar({"car": {"energy_saving_after_s": 0.0}})
    never.run_for(3600.0)
    assert never.sim.commands.car_light and energy_events(never) == []
