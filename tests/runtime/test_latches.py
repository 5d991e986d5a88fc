"""The record of latched faults on disk: what it restores, what it refuses, and what a cut-short write leaves."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from carctl.atomicfile import TEMPORARY_SUFFIX, temporary_prefix
from carctl.core.faults import Fault
from carctl.runtime.latches import LatchRecord


def wait_for(condition, within_s: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + within_s
    while not condition():
        assert time.monotonic() < deadline, "not in time"
        time.sleep(0.01)


def test_no_record_is_no_record_to_trust_and_the_first_keep_writes_one(tmp_path: Path) -> None:
    """A new board, a re-imaged card, a deleted record: held until the reset, never "no faults"."""
    path = tmp_path / "latched.json"
    record = LatchRecord(path)
    assert record.restore() is None and "no record" in record.problem
    record.keep(frozenset({Fault.LATCH_RECORD_UNREADABLE}))
    wait_for(path.exists)
    assert json.loads(path.read_text()) == {"version": 1, "latched": ["latch_record_unreadable"]}
    record.close()


def test_a_record_deleted_or_changed_while_running_is_written_again(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("carctl.runtime.latches.VERIFY_EVERY_S", 1.0)
    path = tmp_path / "latched.json"
    path.write_text(json.dumps({"version": 1, "latched": ["overspeed"]}))
    record = LatchRecord(path)
    assert record.restore() == {Fault.OVERSPEED}
    record.keep(frozenset({Fault.OVERSPEED}))
    path.unlink()
    wait_for(path.exists)
    path.write_text(json.dumps({"version": 1, "latched": []}))
    wait_for(lambda: "overspeed" in path.read_text())
    assert record.rewrites == 2
    record.close()


def test_latches_written_on_change_come_back_after_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "latched.json"
    record = LatchRecord(path)
    record.restore()
    record.keep(frozenset({Fault.OVERSPEED, Fault.UNINTENDED_MOVEMENT}))
    record.close()  # as the process ends; a kill is the wire test's
    again = LatchRecord(path)
    assert again.restore() == {Fault.OVERSPEED, Fault.UNINTENDED_MOVEMENT}
    again.keep(frozenset({Fault.OVERSPEED, Fault.UNINTENDED_MOVEMENT}))  # unchanged: nothing is written
    again.keep(frozenset())
    again.close()
    assert LatchRecord(path).restore() == frozenset()


def test_a_refused_record_is_moved_aside_for_whoever_looks_into_it(tmp_path: Path) -> None:
    path = tmp_path / "latched.json"
    path.write_text('{"version": 1, "latched": ["overs')
    record = LatchRecord(path)
    assert record.restore() is None
    assert record.set_aside == tmp_path / "latched.json.unreadable-1" and not path.exists()
    assert record.set_aside.read_text() == '{"version": 1, "latched": ["overs'


@pytest.mark.parametrize("content", [
    b"", b"{", b"\xff\xfe", b"[]", b'{"version": 1}', b'{"version": 2, "latched": []}',
    b'{"version": true, "latched": []}', b'{"version": 1, "latched": "overspeed"}',
    b'{"version": 1, "latched": ["overspeed", "made_up"]}', b'{"version": 1, "latched": [1]}',
    b'{"version": 1, "latched": [], "extra": 0}', b'{"version": 1.0, "latched": []}',
    b'{"version": 1, "latched": ["drive_stale"]}', b'{"version": 1, "latched": [], "latched": ["overspeed"]}',
    b"[" * 10_000, b"x" * 100_000,
])
def test_a_record_that_cannot_be_trusted_is_unknown_never_empty(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "latched.json"
    path.write_bytes(content)
    record = LatchRecord(path)
    assert record.restore() is None
    assert record.problem.startswith(str(path))


def test_a_link_a_folder_or_a_fifo_in_place_of_the_record_is_unknown(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.json"
    target.write_text(json.dumps({"version": 1, "latched": []}))
    link = tmp_path / "latched.json"
    link.symlink_to(target)
    assert LatchRecord(link).restore() is None
    folder = tmp_path / "folder.json"
    folder.mkdir()
    assert LatchRecord(folder).restore() is None
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    assert LatchRecord(fifo).restore() is None  # refused at once, not waited on


def test_a_write_cut_short_leaves_the_previous_record_and_its_temporary_is_cleared(tmp_path: Path) -> None:
    path = tmp_path / "latched.json"
    path.write_text(json.dumps({"version": 1, "latched": ["shaft_limit"]}))
    # A writer killed between writing its temporary and renaming it (its pid no longer exists).
    orphan = tmp_path / f"{temporary_prefix(path)}{2**22 + 12345}.0123456789abcdef{TEMPORARY_SUFFIX}"
    orphan.write_text('{"version": 1, "latched": []}')
    record = LatchRecord(path)
    assert record.restore() == {Fault.SHAFT_LIMIT}
    assert not orphan.exists()


def test_a_record_that_cannot_be_written_is_counted_and_tried_again(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.write_text("a file where the state folder should be")  # not writable even by root
    record = LatchRecord(state / "latched.json")
    assert record.restore() is None  # and at start it could not be read either
    record.keep(frozenset({Fault.OVERSPEED}))
    wait_for(lambda: record.write_errors >= 1)
    assert record.failing
    state.unlink()
    state.mkdir()
    wait_for(lambda: (state / "latched.json").exists(), within_s=5)  # the writer tries again each second
    wait_for(lambda: not record.failing)
    record.close()
    assert LatchRecord(state / "latched.json").restore() == {Fault.OVERSPEED}


def test_an_active_alarm_is_kept_and_restored_and_a_record_without_one_has_none(tmp_path: Path) -> None:
    from carctl.core.signals import AlarmPhase
    from carctl.runtime.latches import LatchRecord, parse_record

    path = tmp_path / "latched.json"
    record = LatchRecord(path)
    assert record.restore() is None
    record.keep(frozenset({Fault.OVERSPEED}), AlarmPhase.TRANSMITTED)
    record.close()
    assert json.loads(path.read_text()) == {"version": 1, "latched": ["overspeed"], "alarm": "transmitted"}
    again = LatchRecord(path)
    assert again.restore() == frozenset({Fault.OVERSPEED}) and again.alarm is AlarmPhase.TRANSMITTED
    again.keep(frozenset(), AlarmPhase.IDLE)
    again.close()
    assert json.loads(path.read_text()) == {"version": 1, "latched": []}  # as before alarms were kept
    for bad in ({"version": 1, "latched": [], "alarm": "voice_connected"}, {"version": 1, "latched": [], "alarm": 3},
                {"version": 1, "latched": [], "alarm": "idle"}, {"version": 1, "latched": [], "other": 1},
                {"version": 1, "latched": [], "alarm_id": "a" * 32},  # an id without its alarm
                {"version": 1, "latched": [], "alarm": "requested", "alarm_id": "A" * 32},
                {"version": 1, "latched": [], "alarm": "requested", "alarm_id": ["a" * 32]},
                {"version": 1, "latched": [], "alarm": "requested", "alarm_id": "a" * 33}):
        with pytest.raises(ValueError):
            parse_record(bad)


def test_the_alarms_id_is_kept_with_it_and_goes_with_its_reset(tmp_path: Path) -> None:
    """Its platform events carry the same id after a restart, so an operator's acknowledgement of it is taken."""
    from carctl.core.signals import AlarmPhase
    from carctl.runtime.latches import LatchRecord

    path = tmp_path / "latched.json"
    record = LatchRecord(path)
    record.restore()
    record.keep(frozenset(), AlarmPhase.REQUESTED, "c" * 32)
    record.close()
    assert json.loads(path.read_text()) == {"version": 1, "latched": [], "alarm": "requested", "alarm_id": "c" * 32}
    again = LatchRecord(path)
    assert again.restore() == frozenset() and (again.alarm, again.alarm_id) == (AlarmPhase.REQUESTED, "c" * 32)
    again.keep(frozenset(), AlarmPhase.IDLE, "c" * 32)  # the reset: no alarm, so no id either
    again.close()
    assert json.loads(path.read_text()) == {"version": 1, "latched": []}
    path.write_text('{"version": 1, "latched": [], "alarm": "transmitted"}')  # written before ids were kept
    older = LatchRecord(path)
    assert older.restore() == frozenset() and (older.alarm, older.alarm_id) == (AlarmPhase.TRANSMITTED, "")
