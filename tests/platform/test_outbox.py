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
