"""Settings the platform changes on a running car: atomic, surviving a restart, applied between cycles."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from carctl.adapters.drive import DriveLink, Endpoint
from carctl.adapters.panelbus import PanelBusMaster
from carctl.core.config import ConfigError, ControllerConfig
from carctl.platform.agent import Agent
from carctl.platform.keys import write_key
from carctl.runtime import overrides
from carctl.runtime.config import from_dict
from carctl.runtime.loop import ControlLoop, StructuredLog


def test_write_merges_and_read_ignores_unknown_or_malformed(tmp_path: Path) -> None:
    path = tmp_path / "overrides.json"
    overrides.write(path, {"home_landing": 3})
    assert overrides.write(path, {"permissions_enabled": True, "mode": "x"}) == {"home_landing": 3,
                                                                                  "permissions_enabled": True}
    assert not list(tmp_path.glob(".overrides.*"))
    path.write_text("{broken")
    assert overrides.read(path) == {}
    path.write_text(json.dumps({"home_landing": "three", "free_landings": [0, 2]}))
    assert overrides.read(path) == {"free_landings": [0, 2]}


def test_apply_changes_the_car_or_refuses_naming_the_key() -> None:
    config = overrides.apply(ControllerConfig(), {"home_landing": 4, "permissions_enabled": True,
                                                  "free_landings": [0, 1]})
    assert (config.car.home_landing, config.car.permissions_enabled, config.car.free_landings) == (4, True, (0, 1))
    with pytest.raises(ConfigError) as error:
        overrides.apply(ControllerConfig(), {"free_landings": [9]})
    assert error.value.key == "car.free_landings"
    with pytest.raises(ConfigError) as error:
        overrides.apply(ControllerConfig(), {"home_landing": 9})
    assert error.value.key == "car.home_landing"


def test_platform_command_reaches_the_running_loop(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("secret")
    write_key(tmp_path / "key", b"k" * 32)
    config = from_dict({
        "drive": {"endpoint": "tcp://127.0.0.1:1"}, "panel": {"port": "/dev/null"},
        "processes": {"platform": True},
        "runtime": {"socket_dir": str(tmp_path / "run"), "audit_log": str(tmp_path / "audit.log"), "fault_log": "",
                    "latch_file": "", "learned_table": ""},
        "face": {"gallery_dir": str(tmp_path / "gallery"), "key_file": str(tmp_path / "gallery.key"),
                 "community": "xihan"},
        "platform": {"password_file": str(tmp_path / "pw"), "key_file": str(tmp_path / "key"),
                     "outbox_path": str(tmp_path / "outbox.db"), "overrides_path": str(tmp_path / "overrides.json"),
                     "community": "xihan", "car": "b7u2"},
    })
    loop = ControlLoop(config, DriveLink(Endpoint.parse("tcp://127.0.0.1:1"), 0.01), PanelBusMaster("/dev/null"),
                       StructuredLog(io.StringIO()))
    agent = Agent(config)
    try:
        assert loop.controller.config.car.home_landing == 0
        result = agent.apply({"type": "car.home_landing", "params": {"landing": 3}})
        assert result == {"settings": {"home_landing": 3}}
        agent.apply({"type": "permissions.set", "params": {"enabled": True, "free_landings": [0, 2]}})
        assert loop._mode_request() is None  # takes the reload notice between cycles
        car = loop.controller.config.car
        assert (car.home_landing, car.permissions_enabled, car.free_landings) == (3, True, (0, 2))
        assert not loop.face_enabled and loop.inbox is None
        result = agent.apply({"type": "face.enable", "params": {}})
        assert result["face"] is True and result["residents"] == 0
        assert (tmp_path / "gallery.key").stat().st_mode & 0o077 == 0  # a fresh car gets its gallery key
        loop._mode_request()
        assert loop.face_enabled and loop.inbox is not None
        agent.apply({"type": "face.disable", "params": {}})
        loop._mode_request()
        assert not loop.face_enabled and loop.inbox is None
        assert (tmp_path / "gallery.key").exists()  # disabling wipes nothing unless asked
        # A restart reads the settings back.
        loop.close_platform()
        again = ControlLoop(config, DriveLink(Endpoint.parse("tcp://127.0.0.1:1"), 0.01),
                            PanelBusMaster("/dev/null"), StructuredLog(io.StringIO()))
        assert again.controller.config.car.home_landing == 3
        again.close_platform()
    finally:
        agent.close()


@pytest.mark.parametrize("content", [
    b'{"home_landing": true}', b'{"home_landing": -1}', b'{"free_landings": [0, "1"]}', b'{"free_landings": [true]}',
    b'{"face_enabled": 1}', b'{"home_landing": 1e400}', b'{"home_landing": ' + b"9" * 400 + b"}",
    b"[" * 10_000, b"\xff\xfe", b'{"home_landing": 2, "home_landing": 3}', b" " * 70_000 + b"{}",
])
def test_a_hostile_settings_file_changes_nothing(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "overrides.json"
    path.write_bytes(content)
    assert overrides.read(path) == {}
    assert overrides.apply(ControllerConfig(), overrides.read(path)) == ControllerConfig()


def test_a_fifo_in_place_of_the_settings_file_never_blocks(tmp_path: Path) -> None:
    """A FIFO put where the settings file was once stopped the loop in open() until someone wrote to it."""
    import os

    path = tmp_path / "overrides.json"
    os.mkfifo(path)
    assert overrides.read(path) == {}  # returns at once
    (tmp_path / "dir.json").mkdir()
    assert overrides.read(tmp_path / "dir.json") == {}
