"""The fault log on disk: records of real faults from the simulated car, a ring that survives restarts, an
unreadable file set aside rather than lost, and `carctl faults` to read it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from carctl.core.signals import EventKind
from carctl.core.supervisor import Fault
from carctl.runtime import fault_log
from carctl.runtime.fault_log import FaultLog, read, read_log, record_of
from sim.procedures import SimulatedCar

ROOT = Path(__file__).resolve().parent.parent.parent


def faulted_car() -> SimulatedCar:
    """A car that had a drive fault mid-run, then the maintenance reset."""
    car = SimulatedCar()
    car.press_car_call(4)
    car.wait_until(lambda: car.shaft.position_m > 3.0, within_s=30, what="moving up")
    car.inject("drive_fault")
    car.wait_fault(Fault.DRIVE_FAULT, within_s=1.0)
    car.clear("drive_fault")
    car.reset_faults()
    car.wait_until(lambda: Fault.DRIVE_FAULT not in car.faults, within_s=5, what="fault cleared")
    return car


def test_fault_records_say_what_the_car_was_doing_and_survive_a_restart(tmp_path: Path) -> None:
    car = faulted_car()
    path = tmp_path / "faults.json"
    log = FaultLog(path)
    inputs = car.sim._previous_inputs
    assert inputs is not None
    fault_events = tuple(e for e in car.events if e.kind in (EventKind.FAULT_RAISED, EventKind.FAULT_CLEARED))
    assert [e.kind for e in fault_events] == [EventKind.FAULT_RAISED, EventKind.FAULT_CLEARED]
    log.add(tuple(car.events), car.sim.state, inputs)  # other events are not fault records
    log.close()
    again = FaultLog(path)
    try:
        records = again.records()
        assert [(r["event"], r["fault"], r["code"]) for r in records] == [("raised", "drive_fault", 21),
                                                                          ("cleared", "drive_fault", 21)]
        assert records[0]["level"] == 4 and records[0]["mode"] == "normal" and "drive" in records[0]["meaning"]
        assert {"position_m", "speed_m_s", "load_kg", "door", "phase", "landing", "t", "tick"} <= set(records[0])
    finally:
        again.close()
    assert not list(tmp_path.glob(".faults.json.*"))  # no temporary file left behind


def test_the_ring_keeps_the_newest_records(tmp_path: Path) -> None:
    car = faulted_car()
    inputs = car.sim._previous_inputs
    assert inputs is not None
    raised = tuple(e for e in car.events if e.kind is EventKind.FAULT_RAISED)
    log = FaultLog(tmp_path / "faults.json", capacity=10)
    for _ in range(25):
        log.add(raised, car.sim.state, inputs)
    log.close()
    assert len(read(tmp_path / "faults.json")) == 10


def test_an_unreadable_log_is_set_aside_and_a_new_one_begun(tmp_path: Path) -> None:
    path = tmp_path / "faults.json"
    path.write_bytes(b'{"version": 1, "records": [{"event": "rais')  # cut off by a power failure before rename
    log = FaultLog(path)
    try:
        assert log.records() == []
        assert log.set_aside == tmp_path / "faults.json.unreadable-1"
        assert log.set_aside.read_bytes().startswith(b'{"version": 1')
    finally:
        log.close()
    assert read(path) == []


def test_carctl_faults_shows_the_log(tmp_path: Path) -> None:
    car = faulted_car()
    inputs = car.sim._previous_inputs
    assert inputs is not None
    log = FaultLog(tmp_path / "faults.json")
    log.add(tuple(car.events), car.sim.state, inputs)
    log.close()
    shown = subprocess.run([sys.executable, "-m", "carctl.cli", "faults", "--log", str(tmp_path / "faults.json")],
                           capture_output=True, text=True, cwd=ROOT, check=False)
    assert shown.returncode == 0, shown.stderr
    assert "raised" in shown.stdout and "drive_fault" in shown.stdout and " 21 " in shown.stdout
    assert "drive code " in shown.stdout  # the drive's own code, which says what tripped it (docs/fault-remedies.md)
    as_json = subprocess.run([sys.executable, "-m", "carctl.cli", "faults", "--log", str(tmp_path / "faults.json"),
                              "--json", "--last", "1"], capture_output=True, text=True, cwd=ROOT, check=False)
    assert [json.loads(line)["event"] for line in as_json.stdout.splitlines()] == ["cleared"]
    missing = subprocess.run([sys.executable, "-m", "carctl.cli", "faults", "--log", str(tmp_path / "none.json")],
                             capture_output=True, text=True, cwd=ROOT, check=False)
    assert missing.returncode == 2 and "no fault log" in missing.stderr


def test_a_drive_fault_record_carries_the_drives_own_code() -> None:
    car = SimulatedCar()
    car.inject("power_loss")
    car.wait_fault(Fault.DRIVE_FAULT, within_s=0.2)
    raised = next(e for e in car.events if e.kind is EventKind.FAULT_RAISED)
    inputs = car.sim._previous_inputs
    assert inputs is not None and inputs.drive_fault_code == 0x41
    record = record_of(raised, car.sim.state, inputs, 0.0)
    assert record is not None and record["fault"] == "drive_fault" and record["drive_code"] == 0x41


GOOD_RECORD = {"t": 1712345678.5, "tick": 10, "event": "raised", "fault": "drive_fault", "code": 21, "level": 4,
               "mode": "normal", "phase": "running", "landing": 2, "position_m": 5.1, "speed_m_s": 0.9,
               "load_kg": 75.0, "door": "closed"}


def test_malformed_records_are_counted_and_the_first_named(tmp_path: Path) -> None:
    path = tmp_path / "faults.json"
    path.write_text(json.dumps({"version": 1, "records": [
        GOOD_RECORD, {**GOOD_RECORD, "t": [1]}, "not a record", {**GOOD_RECORD, "later_key": [1, 2]},
        {key: value for key, value in GOOD_RECORD.items() if key != "door"}]}))
    contents = read_log(path)
    assert len(contents.records) == 2  # a key a later version added does not make a record malformed
    assert contents.malformed == 3 and contents.first_problem == "records[1].t: must be a number (got list)"
    assert read(path) == contents.records


def test_a_log_too_large_or_too_many_values_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "faults.json"
    path.write_text(json.dumps({"version": 1, "records": [GOOD_RECORD] * 20}))
    monkeypatch.setattr(fault_log, "MAX_VALUES", 100)
    with pytest.raises(ValueError, match="more than 100 values"):
        read_log(path)
    monkeypatch.setattr(fault_log, "MAX_FILE_BYTES", 1000)
    with pytest.raises(ValueError, match="larger than 1000 bytes"):  # refused before it is read
        read_log(path)


def test_a_log_with_malformed_records_is_set_aside_and_its_good_records_kept(tmp_path: Path) -> None:
    path = tmp_path / "faults.json"
    path.write_text(json.dumps({"version": 1, "records": [GOOD_RECORD, {**GOOD_RECORD, "fault": 3}]}))
    log = FaultLog(path)
    try:
        assert log.records() == [GOOD_RECORD]
        assert log.set_aside == tmp_path / "faults.json.unreadable-1"
    finally:
        log.close()
    assert read_log(path).records == [GOOD_RECORD] and read_log(path).malformed == 0


@pytest.mark.parametrize("version", [True, 1.0, "1", None, 2])
def test_a_log_whose_version_is_not_the_whole_number_1_is_refused(tmp_path: Path, version: object) -> None:
    # True == 1 and 1.0 == 1 in Python; neither is what the firmware writes.
    path = tmp_path / "faults.json"
    path.write_text(json.dumps({"version": version, "records": []}))
    with pytest.raises(ValueError, match="not a carctl fault log"):
        read_log(path)


def test_a_fifo_or_a_device_is_refused_without_waiting(tmp_path: Path) -> None:
    fifo = tmp_path / "faults.json"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match="is not a regular file \\(a FIFO\\)"):
        read_log(fifo)
    with pytest.raises(ValueError, match="is not a regular file \\(a device\\)"):
        read_log(Path("/dev/zero"))


def test_the_firmware_reads_a_log_no_larger_than_its_capacity(tmp_path: Path) -> None:
    """A crafted log of four million empty records once delayed the firmware's start by 5.6 s and 634 MB: the
    firmware reads what its own capacity could have written, and sets anything larger aside."""
    path = tmp_path / "faults.json"
    path.write_text('{"version":1,"records":[' + ",".join(["{}"] * 100_000) + "]}")
    log = FaultLog(path, capacity=10)
    try:
        assert log.set_aside is not None and log.records() == []
    finally:
        log.close()
