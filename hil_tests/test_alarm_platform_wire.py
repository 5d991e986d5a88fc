"""The whole alarm chain over the wire (issue 15, EN 81-28): `carctl run` with its modem and platform link processes,
the simulated shaft, panels and GSM module (`sim serve`), the rescue centre it calls, and a real Mosquitto between
the car and the platform's operator.

A rider is stuck between landings by a drive fault and holds the alarm button. The rescue service's first number is
busy and the second answers: yellow and green lamps, the platform told where the car is. The broker goes away while
the centre hangs up, and the controller is killed and started again: the alarm still stands (yellow lamp, called
again, the same alarm id), and what the platform missed arrives when the broker returns. The operator's
acknowledgement of an earlier alarm is refused; theirs of this one reaches the car panel as "help is on the way".
The rescuer's reset at the car ends it, and the platform hears that too.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from carctl.platform.console import build_command
from hil_tests.test_platform_wire import KEY, messages, platform_section
from hil_tests.wire import ROOT, WireCar, firmware_config, start_simulator, stop_simulator
from tests.platform.conftest import MOSQUITTO, PASSWD, Broker, start_broker
from tests.platform.test_link import Observer

pytestmark = pytest.mark.hil
FIRST_NUMBER, SECOND_NUMBER = "+8653281234567", "053280001111"  # configs/sim.toml's [alarm] numbers
CAR = "carctl/xihan/b7u2"


class AlarmBench:
    """The car, its firmware's command line (to start it again), and the broker."""

    def __init__(self, car: WireCar, broker: Broker, command: list[str]) -> None:
        self.car = car
        self.broker = broker
        self.command = command

    def start_firmware(self) -> None:
        with open(self.car.workdir / "firmware.log", "a") as log:
            self.car.firmware = subprocess.Popen(self.command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log,
                                                 text=True)


@pytest.fixture
def bench(tmp_path: Path) -> Iterator[AlarmBench]:
    if MOSQUITTO is None or PASSWD is None:
        pytest.skip("mosquitto is not installed (Debian package mosquitto; .ci/run installs it)")
    broker = start_broker(tmp_path)
    simulator, endpoints = start_simulator(tmp_path)
    config = firmware_config(tmp_path)  # with a latch record: the alarm is kept in it across a restart
    config.write_text(config.read_text().replace("modem = false", "modem = true").replace(
        "platform = false", "platform = true").replace(
        "[runtime]\n", f'[runtime]\nsocket_dir = "{tmp_path / "run"}"\n').replace(
        "retry_after_s = 10.0", "retry_after_s = 2.0") + platform_section(tmp_path, broker.port))
    car = WireCar(endpoints["control"], tmp_path, f"tcp://{endpoints['modbus_tcp']}", endpoints["panel"])
    running = AlarmBench(car, broker, [sys.executable, "-m", "carctl.cli", "run", "--config", str(config), "--drive",
                                       car.drive, "--panel", car.panel, "--modem", endpoints["modem"]])
    running.start_firmware()
    try:
        yield running
    finally:
        car.stop_firmware()
        stop_simulator(simulator)
        broker.stop()


def lamps(state: dict[str, Any]) -> tuple[bool, bool]:
    return state["indicator"]["alarm_transmitted"], state["indicator"]["alarm_voice"]


def alarm_event(state: str) -> Any:
    return lambda topic, message: topic.endswith("/events") and message.get("kind") == "alarm" and (
        message.get("state") == state)


def acknowledge(operator: Observer, alarm_id: str) -> dict[str, Any]:
    command = build_command("alarm.acknowledge", "xihan", "b7u2", {"alarm": alarm_id}, KEY)
    operator.publish(f"{CAR}/cmd", json.dumps(command))
    return messages(operator, 10, lambda t, m: t.endswith("/ack") and m.get("id") == command["id"])


