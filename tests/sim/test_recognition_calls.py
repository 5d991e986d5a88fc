"""Recognised residents and floor permissions, as procedures. The face is never the only way to ride."""

import subprocess
import sys

from carctl.core.signals import EventKind
from sim.procedures import SimulatedCar

PERMISSIONS = {"car": {"permissions_enabled": True, "free_landings": [0, 1]}}


def test_recognised_resident_is_taken_home_without_pressing_a_button() -> None:
    car = SimulatedCar()
    car.press_hall_call(0, "up")
    car.wait_doors("open", within_s=10, at=0)
    car.recognise("r-501", home_landing=5)
    car.wait_until(lambda: car.sim.commands.announce_landing == 5, within_s=0.1, what="home floor announced")
    assert car.sim.commands.car_call_lamps == {5}
    assert car.events_of(EventKind.RECOGNISED)[0].detail == "face:r-501"
    car.wait_doors("open", within_s=40, at=5)


def test_buttons_work_as_always_with_permissions_off() -> None:
    car = SimulatedCar()
    car.press_car_call(4)
    car.wait_doors("open", within_s=30, at=4)


def test_permissions_keep_restricted_buttons_dark_and_free_ones_working() -> None:
    car = SimulatedCar(PERMISSIONS)
    car.press_car_call(4)  # nobody recognised may go to 4
    car.run_for(0.1)
    assert car.sim.commands.car_call_lamps == frozenset()
    assert [e.detail for e in car.events_of(EventKind.CALL_REFUSED)] == ["car:not permitted"]
    car.press_car_call(1)  # a free landing
    car.wait_doors("open", within_s=30, at=1)


def test_a_recognised_resident_opens_their_floors_for_the_ride() -> None:
    car = SimulatedCar(PERMISSIONS)
    car.press_hall_call(0, "up")
    car.wait_doors("open", within_s=10, at=0)
    car.set_extra_load(150.0)  # two people board
    car.recognise("r-301", home_landing=3, allowed=(2,))
    car.run_for(0.1)
    car.press_car_call(2)  # the neighbour she came with presses 2: she may go there, so it works
    car.press_car_call(5)  # nobody in the car may go to 5
    car.run_for(0.1)
    assert car.sim.commands.car_call_lamps == {2, 3}
    car.wait_doors("open", within_s=40, at=2)
    car.wait_doors("open", within_s=40, at=3)
    car.set_extra_load(0.0)  # everyone is out
    car.wait_doors("closed", within_s=30)
    car.run_for(1.0)
    car.press_car_call(2)  # the ride is over: the authorisation went with it
    car.run_for(0.1)
    assert 2 not in car.sim.commands.car_call_lamps


def test_a_card_authorises_like_a_face() -> None:
    car = SimulatedCar(PERMISSIONS)
    car.press_hall_call(0, "up")
    car.wait_doors("open", within_s=10, at=0)
    car.recognise("card-88", home_landing=4, source="card")
    car.wait_doors("open", within_s=40, at=4)


def test_the_control_core_and_loop_never_import_the_face_module() -> None:
    """Safety never depends on the face module: a fresh interpreter loads the core, the loop and the simulator
    without touching it (or dlib, or OpenCV)."""
    probe = ("import sys, carctl.core.controller, carctl.runtime.loop, sim.lockstep; "
             "print(sorted(m for m in sys.modules if m.startswith(('carctl.face', 'dlib', 'cv2', 'face_recognition'))))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
