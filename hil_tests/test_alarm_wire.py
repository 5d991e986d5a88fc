"""The alarm over the wire (issue 15): `carctl run` with its modem process, the simulated shaft, panels and GSM
module (`sim serve`), and the rescue centre the module calls. A rider holds the alarm button; the module dials the
rescue service; the centre answers (yellow and green lamps on the car panel); it hangs up (green off, yellow stays);
the rescuer's reset at the car ends the alarm (lamps off, nothing dialled again). The rider hears "help is on the
way" once the rescue service has the alarm."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hil_tests.wire import ROOT, WireCar, firmware_config, start_simulator, stop_simulator

pytestmark = pytest.mark.hil
FIRST_NUMBER = "+8653281234567"


@pytest.fixture
def car_with_modem(tmp_path: Path) -> Iterator[tuple[WireCar, dict[str, Any]]]:
    simulator, endpoints = start_simulator(tmp_path)
    config = firmware_config(tmp_path)
    # A short backoff between rounds of calls, so the dead module's return is seen within seconds.
    config.write_text(config.read_text().replace("modem = false", "modem = true").replace(
        "[runtime]\n", f'[runtime]\nsocket_dir = "{tmp_path / "run"}"\n').replace(
        "retry_after_s = 10.0", "retry_after_s = 2.0"))
    car = WireCar(endpoints["control"], tmp_path, f"tcp://{endpoints['modbus_tcp']}", endpoints["panel"])
    with open(tmp_path / "firmware.log", "a") as log:
        car.firmware = subprocess.Popen([sys.executable, "-m", "carctl.cli", "run", "--config", str(config),
                                         "--drive", car.drive, "--panel", car.panel, "--modem", endpoints["modem"]],
                                        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log, text=True)
    try:
        yield car, endpoints
    finally:
        car.stop_firmware()
        stop_simulator(simulator)


def wait_standing(car: WireCar) -> None:
    """The firmware running (its health record written) and the car at rest with its doors closed."""
    car.wait_until(lambda s: s["door"] == "closed" and abs(s["speed_m_s"]) < 0.001 and not s["brake_open"]
                   and bool(car.firmware_health()), 30, "the firmware running, the car standing, doors closed")
    time.sleep(1.0)  # the modem process started and listening


def hold_alarm(car: WireCar) -> None:
    car.send(cmd="button", name="alarm", hold_s=1.6)  # `sim ctl button alarm --hold 1.6`: longer than 1 s
    time.sleep(1.7)


def lamps(state: dict[str, Any]) -> tuple[bool, bool]:
    return state["indicator"]["alarm_transmitted"], state["indicator"]["alarm_voice"]


def test_a_held_alarm_button_calls_the_rescue_service_and_only_the_reset_ends_it(
        car_with_modem: tuple[WireCar, dict[str, Any]]) -> None:
    car, _ = car_with_modem
    wait_standing(car)
    hold_alarm(car)
    car.wait_until(lambda s: s["modem"]["dialled"][:1] == [FIRST_NUMBER], 10, "the rescue service dialled")
    car.wait_until(lambda s: lamps(s) == (True, True), 10, "answered: yellow and green lamps")
    # The rescue service has it: the car panel tells the rider help is on the way.
    car.wait_until(lambda s: s["prompts"] == ["help_on_the_way"], 5, "the prompt spoken")
    assert [e["landing"] >= 0 for e in car.firmware_events("alarm")][:1] == [True]
    car.send(cmd="rescue", action="hangup")
    car.wait_until(lambda s: lamps(s) == (True, False), 10, "the call ended: the yellow lamp stays")
    car.send(cmd="button", name="alarm_reset")
    car.wait_until(lambda s: lamps(s) == (False, False), 10, "the rescuer's reset: lamps off")
    details = [event["detail"] for event in car.firmware_events("alarm")]
    # Answered at once with a voice connection: requested straight to voice_connected.
    assert details == ["requested", "voice_connected", "transmitted", "cancelled"], details
    time.sleep(2.0)
    assert car.state()["modem"]["dialled"] == [FIRST_NUMBER]  # answered once, never called again


def test_a_dead_modem_is_a_fault_and_the_alarm_still_stands_until_it_answers(
        car_with_modem: tuple[WireCar, dict[str, Any]]) -> None:
    car, _ = car_with_modem
    car.send(cmd="modem", dead=True)
    wait_standing(car)
    hold_alarm(car)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        modem = car.firmware_health().get("alarm_modem") or {}
        if modem.get("dead"):
            break
        time.sleep(0.5)
    else:
        raise AssertionError(f"no dead modem in the health record: {car.firmware_tail()}")
    assert [event["detail"] for event in car.firmware_events("alarm")] == ["requested"]
    assert "alarm_modem_dead" in car.firmware_faults_raised()  # shown, and told to the platform like any fault
    car.send(cmd="modem", dead=False)
    car.wait_until(lambda s: lamps(s) == (True, True), 40, "the module back: the call made and answered")
    assert "alarm_modem_dead" in [event["detail"] for event in car.firmware_events("fault_cleared")]


def test_a_brush_does_nothing_and_a_hold_at_open_doors_is_held_back_and_logged(
        car_with_modem: tuple[WireCar, dict[str, Any]]) -> None:
    car, _ = car_with_modem
    wait_standing(car)
    car.send(cmd="alarm", held=True)
    time.sleep(0.4)  # a brush: well under car.alarm_press_s
    car.send(cmd="alarm", held=False)
    time.sleep(1.5)
    assert car.firmware_events("alarm") == [] and car.state()["modem"]["dialled"] == []
    car.send(cmd="button", name="door_open")  # at the landing: the doors open, the rider can walk out
    car.wait_doors("open", within_s=10)
    hold_alarm(car)
    time.sleep(1.0)
    assert [event["detail"] for event in car.firmware_events("alarm")] == ["filtered"]  # logged, held back
    assert car.state()["modem"]["dialled"] == [] and lamps(car.state()) == (False, False)


def test_a_reset_key_held_at_the_car_does_not_swallow_a_new_alarm(
        car_with_modem: tuple[WireCar, dict[str, Any]]) -> None:
    """The rescuer's key left turned (or its contact stuck): the board reports it again after every acknowledgement.
    A rider trapped afterwards holds the alarm button: the alarm goes out, and stands."""
    car, _ = car_with_modem
    wait_standing(car)
    car.send(cmd="button", name="alarm_reset", hold_s=30.0)  # `sim ctl button alarm_reset --hold 30`
    time.sleep(0.5)
    car.send(cmd="button", name="alarm", hold_s=3.0)
    car.wait_until(lambda s: s["modem"]["dialled"][:1] == [FIRST_NUMBER] and lamps(s) == (True, True), 15,
                   "the rescue service called and answering, the key still held")
    assert [event["detail"] for event in car.firmware_events("alarm")] == ["requested", "voice_connected"]
