"""`carctl run --check`: one verdict per item, exit 0 when the board is ready and 2 naming each problem, never a
traceback, and the loop never started (the simulated drive gets no command)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from carctl.adapters import serial_latency
from carctl.runtime.check import FAIL, OK, _serial_port
from sim.__main__ import request

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    log = open(tmp_path_factory.mktemp("sim") / "sim.log", "w")
    process = subprocess.Popen([sys.executable, "-m", "sim", "serve"], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=log, text=True)
    assert process.stdout is not None
    endpoints = json.loads(process.stdout.readline())
    yield endpoints
    process.terminate()
    process.wait(timeout=10)
    process.stdout.close()
    log.close()


def check(config: Path, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "carctl.cli", "run", "--check", "--config", str(config), *options],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)


def board_config(tmp_path: Path, extra: str = "", lift: bool = True) -> Path:
    state = tmp_path / "state"
    state.mkdir(exist_ok=True)
    path = tmp_path / "board.toml"
    tables = "[building]\nlandings_m = [0.0, 2.9, 5.8, 8.7, 11.6, 14.5]\n[car]\nrated_speed_m_s = 1.0\n" if lift else ""
    path.write_text(tables + f'''[drive]
endpoint = "tcp://127.0.0.1:1"
[panel]
port = "/dev/null"
[runtime]
realtime_priority = 0
fault_log = "{state / 'faults.json'}"
latch_file = "{state / 'latched.json'}"
log = "{state / 'control.jsonl'}"
socket_dir = "{tmp_path / 'run'}"
{extra}''')
    return path


def verdicts(output: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in output.splitlines()[:-1]:
        status, item, text = line.split(maxsplit=2)
        found.setdefault(item, []).append(f"{status} {text}")
    return found


def test_a_ready_board_gets_ok_for_each_item_and_the_drive_is_only_read(simulator: dict[str, Any],
                                                                         tmp_path: Path) -> None:
    before = request(simulator["control"], {"cmd": "state"})["state"]
    result = check(board_config(tmp_path), "--drive", f"tcp://{simulator['modbus_tcp']}", "--panel",
                   simulator["panel"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == "carctl run --check: ready to run"
    found = verdicts(result.stdout)
    assert found["--panel"][0].startswith("ok ") and "the drive answers: TICK" in found["--drive"][0]
    for key in ("runtime.fault_log", "runtime.latch_file", "runtime.log"):
        assert found[key][0].startswith("ok ") and "can be created" in found[key][0]
    assert "disk" in found and "clock" in found
    assert not (tmp_path / "state" / "control.jsonl").exists()  # the loop never started
    after = request(simulator["control"], {"cmd": "state"})["state"]
    assert (after["position_m"], after["door"], after["brake_lifts"]) == (before["position_m"], before["door"],
                                                                         before["brake_lifts"])


def test_each_problem_is_named_once_with_exit_code_2(simulator: dict[str, Any], tmp_path: Path) -> None:
    config = board_config(tmp_path, lift=False, extra='[processes]\nplatform = true\nface = true\n[platform]\ncommunity = '
                                          f'"xihan"\ncar = "b7u2"\nkey_file = "{tmp_path / "community.key"}"\n'
                                          f'outbox_path = "{tmp_path / "blocked" / "outbox.db"}"\n'
                                          f'[face]\nsource = "/dev/video97"\n')
    (tmp_path / "blocked").write_text("a file where the outbox's folder should be")
    (tmp_path / "community.key").write_bytes(os.urandom(32))
    os.chmod(tmp_path / "community.key", 0o644)
    result = check(config, "--drive", "tcp://127.0.0.1:9", "--panel", str(tmp_path / "ttyNONE"))
    assert result.returncode == 2 and result.stderr == "", result.stderr
    found = verdicts(result.stdout)
    assert "does not exist" in found["--panel"][0] and found["--panel"][0].startswith("FAIL")
    assert found["--drive"][0].startswith("FAIL the drive at 127.0.0.1:9 did not answer")
    assert found["platform.outbox_path"][0].startswith("FAIL") and "cannot be created" in found["platform.outbox_path"][0]
    assert found["platform.key_file"][0].startswith("FAIL") and "readable by others" in found["platform.key_file"][0]
    assert found["face.source"][0].startswith("FAIL /dev/video97 does not exist")
    # A configuration without the lift's own tables would run the car on the example building's.
    assert found["building"][0].startswith("FAIL") and found["car"][0].startswith("FAIL")
    last = result.stdout.splitlines()[-1]
    assert last.startswith("carctl run --check: ") and "--panel" in last and "platform.key_file" in last


def test_a_bad_configuration_is_refused_before_any_check(tmp_path: Path) -> None:
    config = tmp_path / "board.toml"
    config.write_text('[drive]\nendpoint = "modbus://x"\n[panel]\nport = "/dev/null"\n')
    result = check(config)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "carctl run: error: drive.endpoint: drive endpoint 'modbus://x': expected tcp://IP:PORT or rtu:/dev/PATH"]


def test_a_usb_adapters_slow_latency_timer_fails_the_port_when_it_cannot_be_lowered(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An FTDI adapter's default 16 ms is longer than drive.timeout_s: every read would time out. A pseudo-terminal
    stands in for the adapter (its driver refuses low-latency mode), a folder for /sys."""
    leader, follower = os.openpty()
    try:
        port = os.ttyname(follower)
        timer = tmp_path / "class" / "tty" / Path(port).name / "device" / "latency_timer"
        timer.parent.mkdir(parents=True)
        timer.write_text("16\n")
        monkeypatch.setattr(serial_latency, "SYSFS", tmp_path)
        [slow] = _serial_port(port, "drive.endpoint", 0.009, "drive.timeout_s")
        assert slow.status == FAIL and "latency timer is 16 ms" in slow.text and "docs/wiring.md" in slow.text
        timer.write_text("1\n")
        [fast] = _serial_port(port, "drive.endpoint", 0.009, "drive.timeout_s")
        assert fast.status == OK and "latency timer 1 ms" in fast.text
        timer.write_text("garbage" * 100)
        [unreadable] = _serial_port(port, "drive.endpoint", 0.009, "drive.timeout_s")
        assert unreadable.status == OK  # no timer that can be read: not a USB adapter with one
    finally:
        os.close(leader)
        os.close(follower)


