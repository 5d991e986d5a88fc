"""The durable outbox: nothing is lost across restarts, order is kept, acknowledged events leave."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from carctl.platform.outbox import Outbox


def test_events_survive_a_restart_in_order_until_acknowledged(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "outbox.db")
    ids = [box.add("carctl/xihan/b7/events", {"kind": "fault_raised", "n": n}) for n in range(5)]
    box.close()
    again = Outbox(tmp_path / "outbox.db")
    pending = again.pending()
    assert [row[0] for row in pending] == ids
    assert [json.loads(row[2])["n"] for row in pending] == list(range(5))
    again.acknowledge(ids[0])
    again.acknowledge(ids[2])
    assert [row[0] for row in again.pending()] == [ids[1], ids[3], ids[4]]
    assert again.count() == 3


def test_an_event_keeps_its_own_id_and_is_stored_once(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "outbox.db")
    assert box.add("t", {"id": "ev-7", "kind": "x"}) == "ev-7"
    assert box.add("t", {"id": "ev-7", "kind": "x"}) == "ev-7"
    assert box.count() == 1


def test_a_killed_writer_loses_nothing_it_added(tmp_path: Path) -> None:
    """A process adds events and is killed without closing anything: every event is there afterwards."""
    script = (f"import os, sys; sys.path.insert(0, {str(Path(__file__).resolve().parent.parent.parent)!r}); "
              f"from carctl.platform.outbox import Outbox; box = Outbox(__import__('pathlib').Path("
              f"{str(tmp_path / 'outbox.db')!r}));\n"
              f"[box.add('t', {{'n': n}}) for n in range(200)]\nos.kill(os.getpid(), 9)")
    result = subprocess.run([sys.executable, "-c", script], timeout=60)
    assert result.returncode == -9
    assert Outbox(tmp_path / "outbox.db").count() == 200


def test_seen_commands_outlive_a_restart_until_they_expire(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "outbox.db")
    box.remember_command("cmd-1", 1000.0)
    box.remember_command("cmd-2", 2000.0)
    box.close()
    assert Outbox(tmp_path / "outbox.db").seen_commands(1500.0) == {"cmd-2": 2000.0}


def day_report(event_id: str, day: str = "2026-12-01", trips: int = 100) -> dict[str, object]:
    return {"id": event_id, "category": "statistics", "kind": "daily_statistics", "day": day, "trips": trips,
            "door_cycles": 120, "faults_raised": 0, "running_s": 3600.0, "running_h": 1.0}


def test_a_day_counts_once_even_after_its_report_has_left_the_outbox(tmp_path: Path) -> None:
    """The loop resends a report until the link answers; with that answer lost after the broker took the report,
    the resend once added the day to the totals again (a flood of junk on the loop's socket made it 38 times)."""
    box = Outbox(tmp_path / "outbox.db")
    box.add_statistics("t", day_report("r1"))
    box.acknowledge("r1")  # the broker has it: it leaves the outbox
    box.add_statistics("t", day_report("r1"))  # the loop sends it again
    box.add_statistics("t", day_report("r2"))  # another report of the same day
    assert box.totals() == {"trips": 100.0, "door_cycles": 120.0, "running_h": 1.0}
    pending = [json.loads(payload) for _, _, payload in box.pending()]
    assert [event["id"] for event in pending] == ["r2"] and pending[0]["total_trips"] == 100.0
    box.add_statistics("t", day_report("r3", day="2026-12-02", trips=50))
    assert box.totals()["trips"] == 150.0
    box.close()


def test_a_file_that_is_not_the_outbox_is_set_aside_and_a_new_one_begun(tmp_path: Path) -> None:
    import os
    import sqlite3

    for name, make in (("zeros.db", lambda p: p.write_bytes(b"\0" * 8192)),
                       ("random.db", lambda p: p.write_bytes(os.urandom(8192))),
                       ("folder.db", lambda p: p.mkdir()),
                       ("other.db", lambda p: sqlite3.connect(p).executescript(
                           "CREATE TABLE events (x INTEGER); CREATE TABLE totals (y TEXT);"))):
        path = tmp_path / name
        make(path)
        box = Outbox(path)
        try:
            assert box.set_aside == tmp_path / f"{name}.unreadable-1" and box.set_aside.exists()
            box.add("t", {"id": "e1"})
            assert box.count() == 1
        finally:
            box.close()


def test_the_outbox_is_the_links_own(tmp_path: Path) -> None:
    """Its events carry resident ids: no other user may read it, nor its WAL."""
    box = Outbox(tmp_path / "outbox.db")
    box.add("t", {"id": "e1", "resident": "r-501"})
    for name in ("outbox.db", "outbox.db-wal", "outbox.db-shm"):
        assert (tmp_path / name).stat().st_mode & 0o077 == 0, name
    assert box.db.execute("PRAGMA secure_delete").fetchone() == (1,)
    box.close()


def test_an_outbox_with_a_view_or_a_trigger_or_a_fifo_for_its_log_is_set_aside(tmp_path: Path) -> None:
    """Built to pass the column checks, such a file made every store fail for good (or ran the trigger's query on each
    event): it is not this outbox."""
    import os
    import sqlite3

    for name, schema in (("view.db", "CREATE TABLE t (seq, id, topic, payload); CREATE VIEW events AS SELECT * FROM t;"),
                         ("trigger.db", "CREATE TABLE events (seq INTEGER PRIMARY KEY, id TEXT, topic TEXT, payload "
                                        "TEXT); CREATE TRIGGER no BEFORE INSERT ON events BEGIN SELECT RAISE(ABORT, "
                                        "'no'); END;")):
        path = tmp_path / name
        sqlite3.connect(path).executescript(schema)
        box = Outbox(path)
        try:
            assert box.set_aside is not None
            box.add("t", {"id": "e1"})
            assert box.count() == 1
        finally:
            box.close()
    Outbox(tmp_path / "fifo.db").close()
    (tmp_path / "fifo.db-wal").unlink(missing_ok=True)
    os.mkfifo(tmp_path / "fifo.db-wal")
    box = Outbox(tmp_path / "fifo.db")
    try:
        assert box.set_aside is not None
    finally:
        box.close()


def test_a_log_left_open_to_others_by_an_older_version_is_closed_to_them(tmp_path: Path) -> None:
    import os

    Outbox(tmp_path / "outbox.db").close()
    (tmp_path / "outbox.db-wal").write_bytes(b"")
    for name in ("outbox.db", "outbox.db-wal"):
        os.chmod(tmp_path / name, 0o644)
    box = Outbox(tmp_path / "outbox.db")
    try:
        for name in ("outbox.db", "outbox.db-wal"):
            assert (tmp_path / name).stat().st_mode & 0o077 == 0, name
    finally:
        box.close()
