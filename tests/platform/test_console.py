"""The operator's console against a real broker and a car's link."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import os

from carctl.platform.keys import car_key, load_key
from carctl.platform.link import BrokerSettings, PlatformLink
from carctl.platform.outbox import Outbox
from tests.platform.conftest import USERS, Broker
from tests.refusals import assert_refused

ROOT = Path(__file__).resolve().parent.parent.parent
KEY = b"xihan-community-key-0123456789ab"


def car(port: int, name: str, tmp_path: Path, applied: list[dict[str, Any]], key: bytes = KEY) -> PlatformLink:
    def handler(command: dict[str, Any]) -> dict[str, Any]:
        applied.append(command)
        return {"ok": True}

    link = PlatformLink(BrokerSettings("127.0.0.1", port, f"xihan-{name}", USERS[f"xihan-{name}"]), "xihan", name,
                        key, Outbox(tmp_path / f"{name}.db"), handler)
    link.start()
    assert link.connected.wait(10)
    link.publish_state({"landing": 0})
    return link


def console(port: int, tmp_path: Path, *args: str, key: bytes = KEY, key_mode: int = 0o600,
            broker_host: str = "127.0.0.1") -> subprocess.CompletedProcess[str]:
    (tmp_path / "pw").write_text(USERS["platform"])
    (tmp_path / "key").write_bytes(key)
    os.chmod(tmp_path / "key", key_mode)
    return subprocess.run([sys.executable, "-m", "carctl.cli", "platform", "--broker", f"{broker_host}:{port}",
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
        assert result.stderr.strip() == "carctl platform: car b7u2 refused: bad signature"
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


def test_per_car_keys_sign_for_one_car_only(broker: Broker, tmp_path: Path) -> None:
    """Each car holds only its own key (derived from the community key): the console signs per car, and a key taken
    off one car cannot sign for another."""
    derived = console(broker.port, tmp_path, "car-key", "--community", "xihan", "--car", "b7u2", "--out",
                      str(tmp_path / "b7u2.key"))
    assert derived.returncode == 0, derived.stderr
    assert load_key(tmp_path / "b7u2.key") == car_key(KEY, "xihan", "b7u2") != KEY
    again = console(broker.port, tmp_path, "car-key", "--community", "xihan", "--car", "b7u2", "--out",
                    str(tmp_path / "b7u2.key"))
    assert again.returncode == 2 and "already exists" in again.stderr
    applied: list[dict[str, Any]] = []
    cars = [car(broker.port, name, tmp_path, applied, key=car_key(KEY, "xihan", name)) for name in ("b7u2", "b7u3")]
    try:
        time.sleep(0.3)
        result = console(broker.port, tmp_path, "--per-car-keys", "face-enable", "--community", "xihan")
        assert result.returncode == 0, result.stderr
        assert sorted(json.loads(line)["car"] for line in result.stdout.splitlines()) == ["b7u2", "b7u3"]
        assert [c["type"] for c in applied] == ["face.enable", "face.enable"]
        # b7u2's key, stolen, signs a command for b7u3: refused.
        stolen = console(broker.port, tmp_path, "mode", "--community", "xihan", "--car", "b7u3", "out_of_service",
                         key=car_key(KEY, "xihan", "b7u2"))
        assert stolen.returncode == 2 and json.loads(stolen.stdout)["reason"] == "bad signature"
        assert len(applied) == 2
    finally:
        for link in cars:
            link.stop()


def test_bad_keys_brokers_and_ids_are_refused_with_one_sentence(tmp_path: Path) -> None:
    short = console(1883, tmp_path, "config-get", "--community", "xihan", "--car", "b7u2", key=b"short")
    assert short.returncode == 2 and "at least 32" in short.stderr and str(tmp_path / "key") in short.stderr
    shared = console(1883, tmp_path, "config-get", "--community", "xihan", "--car", "b7u2", key_mode=0o644)
    assert shared.returncode == 2 and "chmod 600" in shared.stderr
    remote = console(8883, tmp_path, "config-get", "--community", "xihan", "--car", "b7u2",
                     broker_host="broker.example.net")
    assert remote.returncode == 2 and "--tls-ca" in remote.stderr
    for community in ("xi/han", "xihan#", "Xihan", ""):
        bad = console(1883, tmp_path, "config-get", "--community", community, "--car", "b7u2")
        assert bad.returncode == 2 and "--community" in bad.stderr
    not_an_alarm = console(1883, tmp_path, "alarm-ack", "--community", "xihan", "--car", "b7u2", "--alarm", "42")
    assert not_an_alarm.returncode == 2 and "--alarm" in not_an_alarm.stderr
    for result in (short, shared, remote, bad, not_an_alarm):
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_the_documented_car_key_command_works(broker: Broker, tmp_path: Path) -> None:
    (tmp_path / "xihan.key").write_bytes(KEY)
    os.chmod(tmp_path / "xihan.key", 0o600)
    result = subprocess.run([sys.executable, "-m", "carctl.cli", "platform", "car-key", "--community", "xihan", "--car",
                             "b7u2", "--key-file", str(tmp_path / "xihan.key"), "--out", str(tmp_path / "b7u2.key")],
                            capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert load_key(tmp_path / "b7u2.key") == car_key(KEY, "xihan", "b7u2")


def test_a_refused_login_is_bad_input_in_one_sentence(broker: Broker, tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("not-the-password")
    (tmp_path / "key").write_bytes(KEY)
    os.chmod(tmp_path / "key", 0o600)
    result = subprocess.run([sys.executable, "-m", "carctl.cli", "platform", "--broker", f"127.0.0.1:{broker.port}",
                             "--password-file", str(tmp_path / "pw"), "--key-file", str(tmp_path / "key"),
                             "mode", "--community", "xihan", "--car", "b7u2", "normal"],
                            capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert_refused(result, "refused the login")


def test_bad_arguments_are_refused_before_the_broker_is_reached(tmp_path: Path) -> None:
    """Port 9 has no broker: each of these must be refused for what it is, not reported as an unreachable broker."""
    os.mkfifo(tmp_path / "photo.jpg")
    (tmp_path / "big.jpg").write_bytes(b"\xff" * (3 * 1024 * 1024))
    cases = [(("home-landing", "--community", "xihan", "--car", "b7u2", "1" * 30), "does not exist"),
             (("permissions", "--community", "xihan", "on", "--free-landings", "0,x"), "--free-landings"),
             (("resident-enroll", "--community", "xihan", "--car", "b7u2", "r-1", "--home-landing", "2",
               "--consent", "C", str(tmp_path / "photo.jpg")), "not a regular file"),
             (("resident-enroll", "--community", "xihan", "--car", "b7u2", "r-1", "--home-landing", "2",
               "--consent", "C", str(tmp_path / "big.jpg"), str(tmp_path / "big.jpg")), "at most"),
             (("watch", "--community", "xihan", "--seconds", "-5"), "--seconds"),
             (("watch", "--community", "xihan", "--seconds", "nan"), "--seconds"),
             (("--broker", "a..b:1883", "config-get", "--community", "xihan", "--car", "b7u2"), "--broker"),
             (("--tls-ca", str(tmp_path / "photo.jpg"), "config-get", "--community", "xihan", "--car", "b7u2"),
              "not a regular file")]
    for args, reason in cases:
        assert_refused(console(9, tmp_path, *args), reason)


def test_the_documented_car_option_is_the_consoles() -> None:
    """docs/platform.md's table of `--car`, row by row, against the console's own parser."""
    import argparse
    import re

    from carctl.platform.console import add_parser

    root = argparse.ArgumentParser()
    add_parser(root.add_subparsers(dest="command"), argparse.ArgumentParser)
    platform = root._subparsers._group_actions[0].choices["platform"]  # noqa: SLF001 - argparse has no accessor
    actions = platform._subparsers._group_actions[0].choices  # noqa: SLF001
    found = {}
    for name, sub in actions.items():
        car = [a for a in sub._actions if "--car" in a.option_strings]  # noqa: SLF001
        found[name] = "not taken" if not car else ("required" if car[0].required else "optional")
    text = (ROOT / "docs" / "platform.md").read_text()
    table = text[text.index("**`--car`**"):]
    table = table[:table.index("\n\n", table.index("|"))]
    documented = {}
    for row in table.splitlines():
        cells = row.split("|")
        if len(cells) < 4 or not cells[1].strip().startswith("`"):
            continue
        verdict = next(word for word in ("not taken", "required", "optional") if cells[2].strip().startswith(word))
        for name in re.findall(r"`([a-z-]+)`", cells[1]):
            documented[name] = verdict
    assert documented == found


def test_watch_makes_an_alarm_stand_out_and_ignores_garbage() -> None:
    from carctl.platform.console import alarm_headline

    alarm = json.dumps({"kind": "alarm", "state": "requested", "between_landings": True, "landing": None,
                        "position_m": 7.0, "load_kg": 80, "faults": ["drive_fault"], "alarm_id": "a" * 32}).encode()
    line = alarm_headline("carctl/xihan/b7u2/events", alarm)
    # The alarm's id, for `alarm-ack --alarm`.
    assert line.startswith(f"*** car b7u2: ALARM requested (alarm {'a' * 32}), between landings, 7.0 m, 80 kg, "
                           f"faults drive_fault")
    assert alarm_headline("carctl/xihan/b7u2/events", b'{"kind": "fault_raised"}') == ""
    for garbage in (b"\xff", b"[]", b'{"kind": "alarm", "faults": 3}', b"null"):
        alarm_headline("x", garbage)  # never raises
