"""Command keys (read like ssh reads a private key; a car's own key derived by HKDF) and the broker's ACL generator,
which refuses ids that would become topic wildcards or collide in broker accounts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from carctl.platform.broker import AclError, acl, acl_for
from carctl.platform.keys import KeyFileError, car_key, hkdf_sha256, load_key, write_key

ROOT = Path(__file__).resolve().parent.parent.parent


def test_hkdf_matches_rfc_5869_test_case_1() -> None:
    okm = hkdf_sha256(bytes.fromhex("0b" * 22), bytes.fromhex("000102030405060708090a0b0c"),
                      bytes.fromhex("f0f1f2f3f4f5f6f7f8f9"), 42)
    assert okm.hex() == ("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
                         "34007208d5b887185865")


def test_each_car_gets_its_own_key() -> None:
    community_key = b"c" * 32
    keys = {car_key(community_key, "xihan", car) for car in ("b7u1", "b7u2", "b7u3")}
    assert len(keys) == 3 and community_key not in keys
    assert car_key(community_key, "xihan", "b7u2") != car_key(community_key, "dongfang", "b7u2")
    assert car_key(community_key, "xihan", "b7u2") == car_key(community_key, "xihan", "b7u2")


def test_a_key_is_refused_naming_the_file_when_short_open_to_others_or_not_a_file(tmp_path: Path) -> None:
    good = tmp_path / "good.key"
    write_key(good, os.urandom(32))
    assert len(load_key(good)) == 32
    assert good.stat().st_mode & 0o777 == 0o600
    cases = {"short.key": (b"k" * 31, 0o600, "at least 32"), "shared.key": (b"k" * 32, 0o640, "chmod 600"),
             "world.key": (b"k" * 32, 0o604, "chmod 600"), "empty.key": (b"", 0o600, "holds 0 bytes"),
             "huge.key": (b"k" * 5000, 0o600, "not a key")}
    for name, (data, mode, reason) in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        os.chmod(path, mode)
        with pytest.raises(KeyFileError) as error:
            load_key(path)
        assert reason in str(error.value) and str(path) in str(error.value)
    with pytest.raises(KeyFileError, match="No such file"):
        load_key(tmp_path / "missing.key")
    (tmp_path / "link.key").symlink_to(good)
    with pytest.raises(KeyFileError):
        load_key(tmp_path / "link.key")  # a key is a file of its own, not a link an attacker could redirect
    with pytest.raises(KeyFileError, match="not a regular file"):
        load_key(tmp_path)
    with pytest.raises(FileExistsError):
        write_key(good, b"x" * 32)  # never overwrites a key


def test_the_acl_gives_each_car_its_own_topics() -> None:
    text = acl("xihan", ["b7u2", "b7u3"], "platform")
    assert "user xihan-b7u2\ntopic read carctl/xihan/b7u2/cmd\n" in text
    assert "topic write carctl/xihan/b7u3/state" in text and "topic readwrite carctl/xihan/+/cmd" in text
    both = acl_for({"xihan": ["b7u2"], "dongfang": ["d1"]}, "platform")
    assert "topic read carctl/dongfang/+/events" in both and "user dongfang-d1" in both


@pytest.mark.parametrize(("communities", "operator", "reason"), [
    ({"xihan": ["b7+u2"]}, "platform", "car id"),
    ({"xihan": ["#"]}, "platform", "car id"),
    ({"xihan": ["b7/u2"]}, "platform", "car id"),
    ({"xihan": ["b7u2\nuser platform"]}, "platform", "car id"),
    ({"xi han": ["b7u2"]}, "platform", "community id"),
    ({"Xihan": ["b7u2"]}, "platform", "community id"),
    ({"xihan": ["b7u2"]}, "plat form", "operator id"),
    ({"xihan": []}, "platform", "no cars"),
    ({"xihan": ["b7u2", "b7u2"]}, "platform", "already"),
    ({"a-b": ["c"], "a": ["b-c"]}, "platform", "already"),
    ({"xihan": ["b7u2"]}, "xihan-b7u2", "already"),
])
def test_the_acl_refuses_ids_that_are_wildcards_or_collide(communities: dict[str, list[str]], operator: str,
                                                           reason: str) -> None:
    with pytest.raises(AclError, match=reason):
        acl_for(communities, operator)


def test_the_acl_command_refuses_with_exit_2_and_one_sentence() -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "carctl.platform.broker", *args], capture_output=True,
                              text=True, timeout=30, cwd=ROOT)

    good = run("--community", "xihan", "--cars", "b7u2,b7u3")
    assert good.returncode == 0 and "user xihan-b7u3" in good.stdout
    for args in (["--community", "a-b", "--cars", "c", "--community", "a", "--cars", "b-c"],
                 ["--community", "xihan", "--cars", "b7+u2"], ["--community", "xihan"],
                 ["--community", "xihan", "--cars", "a", "--community", "x"]):
        bad = run(*args)
        assert bad.returncode == 2 and bad.stdout == "" and "Traceback" not in bad.stderr
        assert len(bad.stderr.strip().splitlines()) == 1
