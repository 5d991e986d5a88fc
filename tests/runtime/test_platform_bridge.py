"""The loop's side of the platform link: events wait in the loop's spool until the link process has them on disk,
so a link process that is down or restarting loses nothing, and a resend never doubles an event."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from carctl.core.signals import Event, EventKind
from carctl.core.supervisor import Fault, fault_detail
from carctl.platform.agent import Agent
from carctl.platform.keys import write_key
from carctl.platform.outbox import Outbox
from carctl.runtime import platform_bridge
from carctl.runtime.config import FirmwareConfig, from_dict
from carctl.runtime.platform_bridge import PlatformBridge
from carctl.runtime.sidechannel import prepare_socket_dir
from sim.procedures import SimulatedCar


def car_config(tmp_path: Path) -> FirmwareConfig:
    (tmp_path / "pw").write_text("secret")
    write_key(tmp_path / "key", b"k" * 32)
    return from_dict({
        "drive": {"endpoint": "tcp://127.0.0.1:1"}, "panel": {"port": "/dev/null"},
        "processes": {"platform": True}, "runtime": {"socket_dir": str(tmp_path / "run")},
        # No broker on port 1: the agent keeps everything in its outbox.
        "platform": {"broker_port": 1, "password_file": str(tmp_path / "pw"), "key_file": str(tmp_path / "key"),
                     "outbox_path": str(tmp_path / "outbox.db"), "overrides_path": str(tmp_path / "o.json"),
                     "community": "xihan", "car": "b7u2"},
    })


def fault_event(tick: int) -> Event:
    return Event(EventKind.FAULT_RAISED, tick, -1, fault_detail(Fault.DRIVE_FAULT))


def test_events_raised_while_the_link_process_is_down_reach_its_outbox_once(tmp_path: Path) -> None:
    config = car_config(tmp_path)
    car = SimulatedCar()
    inputs = car.sim._previous_inputs
    assert inputs is not None
    bridge = PlatformBridge(config, prepare_socket_dir(tmp_path / "run"))
    try:
        for tick in range(3):  # three faults while nothing listens
            bridge.after_cycle(car.sim.state, inputs, (fault_event(tick),), 0.1)
        assert len(bridge.spool) == 3
        agent = Agent(config)
        runner = threading.Thread(target=agent.run)
        runner.start()
        try:
            deadline = time.monotonic() + 10
            while bridge.spool and time.monotonic() < deadline:
                bridge.after_cycle(car.sim.state, inputs, (), 0.1)  # resends once a second
                bridge.take()  # hears "event_stored"
                time.sleep(0.02)
            assert not bridge.spool
            # Give any duplicate resend time to arrive: the outbox still holds each event once.
            time.sleep(0.3)
        finally:
            agent.stopping.set()
            runner.join(timeout=5)
            agent.close()
    finally:
        bridge.close()
    outbox = Outbox(tmp_path / "outbox.db")
    try:
        events = [json.loads(payload) for _, _, payload in outbox.pending()]
    finally:
        outbox.close()
    assert [e["fault"] for e in events] == ["drive_fault"] * 3
    assert [e["tick"] for e in events] == [0, 1, 2]
    assert len({e["id"] for e in events}) == 3


def test_the_spool_is_bounded_and_counts_what_it_had_to_drop(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(platform_bridge, "SPOOL_LIMIT", 5)
    bridge = PlatformBridge(car_config(tmp_path), prepare_socket_dir(tmp_path / "run"))
    try:
        for number in range(7):
            bridge.send_event({"id": f"e{number}", "kind": "x"})
        assert list(bridge.spool) == ["e2", "e3", "e4", "e5", "e6"]
        assert bridge.spool_overflow == 2
    finally:
        bridge.close()


def test_an_acknowledgement_of_an_alarm_no_longer_standing_is_not_taken(tmp_path: Path) -> None:
    """The operator acknowledged alarm A; the rescuer reset it and a rider started alarm B before the
    acknowledgement arrived: B's rider must not hear that help is on the way because of A."""
    from carctl.protocol import loopback
    from carctl.runtime.sidechannel import LOOP_FROM_PLATFORM, Sender

    old, standing = "a" * 32, "b" * 32
    socket_dir = prepare_socket_dir(tmp_path / "run")
    bridge = PlatformBridge(car_config(tmp_path), socket_dir)
    link = Sender(socket_dir, LOOP_FROM_PLATFORM)
    try:
        for named, taken in ((old, False), (standing, True), ("", True)):
            link.send(loopback.alarm_acknowledged(named))
            time.sleep(0.05)
            bridge.take()
            assert bridge.take_acknowledgement(standing) is taken
            assert bridge.take_acknowledgement(standing) is False  # taken once
        assert bridge.inbox.refused == {"acknowledgement of an alarm not standing": 1}
        link.send({"type": "alarm_acknowledged", "alarm": "not-an-id"})
        time.sleep(0.05)
        bridge.take()
        assert bridge.take_acknowledgement(standing) is False
        assert bridge.inbox.refused["alarm_acknowledged with an alarm id that is not one"] == 1
    finally:
        link.close()
        bridge.close()
