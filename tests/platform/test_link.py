"""The platform link against a real Mosquitto: commands, acks, replays, retained state, the outbox, the ACL."""

from __future__ import annotations

import json
import queue
import time
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from carctl.platform.commands import sign
from carctl.platform.link import BrokerSettings, PlatformLink
from carctl.platform.outbox import Outbox
from tests.platform.conftest import USERS, Broker

KEY = b"xihan-community-key-0123456789ab"


class Observer:
    """An MQTT client for the test: the platform operator, or a car."""

    def __init__(self, port: int, user: str, topics: list[str]) -> None:
        self.messages: queue.Queue[tuple[str, bytes, bool]] = queue.Queue()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"obs-{uuid.uuid4().hex[:8]}")
        self.client.username_pw_set(user, USERS[user])
        self.client.on_message = lambda c, u, m: self.messages.put((m.topic, m.payload, m.retain))
        self.client.connect("127.0.0.1", port)
        for topic in topics:
            self.client.subscribe(topic, qos=1)
        self.client.loop_start()
        time.sleep(0.2)

    def publish(self, topic: str, payload: bytes | str) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(timeout=5)

    def take(self, within_s: float = 5.0) -> tuple[str, bytes, bool]:
        return self.messages.get(timeout=within_s)

    def take_all(self, settle_s: float = 0.5) -> list[tuple[str, bytes, bool]]:
        time.sleep(settle_s)
        found = []
        while not self.messages.empty():
            found.append(self.messages.get())
        return found

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def retained(port: int, topic: str, within_s: float = 10.0) -> bytes:
    """What a subscriber that comes later is given at once on the topic: the broker's retained copy. A publish still
    on its way when the subscriber came arrives live, not retained, so a later subscriber is asked again."""
    deadline = time.monotonic() + within_s
    while True:
        late = Observer(port, "platform", [topic])
        try:
            _, payload, was_retained = late.take(within_s=max(0.1, deadline - time.monotonic()))
        finally:
            late.close()
        if was_retained:
            return payload
        assert time.monotonic() < deadline, f"nothing retained on {topic} within {within_s} s"


def command(kind: str = "car.mode", params: dict[str, Any] | None = None, **changes: Any) -> bytes:
    now = time.time()
    body = {"id": uuid.uuid4().hex, "type": kind, "community": "xihan", "car": "b7u2", "issued_at": now,
            "expires_at": now + 60, "params": params if params is not None else {"mode": "out_of_service"}}
    body.update(changes)
    return json.dumps(sign(body, KEY)).encode()


def link(port: int, outbox: Outbox, applied: list[dict[str, Any]]) -> PlatformLink:
    def handler(cmd: dict[str, Any]) -> dict[str, Any]:
        applied.append(cmd)
        return {"applied": cmd["type"]}

    # The car's clock as NTP keeps it (a test machine's may not be): these refusals are the command's fault;
    # test_clock.py has the car whose clock is not synchronised.
    car = PlatformLink(BrokerSettings("127.0.0.1", port, "xihan-b7u2", USERS["xihan-b7u2"]), "xihan", "b7u2", KEY,
                       outbox, handler, clock_synchronised=lambda: True)
    car.start()
    assert car.connected.wait(10)
    time.sleep(0.2)
    return car


def test_commands_are_applied_once_and_refusals_acknowledged(broker: Broker, tmp_path: Path) -> None:
    applied: list[dict[str, Any]] = []
    car = link(broker.port, Outbox(tmp_path / "o.db"), applied)
    operator = Observer(broker.port, "platform", ["carctl/xihan/b7u2/ack", "carctl/xihan/b7u2/cmd"])
    try:
        good = command()
        operator.publish("carctl/xihan/b7u2/cmd", good)
        captured = None
        acks = []
        for _ in range(2):
            topic, payload, _ = operator.take()
            if topic.endswith("/cmd"):
                captured = payload  # the operator saw the command go by: an attacker could too
            else:
                acks.append(json.loads(payload))
        assert acks[0]["accepted"] and acks[0]["result"] == {"applied": "car.mode"}
        assert captured == good
        operator.publish("carctl/xihan/b7u2/cmd", captured)  # replay what was captured off the broker
        bad = [json.dumps({"id": "x", "type": "car.mode"}).encode(), b"{not json", b"\x00" * 3000,
               json.dumps({**json.loads(command()), "signature": "00" * 32}).encode(),
               command(expires_at=time.time() - 1),
               command(kind="car.home_landing", params={"landing": "five"})]
        for payload in bad:
            operator.publish("carctl/xihan/b7u2/cmd", payload)
        refusals = [json.loads(p) for t, p, _ in operator.take_all(1.0) if t.endswith("/ack")]
        reasons = [r["reason"] for r in refusals]
        # The two payloads whose id cannot be read have no one to answer: dropped and counted.
        assert len(refusals) == 1 + len(bad) - 2 and not any(r["accepted"] for r in refusals)
        assert car.commands_dropped == 2
        assert reasons[0].startswith("replayed")
        assert any(r.startswith("malformed") for r in reasons) and "bad signature" in reasons
        assert "expired" in reasons and any("bad value" in r for r in reasons)
        assert len(applied) == 1  # nothing else changed on the car
    finally:
        operator.close()
        car.stop()


