"""Doors on both sides over the wire (issue #16): the firmware (`carctl run`) against `sim serve`, both configured
with building.door_sides. The rear door's car-top board answers at panel-bus address 0x03; the firmware polls it,
opens only the side of each landing, reopens the rear door for its own light curtain, and stops the car when the
rear door's lock opens as the drive starts."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from hil_tests.wire import WireCar, firmware_config, running_car

LANDING_M = [0.0, 2.9, 5.8, 8.7, 11.6, 14.5]
DOOR_SIDES = 'door_sides = ["front", "rear", "front", "rear", "both", "front"]\n'


@pytest.fixture()
def car(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WireCar]:
    workdir = tmp_path_factory.mktemp("hil-doors")
    with running_car(workdir, firmware_config(workdir, building_keys=DOOR_SIDES), building_keys=DOOR_SIDES) as wire:
        yield wire


def at(state: dict[str, object], landing: int) -> bool:
    return abs(float(state["position_m"]) - LANDING_M[landing]) <= 0.005  # type: ignore[arg-type]


def test_each_landing_opens_its_own_side_over_the_panel_bus(car: WireCar) -> None:
    def watched(landing: int, front: str, rear: str) -> None:
        car.wait_until(lambda s: at(s, landing) and s["door"] == front and s["rear_door"] == rear, within_s=40,
                       what=f"landing {landing}: front {front}, rear {rear}")

    car.press_car_call(1)
    watched(1, "closed", "open")  # a rear landing: the rear door only
    car.wait_until(lambda s: s["rear_door"] == "closed" and s["door"] == "closed", within_s=30, what="closed")
    car.press_car_call(4)
    watched(4, "open", "open")  # served from both sides
    car.wait_until(lambda s: s["rear_door"] == "closed" and s["door"] == "closed", within_s=30, what="closed")
    car.press_car_call(2)
    watched(2, "open", "closed")  # a front landing: the front door only
    state = car.state()
    assert state["rear_car_top"]["door_close"] and not state["rear_car_top"]["door_open"]  # held closed
    assert "door_lock_lost" not in car.firmware_faults_raised()


def test_the_rear_light_curtain_reopens_the_rear_door_over_the_wire(car: WireCar) -> None:
    car.press_car_call(3)
    car.wait_until(lambda s: at(s, 3) and s["rear_door"] == "open", within_s=40, what="rear door open at 3")
    car.wait_until(lambda s: s["rear_door"] == "closing", within_s=20, what="rear door closing")
    time.sleep(1.0)
    car.send(cmd="obstruct", duration_s=2.0, side="rear")
    car.wait_until(lambda s: s["rear_door"] in ("opening", "open"), within_s=2, what="rear door reopened")
    assert car.state()["door"] == "closed"
    car.wait_until(lambda s: s["rear_door"] == "closed", within_s=30, what="rear door closed again")


def test_a_rear_door_lock_lost_as_the_drive_starts_stops_the_car_over_the_wire(car: WireCar) -> None:
    car.press_car_call(5)
    car.wait_until(lambda s: s["brake_open"] or s["speed_m_s"] > 0.0, within_s=20, what="the drive starting")
    car.send(cmd="inject", kind="rear_door_lock_lost")
    car.wait_until(lambda s: {"door_lock_lost", "unintended_movement"} & set(car.firmware_faults_raised()),
                   within_s=3, what="the lock loss raised")
    car.wait_until(lambda s: s["speed_m_s"] == 0.0 and not s["brake_open"], within_s=3, what="stopped")
    stopped_m = car.state()["position_m"]
    time.sleep(2.0)
    assert car.state()["position_m"] == stopped_m  # it stays stopped while the rear lock is open
    car.send(cmd="clear", kind="rear_door_lock_lost")
    if "unintended_movement" in car.firmware_faults_raised():
        car.send(cmd="button", name="fault_reset")  # latched, as with the front door
    car.wait_doors("open", within_s=60, at_m=LANDING_M[5])
