"""Over the wire, the road the car really runs: a latched fault outlives the firmware, a drive whose status block
freezes is a stale drive, the alarm button held on the car panel reaches the core."""

from __future__ import annotations

import json
import time

from hil_tests.wire import WireCar

LANDING_M = [0.0, 2.9, 5.8, 8.7, 11.6, 14.5]
# What stops a runaway drive at rated speed, latched: overspeed, or the drive found not following its reference.
RUNAWAY_LATCHES = {"overspeed", "speed_deviation"}


def test_a_latched_fault_survives_a_firmware_restart_until_the_maintenance_reset(car: WireCar) -> None:
    car.press_car_call(5)
    car.wait_until(lambda s: s["speed_m_s"] > 0.5, within_s=20, what="accelerating")
    car.send(cmd="inject", kind="drive_runaway")
    car.wait_until(lambda s: RUNAWAY_LATCHES & set(car.firmware_faults_raised()), within_s=3,
                   what="overspeed or speed deviation raised")
    car.wait_until(lambda s: s["speed_m_s"] == 0.0, within_s=3, what="stopped")
    car.send(cmd="clear", kind="drive_runaway")  # the drive is repaired; the latch stays
    car.wait_until(lambda s: RUNAWAY_LATCHES & set(json.loads((car.workdir / "latched.json").read_text())["latched"]),
                   within_s=3,
                   what="the latch on disk")
    car.kill_firmware()  # as a power cut would
    stopped_at = car.state()["position_m"]
    car.restart_firmware()
    car.wait_until(lambda s: any(r.get("kind") == "latches" and RUNAWAY_LATCHES & set(r.get("faults", []))
                                 for r in car.firmware_records()), within_s=10, what="the latch restored")
    time.sleep(3.0)  # the new firmware does not move the car
    state = car.state()
    assert state["speed_m_s"] == 0.0 and abs(state["position_m"] - stopped_at) < 0.001
    assert set(json.loads((car.workdir / "latched.json").read_text())["latched"]) <= RUNAWAY_LATCHES
    car.send(cmd="button", name="fault_reset")  # the fault-reset key in the car panel
    car.wait_until(lambda s: not json.loads((car.workdir / "latched.json").read_text())["latched"], within_s=5,
                   what="the latch cleared on disk")
    car.press_car_call(0)
    car.wait_doors("open", within_s=60, at_m=LANDING_M[0])


def test_a_drive_whose_status_freezes_is_stale_the_car_stops_and_resumes_when_it_moves_again(car: WireCar) -> None:
    car.press_car_call(4)
    car.wait_until(lambda s: s["speed_m_s"] > 0.5, within_s=20, what="running")
    car.send(cmd="inject", kind="drive_frozen")  # the drive answers, with the same registers every time
    stopped_in = car.wait_until(lambda s: s["speed_m_s"] == 0.0, within_s=3.0, what="stopped")
    assert stopped_in < 1.5
    car.wait_until(lambda s: "drive_stale" in car.firmware_faults_raised(), within_s=3, what="drive_stale logged")
    car.send(cmd="clear", kind="drive_frozen")
    car.wait_doors("open", within_s=60, at_m=LANDING_M[4])


def test_the_alarm_button_held_on_the_car_panel_reaches_the_core(car: WireCar) -> None:
    car.send(cmd="alarm", held=True)
    car.wait_until(lambda s: any(e["detail"] == "pressed" for e in car.firmware_events("alarm_button")),
                   within_s=3, what="alarm pressed in the firmware's log")
    car.send(cmd="alarm", held=False)
    car.wait_until(lambda s: any(e["detail"] == "released" for e in car.firmware_events("alarm_button")),
                   within_s=3, what="alarm released in the firmware's log")


def test_a_slipping_encoder_is_stopped_by_the_slowdown_switches_read_over_the_panel_bus(car: WireCar) -> None:
    """The drive's count slips 4 % behind the car (it still reports it referenced): running to the top landing, the
    car goes farther than its count says. The simulated car-top board reports the terminal slowdown switches in its
    STATUS; the firmware decodes them and stops the car at once at the first one passed too fast, short of the top
    landing."""
    car.send(cmd="inject", kind="encoder_slip")
    car.press_car_call(5)
    car.wait_until(lambda s: "terminal_speed" in car.firmware_faults_raised(), within_s=40,
                   what="terminal_speed raised at a slowdown switch")
    car.wait_until(lambda s: s["speed_m_s"] == 0.0, within_s=3, what="stopped")
    state = car.state()
    assert state["position_m"] < LANDING_M[5], state
