"""The firmware with its platform link on: the simulated shaft, `carctl run`, the link process and a real Mosquitto.

The operator takes the car out of service and back from the platform; a fault raised while the link process is
dead reaches the platform once the process table has restarted it; the car keeps serving while the broker is down,
and the fault it raised meanwhile reaches the platform when the broker returns.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from carctl.platform.console import build_command
from hil_tests.wire import WireCar, bench_config_text, start_firmware, start_simulator, stop_simulator
from tests.platform.conftest import MOSQUITTO, PASSWD, USERS, Broker, start_broker
from tests.platform.test_link import Observer
from tests.sidechannel_senders import REFUSED, send_from_another_process
from carctl.platform.keys import write_key

KEY = b"xihan-community-key-0123456789ab"
LANDING_M = [0.0, 2.9, 5.8, 8.7, 11.6, 14.5]
NOBODY = 65534



@pytest.fixture
def connected_car(tmp_path: Path) -> Iterator[tuple[WireCar, Broker]]:
    if MOSQUITTO is None or PASSWD is None:
        pytest.skip("mosquitto is not installed (Debian package mosquitto; .ci/run installs it)")
    broker = start_broker(tmp_path)
    simulator, endpoints = start_simulator(tmp_path)
    config = tmp_path / "car.toml"
    # The face feature on, with no gallery key: the loop opens its recognition socket while the worker refuses to
    # start (and is restarted with a backoff), so every side channel exists.
    base = bench_config_text().replace("platform = false", "platform = true").replace(
        "face = false", "face = true").replace("[runtime]\n", f'[runtime]\nsocket_dir = "{tmp_path / "run"}"\n')
    config.write_text(base + platform_section(tmp_path, broker.port) + f'''
[face]
key_file = "{tmp_path / 'no-gallery.key'}"
gallery_dir = "{tmp_path / 'gallery'}"
''')
    car = WireCar(endpoints["control"], tmp_path, f"tcp://{endpoints['modbus_tcp']}", endpoints["panel"])
    car.firmware = start_firmware(tmp_path, car.drive, car.panel, config)
    try:
        yield car, broker
    finally:
        car.stop_firmware()
        stop_simulator(simulator)
        broker.stop()


def platform_section(workdir: Path, broker_port: int) -> str:
    """The car's [platform] table for the bench broker, with its password and community key written in
    ``workdir``."""
    (workdir / "mqtt.password").write_text(USERS["xihan-b7u2"])
    write_key(workdir / "community.key", KEY)
    return f'''
[platform]
broker_host = "127.0.0.1"
broker_port = {broker_port}
username = "xihan-b7u2"
password_file = "{workdir / 'mqtt.password'}"
community = "xihan"
car = "b7u2"
key_file = "{workdir / 'community.key'}"
outbox_path = "{workdir / 'outbox.db'}"
state_every_s = 1.0
overrides_path = "{workdir / 'overrides.json'}"
'''


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


def spray(path: Path, datagrams: list[bytes]) -> int:
    """Send every datagram without waiting; how many the socket took."""
    taken = 0
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender:
        sender.setblocking(False)
        for datagram in datagrams:
            try:
                sender.sendto(datagram, str(path))
                taken += 1
            except OSError:
                time.sleep(0.005)  # the queue is full or the datagram too large: nothing reaches the reader
    return taken


FORGED = [b'{"type":"mode","mode":"out_of_service"}', b'{"type":"reload"}',
          b'{"type":"recognition","resident":"x","home_landing":5,"allowed_landings":[0,1,2,3,4,5]}',
          b'{"type":"event","event":{"id":"f1","category":"faults_and_alarms","kind":"fault_raised"}}']
GARBAGE = [b'{"type":"mode","mode":[]}', b'{"type":"mode","mode":"fire"}', b"[" * 50_000, b"\xff\xfe",
           b'{"type":"event_stored","id":{"x":1}}', b'{"type":"reload","n":1e400}', b"1" * 400, b"null",
           b'{"type":"recognition","resident":"r","home_landing":99,"allowed_landings":[0,1,2,3,4,5,6,7]}',
           b'{"type":"event","event":{"id":"x","category":"statistics","kind":"daily_statistics","trips":1e300}}',
           b'{"type":"state","state":[1,2]}', b'{"type":"mode","mode":"\\ud800"}', b""]


@pytest.mark.skipif(os.geteuid() != 0, reason="forging as another user needs root")
def test_nothing_from_outside_stops_or_fools_the_running_car(connected_car: tuple[WireCar, Broker]) -> None:
    car, broker = connected_car
    run_dir = car.workdir / "run"
    operator = Observer(broker.port, "platform", ["carctl/xihan/b7u2/state", "carctl/xihan/b7u2/ack"])
    try:
        messages(operator, 20, lambda t, m: t.endswith("/state") and m["mode"] == "normal")
        deadline = time.monotonic() + 20
        while not (run_dir / "agent.sock").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        sockets = sorted(run_dir.glob("*.sock"))
        assert {p.name for p in sockets} >= {"agent.sock", "loop-platform.sock", "loop-face.sock"}
        faults_before = len(car.firmware_faults_raised())  # the power-up's stale inputs among them
        car.press_car_call(4)
        car.wait_until(lambda s: abs(s["speed_m_s"]) > 0.5, within_s=20, what="the car running")
        for path in sockets:
            # Another user on the board cannot even reach the firmware's sockets...
            assert send_from_another_process(path, b'{"type":"mode","mode":"out_of_service"}', NOBODY) == REFUSED
            assert send_from_another_process(path, b'{"type":"recognition","resident":"x","home_landing":5,'
                                                   b'"allowed_landings":[0,1,2,3,4,5]}', NOBODY) == REFUSED
            # ...and a process of the firmware's own user that is not the part the socket belongs to is refused too,
            # garbage or well-formed forgeries alike.
            assert spray(path, GARBAGE * 3 + FORGED) > 0
        bad_commands = [b"[" * 100_000, b'{"id": "\\ud800"}', json.dumps({"id": "c1", "signature": "é" * 64}).encode(),
                        b'{"id":"c2","type":"car.mode","community":"xihan","car":"b7u2","issued_at":' + b"9" * 400
                        + b',"expires_at":1,"params":{},"signature":"' + b"0" * 64 + b'"}',
                        json.dumps(build_command("car.mode", "xihan", "b7u2", {"mode": "out_of_service"},
                                                 b"not-the-community-key-0123456789")).encode()]
        for payload in bad_commands:
            operator.publish("carctl/xihan/b7u2/cmd", payload)
        car.wait_doors("open", within_s=40, at_m=LANDING_M[4])
        assert car.firmware is not None and car.firmware.poll() is None  # the loop never stopped
        query = build_command("config.get", "xihan", "b7u2", {}, KEY)
        operator.publish("carctl/xihan/b7u2/cmd", json.dumps(query))
        answer = messages(operator, 15, lambda t, m: t.endswith("/ack") and m.get("id") == query["id"])
        assert answer["accepted"] and answer["result"]["state"]["mode"] == "normal"
        assert answer["result"]["link"]["from_loop_refused"].get("sender not allowed")  # not from its loop
        forged = messages(operator, 5, lambda t, m: t.endswith("/ack") and m.get("reason") == "bad signature")
        assert not forged["accepted"]
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            health = car.firmware_health()
            if health.get("platform_messages_refused") and health.get("recognitions_refused"):
                break
            time.sleep(0.5)
        assert health["platform_messages_refused"].get("sender not allowed", 0) > 0
        assert health["recognitions_refused"].get("sender not allowed", 0) > 0
        assert health["mode"] == "normal" and health["recognitions"] == 0 and health["loop_errors"] == {}
        assert car.firmware_faults_raised()[faults_before:] == []  # not even a late cycle: nothing disturbed the run
    finally:
        operator.close()
