"""Brake monitoring over the wire (issue 16): the firmware against `sim serve` whose drive reports two brake
contacts in STATUS bits 10-11, both configured for them. A brake that does not lift stops the run, the fault is
latched through a restart of the firmware, and the fault-reset key clears it once the brake is repaired."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from hil_tests.wire import WireCar, firmware_config, running_car

LANDING_M = [0.0, 2.9, 5.8, 8.7, 11.6, 14.5]
BRAKE_CONTACTS = "brake_contacts = 2\n"


@pytest.fixture()
def car(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WireCar]:
    workdir = tmp_path_factory.mktemp("hil-brake")
    with running_car(workdir, firmware_config(workdir, car_keys=BRAKE_CONTACTS), car_keys=BRAKE_CONTACTS,
                     physics=BRAKE_CONTACTS) as wire:
        yield wire


def latched_on_disk(car: WireCar) -> set[str]:
    return set(json.loads((car.workdir / "latched.json").read_text())["latched"])


def test_a_brake_that_does_not_lift_is_latched_over_the_wire_until_repaired_and_reset(car: WireCar) -> None:
    car.press_car_call(2)
    car.wait_doors("open", within_s=30, at_m=LANDING_M[2])  # healthy contacts: service as before
    car.wait_doors("closed", within_s=30)
    assert "brake_not_lifted" not in car.firmware_faults_raised()
    car.send(cmd="inject", kind="brake_stuck_closed")
    car.press_car_call(4)
    car.wait_until(lambda s: "brake_not_lifted" in car.firmware_faults_raised(), within_s=10,
                   what="brake_not_lifted raised")
    time.sleep(2.0)
    state = car.state()
    assert state["speed_m_s"] == 0.0 and abs(state["position_m"] - LANDING_M[2]) < 0.01  # never moved
    car.wait_until(lambda s: "brake_not_lifted" in latched_on_disk(car), within_s=3, what="the latch on disk")
    car.send(cmd="clear", kind="brake_stuck_closed")  # the brake is repaired; the latch stays
    car.kill_firmware()
    car.restart_firmware()
    car.wait_until(lambda s: any(r.get("kind") == "latches" and "brake_not_lifted" in r.get("faults", [])
                                 for r in car.firmware_records()), within_s=10, what="the latch restored")
    car.press_car_call(4)
    time.sleep(3.0)
    assert abs(car.state()["position_m"] - LANDING_M[2]) < 0.01  # no new run
    car.send(cmd="button", name="fault_reset")
    car.wait_until(lambda s: not latched_on_disk(car), within_s=5, what="the latch cleared on disk")
    car.press_car_call(4)
    car.wait_doors("open", within_s=60, at_m=LANDING_M[4])
