"""The link process's commands against a real Mosquitto: the face feature switched, residents enrolled from photos
delivered in the command (real photos through dlib) and deleted, the gallery wiped; each reported as an event that
carries no biometric data."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from carctl.face.gallery import Gallery, load_key
from carctl.platform.agent import Agent
from carctl.runtime import overrides
from carctl.runtime.config import from_dict
from tests.face.conftest import FACES
from tests.platform.conftest import USERS, Broker
from tests.platform.test_link import KEY, Observer, command, retained
from carctl.platform.keys import write_key

CAR = "carctl/xihan/b7u2"



@pytest.fixture
def agent(tmp_path: Path, broker: Broker) -> Iterator[Agent]:
    (tmp_path / "pw").write_text(USERS["xihan-b7u2"])
    write_key(tmp_path / "community.key", KEY)
    config = from_dict({
        "drive": {"endpoint": "tcp://127.0.0.1:1"}, "panel": {"port": "/dev/null"},
        "processes": {"platform": True}, "runtime": {"socket_dir": str(tmp_path / "run")},
        "face": {"gallery_dir": str(tmp_path / "gallery"), "key_file": str(tmp_path / "gallery.key"),
                 "community": "xihan"},
        "platform": {"broker_port": broker.port, "username": "xihan-b7u2", "password_file": str(tmp_path / "pw"),
                     "key_file": str(tmp_path / "community.key"), "outbox_path": str(tmp_path / "outbox.db"),
                     "overrides_path": str(tmp_path / "overrides.json"), "community": "xihan", "car": "b7u2"},
    })
    running = Agent(config)
    runner = threading.Thread(target=running.run)
    runner.start()
    assert running.link.connected.wait(10)
    yield running
    running.stopping.set()
    runner.join(timeout=5)
    running.close()


def photo(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def send(operator: Observer, kind: str, params: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Publish a signed command; its ack, and the events that followed it."""
    payload = command(kind, params)
    command_id = json.loads(payload)["id"]
    operator.publish(f"{CAR}/cmd", payload)
    events: list[dict[str, Any]] = []
    while True:
        topic, body, _ = operator.take(within_s=60)
        message = json.loads(body)
        if topic.endswith("/events"):
            events.append(message)
        elif message.get("id") == command_id:
            events.extend(json.loads(b) for t, b, _ in operator.take_all(0.5) if t.endswith("/events"))
            return message, events


def test_face_commands_change_the_car_and_report_without_biometrics(agent: Agent, broker: Broker,
                                                                    tmp_path: Path) -> None:
    operator = Observer(broker.port, "platform", [f"{CAR}/ack", f"{CAR}/events"])
    try:
        ack, events = send(operator, "face.enable", {})
        assert ack["accepted"] and ack["result"]["face"] is True
        assert overrides.read(tmp_path / "overrides.json")["face_enabled"] is True
        assert [e["kind"] for e in events] == ["face_switched"]

        ack, events = send(operator, "resident.enroll", {
            "resident": "r-501", "home_landing": 4, "allowed_landings": [0, 4], "consent": "C-2026-501",
            "photos": [photo(FACES / "obama" / "obama_1.jpg"), photo(FACES / "obama" / "obama_2.jpg")]})
        assert ack["accepted"], ack
        assert ack["result"] == {"resident": "r-501", "home_landing": 4, "templates": 2, "replaced": False}
        [enrolled] = events
        assert set(enrolled) == {"id", "t", "category", "kind", "resident", "home_landing", "templates"}
        gallery = Gallery(tmp_path / "gallery", "xihan", load_key(tmp_path / "gallery.key"))
        assert gallery.residents["r-501"].allowed_landings == (0, 4)

        before = (tmp_path / "gallery" / "xihan.gallery").read_bytes()
        ack, events = send(operator, "resident.enroll", {
            "resident": "r-502", "home_landing": 2, "consent": "C-2026-502",
            "photos": [photo(FACES / "group" / "group_1.jpg")]})
        assert not ack["accepted"] and "faces found" in ack["reason"] and events == []
        assert (tmp_path / "gallery" / "xihan.gallery").read_bytes() == before

        ack, events = send(operator, "resident.delete", {"resident": "r-501"})
        assert ack["accepted"] and [e["kind"] for e in events] == ["resident_deleted"]
        ack, _ = send(operator, "resident.delete", {"resident": "r-501"})
        assert not ack["accepted"] and "not enrolled" in ack["reason"]

        ack, events = send(operator, "face.disable", {"wipe": True})
        assert ack["accepted"] and ack["result"]["wiped"] is True
        assert [e["kind"] for e in events] == ["face_switched", "gallery_wiped"]
        assert not (tmp_path / "gallery" / "xihan.gallery").exists() and not (tmp_path / "gallery.key").exists()
        assert overrides.read(tmp_path / "overrides.json")["face_enabled"] is False
    finally:
        operator.close()


