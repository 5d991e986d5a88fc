"""The firmware with its platform link on: the simulated shaft, `carctl run`, the link process and a real Mosquitto.

The operator takes the car out of service and back from the platform; a fault raised while the link process is
dead reaches the platform once the process table has restarted it; the car keeps serving while the broker is down,
and the fault it raised meanwhile reaches the platform when the broker returns.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from carctl.platform.console import build_command
from hil_tests.wire import ROOT, WireCar, start_firmware, start_simulator
from tests.platform.conftest import MOSQUITTO, PASSWD, USERS, Broker, start_broker
from tests.platform.test_link import Observer
from carctl.platform.keys import write_key

KEY = b"xihan-community-key-0123456789ab"
LANDING_M = [0.0, 2.9, 5.8, 8.7, 11.6, 14.5]



@pytest.fixture
def connected_car(tmp_path: Path) -> Iterator[tuple[WireCar, Broker]]:
    if MOSQUITTO is None or PASSWD is None:
        pytest.skip("mosquitto is not installed (Debian package mosquitto; .ci/run installs it)")
    broker = start_broker(tmp_path)
    simulator, endpoints = start_simulator(tmp_path)
    (tmp_path / "mqtt.password").write_text(USERS["xihan-b7u2"])
    write_key(tmp_path / "community.key", KEY)
    config = tmp_path / "car.toml"
    base = (ROOT / "configs" / "sim.toml").read_text().replace("platform = false", "platform = true").replace(
        "[runtime]\n", f'[runtime]\nsocket_dir = "{tmp_path / "run"}"\n')
    config.write_text(base + f'''
[platform]
broker_host = "127.0.0.1"
broker_port = {broker.port}
username = "xihan-b7u2"
password_file = "{tmp_path / 'mqtt.password'}"
community = "xihan"
car = "b7u2"
key_file = "{tmp_path / 'community.key'}"
outbox_path = "{tmp_path / 'outbox.db'}"
state_every_s = 1.0
''')
    car = WireCar(endpoints["control"], tmp_path, f"tcp://{endpoints['modbus_tcp']}", endpoints["panel"])
    car.firmware = start_firmware(tmp_path, car.drive, car.panel, config)
    try:
        yield car, broker
    finally:
        car.stop_firmware()
        simulator.terminate()
        simulator.wait(timeout=10)
        if simulator.stdout is not None:
            simulator.stdout.close()
        broker.stop()


def link_process_pid(car: WireCar) -> int:
    """The pid of the platform link process the firmware started last (from its structured log)."""
    records = [json.loads(line) for line in (car.workdir / "firmware.log").read_text().splitlines()
               if line.startswith("{")]
    started = [r for r in records if r.get("kind") == "process" and r.get("name") == "platform"
               and r.get("state") == "started"]
    assert started, "the firmware did not start its platform link process"
    return int(started[-1]["pid"])


def messages(observer: Observer, within_s: float, want: Any) -> dict[str, Any]:
    """The first message, not matched before, seen already or arriving within within_s, that want(topic, message)
    accepts; a matched message is used up."""
    seen = getattr(observer, "seen", [])
    observer.seen = seen  # type: ignore[attr-defined]
    for index, (topic, message) in enumerate(seen):
        if want(topic, message):
            del seen[index]
            return message
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            topic, payload, _ = observer.take(max(0.05, deadline - time.monotonic()))
        except Exception:  # noqa: BLE001 - queue.Empty at the deadline
            break
        message = json.loads(payload)
        if want(topic, message):
            return message
        seen.append((topic, message))
    raise AssertionError("the expected message did not arrive")


def test_platform_takes_the_car_out_of_service_and_the_car_survives_the_broker_going_away(
        connected_car: tuple[WireCar, Broker]) -> None:
    car, broker = connected_car
    operator = Observer(broker.port, "platform", ["carctl/xihan/b7u2/state", "carctl/xihan/b7u2/ack",
                                                  "carctl/xihan/b7u2/events"])
    try:
        state = messages(operator, 20, lambda t, m: t.endswith("/state"))
        assert state["mode"] == "normal" and "loop_lag_p99_ms" in state
        command = build_command("car.mode", "xihan", "b7u2", {"mode": "out_of_service"}, KEY)
        operator.publish("carctl/xihan/b7u2/cmd", json.dumps(command))
        ack = messages(operator, 10, lambda t, m: t.endswith("/ack") and m.get("id") == command["id"])
        assert ack["accepted"]
        messages(operator, 10, lambda t, m: t.endswith("/state") and m["mode"] == "out_of_service")
        messages(operator, 10, lambda t, m: t.endswith("/events") and m.get("kind") == "mode_changed")
        car.press_hall_call(3, "down")
        time.sleep(2.0)
        assert car.state()["lamps"]["down"] == []  # out of service: landing calls off
        back = build_command("car.mode", "xihan", "b7u2", {"mode": "normal"}, KEY)
        operator.publish("carctl/xihan/b7u2/cmd", json.dumps(back))
        messages(operator, 10, lambda t, m: t.endswith("/state") and m["mode"] == "normal"
                 and m["t"] >= back["issued_at"])
        query = build_command("config.get", "xihan", "b7u2", {}, KEY)
        operator.publish("carctl/xihan/b7u2/cmd", json.dumps(query))
        answer = messages(operator, 10, lambda t, m: t.endswith("/ack") and m.get("id") == query["id"])
        assert answer["accepted"] and answer["result"]["state"]["mode"] == "normal"

        # The link process dies; a fault raised meanwhile waits in the loop's spool until it is back.
        agent_pid = link_process_pid(car)
        os.kill(agent_pid, signal.SIGKILL)
        car.send(cmd="inject", kind="drive_fault")
        time.sleep(0.5)
        car.send(cmd="clear", kind="drive_fault")
        raised = messages(operator, 30, lambda t, m: m.get("kind") == "fault_raised" and m.get("fault") == "drive_fault")
        assert raised["category"] == "faults_and_alarms"
        assert link_process_pid(car) != agent_pid  # restarted by the process table
        car.send(cmd="button", name="fault_reset")  # the maintenance reset on the car panel
        messages(operator, 20, lambda t, m: m.get("kind") == "fault_cleared" and m.get("fault") == "drive_fault")
    finally:
        operator.close()
    broker.stop()
    car.press_car_call(4)
    car.wait_doors("open", within_s=40, at_m=LANDING_M[4])  # the car runs the same with the broker gone
    car.send(cmd="inject", kind="drive_fault")
    time.sleep(1.0)
    car.send(cmd="clear", kind="drive_fault")
    broker.start()
    late = Observer(broker.port, "platform", ["carctl/xihan/b7u2/events"])
    try:
        raised = messages(late, 40, lambda t, m: m.get("kind") == "fault_raised" and m.get("fault") == "drive_fault")
        assert raised["category"] == "faults_and_alarms"
    finally:
        late.close()