def test_files_are_judged_as_the_firmware_would_write_them(tmp_path: Path) -> None:
    from carctl.runtime.check import _files
    from carctl.runtime.config import from_dict

    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder should be")
    config = from_dict({"drive": {"endpoint": "tcp://127.0.0.1:1"}, "panel": {"port": "/dev/null"},
                        "runtime": {"log": str(tmp_path / "no-such-folder" / "control.jsonl"),
                                    "fault_log": str(tmp_path / "state" / "faults.json"),
                                    "latch_file": str(blocker / "state" / "latched.json")}})
    verdicts = list(_files(config))
    found = {v.item: v for v in reversed(verdicts)}  # the first verdict of each file
    # Paths outside /var/lib/carctl and /var/log/carctl: the unit would not let the service write them.
    assert sum("ReadWritePaths" in v.text for v in verdicts) == 3
    # The run refuses a log whose folder is missing; so does the check.
    assert found["runtime.log"].status == FAIL and "does not exist" in found["runtime.log"].text
    # The fault log's folder is made by the firmware when its parent may be written.
    assert found["runtime.fault_log"].status == OK
    assert found["runtime.latch_file"].status == FAIL and "is not a folder" in found["runtime.latch_file"].text


@pytest.mark.parametrize("make", ["fifo", "link", "device", "folder"])
def test_a_log_the_run_would_refuse_is_refused_by_the_check(tmp_path: Path, make: str) -> None:
    from carctl.runtime.check import _file_verdict

    path = tmp_path / "control.jsonl"
    if make == "fifo":
        os.mkfifo(path)
    elif make == "link":
        (tmp_path / "real.jsonl").write_text("")
        path.symlink_to(tmp_path / "real.jsonl")
    elif make == "folder":
        path.mkdir()
    else:
        path = Path("/dev/null")
    assert _file_verdict("runtime.log", path, "the control log").status == FAIL


