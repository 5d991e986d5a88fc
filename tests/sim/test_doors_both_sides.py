"""Doors on both sides (building.door_sides), as procedures in the lockstep simulator: a half-landing building served
under traffic with each stop opening only its side, a rear obstruction reopening only the rear door, a rear lock
lost stopping the car, the door buttons and the accessible dwell acting on the landing's side, and a car with one
door unchanged."""

from __future__ import annotations

import io
import json

from carctl.core.controller import Phase
from carctl.core.signals import EventKind
from carctl.core.supervisor import Fault
from sim.lockstep import Lockstep
from sim.procedures import SimulatedCar
from sim.scenario import from_dict

# A walk-up block whose stairs turn at half-landings: the lift serves the floors by its front door and the
# half-landings, 1.45 m between, by its rear one.
HALF_LANDINGS_M = [0.0, 1.45, 2.9, 4.35, 5.8, 7.25, 8.7]
SIDES = ["front", "rear", "front", "rear", "front", "rear", "front"]
HALF_LANDING_BUILDING = {"building": {"landings_m": HALF_LANDINGS_M, "door_sides": SIDES}}


def test_a_half_landing_building_is_served_under_residential_traffic_each_stop_opening_only_its_side() -> None:
    scenario = from_dict({**HALF_LANDING_BUILDING, "traffic": {"pattern": "residential", "rate_pct_per_5min": 25.0,
                                                                "duration_s": 1800.0, "seed": 5}})
    trace = io.StringIO()
    sim = Lockstep(scenario, trace=trace, trace_every=5)
    report = sim.run()
    assert report["passengers_generated"] > 20
    assert report["passengers_served"] == report["passengers_generated"]
    assert report["safety_violations"] == 0 and not report["faults"]
    opened: dict[str, set[int]] = {"front": set(), "rear": set()}
    for line in trace.getvalue().splitlines():
        record = json.loads(line)
        landing = min(range(len(HALF_LANDINGS_M)), key=lambda n: abs(HALF_LANDINGS_M[n] - record["position_m"]))
        # The trace says which side is open where: only the side(s) of the landing the car stands at.
        assert record["door_side"] == SIDES[landing] or record["door"] == record["rear_door"] == "closed"
        if record["door"] != "closed":
            assert SIDES[landing] in ("front", "both"), record
            opened["front"].add(landing)
        if record["rear_door"] != "closed":
            assert SIDES[landing] in ("rear", "both"), record
            opened["rear"].add(landing)
        if record["speed_m_s"] != 0.0 and abs(record["position_m"] - HALF_LANDINGS_M[landing]) > 0.2:
            assert record["door"] == record["rear_door"] == "closed", record
    # Both doors worked, each at its own landings, and most landings were served.
    assert opened["front"] and opened["rear"]
    assert len(opened["front"] | opened["rear"]) >= 5


def test_a_landing_served_from_both_sides_opens_both_doors() -> None:
    car = SimulatedCar({"building": {"door_sides": ["front", "front", "both", "front", "rear", "front"]}})
    car.press_car_call(2)
    car.wait_doors("open", within_s=40, at=2)
    assert car.rear_doors == "open"
    car.wait_doors("closed", within_s=30)
    assert car.rear_doors == "closed"
    car.press_car_call(4)
    car.wait_rear_doors("open", within_s=40, at=4)
    assert car.doors == "closed"


def test_a_rear_door_obstruction_reopens_only_the_rear_door() -> None:
    car = SimulatedCar(HALF_LANDING_BUILDING)
    car.press_car_call(3)
    car.wait_rear_doors("open", within_s=40, at=3)
    car.wait_rear_doors("closing", within_s=30)
    car.run_for(1.0)  # well into the close
    reopened_before = len(car.events_of(EventKind.DOORS_REOPENED))
    car.obstruct_rear_doors(2.0)
    car.run_for(0.1)
    assert car.shaft.rear is not None and car.shaft.rear_light_curtain_blocked()  # the obstruction is really there
    car.wait_rear_doors("opening", within_s=1)
    assert len(car.events_of(EventKind.DOORS_REOPENED)) == reopened_before + 1
    assert car.doors == "closed" and car.sim.commands.door_close and not car.sim.commands.door_open
    car.wait_rear_doors("open", within_s=10)
    car.wait_rear_doors("closed", within_s=30)
    assert car.sim.report(0.0)["safety_violations"] == 0