def test_state_is_retained_for_late_subscribers(broker: Broker, tmp_path: Path) -> None:
    car = link(broker.port, Outbox(tmp_path / "o.db"), [])
    try:
        car.publish_state({"landing": 3, "door": "closed", "mode": "normal"})
        assert json.loads(retained(broker.port, "carctl/xihan/b7u2/state"))["landing"] == 3
    finally:
        car.stop()


def test_outbox_survives_a_broker_outage_and_a_controller_restart(broker: Broker, tmp_path: Path) -> None:
    applied: list[dict[str, Any]] = []
    car = link(broker.port, Outbox(tmp_path / "o.db"), applied)
    broker.stop()
    time.sleep(0.5)
    ids = [car.send_event({"kind": "fault_raised", "n": n}) for n in range(20)]
    car.stop()  # the controller restarts while the broker is still down
    restarted_outbox = Outbox(tmp_path / "o.db")
    assert restarted_outbox.count() == 20
    broker.start()
    consumer = Observer(broker.port, "platform", ["carctl/xihan/b7u2/events"])
    car = link(broker.port, restarted_outbox, applied)
    try:
        received = {json.loads(p)["id"] for _, p, _ in consumer.take_all(2.0)}
        assert received == set(ids)
        deadline = time.monotonic() + 5
        while restarted_outbox.count() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert restarted_outbox.count() == 0  # every event acknowledged by the broker has left the outbox
    finally:
        consumer.close()
        car.stop()


def test_a_car_cannot_read_another_cars_commands_or_publish_as_it(broker: Broker) -> None:
    car3 = Observer(broker.port, "xihan-b7u3", ["carctl/xihan/b7u2/cmd", "carctl/xihan/b7u3/cmd"])
    operator = Observer(broker.port, "platform", ["carctl/xihan/+/state"])
    try:
        operator.publish("carctl/xihan/b7u2/cmd", command())
        operator.publish("carctl/xihan/b7u3/cmd", command(car="b7u3"))
        seen = [topic for topic, _, _ in car3.take_all(1.0)]
        assert seen == ["carctl/xihan/b7u3/cmd"]  # its own commands only
        car3.publish("carctl/xihan/b7u2/state", json.dumps({"landing": 0, "forged": True}))
        car3.publish("carctl/xihan/b7u3/state", json.dumps({"landing": 1}))
        states = [topic for topic, _, _ in operator.take_all(1.0)]
        assert states == ["carctl/xihan/b7u3/state"]
    finally:
        car3.close()
        operator.close()


def test_wrong_password_is_refused_and_the_car_says_so(broker: Broker, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    refused = PlatformLink(BrokerSettings("127.0.0.1", broker.port, "xihan-b7u2", "guess"), "xihan", "b7u2", KEY,
                           Outbox(tmp_path / "o.db"), lambda c: None)
    refused.start()
    try:
        assert not refused.connected.wait(2)
        assert refused.logins_refused >= 1 and refused.health()["logins_refused"] >= 1
    finally:
        refused.stop()
    assert "the broker refused the login of 'xihan-b7u2'" in capsys.readouterr().err


def test_a_burst_of_events_while_acknowledgements_arrive_does_not_stall_the_link(broker: Broker,
                                                                                 tmp_path: Path) -> None:
    """paho acknowledges on its own thread while the car keeps adding events: every one arrives and leaves the
    outbox (a lock held around publish() once deadlocked against paho's on_publish here)."""
    operator = Observer(broker.port, "platform", ["carctl/xihan/b7u2/events"])
    outbox = Outbox(tmp_path / "o.db")
    car = link(broker.port, outbox, [])
    try:
        sent = {car.send_event({"kind": "burst", "n": n}) for n in range(1000)}
        received: set[str] = set()
        deadline = time.monotonic() + 60
        while received != sent and time.monotonic() < deadline:
            received |= {json.loads(payload)["id"] for _, payload, _ in operator.take_all(0.2)}
        assert received == sent
        while outbox.count() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert outbox.count() == 0
    finally:
        car.stop()
        operator.close()
        outbox.close()
