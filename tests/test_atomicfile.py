"""Atomic file writes: old or new contents after a crash, never a mix, and no temporary left behind once the file's
owner has opened it again."""

from __future__ import annotations

import os
import random
import re
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

from carctl.atomicfile import STALE_AFTER_S, move_aside, remove_stale_temporaries, write_atomic
from carctl.runtime import overrides
from carctl.runtime.fault_log import FaultLog

ROOT = Path(__file__).resolve().parent.parent
SIZE = 1 << 20  # big enough that a kill lands inside a write, not between two

# Writes the file over and over, each version one byte repeated, and says when it has begun.
WRITER = f"""
import sys
from pathlib import Path
from carctl.atomicfile import write_atomic
target = Path(sys.argv[1])
write_atomic(target, b"a" * {SIZE})
sys.stdout.write("writing\\n")
sys.stdout.flush()
version = 0
while True:
    version += 1
    write_atomic(target, bytes([97 + version % 26]) * {SIZE})
"""


def test_writers_killed_mid_write_leave_one_whole_file_after_one_open(tmp_path: Path) -> None:
    target = tmp_path / "overrides.json"
    rng = random.Random(20261125)
    killed = set()
    cut_short = 0  # kills that left a temporary (each new writer clears away those of the ones before it)
    left: list[str] = []
    kills = 0
    while kills < 50 or not left and kills < 100:  # 50 kills, and the last of them cut a write short
        writer = subprocess.Popen([sys.executable, "-S", "-c", WRITER, str(target)], stdout=subprocess.PIPE,
                                  cwd=ROOT)
        assert writer.stdout is not None and writer.stdout.readline() == b"writing\n"
        time.sleep(rng.uniform(0.0, 0.02))
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=10)
        writer.stdout.close()
        killed.add(writer.pid)
        kills += 1
        left = [p.name for p in tmp_path.iterdir() if p != target]
        cut_short += bool(left)
        for name in left:  # each temporary names the writer that made it
            found = re.fullmatch(r"\.overrides\.json\.([0-9]+)\.[0-9a-f]{16}\.tmp", name)
            assert found and int(found[1]) in killed, name
    assert cut_short >= 10 and left, "the kills did not land mid-write: this would test nothing"

    contents = target.read_bytes()
    assert len(contents) == SIZE and len(set(contents)) == 1  # one version whole, never a mix

    overrides.write(target, {"home_landing": 1})  # the file's writer (the link process) writes it once more

    assert [p.name for p in tmp_path.iterdir()] == [target.name]


def temporary(directory: Path, middle: str, age_s: float = 0.0) -> Path:
    path = directory / f".state.json.{middle}.tmp"
    path.write_bytes(b"partial")
    if age_s:
        then = time.time() - age_s
        os.utime(path, (then, then))
    return path


def test_only_temporaries_of_writers_that_are_gone_are_removed(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    dead = temporary(tmp_path, "4194305.00112233445566ff")  # above any pid_max: no such process
    live = temporary(tmp_path, f"{os.getpid()}.00112233445566ff")  # a writer at work (this process)
    reused_pid = temporary(tmp_path, f"{os.getpid()}.aabbccddeeff0011", age_s=STALE_AFTER_S + 60)
    old_naming_young = temporary(tmp_path, "k3_9x0ab")  # tempfile.mkstemp's names, no pid: only age tells
    old_naming_stale = temporary(tmp_path, "q7a_2mzz", age_s=STALE_AFTER_S + 60)
    another_files = tmp_path / ".state.json.version.4194305.00112233445566ff.tmp"
    another_files.write_bytes(b"not ours")
    unrelated = tmp_path / "notes.tmp"
    unrelated.write_bytes(b"not ours either")

    assert remove_stale_temporaries(target) == 3
    assert not dead.exists() and not reused_pid.exists() and not old_naming_stale.exists()
    assert live.exists() and old_naming_young.exists() and another_files.exists() and unrelated.exists()
    assert remove_stale_temporaries(tmp_path / "missing-dir" / "state.json") == 0


def test_a_write_clears_up_first_and_sets_the_mode_before_the_file_appears(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    temporary(tmp_path, "4194305.00112233445566ff")
    write_atomic(target, b"{}")
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    write_atomic(target, b"{}", mode=0o644)
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


def test_the_fault_log_clears_up_when_it_opens(tmp_path: Path) -> None:
    log_path = tmp_path / "faults.json"
    temporary(tmp_path, "4194305.00112233445566ff").rename(tmp_path / ".faults.json.4194305.00112233445566ff.tmp")
    log = FaultLog(log_path)
    log.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["faults.json"]


def test_an_unusable_file_is_moved_aside_to_the_first_free_number(tmp_path: Path) -> None:
    path = tmp_path / "faults.json"
    (tmp_path / "faults.json.unreadable-1").write_text("older")
    (tmp_path / "faults.json.unreadable-2").symlink_to(tmp_path / "nowhere")  # taken, even dangling
    path.write_text("broken")
    aside = move_aside(path)
    assert aside.name == "faults.json.unreadable-3" and aside.read_text() == "broken" and not path.exists()
