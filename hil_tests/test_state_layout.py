"""The firmware as an unprivileged user, with the board's file layout (carctl/runtime/state_layout.py): everything
it must write is created, in the state and log directories it owns, with the modes technicians and privacy need.

As on the board (deploy/carctl.service): the configuration directory is root's and read-only to the firmware; the
state, log and socket directories belong to the firmware's user; technicians read through the firmware's group.
Here the firmware is uid 65534 with its group 65534, and a technician is uid 65533 in that group. The simulated
shaft, a real Mosquitto and the operator's signed commands (face.enable, an enrolment from real photos) make every
part write its files: the loop (control log, fault log, latched faults), the platform link (outbox, settings, the
gallery key, the gallery).
"""

from __future__ import annotations

import base64
import json
import os
import queue
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from carctl.platform.console import build_command
from carctl.platform.keys import write_key
from carctl.runtime import state_layout
from carctl.runtime.config import FaceSection, PlatformSection, RuntimeSection, load
from hil_tests.wire import ROOT, bench_config_text, simulator_scenario
from sim.__main__ import request
from tests.platform.conftest import MOSQUITTO, PASSWD, USERS, start_broker
from tests.platform.test_link import Observer

FIRMWARE_UID = FIRMWARE_GID = 65534
TECHNICIAN_UID = 65533
KEY = b"xihan-community-key-0123456789ab"
FACES = ROOT / "tests" / "data" / "faces" / "obama"

pytestmark = [pytest.mark.hil, pytest.mark.slow]


def on_board(root: Path, path: str) -> Path:
    """``path`` of the board's layout (/var/lib/carctl/...) under ``root``."""
    return root / path.lstrip("/")


@pytest.fixture
def board_root() -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("needs root to run the firmware as another user (CI runs as root)")
    if MOSQUITTO is None or PASSWD is None:
        pytest.skip("mosquitto is not installed (Debian package mosquitto; .ci/run installs it)")
    # Not pytest's tmp_path: its folders are 0700 root's, which the firmware's user could not even traverse.
    root = Path(tempfile.mkdtemp(prefix="carctl-board-", dir="/tmp"))
    os.chmod(root, 0o755)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def make_layout(root: Path) -> dict[str, Path]:
    """The directories as the unit makes them: /etc/carctl root's, the rest the firmware's."""
    dirs = {"config": on_board(root, state_layout.CONFIG_DIR), "state": on_board(root, state_layout.STATE_DIR),
            "logs": on_board(root, state_layout.LOG_DIR), "run": on_board(root, state_layout.RUNTIME_DIR),
            "home": root / "home"}
    for name, path in dirs.items():
        path.mkdir(parents=True)
        if name != "config":
            os.chown(path, FIRMWARE_UID, FIRMWARE_GID)
        os.chmod(path, {"config": 0o755, "run": 0o700, "home": 0o700}.get(name, 0o750))
    for parent in {p for path in dirs.values() for p in path.relative_to(root).parents}:
        os.chmod(root / parent, 0o755)
    return dirs


def board_config(root: Path, dirs: dict[str, Path], broker_port: int) -> Path:
    """configs/sim.toml with every path at its default (the board's), moved under ``root``."""
    runtime, platform, face = RuntimeSection(), PlatformSection(), FaceSection()
    for private in ("community.key", "mqtt.password"):
        path = dirs["config"] / private
        (write_key(path, KEY) if private.endswith(".key") else path.write_text(USERS["xihan-b7u2"]))
        os.chown(path, FIRMWARE_UID, FIRMWARE_GID)
        os.chmod(path, 0o600)
    # configs/sim.toml keeps no files and logs to stderr: those keys go, and the board's paths come instead.
    text = re.sub(r"^(log|fault_log|audit_log|latch_file) = .*\n", "", bench_config_text(), flags=re.MULTILINE)
    text = text.replace("platform = false", "platform = true")
    text = text.replace("[runtime]\n", f'''[runtime]
socket_dir = "{on_board(root, runtime.socket_dir)}"
latch_file = "{on_board(root, runtime.latch_file)}"
fault_log = "{on_board(root, runtime.fault_log)}"
audit_log = "{on_board(root, runtime.audit_log)}"
log = "{dirs['logs'] / 'control.jsonl'}"
''')
    text += f'''
[platform]
broker_host = "127.0.0.1"
broker_port = {broker_port}
username = "xihan-b7u2"
password_file = "{dirs['config'] / 'mqtt.password'}"
community = "xihan"
car = "b7u2"
key_file = "{dirs['config'] / 'community.key'}"
outbox_path = "{on_board(root, platform.outbox_path)}"
overrides_path = "{on_board(root, platform.overrides_path)}"
state_every_s = 1.0

[face]
community = "xihan"
key_file = "{on_board(root, face.key_file)}"
gallery_dir = "{on_board(root, face.gallery_dir)}"
source = "{root / 'no-camera'}"
'''
    path = dirs["config"] / "board.toml"
    path.write_text(text)
    os.chmod(path, 0o644)
    return path