def test_the_state_and_the_health_say_whether_the_cars_clock_is_synchronised(agent: Agent, broker: Broker) -> None:
    from carctl.clocksync import clock_synchronised

    agent.handle_loop_message({"type": "state", "state": {"mode": "normal", "landing": 2}})
    state = json.loads(retained(broker.port, f"{CAR}/state"))
    # The loop's keys as they were, and one more, which the kernel answers (null where it cannot be asked).
    assert state == {"mode": "normal", "landing": 2, "clock_synchronised": clock_synchronised()}
    operator = Observer(broker.port, "platform", [f"{CAR}/ack"])
    try:
        ack, _ = send(operator, "config.get", {})
        assert ack["accepted"] and ack["result"]["link"]["clock_synchronised"] == clock_synchronised()
    finally:
        operator.close()


def test_an_acknowledged_alarm_is_told_to_the_loop_and_one_that_cannot_be_is_refused_with_the_reason(
        agent: Agent, broker: Broker, tmp_path: Path) -> None:
    from carctl.protocol.loopback import AlarmAcknowledged, parse_platform_message
    from carctl.runtime.sidechannel import LOOP_FROM_PLATFORM, Inbox

    standing, other = "a" * 32, "b" * 32
    loop_inbox = Inbox(tmp_path / "run", LOOP_FROM_PLATFORM)
    operator = Observer(broker.port, "platform", [f"{CAR}/ack"])
    try:
        # No state from the loop yet: the operator is told to try again, not that it is done.
        ack, _ = send(operator, "alarm.acknowledge", {"alarm": standing})
        assert not ack["accepted"] and "has not reported its alarm yet" in ack["reason"]
        agent.handle_loop_message({"type": "state", "state": {"mode": "normal", "alarm": "idle", "alarm_id": None}})
        ack, _ = send(operator, "alarm.acknowledge", {})
        assert not ack["accepted"] and "no alarm is standing" in ack["reason"]
        agent.handle_loop_message({"type": "state", "state": {"alarm": "requested", "alarm_id": standing}})
        ack, _ = send(operator, "alarm.acknowledge", {"alarm": standing})
        assert not ack["accepted"] and "rescue service does not have the alarm yet" in ack["reason"]
        agent.handle_loop_message({"type": "state", "state": {"alarm": "transmitted", "alarm_id": standing}})
        ack, _ = send(operator, "alarm.acknowledge", {"alarm": other})
        assert not ack["accepted"] and f"alarm {other} is not the one standing" in ack["reason"]
        ack, _ = send(operator, "alarm.acknowledge", {"alarm": "A" * 32})  # not an id: refused by the gate
        assert not ack["accepted"] and "alarm" in ack["reason"]
        time.sleep(0.1)
        assert loop_inbox.take() == []  # nothing refused reached the loop
        ack, _ = send(operator, "alarm.acknowledge", {"alarm": standing})
        assert ack["accepted"] and ack["result"] == {"acknowledged": True, "alarm": standing}
        time.sleep(0.1)
        assert [parse_platform_message(value) for value in loop_inbox.take()] == [AlarmAcknowledged(standing)]
        # One that names no alarm: taken only if issued after the alarm standing began (the car says when).
        ack, _ = send(operator, "alarm.acknowledge", {})
        assert not ack["accepted"] and "--alarm" in ack["reason"]
        agent.handle_loop_message({"type": "state", "state": {"alarm": "transmitted", "alarm_id": standing,
                                                              "alarm_since_t": time.time() + 3600.0}})
        ack, _ = send(operator, "alarm.acknowledge", {})
        assert not ack["accepted"] and "issued before the alarm standing began" in ack["reason"]
        agent.handle_loop_message({"type": "state", "state": {"alarm": "transmitted", "alarm_id": standing,
                                                              "alarm_since_t": time.time() - 60.0}})
        ack, _ = send(operator, "alarm.acknowledge", {})
        assert ack["accepted"]
        time.sleep(0.1)
        assert [parse_platform_message(value) for value in loop_inbox.take()] == [AlarmAcknowledged()]
    finally:
        operator.close()
        loop_inbox.close()
