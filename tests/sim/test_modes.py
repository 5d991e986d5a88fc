"""Operating modes and energy saving, as procedures against the lockstep simulator: each first checks that the
situation really arose in the simulated shaft, then asserts the reaction and the recovery."""

from carctl.core.controller import Phase
from carctl.core.signals import EventKind
from carctl.core.supervisor import Fault
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


def test_a_light_curtain_blocked_too_long_nudges_the_doors_then_raises_a_fault_and_the_car_serves_on() -> None:
    car = SimulatedCar()
    car.press_car_call(2)
    car.wait_doors("open", within_s=30, at=2)
    car.inject("light_curtain_blocked")
    assert car.shaft.light_curtain_blocked()
    blocked_s = car.t_s
    car.wait_until(lambda: car.sim.commands.door_nudge, within_s=25, what="nudging")
    car.wait_doors("closed", within_s=30)
    car.wait_fault(Fault.LIGHT_CURTAIN_BLOCKED, within_s=60)
    assert 59.9 <= car.t_s - blocked_s <= 60.1
    # Display only: the car still answers calls (each close nudges, the curtain being ignored while nudging).
    car.press_hall_call(5, "down")
    car.wait_doors("open", within_s=60, at=5)
    car.clear("light_curtain_blocked")
    car.wait_until(lambda: Fault.LIGHT_CURTAIN_BLOCKED not in car.faults, within_s=1, what="fault cleared")


def test_a_stuck_landing_button_is_ignored_after_a_minute_and_reported_until_released() -> None:
    car = SimulatedCar({"car": {"park_delay_s": 600.0}})
    period = car.sim.period_s
    # The button at landing 3 sticks: the board reports it pressed on every read (every third cycle).
    for step in range(round(75.0 / period)):
        if step % 3 == 0:
            car.press_hall_call(3, "up")
        car.run_for(period)
    assert Fault.LANDING_BUTTON_STUCK in car.faults
    refused = [e for e in car.events_of(EventKind.CALL_REFUSED) if e.detail == "up:button stuck"]
    assert [e.landing for e in refused] == [3]
    # Served once, at the first press; since the fault, its presses register nothing.
    assert car.landing == 3 and 3 not in car.sim.state.calls.up
    car.run_for(0.5)
    assert Fault.LANDING_BUTTON_STUCK in car.faults  # released less than a second ago
    car.run_for(1.0)
    assert Fault.LANDING_BUTTON_STUCK not in car.faults
    # Repaired: it works again.
    car.press_car_call(0)
    car.wait_doors("open", within_s=30, at=0)
    car.press_hall_call(3, "up")
    car.wait_doors("open", within_s=30, at=3)


def test_fire_return_uses_the_alternate_landing_when_the_designated_one_is_on_fire() -> None:
    car = SimulatedCar({"building": {"fire_landing": 0, "fire_alternate_landing": 2}})
    car.press_car_call(5)
    car.wait_until(lambda: car.shaft.position_m > 6.0 and car.shaft.speed_m_s > 0.5, within_s=30,
                   what="running up, away from the fire landings")
    car.switch_mode("fire")
    car.run_for(0.1)
    assert car.sim.state.calls.car == frozenset()  # calls cancelled
    car.detect_fire(0)
    car.run_for(0.1)
    assert [e.landing for e in car.events_of(EventKind.RECALL_CHANGED)] == [2]
    # The car stops, reverses without opening its doors, and parks at the alternate landing with its doors open.
    car.wait_doors("open", within_s=60, at=2)
    assert car.stops() == [2]
    car.run_for(120.0)
    assert car.doors == "open" and car.landing == 2
    # It stays out of normal service until the switch is reset; then it serves again from there.
    car.press_hall_call(4, "down")
    car.run_for(5.0)
    assert car.sim.state.calls.down == frozenset()
    car.switch_mode("normal")
    car.press_hall_call(4, "down")
    car.wait_doors("open", within_s=60, at=4)


def test_a_fire_detector_seen_after_parking_moves_the_car_to_the_alternate() -> None:
    car = SimulatedCar()
    car.switch_mode("fire")
    car.wait_doors("open", within_s=30, at=0)
    car.detect_fire(0)
    car.wait_doors("open", within_s=60, at=1)  # the default alternate: the landing above the main one
    assert car.sim.state.mode.value == "fire"


def test_inspection_moves_only_while_a_button_is_held_slowly_and_never_past_a_terminal() -> None:
    car = SimulatedCar()
    car.press_car_call(2)
    car.run_for(1.0)
    car.switch_mode("inspection")
    car.wait_until(lambda: car.phase is not Phase.RUNNING and car.shaft.speed_m_s == 0.0, within_s=10,
                   what="the automatic run ended by the inspection switch")
    assert car.sim.state.calls.car == frozenset()
    car.press_car_call(4)
    car.press_hall_call(3, "down")
    car.run_for(5.0)
    assert car.shaft.speed_m_s == 0.0 and not car.sim.state.calls.any()  # calls ignored, no automatic run
    top_m = car.sim.controller.landings_m[-1]
    fastest = 0.0
    car.hold_inspection("up")
    for _ in range(round(90.0 / car.sim.period_s)):  # held far longer than the trip to the top takes
        car.run_for(car.sim.period_s)
        fastest = max(fastest, abs(car.shaft.speed_m_s))
        assert car.doors == "closed"
    assert 0.2 < fastest <= 0.3 + 1e-9
    assert top_m - 0.005 <= car.shaft.position_m <= top_m + 0.002  # stopped at the top landing, not past it
    assert car.sim.report(0.0)["safety_violations"] == 0
    car.hold_inspection("down")
    car.run_for(10.0)
    assert car.shaft.position_m < top_m - 2.0
    car.hold_inspection(None)
    released_m = car.shaft.position_m
    car.run_for(3.0)
    assert car.shaft.speed_m_s == 0.0 and abs(car.shaft.position_m - released_m) < 0.1  # stops on release
    assert car.sim.state.mode.value == "inspection"
    # Back to normal: the car, left between landings, goes to the nearest landing and serves again.
    car.switch_mode("normal")
    car.press_car_call(0)
    car.wait_doors("open", within_s=60, at=0)


def test_an_encoder_that_freezes_during_a_relevel_stops_the_car_inside_the_door_zone() -> None:
    """Found by the property test: with the encoder frozen the relevel never seemed to arrive, and the car crept,
    doors open, to the edge of the door zone. A relevel now has a time limit."""
    car = SimulatedCar({"car": {"park_delay_s": 600.0}})
    car.press_car_call(1)
    car.wait_doors("open", within_s=30, at=1)
    car.set_extra_load(600.0)  # a heavy trolley rolls in: the ropes stretch and the sill drops ~18 mm
    car.wait_until(lambda: car.phase is Phase.RELEVELLING and car.shaft.drive_running, within_s=2,
                   what="relevelling")
    car.inject("encoder_freeze")
    frozen_m, true_m = car.shaft.encoder_m(), car.shaft.position_m
    car.run_for(1.0)
    assert car.shaft.encoder_m() == frozen_m and car.shaft.position_m != true_m  # the count stopped, the car not
    car.wait_fault(Fault.POSITION_TRACKING, within_s=5)
    car.wait_until(lambda: car.shaft.speed_m_s == 0.0, within_s=2, what="stopped")
    assert car.sim.report(0.0)["safety_violations"] == 0
    landing_m = car.shaft.landings_m[1]
    assert abs(car.shaft.position_m - landing_m) < 0.15  # well inside the 0.20 m door zone
