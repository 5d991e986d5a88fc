"""`python -m sim`: a bad option, request or control endpoint is refused with exit 2 and one line, never a traceback;
the control channel of `sim serve` answers every request, and refuses a fault it does not have."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from carctl.core.config import ControllerConfig
from carctl.protocol import panelbus
from sim.physics import FAULT_KINDS, PhysicsConfig, Shaft, UnknownFault
from sim.serve import LineFaults, ShaftServer
from tests.refusals import assert_refused

ROOT = Path(__file__).resolve().parent.parent.parent


def python_sim(*args: str, timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sim", *args], capture_output=True, text=True, timeout=timeout_s,
                          cwd=ROOT)


@pytest.mark.parametrize(("args", "named"), [
    (("serve", "--modbus-port", "70000"), "--modbus-port"),
    (("serve", "--control-port", "-1"), "--control-port"),
    (("serve", "--baud", "12345"), "--baud"),
    (("serve", "--baud", "fast"), "--baud"),
    (("fleet", "--duration", "inf"), "--duration"),
    (("fleet", "--duration", "1e308"), "--duration"),
    (("fleet", "--speed", "nan"), "--speed"),
    (("fleet", "--faults-per-car-h", "-1"), "--faults-per-car-h"),
    (("fleet", "--rate-pct-per-5min", "1e300"), "--rate-pct-per-5min"),
    (("fleet", "--seed", str(2**63)), "--seed"),
    (("fleet", "--cars", "2", "--json", "/no-such-folder/fleet.json"), "--json"),
    (("ctl", "--control", "127.0.0.1:1", "state"), "cannot reach the simulator"),
    (("ctl", "--control", "no-port-here", "state"), "--control"),
    (("ctl", "--control", "127.0.0.1:99999", "state"), "--control"),
    (("ctl", "--control", "127.0.0.1:1", "obstruct", "nan"), "obstruct"),
    (("ctl", "--control", "127.0.0.1:1", "load", "1e400"), "load"),
    (("ctl", "--control", "127.0.0.1:1", "--drop", "1e9", "modbus"), "--drop"),
    (("ctl", "--control", "127.0.0.1:1", "rescue", "answer", "1234", "extra"), "rescue"),  # words left over
    (("ctl", "--control", "127.0.0.1:1", "modem-dead", "extra"), "modem-dead"),
    (("ctl", "--control", "127.0.0.1:1", "button", "alarm", "door_open"), "button"),
])
def test_bad_options_exit_2_in_one_line(args: tuple[str, ...], named: str) -> None:
    assert_refused(python_sim(*args), named)


@pytest.mark.parametrize("control", ["a..b:1", "exa mple:1", "x-:1", "x" * 64 + ".example:1", "b\u00fccher.de:1"])
def test_ctl_refuses_a_control_host_that_is_not_a_host_name_or_an_ip(control: str) -> None:
    assert_refused(python_sim("ctl", "--control", control, "state"), "is not a host name or an IP address")


@pytest.mark.parametrize("control", ["localhost:1", "127.0.0.1:1", "[::1]:1", "::1:1", "sim-1.lab.:1"])
def test_ctl_takes_a_host_name_or_an_ip(control: str) -> None:
    assert_refused(python_sim("ctl", "--control", control, "state"), "cannot reach the simulator")


def test_ctl_lists_the_actions_it_knows_when_given_another() -> None:
    from sim.__main__ import ACTIONS

    result = python_sim("ctl", "--control", "127.0.0.1:1", "nonsense")
    assert_refused(result, "unknown action 'nonsense' (known: state, car-call, ")
    assert all(action in result.stderr for action in ACTIONS)


def test_every_action_listed_is_one_ctl_sends() -> None:
    from sim.__main__ import ACTIONS, _message
    from sim.serve import CAR_BUTTONS, CONTROL_COMMANDS

    arguments = {"hall-call": ["2", "up"], "button": ["door_open"], "inject": ["drive_fault"],
                 "clear": ["drive_fault"], "key": ["eeo", "on"], "inspection-run": ["up"], "eeo-run": ["stop"]}
    options = SimpleNamespace(drop=0, corrupt=0, hold=None)
    for action in ACTIONS:
        message = _message(action, arguments.get(action, ["1"]), options)
        assert message is not None and message["cmd"] in CONTROL_COMMANDS, action
    assert _message("nonsense", [], options) is None
    assert ACTIONS["button"] == "|".join(CAR_BUTTONS) + " [--hold S]"


def test_a_scenario_that_is_a_fifo_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "scenario.toml"
    os.mkfifo(fifo)
    assert_refused(python_sim("serve", "--scenario", str(fifo), timeout_s=20), f"{fifo} is not a regular file (a FIFO)")


def test_the_entry_point_prints_what_the_terminal_cannot_encode_escaped(monkeypatch: pytest.MonkeyPatch) -> None:
    from sim.__main__ import main

    for name in ("stdout", "stderr"):
        monkeypatch.setattr(sys, name, io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict"))
    assert main(["ctl", "--control", "no-port", "state"]) == 2
    assert sys.stdout.errors == sys.stderr.errors == "backslashreplace"
    print("\udcff.png")  # a file name that is not UTF-8, as Python holds it: no UnicodeEncodeError
    sys.stdout.flush()
    assert sys.stdout.buffer.getvalue() == b"\\udcff.png\n"  # type: ignore[attr-defined]


def test_a_port_in_use_is_refused_before_anything_starts() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        assert_refused(python_sim("serve", "--control-port", str(taken.getsockname()[1])), "cannot listen")


@pytest.fixture
def nonsense_server() -> Iterator[str]:
    """A TCP peer at the control address that answers every request with something that is not JSON."""
    listener = socket.create_server(("127.0.0.1", 0))

    def answer() -> None:
        connection, _ = listener.accept()
        with connection:
            connection.recv(4096)
            connection.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n\xff\n")

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    yield f"127.0.0.1:{listener.getsockname()[1]}"
    thread.join(timeout=10)
    listener.close()


def test_ctl_refuses_an_answer_that_is_not_the_simulators(nonsense_server: str) -> None:
    assert_refused(python_sim("ctl", "--control", nonsense_server, "state"), "not the simulator's")


def test_ctl_inject_of_an_unknown_fault_is_refused_by_a_running_simulator() -> None:
    serve = subprocess.Popen([sys.executable, "-m", "sim", "serve"], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert serve.stdout is not None
        control = json.loads(serve.stdout.readline())["control"]
        result = python_sim("ctl", "--control", control, "inject", "no_such_fault")
        assert_refused(result, "unknown fault kind 'no_such_fault'")
        assert "drive_fault" in result.stderr  # the kinds it has are listed
        injected = python_sim("ctl", "--control", control, "inject", "drive_fault")
        assert injected.returncode == 0 and "drive_fault" in json.loads(injected.stdout)["injected"]
    finally:
        serve.terminate()
        serve.wait(timeout=10)
        if serve.stdout is not None:
            serve.stdout.close()


# -- the control channel, in process ------------------------------------------------------------------------------

@pytest.fixture
def server() -> ShaftServer:
    shaft_server = ShaftServer(ControllerConfig(), PhysicsConfig())
    shaft_server.relay = SimpleNamespace(to_a_faults=LineFaults())  # type: ignore[assignment]
    shaft_server.write_panel_garbage = lambda count: None  # type: ignore[method-assign]
    return shaft_server


def ask(server: ShaftServer, line: bytes | str) -> dict[str, Any]:
    raw = line.encode() if isinstance(line, str) else line
    answer = json.loads(server.reply(raw + b"\n"))
    assert isinstance(answer, dict)
    return answer


@pytest.mark.parametrize(("request_line", "problem"), [
    ('{"cmd": "inject", "kind": "no_such_fault"}', "unknown fault kind 'no_such_fault' (known: drive_fault"),
    ('{"cmd": "clear", "kind": "no_such_fault"}', "unknown fault kind"),
    ('{"cmd": "inject", "kind": ["drive_fault"]}', "unknown fault kind"),
    ('{"cmd": "inject"}', "inject needs kind"),
    ('{"cmd": "obstruct", "duration_s": 1e308}', "duration_s must be a number"),
    ('{"cmd": "obstruct", "duration_s": 0}', "duration_s must be a number greater than 0"),
    ('{"cmd": "load", "load_kg": -5}', "load_kg must be a number"),
    ('{"cmd": "load", "load_kg": 1e400}', "out of range"),
    ('{"cmd": "panel_garbage", "bytes": 100000000}', "bytes must be a whole number from 1 to 65536"),
    ('{"cmd": "panel_garbage", "bytes": "10"}', "bytes must be a whole number"),
    ('{"cmd": "modbus", "drop": 99999999999999999999}', "drop must be a whole number from 0 to 10000"),
    ('{"cmd": "modbus", "corrupt": -1}', "corrupt must be a whole number"),
    ('{"cmd": "car_call", "landing": 6}', "landing must be a whole number from 0 to 5"),
    ('{"cmd": "hall_call", "landing": 5, "direction": "up"}', "landing 5 has no up button"),
    ('{"cmd": "seat", "occupied": "yes"}', "occupied must be true or false"),
    ('{"cmd": "state", "landing": 1}', "state takes no key 'landing'"),
    ('{"cmd": "teleport"}', "unknown command 'teleport'"),
    ('{"cmd": ["state"]}', "unknown command"),
    ('["state"]', "a request is a JSON object"),
    ('{"cmd": "state", "cmd": "state"}', "appears twice"),
    ("not json", "not JSON"),
    (b"\xff\xfe", "not UTF-8"),
    ("[" * 100 + "]" * 100, "nested"),
])
def test_the_control_channel_refuses_with_a_reason(server: ShaftServer, request_line: str | bytes,
                                                   problem: str) -> None:
    answer = ask(server, request_line)
    assert answer["ok"] is False and problem in answer["error"], answer


def test_a_refused_request_changes_nothing(server: ShaftServer) -> None:
    before = ask(server, '{"cmd": "state"}')["state"]
    for line in ('{"cmd": "load", "load_kg": 1e308}', '{"cmd": "inject", "kind": "meteor"}',
                 '{"cmd": "modbus", "drop": 5, "corrupt": -1}'):
        assert ask(server, line)["ok"] is False
    assert ask(server, '{"cmd": "state"}')["state"]["injected"] == before["injected"] == []
    assert server.shaft.extra_load_kg == 0.0 and server.tcp_faults.drop == 0


def test_a_silent_board_fault_silences_the_board_on_the_bus(server: ShaftServer) -> None:
    assert ask(server, '{"cmd": "inject", "kind": "landing_silent"}')["ok"]
    assert {panelbus.landing_address(landing) for landing in range(6)} <= server.boards.silent
    assert ask(server, '{"cmd": "inject", "kind": "car_top_silent"}')["ok"]
    assert panelbus.CAR_TOP in server.boards.silent
    assert ask(server, '{"cmd": "clear", "kind": "landing_silent"}')["ok"]
    assert ask(server, '{"cmd": "clear", "kind": "car_top_silent"}')["ok"]
    assert not server.boards.silent


def test_every_fault_kind_is_one_the_shaft_takes_and_no_other() -> None:
    shaft = Shaft(ControllerConfig())
    for kind in FAULT_KINDS:
        shaft.inject(kind)
        shaft.clear(kind)
    with pytest.raises(UnknownFault, match="known: drive_fault"):
        shaft.inject("no_such_fault")
    assert not shaft.injected


def test_the_deployment_guide_runs_the_simulator_from_the_venv_and_lists_every_ctl_action() -> None:
    from sim.__main__ import ACTIONS

    doc = (ROOT / "docs" / "deployment.md").read_text(encoding="utf-8")
    section = doc.split("## Running against the simulator", 1)[1].split("\n## ", 1)[0]
    commands = section.split("```")[1].strip().splitlines()  # a fresh shell has no `python` with the packages
    assert commands and all(line.startswith((".venv/bin/python -m sim ", ".venv/bin/carctl ")) for line in commands)
    for action in ACTIONS:
        assert f"`{action}" in section, f"sim ctl {action} is not in docs/deployment.md"