def test_the_front_light_curtain_does_not_hold_the_rear_door_open() -> None:
    car = SimulatedCar(HALF_LANDING_BUILDING)
    car.press_car_call(1)
    car.wait_rear_doors("closing", within_s=40)
    car.obstruct_doors(5.0)  # someone stands at the shut front door
    car.run_for(0.1)
    assert car.shaft.light_curtain_blocked()
    car.wait_rear_doors("closed", within_s=10)
    assert not [event for event in car.events_of(EventKind.DOORS_REOPENED)]


def test_a_rear_door_lock_lost_as_the_drive_starts_stops_it_before_the_car_moves() -> None:
    """As tests/sim/test_fault_procedures.py does with the front door's lock, at a front landing of the building."""
    car = SimulatedCar(HALF_LANDING_BUILDING)
    car.press_car_call(6)
    car.wait_until(lambda: car.phase is Phase.STARTING and car.shaft.drive_running, within_s=20,
                   what="the drive starting")
    start_m = car.shaft.position_m
    car.inject("rear_door_lock_lost")
    assert car.shaft.rear is not None and not car.shaft.rear.locked() and car.shaft.door_locked()
    car.wait_fault(Fault.DOOR_LOCK_LOST, within_s=0.1)
    assert car.sim.commands.quick_stop and not (car.sim.commands.run_up or car.sim.commands.run_down)
    car.run_for(1.0)
    assert car.shaft.position_m == start_m and not car.shaft.brake_open and not car.shaft.drive_running
    # Not latched: with the rear lock made again, the fault clears and the call is served.
    car.clear("rear_door_lock_lost")
    car.wait_until(lambda: Fault.DOOR_LOCK_LOST not in car.faults, within_s=1, what="fault cleared")
    car.wait_doors("open", within_s=40, at=6)
    assert car.rear_doors == "closed"
    assert car.sim.report(0.0)["safety_violations"] == 0


def test_a_rear_door_lock_lost_mid_run_stops_the_car_at_once_latched() -> None:
    car = SimulatedCar(HALF_LANDING_BUILDING)
    car.press_car_call(6)
    car.wait_until(lambda: car.shaft.speed_m_s > 0.3 and not car.shaft.in_door_zone(), within_s=30,
                   what="running between landings")
    car.inject("rear_door_lock_lost")
    injected_s = car.t_s
    assert car.shaft.rear is not None and not car.shaft.rear.locked()  # the rear contacts really opened
    car.wait_fault(Fault.UNINTENDED_MOVEMENT, within_s=0.1)
    assert car.sim.commands.quick_stop and not (car.sim.commands.run_up or car.sim.commands.run_down)
    car.wait_until(lambda: car.shaft.speed_m_s == 0.0, within_s=3, what="stopped")
    stopped_m = car.shaft.position_m
    car.clear("rear_door_lock_lost")
    car.run_for(30.0)
    # Latched, as with the front door: the car stands until the deliberate reset.
    assert Fault.UNINTENDED_MOVEMENT in car.faults and car.shaft.position_m == stopped_m
    car.reset_faults()
    car.press_car_call(6)
    car.wait_doors("open", within_s=60, at=6)
    # The independent check saw the car moving with a door unlocked once: the injected fault itself (a contact forced
    # open mid-run), from the tick it struck until the car stopped; nothing else.
    report = car.sim.report(0.0)
    assert [(v["kind"], v["t_s"]) for v in report["safety_violation_log"]] == [
        ("moving_with_door_open", round(injected_s, 3))]


