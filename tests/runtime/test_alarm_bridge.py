"""The loop's side of the alarm's modem process, over real Unix sockets: only well-formed reports about the call as
it now stands reach the core; a voice connection not confirmed in time counts as ended; garbage is counted."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from carctl.protocol import loopback
from carctl.protocol.loopback import AlarmCall, AlarmChannel, Refused, parse_alarm_call, parse_alarm_channel
from carctl.runtime import alarm_bridge
from carctl.runtime.alarm_bridge import AlarmBridge
from carctl.runtime.sidechannel import LOOP_FROM_MODEM, MODEM_FROM_LOOP, Inbox, Sender, prepare_socket_dir


def settle() -> None:
    time.sleep(0.05)


def test_reports_about_the_call_now_wanted_reach_the_core_and_others_do_not(tmp_path: Path) -> None:
    directory = prepare_socket_dir(tmp_path / "run")
    bridge = AlarmBridge(directory)
    modem_inbox = Inbox(directory, MODEM_FROM_LOOP)
    modem = Sender(directory, LOOP_FROM_MODEM)
    try:
        bridge.tell(True)
        settle()
        assert [parse_alarm_call(value) for value in modem_inbox.take()] == [AlarmCall(True)]
        modem.send(loopback.alarm_channel(False, True, True, False))  # about the last alarm: not this one's
        settle()
        assert bridge.channel() == (False, False)
        modem.send(loopback.alarm_channel(True, True, True, False))
        settle()
        assert bridge.channel() == (True, True)
        for garbage in ({"type": "alarm_channel", "call": 1, "transmitted": True, "voice": True, "dead": False},
                        {"type": "mode", "mode": "normal"}):
            modem.send(garbage)
        modem.socket.sendto(b"\xff not JSON", str(directory / LOOP_FROM_MODEM))
        settle()
        assert bridge.channel() == (True, True) and sum(bridge.inbox.refused.values()) == 3
        bridge.heard_s -= alarm_bridge.MAX_AGE_S + 0.1  # the modem process silent since
        assert bridge.channel() == (True, False)  # voice not confirmed: ended; transmitted kept
        bridge.tell(False)  # the rescuer's reset
        assert bridge.channel() == (False, False)
        assert bridge.health()["reports"] == 2
    finally:
        bridge.close()
        modem_inbox.close()
        modem.close()


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                               max_size=6), max_leaves=12))
def test_the_alarm_parsers_take_only_their_own_messages(value: Any) -> None:
    assert isinstance(parse_alarm_call(value), (AlarmCall, Refused))
    assert isinstance(parse_alarm_channel(value), (AlarmChannel, Refused))


def test_the_alarm_messages_read_back() -> None:
    assert parse_alarm_call(loopback.alarm_call(True)) == AlarmCall(True)
    assert parse_alarm_channel(loopback.alarm_channel(True, True, False, False)) == AlarmChannel(True, True, False,
                                                                                                 False)


def test_a_periodic_tests_result_reaches_the_core_once_and_a_failure_stands(tmp_path: Path) -> None:
    directory = prepare_socket_dir(tmp_path / "run")
    bridge = AlarmBridge(directory)
    modem = Sender(directory, LOOP_FROM_MODEM)
    try:
        modem.send(loopback.alarm_channel(False, False, False, False, "failed", 1))
        settle()
        bridge.channel()
        assert bridge.take_test() == ("failed", True)
        modem.send(loopback.alarm_channel(False, False, False, False, "failed", 1))  # the same test, told again
        settle()
        bridge.channel()
        assert bridge.take_test() == ("", True)
        modem.send(loopback.alarm_channel(False, False, False, False, "ok", 2))
        settle()
        bridge.channel()
        assert bridge.take_test() == ("ok", False)
    finally:
        bridge.close()
        modem.close()


def test_the_modem_process_without_its_port_reports_the_module_dead_and_keeps_going(tmp_path: Path) -> None:
    from carctl.adapters.modem import run
    from carctl.protocol.loopback import parse_alarm_channel

    directory = prepare_socket_dir(tmp_path / "run")
    config = tmp_path / "board.toml"
    config.write_text(f'[drive]\nendpoint = "tcp://127.0.0.1:1"\n[panel]\nport = "/dev/null"\n'
                      f'[runtime]\nsocket_dir = "{directory}"\n[processes]\nmodem = true\n'
                      f'[alarm]\nnumbers = ["110"]\nmodem_port = "{tmp_path / "no-module"}"\n')
    loop_inbox = Inbox(directory, LOOP_FROM_MODEM)
    to_modem = Sender(directory, MODEM_FROM_LOOP)
    try:
        import threading

        process = threading.Thread(target=run, args=(config, None, 1.5))
        process.start()
        time.sleep(0.3)
        to_modem.send(loopback.alarm_call(True))  # an alarm with no module to call on
        process.join(timeout=10)
        reports = [parse_alarm_channel(value) for value in loop_inbox.take()]
    finally:
        loop_inbox.close()
        to_modem.close()
    assert reports and all(isinstance(r, AlarmChannel) and r.dead and not r.voice for r in reports)
    assert reports[-1].call  # the alarm is held, waiting for a module
