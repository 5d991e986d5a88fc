"""The simulated shaft's own tools: `python -m sim ctl`, and a standard Modbus master (mbpoll) reading the drive."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hil_tests.wire import ROOT, start_simulator
from sim.scenario import FAULT_KINDS


@pytest.fixture
def simulator(tmp_path: Path) -> Iterator[dict[str, Any]]:
    process, endpoints = start_simulator(tmp_path)
    yield endpoints
    process.terminate()
    process.wait(timeout=10)
    if process.stdout is not None:
        process.stdout.close()


def ctl(endpoints: dict[str, Any], *words: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sim", "ctl", "--control", endpoints["control"], *words],
                          capture_output=True, text=True, timeout=30, cwd=ROOT)


def test_ctl_presses_injects_and_reports_state(simulator: dict[str, Any]) -> None:
    state = json.loads(ctl(simulator, "state").stdout)
    for key in ("position_m", "speed_m_s", "door", "load_kg", "injected", "lamps"):
        assert key in state
    assert json.loads(ctl(simulator, "seat-on").stdout)["seat_occupied"] is True
    assert json.loads(ctl(simulator, "load", "120").stdout)["load_kg"] == 120.0
    for kind in FAULT_KINDS:
        assert kind in json.loads(ctl(simulator, "inject", kind).stdout)["injected"]
        assert kind not in json.loads(ctl(simulator, "clear", kind).stdout)["injected"]
    for words in (("car-call", "3"), ("hall-call", "2", "down"), ("obstruct", "2.5"), ("panel-garbage", "50"),
                  ("panel-corrupt", "2"), ("key", "eeo", "on"), ("eeo-run", "down"), ("eeo-run", "stop"),
                  ("key", "eeo", "off"), ("key", "inspection", "on"), ("inspection-run", "up"),
                  ("inspection-run", "stop"), ("key", "inspection", "off")):
        assert ctl(simulator, *words).returncode == 0
    result = ctl(simulator, "--drop", "3", "modbus")
    assert result.returncode == 0
    assert json.loads(ctl(simulator, "rescue", "busy", "+8653281234567").stdout)["modem"]["rescue_numbers"] == {
        "+8653281234567": "busy"}
    assert json.loads(ctl(simulator, "rescue", "answer").stdout)["modem"]["rescue_numbers"] == {}  # forgotten
    assert json.loads(ctl(simulator, "button", "alarm", "--hold", "0.6").stdout)["alarm_held"] is True
    time.sleep(1.0)
    assert json.loads(ctl(simulator, "state").stdout)["alarm_held"] is False  # let go after 0.6 s


def test_ctl_refuses_bad_requests(simulator: dict[str, Any]) -> None:
    assert ctl(simulator, "car-call", "9").returncode == 2
    assert ctl(simulator, "hall-call", "2", "sideways").returncode == 2
    assert ctl(simulator, "teleport").returncode == 2
    assert ctl(simulator, "key", "eeo", "maybe").returncode == 2
    assert ctl(simulator, "key", "lift").returncode == 2
    assert ctl(simulator, "eeo-run", "left").returncode == 2
    for words in (("rescue", "busy", "12ab"), ("rescue", "hangup", "110"), ("rescue", "busy", "1" * 40)):
        refused = ctl(simulator, *words)
        assert refused.returncode == 2 and "number" in refused.stderr and "Traceback" not in refused.stderr
    for words in (("button", "alarm", "--hold", "0"), ("button", "alarm", "--hold", "601"),
                  ("button", "alarm", "--hold", "nan")):
        refused = ctl(simulator, *words)
        assert refused.returncode == 2 and "--hold" in refused.stderr and "Traceback" not in refused.stderr
    for number in range(16):
        assert ctl(simulator, "rescue", "no-answer", f"{1000 + number}").returncode == 0
    assert "at most 16" in ctl(simulator, "rescue", "busy", "2000").stderr  # bounded
    unreachable = subprocess.run([sys.executable, "-m", "sim", "ctl", "--control", "127.0.0.1:1", "state"],
                                 capture_output=True, text=True, timeout=30, cwd=ROOT)
    assert unreachable.returncode == 2 and "cannot reach" in unreachable.stderr  # a wrong --control is bad input


@pytest.mark.parametrize(("words", "named"), [
    (("key", "eeo"), "'key eeo' is missing on|off"), (("hall-call", "3"), "'hall-call 3' is missing up|down"),
    (("car-call",), "'car-call' is missing LANDING"), (("inject",), "'inject' is missing KIND"),
])
def test_ctl_names_what_an_action_is_missing(words: tuple[str, ...], named: str) -> None:
    # Refused before any connection: no simulator needed, and the address is never reached.
    result = ctl({"control": "127.0.0.1:1"}, *words)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [result.stderr.strip()] and named in result.stderr
    assert "usage:" in result.stderr


@pytest.mark.skipif(shutil.which("mbpoll") is None, reason="mbpoll is not installed (Debian package mbpoll)")
@pytest.mark.parametrize("transport", ["tcp", "rtu"])
def test_a_standard_modbus_master_reads_the_status_block(simulator: dict[str, Any], transport: str) -> None:
    if transport == "tcp":
        host, port = simulator["modbus_tcp"].split(":")
        command = ["mbpoll", "-m", "tcp", "-a", "1", "-0", "-r", "16", "-c", "8", "-t", "4", "-1", "-p", port, host]
    else:
        command = ["mbpoll", "-m", "rtu", "-a", "1", "-b", "115200", "-P", "none", "-0", "-r", "16", "-c", "8",
                   "-t", "4", "-1", simulator["modbus_rtu"]]
    result = subprocess.run(command, capture_output=True, text=True, timeout=20)
    assert result.returncode == 0, result.stdout + result.stderr
    values = {line.split(":")[0].strip(): line.split(":")[1].strip() for line in result.stdout.splitlines()
              if line.startswith("[")}
    # Ready, zero speed and safety chain closed; parked at the bottom landing, so below the reference mark (bit9).
    assert int(values["[16]"]) == 0b10_0101_0001
    assert values["[18]"] == "0" and values["[19]"] == "0"
