"""`carctl audit verify | show` as a technician runs it: 0 intact, 1 tampered (naming the record), 2 bad input in one
sentence, never a traceback or a wait."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from carctl.runtime.audit_log import AuditLog
from tests.refusals import assert_refused


def carctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "carctl.cli", *args], capture_output=True, text=True, timeout=60)


def written_log(tmp_path: Path, count: int = 5, max_bytes: int = 4 * 1024 * 1024) -> Path:
    path = tmp_path / "audit.log"
    log = AuditLog(path, max_bytes)
    for n in range(count):
        log.record("mode_switch", "car_key", "independent-service key",
                   {"switch": "independent", "to": "on" if n % 2 == 0 else "off"})
    log.close()
    return path


def test_an_intact_record_exits_0_with_its_last_hash(tmp_path: Path) -> None:
    path = written_log(tmp_path)
    result = carctl("audit", "verify", "--file", str(path))
    assert result.returncode == 0, result.stderr
    last = json.loads(path.read_bytes().splitlines()[-1])
    assert result.stdout.startswith("intact: 5 records, 1 to 5") and last["seq"] == 5
    shown = carctl("audit", "show", "--file", str(path))
    assert shown.returncode == 0 and len(shown.stdout.splitlines()) == 5 and "independent-service key" in shown.stdout


def test_an_edited_record_exits_1_naming_it(tmp_path: Path) -> None:
    path = written_log(tmp_path)
    lines = path.read_bytes().splitlines(keepends=True)
    lines[1] = lines[1].replace(b'"to":"off"', b'"to":"on"')
    path.write_bytes(b"".join(lines))
    result = carctl("audit", "verify", "--file", str(path))
    assert result.returncode == 1
    assert f"record 2 ({path} line 2) was changed" in result.stdout and "Traceback" not in result.stderr


def test_a_removed_record_exits_1_naming_it(tmp_path: Path) -> None:
    path = written_log(tmp_path)
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:2] + lines[3:]))
    result = carctl("audit", "verify", "--file", str(path))
    assert result.returncode == 1 and "record 3 removed" in result.stdout


def test_a_truncated_record_is_torn_not_tampered(tmp_path: Path) -> None:
    path = written_log(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[:-25])
    result = carctl("audit", "verify", "--file", str(path))
    assert result.returncode == 0 and "intact: 4 records" in result.stdout
    assert f"{path} line 5 is torn" in result.stdout


def test_the_chain_is_checked_across_the_rotated_file(tmp_path: Path) -> None:
    path = written_log(tmp_path, 30, max_bytes=2000)
    assert Path(str(path) + ".1").exists()
    result = carctl("audit", "verify", "--file", str(path))
    assert result.returncode == 0 and "to 30" in result.stdout and f"{path}.1 and {path}" in result.stdout
    rotated = Path(str(path) + ".1")
    lines = rotated.read_bytes().splitlines(keepends=True)
    rotated.write_bytes(b"".join(lines[:-1]))  # the old file's last record taken away
    result = carctl("audit", "verify", "--file", str(path))
    assert result.returncode == 1 and "removed" in result.stdout


def test_the_configuration_names_the_record(tmp_path: Path) -> None:
    path = written_log(tmp_path)
    config = tmp_path / "board.toml"
    config.write_text(f'[drive]\nendpoint = "tcp://127.0.0.1:1"\n[panel]\nport = "/dev/null"\n'
                      f'[runtime]\naudit_log = "{path}"\n')
    assert carctl("audit", "verify", "--config", str(config)).returncode == 0
    config.write_text('[drive]\nendpoint = "tcp://127.0.0.1:1"\n[panel]\nport = "/dev/null"\n[runtime]\naudit_log = ""\n')
    assert_refused(carctl("audit", "verify", "--config", str(config)), "runtime.audit_log is empty")
    config.write_text("[runtime\n")
    assert_refused(carctl("audit", "verify", "--config", str(config)), str(config))


@pytest.mark.parametrize("content, named", [
    (b"\x00\x01\x02\xff" * 100, "is not a carctl audit log"),
    (b"hello\nworld\n", "is not a carctl audit log"),
    (b'{"seq": 1, "t": 0}\n', "is not a carctl audit log"),
    (b"[" * 100_000, "is not a carctl audit log"),
])
def test_garbage_exits_2_in_one_sentence(tmp_path: Path, content: bytes, named: str) -> None:
    path = tmp_path / "audit.log"
    path.write_bytes(content)
    assert_refused(carctl("audit", "verify", "--file", str(path)), named)
    assert_refused(carctl("audit", "show", "--file", str(path)), named)


def test_a_missing_file_a_folder_a_fifo_or_an_unreadable_file_exits_2(tmp_path: Path) -> None:
    assert_refused(carctl("audit", "verify", "--file", str(tmp_path / "none.log")), "no such file")
    assert_refused(carctl("audit", "verify", "--file", str(tmp_path)), "is not a regular file (a directory)")
    fifo = tmp_path / "fifo.log"
    os.mkfifo(fifo)
    assert_refused(carctl("audit", "verify", "--file", str(fifo)), "is not a regular file (a FIFO)")
    assert_refused(carctl("audit", "verify", "--file", "/dev/zero"), "is not a regular file (a device)")
    huge = tmp_path / "huge.log"
    with open(huge, "wb") as sparse:  # larger than any record the configuration allows, refused before it is read
        sparse.truncate(64 * 1024 * 1024)
    assert_refused(carctl("audit", "verify", "--file", str(huge)), "is larger than")
    assert_refused(carctl("audit", "verify", "--file", str(tmp_path / "a"), "--config", str(tmp_path / "b")),
                   "not allowed with argument")
    if os.geteuid() != 0:  # root reads whatever the mode says
        locked = written_log(tmp_path)
        locked.chmod(0)
        assert_refused(carctl("audit", "verify", "--file", str(locked)), "cannot be read")
