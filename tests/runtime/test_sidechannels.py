"""The side channels between the firmware's processes: a private socket directory that other users cannot enter,
receivers that refuse and count whatever is not their own well-formed message, and a loop that goes on whatever
arrives (the datagram `{"type":"mode","mode":[]}` once made `carctl run` exit with the car at 0.9 m/s)."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carctl import safejson
from carctl.adapters.drive import DriveLink, Endpoint
from carctl.adapters.panelbus import PanelBusMaster
from carctl.core.signals import Commands, Mode
from carctl.core.supervisor import Fault
from carctl.platform.agent import Agent
from carctl.platform.keys import write_key
from carctl.platform.outbox import Outbox
from carctl.platform.telemetry import DailyStatistics, audit_message, event_message, state_message
from carctl.protocol import loopback
from carctl.protocol.loopback import EventReport, ModeRequest, Refused, ReloadSettings, StateReport
from carctl.runtime import loop as loop_module
from carctl.runtime.audit_chain import MAX_LINE_BYTES, canonical_line, digest, make_record
from carctl.runtime.config import FirmwareConfig, from_dict
from carctl.runtime.loop import ControlLoop, StructuredLog
from carctl.runtime.recognitions import RecognitionInbox
from carctl.runtime.sidechannel import (AGENT_FROM_LOOP, LOOP_FROM_FACE, LOOP_FROM_PLATFORM, MAX_DATAGRAM_BYTES,
                                        Inbox, Sender, SocketDirError, prepare_socket_dir)
from sim.procedures import SimulatedCar
from tests.refusals import assert_refused
from tests.sidechannel_senders import REFUSED, send_from_another_process

ROOT = Path(__file__).resolve().parent.parent.parent

# The garbage an attacker on the board would try first: wrong types, huge and non-finite numbers, deep nesting, bad
# UTF-8, lone surrogates, other channels' messages.
GARBAGE = [
    b'{"type":"mode","mode":[]}', b'{"type":"mode","mode":{"a":1}}', b'{"type":"mode","mode":"inspection"}',
    b'{"type":"mode","mode":"fire"}', b'{"type":"mode"}', b'{"type":["mode"]}', b'{"type":"reload","x":1e400}',
    b'{"type":"event_stored","id":[1]}', b'{"type":"event_stored","id":"a/b"}', b"[" * 100_000, b"\xff\xfe\xfd",
    b'{"type":"mode","mode":"\\ud800"}', b"1" * 400, b"NaN", b"", b"null", b"[]", b'"mode"',
    # Well-formed but unstamped (no sent_s): every sender of the firmware stamps, so this is refused too.
    b'{"type":"recognition","resident":"r","home_landing":0,"allowed_landings":[0,1,2,3,4,5]}',
    b'{"type":"event","event":{"id":"x","category":"statistics","kind":"daily_statistics"}}',
    b"x" * (MAX_DATAGRAM_BYTES + 10),
]

# A `carctl run` started by a test keeps no state in the board's folder (/var/lib/carctl), shared by every run.
NO_BOARD_STATE = 'fault_log = ""\naudit_log = ""\nlatch_file = ""\nlearned_table = ""\n'


def firmware_config(tmp_path: Path, **platform: Any) -> FirmwareConfig:
    (tmp_path / "pw").write_text("secret")
    if not (tmp_path / "key").exists():
        write_key(tmp_path / "key", b"k" * 32)
    return from_dict({
        "drive": {"endpoint": "tcp://127.0.0.1:1"}, "panel": {"port": "/dev/null"},
        "processes": {"platform": True},
        "runtime": {"socket_dir": str(tmp_path / "run"), "audit_log": str(tmp_path / "audit.log"),
                    "fault_log": str(tmp_path / "faults.json"), "latch_file": str(tmp_path / "latched.json"),
                    "learned_table": str(tmp_path / "learned.json")},
        "face": {"gallery_dir": str(tmp_path / "gallery"), "key_file": str(tmp_path / "gallery.key"),
                 "community": "xihan"},
        "platform": {"broker_port": 1, "password_file": str(tmp_path / "pw"), "key_file": str(tmp_path / "key"),
                     "outbox_path": str(tmp_path / "outbox.db"), "overrides_path": str(tmp_path / "o.json"),
                     "community": "xihan", "car": "b7u2", **platform},
    })


def stamped(message: dict[str, Any]) -> bytes:
    """A message as the firmware's senders send it: stamped with this process's monotonic clock."""
    return json.dumps({**message, "sent_s": time.monotonic()}).encode()


def send_raw(path: Path, datagram: bytes) -> bool:
    """One datagram, without waiting: False when the socket would not take it (too large for the socket, or its
    queue of max_dgram_qlen datagrams, often 10, is full)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender:
        sender.setblocking(False)
        try:
            sender.sendto(datagram, str(path))
        except OSError:
            return False
        return True


