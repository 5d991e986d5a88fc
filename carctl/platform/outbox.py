"""The durable outbox: every event stays on disk until the broker has acknowledged it.

Rules of this module:
- SQLite in WAL mode with synchronous=FULL: an event is on disk before add() returns, and a power cut or a crash
  loses nothing that was added.
- Each event has a unique id (the consumer dedupes by it) and a sequence number that keeps the order.
- An event leaves the outbox only when acknowledge() is called for it, i.e. after the broker's PUBACK (QoS 1); so
  with the broker down for minutes and the controller restarted in between, everything is sent once the broker is
  back, possibly twice but never lost.
- Daily statistics carry the car's running totals (trips, door cycles, running hours since commissioning), kept in
  the same database and updated in the same transaction as the event is stored, so a report sent twice by the loop
  counts once.
- The same database remembers the ids of accepted commands until they expire, so a restart does not open the door
  to a replay.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT UNIQUE NOT NULL,
    topic TEXT NOT NULL,
    payload TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS totals (
    name TEXT PRIMARY KEY,
    value REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS seen_commands (
    id TEXT PRIMARY KEY,
    expires_at REAL NOT NULL
);
"""

TOTALLED = ("trips", "door_cycles", "running_h")


class Outbox:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(SCHEMA)

    def add(self, topic: str, event: dict[str, Any]) -> str:
        """Store an event; returns its id (the event's own 'id' if it has one)."""
        event_id = str(event.get("id") or uuid.uuid4().hex)
        body = json.dumps({**event, "id": event_id}, separators=(",", ":"))
        self.db.execute("INSERT OR IGNORE INTO events (id, topic, payload) VALUES (?, ?, ?)", (event_id, topic, body))
        return event_id

    def add_statistics(self, topic: str, event: dict[str, Any]) -> str:
        """Store a daily statistics event with the running totals brought up to date by it."""
        event_id = str(event["id"])
        self.db.execute("BEGIN IMMEDIATE")
        try:
            if self.db.execute("SELECT 1 FROM events WHERE id = ?", (event_id,)).fetchone() is None:
                totals = dict(self.db.execute("SELECT name, value FROM totals").fetchall())
                for name in TOTALLED:
                    totals[name] = float(totals.get(name, 0.0)) + float(event.get(name, 0))
                    self.db.execute("INSERT OR REPLACE INTO totals (name, value) VALUES (?, ?)", (name, totals[name]))
                body = {**event, **{f"total_{name}": round(totals[name], 3) for name in TOTALLED}}
                self.db.execute("INSERT INTO events (id, topic, payload) VALUES (?, ?, ?)",
                                (event_id, topic, json.dumps(body, separators=(",", ":"))))
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return event_id

    def totals(self) -> dict[str, float]:
        return {str(name): float(value) for name, value in self.db.execute("SELECT name, value FROM totals")}

    def pending(self, limit: int = 100) -> list[tuple[str, str, str]]:
        """The oldest events not yet acknowledged: (id, topic, payload)."""
        rows = self.db.execute("SELECT id, topic, payload FROM events ORDER BY seq LIMIT ?", (limit,)).fetchall()
        return [(str(r[0]), str(r[1]), str(r[2])) for r in rows]

    def count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM events").fetchone()[0])

    def acknowledge(self, event_id: str) -> None:
        self.db.execute("DELETE FROM events WHERE id = ?", (event_id,))

    def remember_command(self, command_id: str, expires_at: float) -> None:
        self.db.execute("INSERT OR REPLACE INTO seen_commands (id, expires_at) VALUES (?, ?)",
                        (command_id, expires_at))

    def seen_commands(self, now_s: float) -> dict[str, float]:
        self.db.execute("DELETE FROM seen_commands WHERE expires_at <= ?", (now_s,))
        return {str(r[0]): float(r[1]) for r in self.db.execute("SELECT id, expires_at FROM seen_commands")}

    def close(self) -> None:
        self.db.close()