def test_the_keys_are_judged_by_the_loaders_that_use_them(tmp_path: Path) -> None:
    from carctl.runtime.check import _keys
    from carctl.runtime.config import from_dict

    (tmp_path / "empty.key").write_bytes(b"")
    os.chmod(tmp_path / "empty.key", 0o600)
    (tmp_path / "password").write_bytes(b"\xff\xfe")
    (tmp_path / "ca.crt").write_text("not a certificate")
    config = from_dict({"drive": {"endpoint": "tcp://127.0.0.1:1"}, "panel": {"port": "/dev/null"},
                        "processes": {"platform": True, "face": True},
                        "platform": {"community": "xihan", "car": "b7u2", "key_file": str(tmp_path / "empty.key"),
                                     "password_file": str(tmp_path / "password"),
                                     "tls_ca_file": str(tmp_path / "ca.crt")},
                        "face": {"key_file": str(tmp_path / "no-gallery.key")}})
    found = {v.item: v for v in _keys(config)}
    for key in ("platform.key_file", "platform.password_file", "platform.tls_ca_file", "face.key_file"):
        assert found[key].status == FAIL, (key, found[key])
    assert "PEM" in found["platform.tls_ca_file"].text and "face.enable" in found["face.key_file"].text


def test_a_port_that_is_not_a_terminal_or_is_shared_is_refused(tmp_path: Path) -> None:
    from carctl.runtime.check import _drive
    from carctl.runtime.config import from_dict

    [zero] = _serial_port("/dev/zero", "panel.port", 0.005, "panel.response_timeout_s")
    assert zero.status == FAIL and "not a serial port" in zero.text
    leader, follower = os.openpty()
    try:
        port = os.ttyname(follower)
        config = from_dict({"drive": {"endpoint": f"rtu:{port}"}, "panel": {"port": port}})
        [shared] = _drive(config, "drive.endpoint")
        assert shared.status == FAIL and "also the panel bus" in shared.text
    finally:
        os.close(leader)
        os.close(follower)


def test_a_drive_line_too_slow_for_the_control_period_is_named() -> None:
    """At 19,200 baud a 20 ms period cannot hold even one transaction: FAIL, with what to change; two transactions
    forced at 115,200 baud fit the period but not its drive's half: a warning."""
    from carctl.runtime.check import WARN, _drive
    from carctl.runtime.config import from_dict

    leader, follower = os.openpty()
    try:
        port = os.ttyname(follower)
        slow = from_dict({"drive": {"endpoint": f"rtu:{port}", "baud": 19200}, "panel": {"port": "/dev/null"}})
        found = [v for v in _drive(slow, "drive.endpoint") if "drive exchanges" in v.text]
        assert [v.status for v in found] == [FAIL] and "car.control_period_s" in found[0].text
        forced = from_dict({"drive": {"endpoint": f"rtu:{port}", "transaction": "separate"},
                            "panel": {"port": "/dev/null"}})
        found = [v for v in _drive(forced, "drive.endpoint") if "drive exchanges" in v.text]
        assert [v.status for v in found] == [WARN] and "half the 20 ms" in found[0].text
        fitting = from_dict({"drive": {"endpoint": f"rtu:{port}"}, "panel": {"port": "/dev/null"}})  # auto: 0x17
        assert [v for v in _drive(fitting, "drive.endpoint") if "drive exchanges" in v.text] == []
    finally:
        os.close(leader)
        os.close(follower)