def test_a_rear_door_that_jams_open_keeps_the_car_at_the_landing_as_a_front_one_would() -> None:
    car = SimulatedCar({**HALF_LANDING_BUILDING, "car": {"door_close_protection_s": 5.0, "door_retries": 2}})
    car.press_car_call(3)
    car.wait_rear_doors("open", within_s=40, at=3)
    car.inject("rear_door_jam")
    car.press_car_call(0)
    car.wait_fault(Fault.DOOR_CLOSE_FAILED, within_s=60)
    assert car.landing == 3 and car.shaft.speed_m_s == 0.0 and car.rear_doors != "closed"
    car.clear("rear_door_jam")
    car.wait_doors("open", within_s=120, at=0)
    assert Fault.DOOR_CLOSE_FAILED not in car.faults
    assert car.sim.report(0.0)["safety_violations"] == 0


def test_the_door_open_button_and_the_accessible_dwell_act_on_the_rear_side() -> None:
    car = SimulatedCar(HALF_LANDING_BUILDING)
    car.press_accessible_call(5)
    opened_s = car.wait_rear_doors("open", within_s=40, at=5)
    held_s = car.wait_rear_doors("closing", within_s=30)
    # The accessible call's longer dwell (8 s by default, against 3 s), on the rear door.
    assert held_s >= 7.5 and car.doors == "closed" and opened_s > 0
    car.run_for(1.0)  # well into the (slow) close
    assert car.rear_doors == "closing"
    car.press_door_open()
    car.wait_rear_doors("opening", within_s=1)
    assert car.doors == "closed"


def test_a_car_with_one_door_traces_and_moves_no_rear_door() -> None:
    trace = io.StringIO()
    sim = Lockstep(from_dict({"traffic": {"pattern": "none", "duration_s": 30.0},
                              "events": [{"t_s": 1.0, "type": "car_call", "landing": 2}]}), trace=trace)
    sim.run()
    assert sim.shaft.rear is None and not sim.readings.rear_door
    keys = set(json.loads(trace.getvalue().splitlines()[-1]))
    assert not keys & {"rear_door", "rear_door_open_fraction", "door_side"}


def test_skipping_idle_ticks_gives_the_same_trace_with_a_rear_door() -> None:
    """The rear door moves on a known schedule too (sim/door_operator.py): the idle skip changes nothing."""
    scenario = {**HALF_LANDING_BUILDING,
                "traffic": {"pattern": "residential", "rate_pct_per_5min": 25.0, "duration_s": 600.0, "seed": 3},
                "events": [{"t_s": 100.0, "type": "obstruct", "duration_s": 4.0, "side": "rear"},
                           {"t_s": 200.0, "type": "fault", "kind": "rear_light_curtain_blocked"},
                           {"t_s": 230.0, "type": "clear_fault", "kind": "rear_light_curtain_blocked"}]}
    traces = []
    for skip_idle in (True, False):
        trace = io.StringIO()
        sim = Lockstep(from_dict(scenario), skip_idle=skip_idle, trace=trace)
        report = sim.run()
        traces.append(trace.getvalue())
        assert report["safety_violations"] == 0
    assert traces[0] == traces[1]


def test_a_rescue_on_the_battery_lets_the_passengers_out_by_the_side_of_the_landing_it_reaches() -> None:
    """The mains fail between landings 2 and 3 of the half-landing building; the light car is rescued upwards to
    landing 3, a rear landing: the rear door opens there, the front one stays shut."""
    car = SimulatedCar({**HALF_LANDING_BUILDING, "car": {"park_delay_s": 600.0}})
    car.add_passenger(0, 6, mass_kg=75.0)
    car.wait_until(lambda: len(car.sim.flow.in_car) == 1, within_s=30, what="passenger aboard")
    car.wait_until(lambda: 3.3 < car.shaft.position_m < 3.9 and car.shaft.speed_m_s > 0.3, within_s=60,
                   what="running between landings 2 and 3")
    car.inject("power_loss")
    car.wait_until(lambda: car.shaft.speed_m_s == 0.0, within_s=2, what="stopped by the trip")
    assert not car.shaft.in_door_zone()  # stranded between the landings
    car.wait_rear_doors("open", within_s=40, at=3)
    assert car.doors == "closed" and [event.landing for event in car.events_of(EventKind.RESCUED)] == [3]
    car.wait_until(lambda: not car.sim.flow.in_car, within_s=10, what="passenger out by the rear door")
    assert car.sim.report(0.0)["safety_violations"] == 0
