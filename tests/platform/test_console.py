"""The operator's console against a real broker and a car's link."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from carctl.platform.link import BrokerSettings, PlatformLink
from carctl.platform.outbox import Outbox
from tests.platform.conftest import USERS, Broker

ROOT = Path(__file__).resolve().parent.parent.parent
KEY = b"xihan-community-key-0123456789ab"


def car(port: int, name: str, tmp_path: Path, applied: list[dict[str, Any]]) -> PlatformLink:
    def handler(command: dict[str, Any]) -> dict[str, Any]:
        applied.append(command)
        return {"ok": True}

    link = PlatformLink(BrokerSettings("127.0.0.1", port, f"xihan-{name}", USERS[f"xihan-{name}"]), "xihan", name,
                        KEY, Outbox(tmp_path / f"{name}.db"), handler)
    link.start()
    assert link.connected.wait(10)
    link.publish_state({"landing": 0})
    return link


def console(port: int, tmp_path: Path, *args: str, key: bytes = KEY) -> subprocess.CompletedProcess[str]:
    (tmp_path / "pw").write_text(USERS["platform"])
    (tmp_path / "key").write_bytes(key)
    return subprocess.run([sys.executable, "-m", "carctl.cli", "platform", "--broker", f"127.0.0.1:{port}",
                           "--password-file", str(tmp_path / "pw"), "--key-file", str(tmp_path / "key"), *args],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)


def test_face_enable_reaches_every_car_of_the_community(broker: Broker, tmp_path: Path) -> None:
    applied: list[dict[str, Any]] = []
    cars = [car(broker.port, name, tmp_path, applied) for name in ("b7u2", "b7u3")]
    try:
        time.sleep(0.3)
        result = console(broker.port, tmp_path, "face-enable", "--community", "xihan")
        assert result.returncode == 0, result.stderr
        acks = [json.loads(line) for line in result.stdout.splitlines()]
        assert sorted(a["car"] for a in acks) == ["b7u2", "b7u3"] and all(a["accepted"] for a in acks)
        assert [c["type"] for c in applied] == ["face.enable", "face.enable"]
    finally:
        for link in cars:
            link.stop()


def test_a_command_signed_with_the_wrong_key_is_refused_and_says_so(broker: Broker, tmp_path: Path) -> None:
    applied: list[dict[str, Any]] = []
    link = car(broker.port, "b7u2", tmp_path, applied)
    try:
        result = console(broker.port, tmp_path, "mode", "--community", "xihan", "--car", "b7u2", "out_of_service",
                         key=b"not-the-community-key-0123456789")
        assert result.returncode == 2
        assert json.loads(result.stdout)["reason"] == "bad signature"
        assert applied == []
        good = console(broker.port, tmp_path, "mode", "--community", "xihan", "--car", "b7u2", "out_of_service")
        assert good.returncode == 0 and applied[0]["params"] == {"mode": "out_of_service"}
    finally:
        link.stop()


def test_an_offline_car_is_reported(broker: Broker, tmp_path: Path) -> None:
    result = console(broker.port, tmp_path, "--timeout", "1", "config-get", "--community", "xihan", "--car", "b7u9")
    assert result.returncode == 1 and "no answer" in result.stderr


def test_resident_enroll_sends_the_photos_in_the_signed_command(broker: Broker, tmp_path: Path) -> None:
    applied: list[dict[str, Any]] = []
    link = car(broker.port, "b7u2", tmp_path, applied)
    photo = ROOT / "tests" / "data" / "faces" / "biden" / "biden_1.jpg"
    try:
        missing = console(broker.port, tmp_path, "resident-enroll", "--community", "xihan", "--car", "b7u2", "r-9",
                          "--home-landing", "3", "--consent", "C-9", str(tmp_path / "nope.jpg"))
        assert missing.returncode == 2 and "cannot read photo" in missing.stderr
        result = console(broker.port, tmp_path, "resident-enroll", "--community", "xihan", "--car", "b7u2", "r-9",
                         "--home-landing", "3", "--allowed-landings", "0,3", "--consent", "C-9", str(photo))
        assert result.returncode == 0, result.stderr
        [command] = applied
        assert command["type"] == "resident.enroll"
        params = command["params"]
        assert (params["resident"], params["home_landing"], params["allowed_landings"]) == ("r-9", 3, [0, 3])
        assert base64.b64decode(params["photos"][0]) == photo.read_bytes()
    finally:
        link.stop()
