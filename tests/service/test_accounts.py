"""The technicians' accounts: scrypt hashes with their parameters, a private users file, hostile files and hashes
refused in one sentence, and `carctl service add-user` that takes the password from a file only."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from carctl.service import accounts
from carctl.service.accounts import AccountError

ROOT = Path(__file__).resolve().parents[2]


def test_a_password_matches_its_hash_and_nothing_else() -> None:
    stored = accounts.hash_password("correct horse battery")
    assert stored.startswith("scrypt$16384$8$1$")
    assert accounts.password_matches("correct horse battery", stored)
    assert not accounts.password_matches("correct horse batterY", stored)
    assert stored != accounts.hash_password("correct horse battery"), "each hash has its own salt"


@pytest.mark.parametrize("stored", [
    "", "scrypt$", "md5$1$2$3$4$5", "scrypt$16384$8$1$!!!$AAAA", "scrypt$3$8$1$c2FsdHNhbHQ=$" + "A" * 44,
    # Parameters that would take gigabytes or minutes: refused before hashing.
    "scrypt$1073741824$8$1$c2FsdHNhbHQ=$" + "A" * 44, "scrypt$16384$8$1000$c2FsdHNhbHQ=$" + "A" * 44,
    "scrypt$16384$8$1$c2FsdHNhbHQ=$QUFB",
])
def test_a_hash_this_firmware_cannot_check_matches_nothing_and_quickly(stored: str) -> None:
    started = time.monotonic()
    assert not accounts.password_matches("correct horse battery", stored)
    assert time.monotonic() - started < 0.5


def test_add_user_writes_a_private_file_and_changes_an_account_in_place(tmp_path: Path) -> None:
    users = tmp_path / "state" / "users.json"
    assert accounts.add_user(users, "alice", "maintenance", "correct horse battery")
    assert not accounts.add_user(users, "alice", "read", "another good password")
    assert accounts.add_user(users, "bob", "read", "bob's long password")
    assert stat.S_IMODE(os.stat(users).st_mode) == 0o600
    loaded = accounts.load(users)
    assert set(loaded.users) == {"alice", "bob"} and loaded.problems == ()
    alice = loaded.get("alice")
    assert alice is not None and alice.role == "read" and not alice.may_change
    assert accounts.password_matches("another good password", alice.password_hash)


@pytest.mark.parametrize(("name", "role"), [("Alice", "read"), ("", "read"), ("a" * 33, "read"), ("al ice", "read"),
                                            ("../x", "read"), ("alice", "admin")])
def test_bad_names_and_roles_are_refused(tmp_path: Path, name: str, role: str) -> None:
    with pytest.raises(AccountError):
        accounts.add_user(tmp_path / "users.json", name, role, "correct horse battery")


@pytest.mark.parametrize("content", [b"", b"\xff\xfe", b"[" * 10000, b"{}", b'{"version": 2, "users": {}}',
                                     b"x" * (accounts.MAX_FILE_BYTES + 1)])
def test_a_users_file_that_cannot_be_one_is_refused_in_one_sentence(tmp_path: Path, content: bytes) -> None:
    users = tmp_path / "users.json"
    users.write_bytes(content)
    with pytest.raises(AccountError, match="users file"):
        accounts.load(users)


def test_a_bad_account_is_left_out_and_said_and_the_file_is_not_rewritten_over_it(tmp_path: Path) -> None:
    users = tmp_path / "users.json"
    good = {"role": "read", "hash": accounts.hash_password("correct horse battery")}
    users.write_text(json.dumps({"version": 1, "users": {"alice": good, "BAD": good,
                                                         "carol": {"role": "root", "hash": "x"}}}))
    loaded = accounts.load(users)
    assert set(loaded.users) == {"alice"} and len(loaded.problems) == 2
    with pytest.raises(AccountError, match="cannot be read"):
        accounts.add_user(users, "dave", "read", "correct horse battery")


@pytest.mark.parametrize(("content", "why"), [(b"short\n", "at least 10"), (b"\xff" * 20, "not UTF-8"),
                                              (b"tab\tin the password", "control"), (b"x" * 2000, "larger")])
def test_a_password_file_that_cannot_be_taken_is_refused(tmp_path: Path, content: bytes, why: str) -> None:
    path = tmp_path / "password"
    path.write_bytes(content)
    with pytest.raises(AccountError, match=why):
        accounts.read_password_file(path)


def carctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "carctl.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)


def test_add_user_from_the_command_line(tmp_path: Path) -> None:
    password = tmp_path / "password"
    password.write_text("correct horse battery\n")
    users = tmp_path / "users.json"
    done = carctl("service", "add-user", "alice", "--role", "maintenance", "--password-file", str(password),
                  "--users", str(users))
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"added alice (maintenance) in {users}\n"
    assert accounts.password_matches("correct horse battery", accounts.load(users).users["alice"].password_hash)


@pytest.mark.parametrize(("args", "named"), [
    (["add-user", "alice", "--role", "root", "--password-file", "P"], "--role"),
    (["add-user", "alice", "--role", "read"], "--password-file"),
    (["add-user", "Alice", "--role", "read", "--password-file", "P", "--users", "U"], "user name"),
    (["add-user", "alice", "--role", "read", "--password-file", "/nonexistent", "--users", "U"], "password file"),
    (["add-user", "alice", "--role", "read", "--password-file", "P", "--config", "/nonexistent.toml"],
     "/nonexistent.toml"),
    ([], "--config"),
    (["--config", "C", "--listen", "localhost:80"], "--listen"),
    (["--config", "C", "--listen", "127.0.0.1:99999"], "--listen"),
])
def test_bad_input_exits_2_with_one_sentence(tmp_path: Path, args: list[str], named: str) -> None:
    (tmp_path / "P").write_text("correct horse battery\n")
    (tmp_path / "C").write_text('[drive]\nendpoint = "tcp://127.0.0.1:1"\n[panel]\nport = "/dev/null"\n'
                                f'[runtime]\nsocket_dir = "{tmp_path / "run"}"\n')
    args = [str(tmp_path / arg) if arg in ("P", "U", "C") else arg for arg in args]
    done = carctl("service", *args)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert named in done.stderr