def board_python() -> list[str]:
    """The interpreter another user can run: this one, or (when it lives in root's home, as pyenv's does) the
    system's Python of the same minor version with this environment's packages on its path, as on the board."""
    if _reachable_by_others(Path(sys.executable).resolve()):
        return [sys.executable]
    system = Path(f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}")
    if not system.exists():
        pytest.skip(f"{sys.executable} is not reachable by another user and there is no {system}")
    return [str(system), "-s"]


def _reachable_by_others(path: Path) -> bool:
    """Every folder above ``path`` may be entered by others, and ``path`` read (and run) by them."""
    return all(os.stat(parent).st_mode & 0o001 for parent in path.parents) and bool(os.stat(path).st_mode & 0o004)


def as_user(uid: int, gid: int, groups: list[int], home: Path) -> dict[str, object]:
    import site

    if not _reachable_by_others(ROOT / "carctl" / "__init__.py"):
        pytest.skip(f"the project at {ROOT} is not reachable by another user")
    packages = [path for path in site.getsitepackages() if Path(path).is_relative_to(sys.prefix)]
    return {"user": uid, "group": gid, "extra_groups": groups, "cwd": ROOT,
            "env": {**os.environ, "HOME": str(home), "PYTHONDONTWRITEBYTECODE": "1", "MPLCONFIGDIR": str(home),
                    "PYTHONPATH": os.pathsep.join([str(ROOT), *packages])}}


def wait_for(condition: object, within_s: float, what: str) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(f"not within {within_s} s: {what}")