def deliver(path: Path, datagram: bytes, within_s: float = 5.0) -> None:
    """One datagram to a receiver that reads on its own (the link process): waits while its queue is full."""
    deadline = time.monotonic() + within_s
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender:
        sender.setblocking(False)
        while True:
            try:
                sender.sendto(datagram, str(path))
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.005)


# -- the directory -----------------------------------------------------------------------------------------------

def test_the_socket_directory_is_made_private_and_refused_when_it_is_not(tmp_path: Path) -> None:
    made = prepare_socket_dir(tmp_path / "run")
    assert made.stat().st_mode & 0o777 == 0o700 and made.stat().st_uid == os.geteuid()
    open_dir = tmp_path / "open"
    open_dir.mkdir(mode=0o755)
    os.chmod(open_dir, 0o755)
    with pytest.raises(SocketDirError, match="open to other users"):
        prepare_socket_dir(open_dir)
    (tmp_path / "link").symlink_to(made)
    with pytest.raises(SocketDirError, match="not a directory"):
        prepare_socket_dir(tmp_path / "link")
    (tmp_path / "file").write_text("")
    with pytest.raises(SocketDirError, match="not a directory"):
        prepare_socket_dir(tmp_path / "file")
    with pytest.raises(SocketDirError, match="No such file"):
        prepare_socket_dir(tmp_path / "missing", create=False)
    if os.geteuid() == 0:
        foreign = tmp_path / "foreign"
        foreign.mkdir(mode=0o700)
        os.chown(foreign, 12345, -1)
        with pytest.raises(SocketDirError, match="belongs to user 12345"):
            prepare_socket_dir(foreign)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a sender as another user")
def test_a_process_of_another_user_cannot_reach_the_loops_sockets(tmp_path: Path) -> None:
    directory = prepare_socket_dir(tmp_path / "run")
    os.chmod(tmp_path, 0o755)  # the parent is open, as /run is: only the socket directory keeps others out
    inbox = Inbox(directory, LOOP_FROM_PLATFORM)
    try:
        assert send_from_another_process(inbox.path, b'{"type":"mode","mode":"out_of_service"}', uid=65534) == REFUSED
        time.sleep(0.05)
        assert inbox.take() == [] and inbox.received == 0
        # The firmware's own user can.
        send_raw(inbox.path, b'{"type":"reload"}')
        time.sleep(0.05)
        assert inbox.take() == [{"type": "reload"}]
    finally:
        inbox.close()
    assert not inbox.path.exists()


# -- receivers ---------------------------------------------------------------------------------------------------

def test_an_inbox_refuses_and_counts_garbage_by_reason(tmp_path: Path) -> None:
    directory = prepare_socket_dir(tmp_path / "run")
    inbox = Inbox(directory, LOOP_FROM_PLATFORM, max_per_take=200)
    try:
        assert inbox.path.stat().st_mode & 0o777 == 0o600
        values = []
        for datagram in GARBAGE:
            send_raw(inbox.path, datagram)
            values += inbox.take()
        messages = [loopback.parse_platform_message(value) for value in values]
    finally:
        inbox.close()
    # Bad UTF-8, a surrogate, 400 digits, 1e400, NaN, empty; and two oversized (100,000 brackets among them).
    assert inbox.refused == {"not acceptable JSON": 6, "oversized": 2}
    # What parses as JSON is still refused by the loop's parser: none of it is a message the loop may act on.
    assert len(messages) == len(GARBAGE) - 8 and all(isinstance(message, Refused) for message in messages)


def test_a_sender_without_a_receiver_counts_and_never_waits(tmp_path: Path) -> None:
    directory = prepare_socket_dir(tmp_path / "run")
    sender = Sender(directory, AGENT_FROM_LOOP)
    started = time.monotonic()
    try:
        assert not sender.send({"type": "state", "state": {}})
        assert not sender.send({"type": "state", "state": {"x": float("nan")}})  # not JSON: never sent
        inbox = Inbox(directory, AGENT_FROM_LOOP)
        try:
            # A receiver that does not read: the sender never blocks, it drops and counts.
            sent = sum(sender.send({"type": "state", "state": {"pad": "x" * 1000}}) for _ in range(5000))
            assert 0 < sent < 5000
        finally:
            inbox.close()
    finally:
        sender.close()
    assert time.monotonic() - started < 5
    assert sender.dropped >= 2


