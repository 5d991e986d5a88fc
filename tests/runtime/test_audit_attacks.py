"""The maintenance record against what a car's life does to it: a power cut at the wrong moment, a board clock that is
wrong, and maintenance actions that never reach it (carctl/runtime/audit_log.py, audit_chain.py, audit_actions.py)."""

from __future__ import annotations

import json
import os
import types
from pathlib import Path

import pytest

from carctl.core.signals import Event, EventKind, Inputs, Mode
from carctl.protocol.sense import SwitchLevels
from carctl.runtime import audit_log
from carctl.runtime.audit_actions import seen_in_cycle
from carctl.runtime.audit_chain import digest, verify
from carctl.runtime.audit_log import AuditLog

from tests.runtime.test_audit_log import files_of


def test_a_power_cut_in_the_first_write_after_a_rotation_does_not_restart_the_chain(tmp_path: Path) -> None:
    """The file reached runtime.audit_log_max_bytes: the writer renamed it to audit.log.1 and began audit.log with the
    next record, and the power went in the middle of that first write. At the next start audit.log holds only the torn
    line: _recover() cuts it and, finding no whole record in audit.log, begins a new chain at sequence 1 from the
    genesis hash instead of going on from the last record of audit.log.1 (which it does for an empty audit.log). The
    maintenance record then fails `carctl audit verify` for good ("record 1 again"): a power cut reads as tampering."""
    path = tmp_path / "audit.log"
    log = AuditLog(path, 2000)
    n = 0
    while log.rotations == 0:
        log.record("fault_reset", "car_key", "fault reset key", {"n": n})
        log._write_pending()  # as the writer thread does, one line at a time
        n += 1
    log.close()
    rotated = Path(str(path) + audit_log.ROTATED_SUFFIX)
    last_rotated = json.loads(rotated.read_bytes().splitlines()[-1])
    assert verify(files_of(path)).intact
    path.write_bytes(b'{"action":"fault_reset","details":{"n":')  # the first record after the rename, cut short
    log = AuditLog(path, 2000)
    assert log.recovery is not None and log.recovery.action == "torn_tail"
    log.record(log.recovery.action, "controller", "audit log", log.recovery.details)
    log.close()
    first = json.loads(path.read_bytes().splitlines()[0])
    verdict = verify(files_of(path))
    assert verdict.intact, verdict.problem
    # The chain goes on from audit.log.1, not from record 1. The torn write was record last+1's, which the platform
    # may already hold (the test below): its number is declared unwritten and not used again.
    assert first["prev"] == digest(rotated.read_bytes().splitlines()[-1]), first
    assert first["seq"] > last_rotated["seq"] and first["details"]["unwritten"] == [last_rotated["seq"] + 1,
                                                                                     first["seq"] - 1], first


def test_a_record_made_while_the_board_clock_is_far_ahead_is_still_a_record(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The board has no real-time clock (docs/audit.md): a wrong NTP answer, or a clock set by hand, can put it past
    2106. make_record() promises a record that parse_record() reads back "so a record can never look like tampering",
    but a `t` beyond MAX_T is written as it is: the line is "not a record" to `carctl audit verify` (tampered), and
    at the next start the writer sets the whole log aside because its last line is not a record."""
    path = tmp_path / "audit.log"
    log = AuditLog(path)
    log.record("fault_reset", "car_key", "fault reset key", {"n": 0})
    monkeypatch.setattr(audit_log, "time", types.SimpleNamespace(time=lambda: 2.0**32 + 3600.0))
    log.record("fault_reset", "car_key", "fault reset key", {"n": 1})
    log.close()
    verdict = verify(files_of(path))
    assert verdict.intact, verdict.problem
    again = AuditLog(path)
    again.close()
    assert again.recovery is None, again.recovery


@pytest.mark.parametrize(("event", "action"), [
    (Event(EventKind.LEARNING, 900, -1, "done:0.0000,2.9025,5.8025,8.7025,11.5975,14.4975"), "learning_run"),
    (Event(EventKind.BRAKE_TEST, 900, 0, "slipped:12"), "brake_test"),
])
def test_a_learning_run_and_a_brake_test_reach_the_maintenance_record(event: Event, action: str) -> None:
    """Both now exist in the core, but the actions the loop records from a cycle's events are only mode changes
    (audit_actions.seen_in_cycle): a learning run that replaced the landing table the car levels by, and a brake test
    that found the brake slipping, leave no trace in the record that "cannot be quietly edited" (the actions
    learning_run and brake_test are in ACTIONS, with "the run itself is still to come")."""
    off = SwitchLevels()
    actions = seen_in_cycle(Inputs(tick=900), (event,), frozenset(), off, off, (False, False), mode=Mode.NORMAL)
    assert action in [name for name, _, _, _ in actions], actions


def test_records_the_platform_already_holds_are_not_numbered_again_after_a_power_cut(tmp_path: Path) -> None:
    """The loop sends every record to the platform as it chains it (ControlLoop.record_action), before the writer
    thread has appended it to the card; up to MAX_PENDING wait for a slow card. The power goes with two records sent
    and not yet written. At the next start the writer continues from the last record on the card, so the next
    records take the same sequence numbers with other contents: the platform holds records 2 and 3 with one hash
    each, the card another. docs/audit.md makes exactly that comparison the test for tampering ("a different hash
    for the same seq"): a power cut reads as a rewrite of the car's record."""
    path = tmp_path / "audit.log"
    log = AuditLog(path)
    log.record("fault_reset", "car_key", "fault reset key", {"n": 0})
    log.close()
    log = AuditLog(path)
    log._stopping = True  # the card stands still: its writer thread writes nothing more
    log._dirty.set()
    log._writer.join()
    sent = [written for n in (1, 2) for written in log.record("fault_reset", "car_key", "fault reset key", {"n": n})]
    assert [written.record["seq"] for written in sent] == [2, 3]  # the platform has them; then the power goes
    assert len(path.read_bytes().splitlines()) == 1
    os.close(log._fd)
    after = AuditLog(path)
    made = [written for change in ("on", "off") for written in after.record(
        "mode_switch", "car_key", "car-top inspection switch", {"switch": "inspection", "to": change})]
    after.close()
    platform = {written.record["seq"]: written.hash for written in sent}
    clashes = [(w.record["seq"], w.hash) for w in made if platform.get(w.record["seq"], w.hash) != w.hash]
    assert not clashes, clashes