def test_a_rider_stuck_between_landings_gets_help_through_a_busy_line_a_lost_broker_and_a_restart(
        bench: AlarmBench) -> None:
    car, broker = bench.car, bench.broker
    operator = Observer(broker.port, "platform", [f"{CAR}/events", f"{CAR}/ack", f"{CAR}/state"])
    try:
        messages(operator, 30, lambda t, m: t.endswith("/state") and m["mode"] == "normal")
        car.wait_until(lambda s: s["door"] == "closed" and not s["brake_open"], 30, "the car standing, doors closed")
        # A rider alone in the car; a drive fault stops it between landings 1 and 2, and it stays there.
        car.send(cmd="load", load_kg=80.0)
        car.press_car_call(4)
        car.wait_until(lambda s: 3.6 < s["position_m"] < 4.5, 30, "the car running between landings 1 and 2")
        car.send(cmd="inject", kind="drive_fault")
        car.wait_until(lambda s: abs(s["speed_m_s"]) < 0.001, 10, "the car stopped")
        stuck_m = car.state()["position_m"]
        assert all(abs(stuck_m - landing_m) > 0.3 for landing_m in (2.9, 5.8))
        car.send(cmd="rescue", action="busy", number=FIRST_NUMBER)  # the first line of the rescue service busy

        car.send(cmd="alarm", held=True)
        time.sleep(1.6)  # held longer than car.alarm_press_s (1 s)
        car.send(cmd="alarm", held=False)
        car.wait_until(lambda s: s["modem"]["dialled"][:2] == [FIRST_NUMBER, SECOND_NUMBER], 15,
                       "the first number busy, the second dialled")
        car.wait_until(lambda s: lamps(s) == (True, True), 10, "answered: yellow and green lamps")
        requested = messages(operator, 10, alarm_event("requested"))
        alarm_id = requested["alarm_id"]
        assert len(alarm_id) == 32
        assert requested["between_landings"] and requested["landing"] is None
        assert abs(requested["position_m"] - stuck_m) < 0.01 and requested["load_kg"] >= 80
        assert "drive_fault" in requested["faults"] and requested["door"] == "closed"
        assert messages(operator, 10, alarm_event("voice_connected"))["alarm_id"] == alarm_id
        messages(operator, 10, lambda t, m: t.endswith("/state") and m["alarm_id"] == alarm_id)

        # The broker goes away; the rescue centre hangs up (the yellow lamp stays): the platform cannot hear it now.
        broker.stop()
        car.send(cmd="rescue", action="hangup")
        car.wait_until(lambda s: lamps(s) == (True, False), 10, "the call ended: the yellow lamp stays")
        time.sleep(2.0)  # the event in the link process's outbox, on disk

        # The controller is killed (a watchdog reset, a power cut of the board) and starts again.
        car.kill_firmware()
        restarts = len([r for r in car.firmware_records() if r.get("kind") == "latches"])
        bench.start_firmware()
        car.wait_until(lambda s: bool([r for r in car.firmware_records() if r.get("kind") == "latches"][restarts:]),
                       20, "the firmware started again")
        restored = [r for r in car.firmware_records() if r.get("kind") == "latches"][restarts:]
        assert any(r.get("state") == "alarm restored" and r.get("alarm") == "transmitted" for r in restored), restored
        car.wait_until(lambda s: lamps(s) == (True, True) and s["modem"]["dialled"].count(SECOND_NUMBER) >= 2, 30,
                       "the alarm still standing: called again and answered")
        assert car.state()["position_m"] == pytest.approx(stuck_m, abs=0.01)  # still between landings

        # The broker returns: what the platform missed arrives, under the same alarm id.
        broker.start()
    finally:
        operator.close()
    operator = Observer(broker.port, "platform", [f"{CAR}/events", f"{CAR}/ack", f"{CAR}/state"])
    try:
        missed = messages(operator, 40, alarm_event("transmitted"))  # the hang-up, sent before the restart
        assert missed["alarm_id"] == alarm_id
        assert messages(operator, 20, alarm_event("voice_connected"))["alarm_id"] == alarm_id  # after the restart
        messages(operator, 20, lambda t, m: t.endswith("/state") and m["alarm"] == "voice_connected"
                 and m["alarm_id"] == alarm_id)

        # An acknowledgement of another alarm (an earlier one) is refused with the reason; this one's is taken.
        spoken = len(car.state()["prompts"])
        stale = acknowledge(operator, "0" * 32)
        assert not stale["accepted"] and "is not the one standing" in stale["reason"]
        time.sleep(1.0)
        assert len(car.state()["prompts"]) == spoken
        ack = acknowledge(operator, alarm_id)
        assert ack["accepted"] and ack["result"] == {"acknowledged": True, "alarm": alarm_id}
        car.wait_until(lambda s: s["prompts"][spoken:] == ["help_on_the_way"], 10,
                       "the rider told help is on the way")
        assert messages(operator, 10, alarm_event("acknowledged"))["alarm_id"] == alarm_id

        # Only the rescuer's reset at the car ends it.
        assert lamps(car.state()) == (True, True)
        car.send(cmd="button", name="alarm_reset")
        car.wait_until(lambda s: lamps(s) == (False, False), 10, "the rescuer's reset: lamps off")
        cancelled = messages(operator, 10, alarm_event("cancelled"))
        assert cancelled["alarm_id"] == alarm_id and cancelled["between_landings"]
        messages(operator, 10, lambda t, m: t.endswith("/state") and m["alarm"] == "idle" and m["alarm_id"] is None)
        late = acknowledge(operator, alarm_id)
        assert not late["accepted"] and "no alarm is standing" in late["reason"]
        assert car.firmware is not None and car.firmware.poll() is None
    finally:
        operator.close()