def test_the_parsers_take_their_own_messages_only() -> None:
    assert loopback.parse_platform_message({"type": "mode", "mode": "out_of_service"}) == ModeRequest(
        Mode.OUT_OF_SERVICE)
    assert isinstance(loopback.parse_platform_message({"type": "mode", "mode": []}), Refused)
    assert isinstance(loopback.parse_platform_message({"type": "recognition"}), Refused)
    good = {"type": "recognition", "resident": "r-501", "home_landing": 4, "allowed_landings": [0, 4]}
    assert loopback.parse_recognition(good, 6).allowed_landings == frozenset({0, 4})  # type: ignore[union-attr]
    for bad in ({**good, "home_landing": 6}, {**good, "home_landing": True}, {**good, "allowed_landings": [0, 99]},
                {**good, "allowed_landings": list(range(7))}, {**good, "allowed_landings": "0,4"},
                {**good, "resident": "r/../x"}, {**good, "resident": 7}, {"type": "mode", "mode": "normal"}):
        assert isinstance(loopback.parse_recognition(bad, 6), Refused), bad
    assert isinstance(loopback.parse_loop_message({"type": "mode", "mode": "normal"}), Refused)


def test_the_command_behind_a_mode_or_a_reload_is_carried_for_the_maintenance_record() -> None:
    assert loopback.parse_platform_message(loopback.mode_request("normal", "cmd-1")) == ModeRequest(Mode.NORMAL,
                                                                                                     "cmd-1")
    assert loopback.parse_platform_message(loopback.reload_settings("cmd-2")) == ReloadSettings("cmd-2")
    assert loopback.parse_platform_message({"type": "reload"}) == ReloadSettings("")  # an older link process
    for command in (7, None, "x" * 129, "a\nb", ["cmd"]):
        for message in ({"type": "reload", "command": command}, {"type": "mode", "mode": "normal", "command": command}):
            assert isinstance(loopback.parse_platform_message(message), Refused), message


def test_an_audit_event_carries_its_record_line_and_nothing_unbounded() -> None:
    record = {"seq": 1, "t": 1.0, "action": "fault_reset", "via": "car_key", "who": "fault reset key",
              "details": {}, "prev": "0" * 64}
    event = audit_message(record, json.dumps(record), "a" * 64)
    assert isinstance(loopback.parse_loop_message({"type": "event", "event": event}), EventReport)
    # The largest record there can be, in characters that JSON escapes six bytes each, still fits one datagram.
    largest = make_record(1, "0" * 64, 1.0, "parameter_change", "platform", "中" * 128, {"refused": "中" * 1100})
    line = canonical_line(largest)
    assert 3500 < len(line) <= MAX_LINE_BYTES and largest["details"] == {"refused": "中" * 1100}
    message = {"type": "event", "event": audit_message(largest, line.decode(), digest(line)), "sent_s": 0.0}
    assert len(safejson.dumps(message)) <= MAX_DATAGRAM_BYTES
    assert isinstance(loopback.parse_loop_message(message), EventReport)
    for bad in ({**event, "record": "x" * 5000}, {**event, "record": 7}, {**event, "who": {"nested": 1}},
                {k: v for k, v in event.items() if k != "record"}):
        assert isinstance(loopback.parse_loop_message({"type": "event", "event": bad}), Refused), bad


def test_every_message_the_car_really_sends_is_accepted_by_the_link_process() -> None:
    """The checks are strict, but never so strict that the car's own reports are refused."""
    car = SimulatedCar()
    car.press_car_call(3)
    car.wait_doors("open", within_s=60, at=3)
    car.inject("drive_fault")
    car.run_for(1.0)
    car.clear("drive_fault")
    car.reset_faults()
    car.switch_mode("out_of_service")
    car.run_for(2.0)
    inputs = car.sim._previous_inputs
    assert inputs is not None
    reported = [event_message(event, 0.02, time.time(), inputs.drive_fault_code) for event in car.events]
    reported = [message for message in reported if message is not None]
    kinds = {message["kind"] for message in reported}
    assert {"fault_raised", "fault_cleared", "mode_changed"} <= kinds
    statistics = DailyStatistics(0.02)
    statistics.update(car.sim.state, tuple(car.events), 1_800_000_000.0)
    reported.append(statistics.report(1_800_086_400.0))
    for message in reported:
        assert isinstance(loopback.parse_loop_message({"type": "event", "event": message}), EventReport), message
    status = state_message(car.sim.state, inputs, 630.0, False, 0.05, time.time())
    assert isinstance(loopback.parse_loop_message({"type": "state", "state": status}), StateReport)


