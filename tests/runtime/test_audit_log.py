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


def stand_still(log: AuditLog) -> None:
    """The card stands still: the writer thread writes nothing more (a power cut follows)."""
    log._stopping = True
    log._dirty.set()
    log._writer.join(timeout=5)


def test_numbers_handed_out_before_a_power_cut_are_declared_unwritten_and_never_used_again(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    write_some(path, 2)
    log = AuditLog(path)
    stand_still(log)
    sent = [written.record["seq"] for n in range(3) for written in log.record("eeo_run", "car_key", "cabinet EEO "
                                                                              "buttons", {"n": n})]
    assert sent == [3, 4, 5] and len(path.read_bytes().splitlines()) == 2  # the platform has them; the card not
    os.close(log._fd)  # the power goes
    for _ in range(2):  # and goes again before the record saying so is written: still nothing numbered twice
        again = AuditLog(path)
        assert again.recovery is not None and again.recovery.action == "records_unwritten"
        assert again.recovery.details["after_seq"] == 2 and again.recovery.details["unwritten"][0] == 3
        stand_still(again)
        made = again.record(again.recovery.action, "controller", "audit log", again.recovery.details)
        assert made[0].record["seq"] not in sent
        sent.append(made[0].record["seq"])
        os.close(again._fd)
    log = AuditLog(path)
    assert log.recovery is not None
    log.record(log.recovery.action, "controller", "audit log", log.recovery.details)
    log.record("alarm_reset", "car_key", "alarm reset key", {})
    log.close()
    records = records_of(path)
    assert records[2]["seq"] > max(sent) and records[2]["details"]["unwritten"] == [3, records[2]["seq"] - 1]
    verdict = verify(files_of(path))
    assert verdict.intact, verdict.problem
    log = AuditLog(path)
    log.close()
    assert log.recovery is None  # a clean stop leaves nothing to skip


def test_the_reservation_stays_ahead_of_the_numbers_handed_out(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    log = AuditLog(path)
    for n in range(audit_log.RESERVE_AHEAD):
        log.record("eeo_run", "car_key", "cabinet EEO buttons", {"n": n})
        if n % 100 == 0:
            log._write_pending()
        reserved = json.loads(Path(str(path) + audit_log.RESERVED_SUFFIX).read_bytes())["reserved_seq"]
        assert reserved >= log.seq
    log.close()
    assert json.loads(Path(str(path) + audit_log.RESERVED_SUFFIX).read_bytes()) == {"reserved_seq": log.seq}


@pytest.mark.parametrize("content", [b"", b"garbage", b'{"reserved_seq": -4}', b'{"reserved_seq": true}', b"[1]",
                                     b'{"reserved_seq": 1e400}', b"9" * 5000])
def test_a_reservation_that_is_not_one_skips_nothing(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "audit.log"
    write_some(path, 2)
    Path(str(path) + audit_log.RESERVED_SUFFIX).write_bytes(content)
    log = write_some(path, 1)
    assert log.recovery is None and records_of(path)[-1]["seq"] == 3


@pytest.mark.parametrize("torn", [b'{"action":"fault_reset","details":{"n":',
                                  b'{"action":"parameter_change","details":{"changes":' + b"[0," * 600])
def test_a_kill_before_the_torn_tail_record_is_written_leaves_the_torn_line_to_be_found_again(tmp_path: Path,
                                                                                             torn: bytes) -> None:
    path = tmp_path / "audit.log"
    write_some(path, 3)
    whole = path.read_bytes()
    path.write_bytes(whole + torn)
    log = AuditLog(path)
    stand_still(log)  # killed at start, before its first line reached the card
    assert log.recovery is not None
    log.record(log.recovery.action, "controller", "audit log", log.recovery.details)
    os.close(log._fd)
    assert path.read_bytes() == whole + torn  # the torn line is still there: the cut has left a trace
    log = AuditLog(path)
    assert log.recovery is not None and log.recovery.action == "torn_tail"
    assert log.recovery.details["sha256"] == digest(torn) and log.recovery.details["after_seq"] == 3
    log.record(log.recovery.action, "controller", "audit log", log.recovery.details)
    log.record("alarm_reset", "car_key", "alarm reset key", {})
    log.close()
    verdict = verify(files_of(path))
    assert verdict.intact and not verdict.torn, verdict
    assert [record["action"] for record in records_of(path)][3:] == ["torn_tail", "alarm_reset"]