def test_the_firmware_as_its_own_user_writes_every_file_of_the_layout(board_root: Path) -> None:
    root = board_root
    dirs = make_layout(root)
    (root / "broker").mkdir(mode=0o700)
    broker = start_broker(root / "broker")
    firmware = simulator = None
    sim_log = open(root / "processes.log", "w")  # the shaft's, the firmware's and its children's stderr
    try:
        config_path = board_config(root, dirs, broker.port)
        config = load(config_path)
        user = as_user(FIRMWARE_UID, FIRMWARE_GID, [], dirs["home"])
        # The shaft as the firmware's user too, so that the panel bus's pseudo-terminal is the firmware's to open.
        simulator = subprocess.Popen([*board_python(), "-m", "sim", "serve", "--scenario",
                                      str(simulator_scenario(root))], stdout=subprocess.PIPE, stderr=sim_log,
                                     text=True, **user)  # type: ignore[call-overload]
        assert simulator.stdout is not None
        endpoints = json.loads(simulator.stdout.readline())
        control = endpoints["control"]
        firmware = subprocess.Popen([*board_python(), "-m", "carctl.cli", "run", "--config", str(config_path),
                                     "--drive", f"tcp://{endpoints['modbus_tcp']}", "--panel", endpoints["panel"]],
                                    stdout=subprocess.DEVNULL, stderr=sim_log, **user)  # type: ignore[call-overload]
        log = dirs["logs"] / "control.jsonl"

        def records() -> list[dict[str, object]]:
            return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

        # A new board has no record of latched faults: the car stands until the commissioning engineer's reset,
        # which writes the record.
        wait_for(lambda: any("latch_record_unreadable" in str(r.get("detail", "")) for r in records()), 20,
                 "the car holding on latch_record_unreadable")
        request(control, {"cmd": "button", "name": "fault_reset"})
        wait_for(lambda: on_board(root, RuntimeSection().latch_file).exists(), 10, "the latch record written")

        operator = Observer(broker.port, "platform", ["carctl/xihan/b7u2/ack", "carctl/xihan/b7u2/state"])
        try:
            # The link is connected (and subscribed to its commands) once it publishes the car's state.
            operator.take(30)
            for kind, params, within_s in (
                    ("face.enable", {}, 20),
                    ("resident.enroll", {"resident": "r-0301", "home_landing": 3, "consent": "c-2026-0301",
                                         "photos": [base64.b64encode((FACES / f"obama_{n}.jpg").read_bytes())
                                                    .decode() for n in (1, 2)]}, 60)):
                command = build_command(kind, "xihan", "b7u2", params, KEY)
                operator.publish("carctl/xihan/b7u2/cmd", json.dumps(command))
                deadline = time.monotonic() + within_s
                seen: list[str] = []
                while True:
                    try:
                        topic, payload, _ = operator.take(max(0.1, deadline - time.monotonic()))
                    except queue.Empty:
                        raise AssertionError(f"no answer to {kind} in {within_s} s; seen: {seen[-3:]}") from None
                    seen.append(f"{topic} {payload[:300]!r}")
                    ack = json.loads(payload)
                    if ack.get("id") == command["id"]:
                        assert ack["accepted"], ack
                        break
        finally:
            operator.close()
        wait_for(lambda: on_board(root, RuntimeSection().fault_log).exists(), 10, "the fault log written")

        files = state_layout.written_files(config)
        assert {f.key for f in files} == {"runtime.latch_file", "runtime.fault_log", "runtime.audit_log", "runtime.log",
                                          "platform.outbox_path", "platform.overrides_path", "face.key_file",
                                          "face.gallery_dir"}
        for file in files:
            status = os.stat(file.path)
            assert (status.st_uid, status.st_gid) == (FIRMWARE_UID, FIRMWARE_GID), file
            assert stat.S_IMODE(status.st_mode) == file.mode, (file, oct(status.st_mode))
            assert Path(file.path).is_relative_to(dirs["state"]) or Path(file.path).is_relative_to(dirs["logs"])
        assert stat.S_IMODE(os.stat(Path(config.face.key_file).parent).st_mode) == 0o700
        # Nothing was written where the firmware may not write (the configuration directory, root's).
        assert sorted(p.name for p in dirs["config"].iterdir()) == ["board.toml", "community.key", "mqtt.password"]

        # A technician in the firmware's group reads the fault log; someone outside it cannot.
        faults = [*board_python(), "-m", "carctl.cli", "faults", "--log", config.runtime.fault_log]
        technician = subprocess.run(faults, capture_output=True, text=True, timeout=30,
                                    **as_user(TECHNICIAN_UID, TECHNICIAN_UID, [FIRMWARE_GID], root / "home"))
        assert technician.returncode == 0 and "latch_record_unreadable" in technician.stdout, technician.stderr
        stranger = subprocess.run(faults, capture_output=True, text=True, timeout=30,
                                  **as_user(TECHNICIAN_UID, TECHNICIAN_UID, [], root / "home"))
        assert stranger.returncode == 2 and "Permission denied" in stranger.stderr
        assert len(stranger.stderr.strip().splitlines()) == 1

        # The technician checks the maintenance record: face.enable was a settings change, chained there.
        audit = [*board_python(), "-m", "carctl.cli", "audit", "verify", "--file", config.runtime.audit_log]
        wait_for(lambda: b"parameter_change" in Path(config.runtime.audit_log).read_bytes(), 10,
                 "the settings change in the maintenance record")
        checked = subprocess.run(audit, capture_output=True, text=True, timeout=30,
                                 **as_user(TECHNICIAN_UID, TECHNICIAN_UID, [FIRMWARE_GID], root / "home"))
        assert checked.returncode == 0 and checked.stdout.startswith("intact: "), (checked.stdout, checked.stderr)
        stranger = subprocess.run(audit, capture_output=True, text=True, timeout=30,
                                  **as_user(TECHNICIAN_UID, TECHNICIAN_UID, [], root / "home"))
        assert stranger.returncode == 2 and "Permission denied" in stranger.stderr
    finally:
        for process in (firmware, simulator):
            if process is not None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=5)
        if simulator is not None and simulator.stdout is not None:
            simulator.stdout.close()
        sim_log.close()
        broker.stop()
