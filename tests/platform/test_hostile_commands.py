"""Payloads that once killed the link: a non-ASCII signature, `[` nested 100,000 deep, a 400-digit `issued_at`, a
lone surrogate in `id`. Each raised out of the command gate into paho's network thread; with a persistent session
and QoS 1 the broker redelivered it to the restarted link, which died again. Now the gate is total, the callbacks are
guarded, and a watchdog restarts a network thread that ends anyway."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carctl.platform.commands import MAX_COMMAND_BYTES, CommandGate, sign
from carctl.platform.link import BrokerSettings, PlatformLink
from carctl.platform.outbox import Outbox
from tests.platform.conftest import USERS, Broker
from tests.platform.test_link import KEY, Observer, command, link

NOW = 1_800_000_000.0


def signed(**fields: Any) -> dict[str, Any]:
    body = {"id": uuid.uuid4().hex, "type": "car.mode", "community": "xihan", "car": "b7u2", "issued_at": NOW - 1,
            "expires_at": NOW + 60, "params": {"mode": "normal"}}
    body.update(fields)
    return sign(body, KEY)


def raw(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()


# Bytes as an attacker on the broker would send them, ensure_ascii=False so the surrogates and non-ASCII go as is.
HOSTILE = {
    "non-ASCII signature": raw({**signed(), "signature": "é" * 64}),
    "nested 100,000 deep": b"[" * 100_000 + b"]" * 100_000,
    "nested object 100,000 deep": b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
    "400-digit issued_at": b'{"id": "c1", "type": "car.mode", "community": "xihan", "car": "b7u2", "issued_at": '
                           + b"9" * 400 + b', "expires_at": 1, "params": {}, "signature": "' + b"0" * 64 + b'"}',
    "huge float issued_at": raw({**signed(), "issued_at": 1e308}),
    "lone surrogate in id": b'{"id": "\\ud800", "type": "car.mode", "community": "xihan", "car": "b7u2"}',
    "raw surrogate bytes": b'{"id": "\xed\xa0\x80"}',
    "control characters in id": raw(signed(id="\x1b[2J\x00")),
    "list where a string goes": raw({**signed(), "community": ["xihan"]}),
    "NaN expiry": b'{"id": "c2", "expires_at": NaN}',
    "duplicate keys": b'{"id": "c3", "id": "c4"}',
    "UTF-16": json.dumps(signed()).encode("utf-16"),
    "too large": b"{" + b" " * (MAX_COMMAND_BYTES + 1) + b"}",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_the_gate_refuses_every_hostile_payload_without_raising(name: str) -> None:
    verdict = CommandGate("xihan", "b7u2", KEY).check(HOSTILE[name], NOW)
    assert not verdict.accepted and verdict.reason
    if verdict.command_id is not None:
        json.dumps(verdict.ack())  # whatever is acknowledged can be sent


def test_a_signed_command_without_params_is_taken_as_none_where_its_type_takes_none() -> None:
    gate = CommandGate("xihan", "b7u2", KEY)
    body = {key: value for key, value in signed(type="face.enable").items() if key not in ("params", "signature")}
    verdict = gate.check(raw(sign(body, KEY)), NOW)
    assert verdict.accepted and verdict.command is not None and verdict.command["params"] == {}
    needs = {key: value for key, value in signed(type="car.mode").items() if key not in ("params", "signature")}
    refused = gate.check(raw(sign(needs, KEY)), NOW)
    assert not refused.accepted and "missing parameter 'mode'" in refused.reason


@pytest.mark.fuzz
@settings(deadline=None)
@given(st.binary(max_size=300) | st.text(max_size=200).map(lambda text: text.encode("utf-8", "surrogatepass")))
def test_fuzz_any_bytes_get_a_verdict(payload: bytes) -> None:
    verdict = CommandGate("xihan", "b7u2", KEY).check(payload, NOW)
    assert not verdict.accepted


@pytest.mark.fuzz
@settings(deadline=None)
@given(st.dictionaries(st.sampled_from(["id", "type", "community", "car", "issued_at", "expires_at", "params",
                                        "signature"]),
                       st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=70)
                       | st.lists(st.integers(), max_size=3), max_size=8))
def test_fuzz_signed_commands_with_any_field_values_get_a_verdict(fields: dict[str, Any]) -> None:
    """Signed with the right key, so every check after the signature is reached too."""
    body = {**signed(), **{key: value for key, value in fields.items() if key != "signature"}}
    try:
        payload = json.dumps(sign(body, KEY)).encode()
    except ValueError:
        return
    verdict = CommandGate("xihan", "b7u2", KEY).check(payload, NOW)
    if verdict.accepted:
        assert verdict.command is not None and isinstance(verdict.command["params"], dict)


# -- on a real broker ---------------------------------------------------------------------------------------------

def wait_for_ack(operator: Observer, command_id: str, within_s: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            topic, payload, _ = operator.take(max(0.05, deadline - time.monotonic()))
        except Exception:  # noqa: BLE001 - queue.Empty at the deadline
            break
        message = json.loads(payload)
        if topic.endswith("/ack") and message.get("id") == command_id:
            return message  # type: ignore[no-any-return]
    raise AssertionError(f"no ack for {command_id}")


def test_hostile_payloads_on_the_command_topic_leave_the_link_alive(broker: Broker, tmp_path: Path) -> None:
    applied: list[dict[str, Any]] = []
    car = link(broker.port, Outbox(tmp_path / "o.db"), applied)
    operator = Observer(broker.port, "platform", ["carctl/xihan/b7u2/ack"])
    try:
        for name, payload in HOSTILE.items():
            if name != "too large":  # the broker's own limit takes that one
                operator.publish("carctl/xihan/b7u2/cmd", payload)
        good = command()
        operator.publish("carctl/xihan/b7u2/cmd", good)
        ack = wait_for_ack(operator, json.loads(good)["id"])
        assert ack["accepted"] and len(applied) == 1
        assert car.network_alive() and car.connected.is_set()
        assert car.callback_errors == 0 and car.network_restarts == 0
        assert car.commands_dropped >= 5  # those whose id could not be read are not acknowledged
    finally:
        operator.close()
        car.stop()


def test_a_bug_in_the_handler_is_counted_and_the_command_still_answered(broker: Broker, tmp_path: Path) -> None:
    def buggy(cmd: dict[str, Any]) -> dict[str, Any]:
        return {"not json": {1, 2}}  # a result the ack cannot carry: json.dumps raises in the callback

    car = PlatformLink(BrokerSettings("127.0.0.1", broker.port, "xihan-b7u2", USERS["xihan-b7u2"]), "xihan", "b7u2",
                       KEY, Outbox(tmp_path / "o.db"), buggy)
    operator = Observer(broker.port, "platform", ["carctl/xihan/b7u2/ack"])
    try:
        car.start()
        assert car.connected.wait(10)
        time.sleep(0.2)
        operator.publish("carctl/xihan/b7u2/cmd", command())
        deadline = time.monotonic() + 5
        while car.callback_errors == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert car.callback_errors == 1 and car.network_alive()
        car.handler = lambda cmd: {"ok": True}
        good = command()
        operator.publish("carctl/xihan/b7u2/cmd", good)
        assert wait_for_ack(operator, json.loads(good)["id"])["accepted"]
    finally:
        operator.close()
        car.stop()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the death is the point
def test_the_watchdog_restarts_a_network_thread_that_died(broker: Broker, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    applied: list[dict[str, Any]] = []
    car = link(broker.port, Outbox(tmp_path / "o.db"), applied)
    operator = Observer(broker.port, "platform", ["carctl/xihan/b7u2/ack"])
    try:
        original = car.client._packet_read
        failures = iter([True])

        def read_once_failing() -> Any:
            if next(failures, False):
                raise RuntimeError("a bug in the network loop")
            return original()

        monkeypatch.setattr(car.client, "_packet_read", read_once_failing)
        operator.publish("carctl/xihan/b7u2/cmd", command())  # wakes the network thread, which dies reading it
        deadline = time.monotonic() + 10
        while car.network_restarts == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert car.network_restarts == 1
        assert car.connected.wait(15) and car.network_alive()
        good = command()
        operator.publish("carctl/xihan/b7u2/cmd", good)
        assert wait_for_ack(operator, json.loads(good)["id"], within_s=15)["accepted"]
    finally:
        operator.close()
        car.stop()
