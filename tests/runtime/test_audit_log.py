"""The maintenance record's writer: append-only, continued across restarts, a torn tail recovered, rotation that
keeps the chain, a queue that cannot grow without bound."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from carctl.filein import NotARegularFile
from carctl.runtime import audit_log
from carctl.runtime.audit_chain import digest, verify
from carctl.runtime.audit_log import AuditLog


def files_of(path: Path) -> list[tuple[str, bytes]]:
    rotated = Path(str(path) + ".1")
    return [(str(p), p.read_bytes()) for p in (rotated, path) if p.exists()]


def records_of(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for _, data in files_of(path) for line in data.splitlines()]


def write_some(path: Path, count: int, max_bytes: int = audit_log.DEFAULT_MAX_BYTES) -> AuditLog:
    log = AuditLog(path, max_bytes)
    for n in range(count):
        assert [written.record["action"] for written in log.record("fault_reset", "car_key", "fault reset key",
                                                                    {"n": n})] == ["fault_reset"]
    log.close()
    return log


def test_records_are_chained_on_disk_0640_and_the_chain_continues_after_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    write_some(path, 3)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    write_some(path, 2)
    verdict = verify(files_of(path))
    assert verdict.intact and (verdict.first_seq, verdict.last_seq) == (1, 5), verdict
    assert [record["details"] for record in records_of(path)] == [{"n": 0}, {"n": 1}, {"n": 2}, {"n": 0}, {"n": 1}]


def test_a_torn_tail_is_cut_off_recorded_and_the_chain_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    write_some(path, 3)
    whole = path.read_bytes()
    torn = b'{"action":"fault_reset","details":{"n":'  # a kill in the middle of the fourth record's write
    path.write_bytes(whole + torn)
    assert verify(files_of(path)).torn  # before the writer starts: torn, not tampered
    assert verify(files_of(path)).intact
    log = AuditLog(path)
    assert log.recovery is not None and log.recovery.action == "torn_tail"
    assert log.recovery.details["bytes"] == len(torn) and log.recovery.details["after_seq"] == 3
    log.record(log.recovery.action, "controller", "audit log", log.recovery.details)
    log.record("mode_switch", "car_key", "independent-service key", {"switch": "independent", "to": "on"})
    log.close()
    verdict = verify(files_of(path))
    assert verdict.intact and not verdict.torn and verdict.last_seq == 5
    assert [record["action"] for record in records_of(path)][3:] == ["torn_tail", "mode_switch"]


def test_a_log_whose_only_line_is_torn_begins_again(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    path.write_bytes(b'{"action":"fau')
    log = AuditLog(path)
    assert log.recovery is not None and log.recovery.details["after_seq"] == 0
    log.record("alarm_reset", "car_key", "alarm reset key", {})
    log.close()
    assert verify(files_of(path)).intact and path.read_bytes().startswith(b'{"action":"alarm_reset"')


def test_rotation_keeps_the_chain_verifiable_and_the_card_bounded(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    log = write_some(path, 40, max_bytes=2000)
    assert log.rotations >= 2
    assert path.stat().st_size <= 2000 and Path(str(path) + ".1").stat().st_size <= 2000
    verdict = verify(files_of(path))
    assert verdict.intact and verdict.last_seq == 40 and verdict.first_seq > 1
    first_of_new = json.loads(path.read_bytes().splitlines()[0])
    last_of_old = Path(str(path) + ".1").read_bytes().splitlines()[-1]
    assert first_of_new["prev"] == digest(last_of_old)  # the new file carries the hash of the old one's last
    # A restart after a rotation that was cut short (renamed, nothing written yet) continues from the rotated file.
    os.replace(path, Path(str(path) + ".1"))
    write_some(path, 1)
    assert verify(files_of(path)).intact and records_of(path)[-1]["seq"] == 41


def test_a_full_queue_counts_what_it_could_not_keep_and_says_so_in_the_chain(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "audit.log"
    log = AuditLog(path)
    stuck = [True]
    real = log._write_pending
    monkeypatch.setattr(log, "_write_pending", lambda: None if stuck[0] else real())  # the card stands still
    for n in range(audit_log.MAX_PENDING + 50):
        log.record("eeo_run", "car_key", "cabinet EEO buttons", {"n": n})
    assert len(log.pending) < audit_log.MAX_PENDING and log.lost > 50
    stuck[0] = False
    log._write_pending()
    made = log.record("eeo_run", "car_key", "cabinet EEO buttons", {"n": -1})
    assert [written.record["action"] for written in made] == ["records_lost", "eeo_run"]  # both for the platform
    log.close()
    actions = [record["action"] for record in records_of(path)]
    assert actions[-2:] == ["records_lost", "eeo_run"]
    assert records_of(path)[-2]["details"]["records"] > 50
    assert verify(files_of(path)).intact


def test_a_write_that_fails_is_counted_and_tried_again_without_a_torn_line(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "audit.log"
    log = AuditLog(path)
    log.close()
    log = AuditLog(path)
    failing = [True]
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        if failing[0]:
            raise OSError(28, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(audit_log.os, "fsync", fsync)
    log._stopping = True  # drive the writer by hand
    log._dirty.set()
    log._writer.join(timeout=5)
    log.record("fault_reset", "car_key", "fault reset key", {})
    log._write_pending()
    assert log.write_errors == 1 and len(log.pending) == 1 and path.read_bytes() == b""
    failing[0] = False
    log.close()
    assert verify(files_of(path)).intact and len(records_of(path)) == 1


def test_a_last_line_that_is_not_a_record_is_set_aside(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    path.write_bytes(b"somebody wrote this\n")
    log = AuditLog(path)
    assert log.recovery is not None and log.recovery.action == "log_set_aside"
    log.close()
    kept = [p for p in tmp_path.iterdir() if p.name.startswith("audit.log.unreadable")]
    assert len(kept) == 1 and kept[0].read_bytes() == b"somebody wrote this\n"


def test_a_fifo_or_a_folder_in_its_place_is_refused_at_start(tmp_path: Path) -> None:
    fifo = tmp_path / "audit.log"
    os.mkfifo(fifo)
    with pytest.raises(NotARegularFile):
        AuditLog(fifo)
    (tmp_path / "folder").mkdir()
    with pytest.raises(NotARegularFile):
        AuditLog(tmp_path / "folder")