@pytest.mark.fuzz
@settings(deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
                    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(
                        st.sampled_from(["type", "mode", "id", "resident", "home_landing", "allowed_landings",
                                         "state", "event", "category", "kind", "day", "trips", "running_h"])
                        | st.text(max_size=8), inner, max_size=8), max_leaves=30))
def test_fuzz_the_loopback_parsers_never_raise(value: Any) -> None:
    for wrapped in (value, {"type": "mode", "mode": value}, {"type": "recognition", "resident": "r",
                                                             "home_landing": value, "allowed_landings": value},
                    {"type": "event", "event": value}, {"type": "state", "state": value}):
        loopback.parse_platform_message(wrapped)
        loopback.parse_recognition(wrapped, 6)
        loopback.parse_loop_message(wrapped)


# -- the loop ----------------------------------------------------------------------------------------------------

def make_loop(config: FirmwareConfig) -> tuple[ControlLoop, io.StringIO]:
    stream = io.StringIO()
    loop = ControlLoop(config, DriveLink(Endpoint.parse("tcp://127.0.0.1:1"), 0.005), PanelBusMaster("/dev/null"),
                       StructuredLog(stream))
    return loop, stream


def test_garbage_on_every_channel_never_reaches_the_core_and_is_counted(tmp_path: Path) -> None:
    config = firmware_config(tmp_path)
    loop, _ = make_loop(config)
    loop.switch_face(True)
    try:
        assert loop.bridge is not None and loop.inbox is not None
        mode_before = loop.state.mode
        for datagram in GARBAGE:
            send_raw(loop.bridge.inbox.path, datagram)
            send_raw(loop.inbox.inbox.path, datagram)
            loop.cycle()
        health = loop.health()
        assert loop.state.mode is mode_before
        assert sum(health["platform_messages_refused"].values()) >= len(GARBAGE) - 2
        assert sum(health["recognitions_refused"].values()) >= len(GARBAGE) - 1
        assert health["recognitions_refused"]["no sent_s"] >= 1
        assert health["recognitions"] == 0 and health["loop_errors"] == {}
        # The real thing still works after all that.
        send_raw(loop.bridge.inbox.path, stamped(loopback.mode_request("out_of_service")))
        loop.cycle()
        assert loop.state.mode is Mode.OUT_OF_SERVICE
    finally:
        loop.switch_face(False)
        loop.close_platform()


def test_an_exception_in_a_side_channel_handler_is_counted_logged_and_the_loop_goes_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loop, stream = make_loop(firmware_config(tmp_path))
    try:
        assert loop.bridge is not None

        def broken() -> None:
            raise RuntimeError("a bug in a handler")

        monkeypatch.setattr(loop.bridge, "take", broken)
        monkeypatch.setattr(loop.bridge, "after_cycle", lambda *args: broken())
        for _ in range(50):
            loop.cycle()
        assert loop.tick == 50
        assert loop.errors.counts == {"platform_messages": 50, "platform_bridge": 50}
        logged = [json.loads(line) for line in stream.getvalue().splitlines()
                  if json.loads(line)["kind"] == "loop_error"]
        # The traceback is logged once per place, not once per cycle.
        assert sorted(record["where"] for record in logged) == ["platform_bridge", "platform_messages"]
        assert all("a bug in a handler" in record["traceback"] for record in logged)
    finally:
        loop.close_platform()


def test_an_exception_in_the_core_is_a_stop_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loop, _ = make_loop(firmware_config(tmp_path))
    written: list[Any] = []
    try:
        monkeypatch.setattr(loop.controller, "step", lambda state, inputs: 1 / 0)
        monkeypatch.setattr(loop.drive, "write_command", lambda command, watchdog: written.append(command))
        commands, events = loop.cycle()
        assert commands == loop_module.SAFE_STOP and events == ()
        assert written[-1].quick_stop and not (written[-1].run_up or written[-1].run_down)
        assert loop.errors.counts["core"] == 1 and loop.tick == 1
    finally:
        loop.close_platform()
    assert Commands(quick_stop=True) == loop_module.SAFE_STOP


# -- the link process ---------------------------------------------------------------------------------------------

