"""The durable outbox: every event stays on disk until the broker has acknowledged it.

Rules of this module:
- SQLite in WAL mode with synchronous=FULL: an event is on disk before add() returns, and a power cut or a crash
  loses nothing that was added.
- Each event has a unique id (the consumer dedupes by it) and a sequence number that keeps the order.
- An event leaves the outbox only when acknowledge() is called for it, i.e. after the broker's PUBACK (QoS 1); so
  with the broker down for minutes and the controller restarted in between, everything is sent once the broker is
  back, possibly twice but never lost.
- Daily statistics carry the car's running totals (trips, door cycles, running hours since commissioning), kept in
  the same database and updated in the same transaction as the event is stored. A day counts once: the days counted
  are remembered (the last MAX_DAYS_KEPT of them) with their report's id, so a report the loop sends again after the
  broker has taken the first — its `event_stored` answer lost — adds nothing, and neither does a second report of
  the same day.
- The file is the link's own: created 0600 (its events carry resident ids), with secure_delete so that a sent event's
  bytes do not linger in freed pages. One that is not a database, or not this one, is moved aside as
  `<file>.unreadable-<n>` and a new one begun: a corrupt file must not silence the car's link for good.
- The same database remembers the ids of accepted commands until they expire, so a restart does not open the door
  to a replay.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import uuid
from pathlib import Path
from typing import Any

from carctl.atomicfile import aside_name

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
CREATE TABLE IF NOT EXISTS statistics_days (
    day TEXT PRIMARY KEY,
    id TEXT NOT NULL
);
"""
# Each table as the code reads it: a file whose tables lack these columns is not this outbox.
CHECKS = ("SELECT seq, id, topic, payload FROM events LIMIT 0", "SELECT name, value FROM totals LIMIT 0",
          "SELECT id, expires_at FROM seen_commands LIMIT 0", "SELECT day, id FROM statistics_days LIMIT 0")

TOTALLED = ("trips", "door_cycles", "running_h")
MAX_DAYS_KEPT = 1000


class Outbox:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.set_aside: Path | None = None
        try:
            self.db = _open(path)
        except (sqlite3.DatabaseError, OSError):
            self.set_aside = _move_aside(path)
            self.db = _open(path)

    def add(self, topic: str, event: dict[str, Any]) -> str:
        """Store an event; returns its id (the event's own 'id' if it has one)."""
        event_id = str(event.get("id") or uuid.uuid4().hex)
        body = json.dumps({**event, "id": event_id}, separators=(",", ":"))
        self.db.execute("INSERT OR IGNORE INTO events (id, topic, payload) VALUES (?, ?, ?)", (event_id, topic, body))
        return event_id

    def add_statistics(self, topic: str, event: dict[str, Any]) -> str:
        """Store a daily statistics event with the running totals brought up to date by it, once per day."""
        event_id = str(event["id"])
        day = str(event.get("day", ""))
        self.db.execute("BEGIN IMMEDIATE")
        try:
            stored = self.db.execute("SELECT 1 FROM events WHERE id = ?", (event_id,)).fetchone()
            counted = self.db.execute("SELECT id FROM statistics_days WHERE day = ?", (day,)).fetchone()
            if stored is None and (counted is None or counted[0] != event_id):
                totals = {name: float(value) for name, value in self.db.execute("SELECT name, value FROM totals")}
                if counted is None:  # a day not counted yet
                    for name in TOTALLED:
                        totals[name] = totals.get(name, 0.0) + float(event.get(name, 0))
                        self.db.execute("INSERT OR REPLACE INTO totals (name, value) VALUES (?, ?)",
                                        (name, totals[name]))
                    self.db.execute("INSERT INTO statistics_days (day, id) VALUES (?, ?)", (day, event_id))
                    self.db.execute("DELETE FROM statistics_days WHERE day NOT IN (SELECT day FROM statistics_days "
                                    "ORDER BY day DESC LIMIT ?)", (MAX_DAYS_KEPT,))
                body = {**event, **{f"total_{name}": round(totals.get(name, 0.0), 3) for name in TOTALLED}}
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


def _open(path: Path) -> sqlite3.Connection:
    """The outbox database, created 0600 (SQLite gives its WAL and shared-memory files the database's mode);
    sqlite3.DatabaseError if the file is not a database or not this outbox."""
    for name in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        _own_regular_file(name, create=name == path)
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA secure_delete=ON")
        if db.execute("PRAGMA quick_check").fetchone() != ("ok",):
            raise sqlite3.DatabaseError("the database fails its integrity check")
        db.executescript(SCHEMA)
        for check in CHECKS:
            db.execute(check)
        # Only this outbox's tables: a view in a table's place or a trigger would make every store fail, or run
        # whatever query it holds on each event, and the file would still pass every check above.
        extra = db.execute("SELECT type, name FROM sqlite_master WHERE type IN ('view', 'trigger')").fetchone()
        if extra is not None:
            raise sqlite3.DatabaseError(f"the database holds a {extra[0]} ({extra[1]!r:.40}) this outbox never made")
    except sqlite3.DatabaseError:
        db.close()
        raise
    return db


def _own_regular_file(path: Path, create: bool) -> None:
    """The database (or its WAL, its shared memory) as a regular file of mode 0600; a FIFO, a folder or a link in
    its place is a DatabaseError (SQLite would block on a FIFO, or fail on every write)."""
    flags = os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | (os.O_CREAT if create else 0)
    try:
        descriptor = os.open(path, flags, 0o600)
    except FileNotFoundError:
        return
    except OSError as error:
        raise sqlite3.DatabaseError(f"{path}: {error.strerror}") from None
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise sqlite3.DatabaseError(f"{path} is not a regular file")
        os.fchmod(descriptor, 0o600)  # also a WAL left 0644 by an older version: it holds resident ids
    finally:
        os.close(descriptor)


def _move_aside(path: Path) -> Path:
    """Keep an unusable file (and its WAL and shared memory) for inspection, out of the way of a new outbox."""
    aside = aside_name(path)
    if os.path.lexists(path):
        os.replace(path, aside)
    for suffix in ("-wal", "-shm"):
        companion = path.with_name(path.name + suffix)
        if os.path.lexists(companion):
            os.replace(companion, aside.with_name(aside.name + suffix))
    return aside
