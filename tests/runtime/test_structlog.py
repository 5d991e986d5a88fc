"""The structured log: bounded on the card, never raising into the loop."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from carctl.filein import NotARegularFile
from carctl.runtime.structlog import ROTATED_SUFFIX, open_log


def test_a_log_file_is_rotated_once_past_its_size_and_never_holds_more_than_twice_it(tmp_path: Path) -> None:
    path = tmp_path / "control.jsonl"
    log = open_log(str(path), max_bytes=65_536)
    for n in range(5000):  # ~60 bytes a record: about 300 KB in all, over four rotations
        log.write("health", n=n, padding="x" * 20)
    rotated = Path(str(path) + ROTATED_SUFFIX)
    assert log.rotations >= 4 and log.failed_writes == 0
    assert path.stat().st_size < 65_536 and rotated.stat().st_size >= 65_536
    assert path.stat().st_size + rotated.stat().st_size < 2 * 65_536 + 200
    # Nothing lost between the two: the last record of the old file is followed by the first of the new one.
    last_old = json.loads(rotated.read_text().splitlines()[-1])["n"]
    first_new = json.loads(path.read_text().splitlines()[0])["n"]
    assert first_new == last_old + 1
    assert json.loads(path.read_text().splitlines()[-1])["n"] == 4999
    assert stat.S_IMODE(path.stat().st_mode) == 0o640  # technicians in group carctl read it
    log.close()


def test_an_existing_log_counts_towards_the_bound(tmp_path: Path) -> None:
    path = tmp_path / "control.jsonl"
    path.write_text("x" * 70_000 + "\n")
    log = open_log(str(path), max_bytes=65_536)
    log.write("start")
    assert log.rotations == 1 and path.stat().st_size < 100
    log.close()


def test_a_rotation_that_fails_is_counted_and_the_log_stays_bounded(tmp_path: Path) -> None:
    """A folder named <file>.1 (or a folder the firmware may not write in) stops the rename: the file is begun again
    in place rather than left to grow past the bound."""
    folder = tmp_path / "logs"
    folder.mkdir()
    path = folder / "control.jsonl"
    log = open_log(str(path), max_bytes=65_536)
    os.mkdir(str(path) + ROTATED_SUFFIX)  # the rename cannot replace a folder
    (Path(str(path) + ROTATED_SUFFIX) / "x").write_text("")
    for n in range(5000):
        log.write("health", n=n, padding="x" * 20)
    assert log.rotation_failures >= 4 and log.rotations == 0 and log.failed_writes == 0
    assert path.stat().st_size < 65_536
    assert json.loads(path.read_text().splitlines()[-1])["n"] == 4999
    log.close()


def test_a_link_or_a_fifo_is_not_a_log(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("")
    (tmp_path / "link.jsonl").symlink_to(target)
    with pytest.raises(OSError):
        open_log(str(tmp_path / "link.jsonl"))
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(NotARegularFile):
        open_log(str(tmp_path / "fifo"))