def test_forged_daily_statistics_cannot_corrupt_the_running_totals(tmp_path: Path) -> None:
    agent = Agent(firmware_config(tmp_path))
    try:
        day = {"category": "statistics", "kind": "daily_statistics", "day": "2026-12-01", "since_t": 1.0,
               "trips": 200, "door_cycles": 240, "faults_raised": 1, "running_s": 2400.0, "running_h": 0.6667}
        forged = [{**day, "trips": 10**12}, {**day, "trips": -5}, {**day, "running_h": 1e300},
                  {**day, "door_cycles": 1.5}, {**day, "running_s": -1.0}, {**day, "trips": True},
                  {**day, "day": "yesterday"}, {**day, "running_h": "1"}]
        for number, event in enumerate(forged):
            agent.handle_loop_message({"type": "event", "event": {**event, "id": f"forged{number}"}})
        agent.handle_loop_message({"type": "event", "event": {**day, "id": "real"}})
        assert agent.from_loop.refused_total() == len(forged)
    finally:
        agent.close()
    outbox = Outbox(tmp_path / "outbox.db")
    try:
        assert outbox.totals() == {"trips": 200.0, "door_cycles": 240.0, "running_h": pytest.approx(0.6667)}
        assert [row[0] for row in outbox.pending()] == ["real"]
    finally:
        outbox.close()


def test_the_link_process_refuses_garbage_from_its_socket_and_keeps_the_real_events(tmp_path: Path) -> None:
    import threading

    config = firmware_config(tmp_path)
    agent = Agent(config)
    runner = threading.Thread(target=agent.run)
    runner.start()
    loop_side = Inbox(prepare_socket_dir(tmp_path / "run"), LOOP_FROM_PLATFORM)
    try:
        for datagram in GARBAGE:
            deliver(agent.from_loop.path, datagram)
        event = {"id": "e1", "t": 1.0, "category": "faults_and_alarms", "kind": "fault_raised", "tick": 3,
                 "fault": Fault.DRIVE_FAULT.value, "code": 1, "level": 4, "meaning": "x"}
        deliver(agent.from_loop.path, json.dumps({"type": "event", "event": event}).encode())
        deadline = time.monotonic() + 5
        stored: list[Any] = []
        while not stored and time.monotonic() < deadline:
            stored = [value for value in loop_side.take() if value.get("type") == "event_stored"]
            time.sleep(0.02)
        assert [{key: value for key, value in message.items() if key != "sent_s"} for message in stored] == [
            {"type": "event_stored", "id": "e1"}]
        assert 0 <= time.monotonic() - stored[0]["sent_s"] < 5  # stamped with the sender's monotonic clock
        assert agent.from_loop.refused_total() >= len(GARBAGE) - 2 and agent.handler_errors == 0
        assert runner.is_alive()
    finally:
        agent.stopping.set()
        runner.join(timeout=5)
        agent.close()
        loop_side.close()


def test_the_link_process_refuses_a_bad_key_or_a_plaintext_remote_broker(tmp_path: Path) -> None:
    from carctl.platform.agent import AgentStartError
    from carctl.runtime.config import FirmwareConfigError

    (tmp_path / "key").write_bytes(b"k" * 32)
    os.chmod(tmp_path / "key", 0o644)
    with pytest.raises(AgentStartError, match="chmod 600"):
        Agent(firmware_config(tmp_path))
    with pytest.raises(FirmwareConfigError, match="tls_ca_file") as error:
        firmware_config(tmp_path, broker_host="broker.example.net")
    assert error.value.key == "platform.tls_ca_file"
    assert firmware_config(tmp_path, broker_host="broker.example.net", allow_plaintext=True)
    assert firmware_config(tmp_path, broker_host="broker.example.net", tls_ca_file="/etc/ca.pem")
    for car in ("b7/u2", "+", "#", "B7U2", "b7 u2", ""):
        with pytest.raises(FirmwareConfigError) as error:
            firmware_config(tmp_path, car=car)
        assert error.value.key == "platform.car"
    result = subprocess.run([sys.executable, "-m", "carctl.platform.agent", "--config", str(tmp_path / "none.toml")],
                            capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 3 and "Traceback" not in result.stderr


def test_the_loop_refuses_to_start_on_an_open_socket_directory(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir(mode=0o777)
    os.chmod(tmp_path / "run", 0o777)
    with pytest.raises(SocketDirError, match="open to other users"):
        make_loop(firmware_config(tmp_path))


def test_a_second_receiver_cannot_take_a_socket_over(tmp_path: Path) -> None:
    """A second `carctl run` or a link process started by hand once unlinked the running one's socket: the car went
    on, deaf to its platform, and nothing said so."""
    from carctl.runtime.sidechannel import InUseError

    directory = prepare_socket_dir(tmp_path / "run")
    first = Inbox(directory, LOOP_FROM_PLATFORM)
    try:
        with pytest.raises(InUseError, match=f"pid {os.getpid()}"):
            Inbox(directory, LOOP_FROM_PLATFORM)
        assert send_raw(first.path, b'{"type":"reload"}')
        assert first.take() == [{"type": "reload"}]  # still the first one's socket
    finally:
        first.close()
    second = Inbox(directory, LOOP_FROM_PLATFORM)  # free again once the first has gone
    second.close()


def test_a_second_firmware_with_the_same_socket_directory_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "car.toml"
    write_key(tmp_path / "key", b"k" * 32)
    (tmp_path / "pw").write_text("x")
    config.write_text(f'[drive]\nendpoint = "tcp://127.0.0.1:1"\n[panel]\nport = "/dev/null"\n'
                      f'[processes]\nplatform = true\n'
                      f'[runtime]\nrealtime_priority = 0\n{NO_BOARD_STATE}socket_dir = "{tmp_path / "run"}"\n'
                      f'log = "{tmp_path / "log"}"\n'
                      f'[platform]\nbroker_port = 1\npassword_file = "{tmp_path / "pw"}"\nkey_file = "{tmp_path / "key"}"\n'
                      f'community = "xihan"\ncar = "b7u2"\n'
                      f'outbox_path = "{tmp_path / "outbox.db"}"\noverrides_path = "{tmp_path / "o.json"}"\n')
    command = [sys.executable, "-m", "carctl.cli", "run", "--config", str(config), "--run-seconds", "20"]
    running = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not (tmp_path / "run" / LOOP_FROM_PLATFORM).exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        second = subprocess.run(command[:-2] + ["--run-seconds", "1"], cwd=ROOT, capture_output=True, text=True,
                                timeout=60)
        assert second.returncode == 2 and f"pid {running.pid}" in second.stderr
        assert "Traceback" not in second.stderr and len(second.stderr.strip().splitlines()) == 1
        assert (tmp_path / "run" / LOOP_FROM_PLATFORM).exists() and running.poll() is None
    finally:
        running.terminate()
        running.wait(timeout=30)


def test_only_the_process_a_socket_belongs_to_may_speak_on_it(tmp_path: Path) -> None:
    """Another process of the firmware's own user — the link process, compromised by a hostile photo — cannot speak
    for the face worker: the kernel attaches the sender's pid, and the loop takes each socket's datagrams only from
    the part it started."""
    from carctl.runtime.sidechannel import only_process

    directory = prepare_socket_dir(tmp_path / "run")
    inbox = Inbox(directory, LOOP_FROM_FACE, sender=only_process(os.getpid))
    try:
        forged = b'{"type":"recognition","resident":"x","home_landing":5,"allowed_landings":[5]}'
        assert send_from_another_process(inbox.path, forged) == 0  # same user, another process: delivered...
        assert send_raw(inbox.path, b'{"type":"reload"}')  # from the process it belongs to
        time.sleep(0.05)
        assert inbox.take() == [{"type": "reload"}]
        assert inbox.refused == {"sender not allowed": 1}  # ...and refused
    finally:
        inbox.close()


def test_the_loop_takes_recognitions_and_modes_only_from_the_parts_it_started(tmp_path: Path) -> None:
    """The red team's forgery: with floor permissions on, a recognition sent by a process that is not the face worker
    registered a call to a landing the button could not reach."""
    config = firmware_config(tmp_path)
    stream = io.StringIO()
    started = {"platform": None, "face": None}  # neither part runs now: nobody may speak
    loop = ControlLoop(config, DriveLink(Endpoint.parse("tcp://127.0.0.1:1"), 0.005), PanelBusMaster("/dev/null"),
                       StructuredLog(stream), child_pid=started.get)
    loop.switch_face(True)
    try:
        assert loop.bridge is not None and loop.inbox is not None
        send_raw(loop.bridge.inbox.path, stamped(loopback.mode_request("out_of_service")))
        send_raw(loop.inbox.inbox.path, b'{"type":"recognition","resident":"x","home_landing":5,'
                                        b'"allowed_landings":[0,1,2,3,4,5]}')
        loop.cycle()
        health = loop.health()
        assert loop.state.mode is Mode.NORMAL and health["recognitions"] == 0
        assert health["platform_messages_refused"] == {"sender not allowed": 1}
        assert health["recognitions_refused"] == {"sender not allowed": 1}
        started["platform"] = os.getpid()  # now the platform part is this process
        send_raw(loop.bridge.inbox.path, stamped(loopback.mode_request("out_of_service")))
        loop.cycle()
        assert loop.state.mode is Mode.OUT_OF_SERVICE
    finally:
        loop.switch_face(False)
        loop.close_platform()


def test_a_flood_of_the_largest_datagrams_costs_the_loop_little(tmp_path: Path) -> None:
    """16 KiB of `[1,1,…]` per datagram once cost 3 ms each to parse, 64 per cycle: the loop fell to 5 Hz. The loop's
    sockets now take a few small datagrams per cycle, and a large one is refused by its length, unparsed."""
    from carctl.runtime import platform_bridge

    loop, _ = make_loop(firmware_config(tmp_path))
    try:
        assert loop.bridge is not None
        inbox = loop.bridge.inbox
        for flood in (b"[" + b"1," * 5000 + b"1]", b"[" + b"1," * 400 + b"1]"):
            for _ in range(5):
                while send_raw(inbox.path, flood):
                    pass  # fill the socket's queue
                before = inbox.refused_total()
                loop.bridge.take()
                assert 0 < inbox.refused_total() - before <= platform_bridge.MESSAGES_PER_CYCLE
        assert inbox.refused["oversized"] > 0 and inbox.refused["not acceptable JSON"] > 0
        assert inbox.received == 0 and inbox.max_bytes <= 1024
    finally:
        loop.close_platform()


def test_a_flood_of_reloads_that_change_nothing_logs_nothing(tmp_path: Path) -> None:
    loop, stream = make_loop(firmware_config(tmp_path))
    try:
        assert loop.bridge is not None
        for _ in range(50):
            send_raw(loop.bridge.inbox.path, b'{"type":"reload"}')
            loop.cycle()
        applied = [line for line in stream.getvalue().splitlines() if "settings applied" in line]
        assert len(applied) == 1  # at start; the flood changed nothing
    finally:
        loop.close_platform()


def test_the_link_process_refuses_a_password_file_that_is_a_fifo_or_endless(tmp_path: Path) -> None:
    from carctl.platform.agent import AgentStartError

    os.mkfifo(tmp_path / "fifo")
    for password_file, reason in ((tmp_path / "fifo", "FIFO"), (Path("/dev/zero"), "device")):
        config = firmware_config(tmp_path, password_file=str(password_file))
        with pytest.raises(AgentStartError, match=reason):
            Agent(config)


def test_the_loop_reading_its_settings_never_lists_their_folder(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Forty thousand leftover temporaries beside the settings file once made each reload take 130 ms inside a
    cycle: the loop halted the car between floors. Only the writer (the link process) clears them."""
    from carctl.runtime import overrides

    def listing(path: Path) -> None:
        raise AssertionError("the loop listed the settings file's folder")

    monkeypatch.setattr(overrides, "remove_stale_temporaries", listing)
    loop, _ = make_loop(firmware_config(tmp_path))
    try:
        assert loop.bridge is not None
        (tmp_path / "o.json").write_text('{"home_landing": 2}')
        send_raw(loop.bridge.inbox.path, b'{"type":"reload"}')
        loop.cycle()
        assert loop.controller.config.car.home_landing == 2
    finally:
        loop.close_platform()


def test_a_side_channel_whose_socket_is_held_is_reported_and_opened_once_free(tmp_path: Path) -> None:
    from carctl.runtime.sidechannel import hold_lock

    directory = prepare_socket_dir(tmp_path / "run")
    held = hold_lock(directory / f"{LOOP_FROM_PLATFORM}.lock", "the platform socket")
    try:
        loop, stream = make_loop(firmware_config(tmp_path))
        assert loop.bridge is None
        assert f"pid {os.getpid()}" in loop.health()["side_channels_unavailable"]["platform"]
        loop.reopen_side_channels()
        assert loop.bridge is None  # still held
    finally:
        os.close(held)
    try:
        loop.reopen_side_channels()
        assert loop.bridge is not None and loop.health()["side_channels_unavailable"] == {}
        states = [json.loads(line).get("state") for line in stream.getvalue().splitlines()]
        assert states.count("side channel unavailable") == 1 and "side channel open" in states
    finally:
        loop.close_platform()


def test_a_lock_file_that_cannot_be_one_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    from carctl.runtime.sidechannel import InUseError, hold_lock

    (tmp_path / "dir.lock").mkdir()
    os.mkfifo(tmp_path / "fifo.lock")
    (tmp_path / "link.lock").symlink_to(tmp_path / "elsewhere")
    for name in ("dir.lock", "fifo.lock", "link.lock"):
        with pytest.raises(OSError, match="lock file") as error:
            hold_lock(tmp_path / name, "x")
        assert not isinstance(error.value, InUseError)
    # A holder that wrote a terminal escape instead of its pid: only digits are ever repeated.
    first = hold_lock(tmp_path / "held.lock", "x")
    try:
        os.pwrite(first, b"1\x1b[31mX", 0)
        with pytest.raises(InUseError) as error:
            hold_lock(tmp_path / "held.lock", "x")
        assert "\x1b" not in str(error.value) and "pid unknown" in str(error.value)
    finally:
        os.close(first)


def test_the_link_process_refuses_a_ca_file_it_would_block_on(tmp_path: Path) -> None:
    from carctl.platform.agent import AgentStartError

    os.mkfifo(tmp_path / "ca.pem")
    with pytest.raises(AgentStartError, match="tls_ca_file"):
        Agent(firmware_config(tmp_path, tls_ca_file=str(tmp_path / "ca.pem")))


def test_a_second_firmware_on_the_same_panel_bus_is_refused(tmp_path: Path) -> None:
    """Without the platform link or the face feature no socket directory is taken, but the panel bus has one master:
    a second `carctl run` on the same port would poll the boards and drive the car beside the first."""
    import pty

    master, slave = pty.openpty()
    panel = os.ttyname(slave)
    config = tmp_path / "car.toml"
    config.write_text(f'[drive]\nendpoint = "tcp://127.0.0.1:1"\n[panel]\nport = "{panel}"\n'
                      f'[runtime]\nrealtime_priority = 0\n{NO_BOARD_STATE}log = "{tmp_path / "log"}"\n')
    command = [sys.executable, "-m", "carctl.cli", "run", "--config", str(config)]
    running = subprocess.Popen(command + ["--run-seconds", "30"], cwd=ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while (not (tmp_path / "log").exists() or '"start"' not in (tmp_path / "log").read_text()) \
                and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)  # its first cycles open the port
        second = subprocess.run(command + ["--run-seconds", "1"], cwd=ROOT, capture_output=True, text=True,
                                timeout=60)
        assert_refused(second, "in use by another process")
        assert running.poll() is None
    finally:
        running.terminate()
        running.wait(timeout=30)
        os.close(master)
        os.close(slave)


@pytest.mark.parametrize("day", ["٢٠٢٥-٠١-٠١", "2025-13-99", "2025-02-30", "2025-1-1"])
def test_daily_statistics_of_a_day_that_is_not_a_date_are_refused(day: str) -> None:
    event = {"id": "d1", "category": "statistics", "kind": "daily_statistics", "day": day, "trips": 1,
             "door_cycles": 1, "faults_raised": 0, "running_s": 1.0, "running_h": 0.001}
    assert isinstance(loopback.parse_loop_message({"type": "event", "event": event}), Refused)
    assert isinstance(loopback.parse_loop_message({"type": "event", "event": {**event, "day": "2025-02-28"}}),
                      EventReport)


@pytest.mark.parametrize("host", ["a..b", "-broker", "broker_1", "x" * 300, "[not-an-ip]"])
def test_a_broker_host_that_is_no_address_is_refused_naming_the_key(tmp_path: Path, host: str) -> None:
    """paho's resolver could not encode `a..b`: its network thread died at every reconnection."""
    from carctl.runtime.config import FirmwareConfigError

    with pytest.raises(FirmwareConfigError) as error:
        firmware_config(tmp_path, broker_host=host, allow_plaintext=True)
    assert error.value.key == "platform.broker_host"


@pytest.mark.parametrize(("sent", "reason"), [
    (-10.0, "waited longer than its maximum age"), (+10.0, "sent_s in the future"),
    ("soon", "sent_s that is not a finite number"), (True, "sent_s that is not a finite number"),
])
def test_a_recognition_that_waited_too_long_or_claims_to_come_from_the_future_is_refused(
        tmp_path: Path, sent: Any, reason: str) -> None:
    inbox = RecognitionInbox(prepare_socket_dir(tmp_path / "run"), 6)
    try:
        message = {"type": "recognition", "resident": "r1", "home_landing": 3, "allowed_landings": [3]}
        stamp = time.monotonic() + sent if isinstance(sent, float) else sent
        deliver(inbox.inbox.path, json.dumps({**message, "sent_s": stamp}).encode())
        deliver(inbox.inbox.path, json.dumps({**message, "sent_s": time.monotonic()}).encode())
        deadline = time.monotonic() + 5
        taken: tuple[Any, ...] = ()
        while not taken and time.monotonic() < deadline:
            taken = inbox.take()
            time.sleep(0.01)
        assert [seen.resident for seen in taken] == ["r1"]
        assert inbox.inbox.refused == {reason: 1}
    finally:
        inbox.close()
