"""The side channels between the firmware's own processes: Unix datagram sockets in a private directory.

Rules of this module:
- Authentication is the file system: every socket lives in `runtime.socket_dir`, a directory that only the
  firmware's user may enter (mode 0700, owned by that user, not a symbolic link), checked by every process before it
  binds or sends. A process of another user cannot reach a socket inside it, so it can neither stop the loop nor
  forge a mode change, a recognition or an event (docs/security.md). Root is out of scope: it can do anything.
- Each receiver binds its own socket and accepts only its own message types (a recognition on the platform's socket
  is refused), so one compromised helper process cannot speak for another.
- Nothing here waits: sockets are non-blocking; a receiver takes at most `max_per_take` datagrams per call, and a
  sender whose receiver is absent or full drops the datagram and counts it.
- Received bytes are hostile until parsed: an oversized datagram, bad UTF-8 or JSON past the limits of
  carctl.safejson is refused and counted by reason, never raised.
- A socket belongs to whoever holds its lock (`<name>.lock`, flock): a second receiver — a second `carctl run` with
  the same directory, a link process started by hand — is refused instead of quietly taking the socket over from the
  running one. The firmware as a whole holds `carctl-run.lock` the same way.
"""

from __future__ import annotations

import collections
import fcntl
import os
import socket
import stat
from pathlib import Path
from typing import Any

from carctl import safejson

# One socket per receiver; the name says who reads it and from whom.
LOOP_FROM_PLATFORM = "loop-platform.sock"
LOOP_FROM_FACE = "loop-face.sock"
AGENT_FROM_LOOP = "agent.sock"
FIRMWARE_LOCK = "carctl-run.lock"

MAX_DATAGRAM_BYTES = 16384  # the largest message (a state or an event) is well under 2 KiB
MAX_DEPTH = 6
RECEIVE_BUFFER_BYTES = 262144


class SocketDirError(Exception):
    """The socket directory is missing, not a directory, or open to other users; the message names it."""


class InUseError(OSError):
    """Another process holds the lock of a socket (or of the firmware); the message names its pid."""


def hold_lock(path: Path, what: str) -> int:
    """An exclusive lock on ``path`` (created 0600), held until the returned descriptor is closed; InUseError naming
    the holder's pid when another process has it. Not inherited by child processes."""
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(descriptor, 16, 0).decode("ascii", "replace").strip() or "unknown"
        os.close(descriptor)
        raise InUseError(f"{what} is in use by another process (pid {holder})") from None
    os.ftruncate(descriptor, 0)
    os.pwrite(descriptor, str(os.getpid()).encode(), 0)
    return descriptor


def prepare_socket_dir(path: Path, create: bool = True) -> Path:
    """Check (and, when ``create``, make) the private socket directory; SocketDirError naming what is wrong."""
    if create:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass
        except OSError as error:
            raise SocketDirError(f"{path}: cannot create the socket directory ({error.strerror})") from None
    try:
        status = os.lstat(path)
    except OSError as error:
        raise SocketDirError(f"{path}: {error.strerror}") from None
    if not stat.S_ISDIR(status.st_mode):
        raise SocketDirError(f"{path} is not a directory (a symbolic link or a file is refused)")
    if status.st_uid != os.geteuid():
        raise SocketDirError(f"{path} belongs to user {status.st_uid}, not to the firmware's user {os.geteuid()}")
    if stat.S_IMODE(status.st_mode) & 0o077:
        raise SocketDirError(f"{path} is open to other users (mode {stat.S_IMODE(status.st_mode):o}); it must be 700")
    return path


class Inbox:
    """One receiver's socket: datagrams in, JSON values out; everything refused is counted by its reason."""

    def __init__(self, directory: Path, name: str, max_per_take: int = 64) -> None:
        self.path = directory / name
        self.max_per_take = max_per_take
        self.received = 0
        self.refused: collections.Counter[str] = collections.Counter()
        self.lock = hold_lock(directory / f"{name}.lock", f"socket {self.path}")
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            _remove_stale_socket(self.path)
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER_BYTES)
            self.socket.bind(str(self.path))
            os.chmod(self.path, 0o600)
            self.socket.setblocking(False)
        except OSError:
            self.socket.close()
            os.close(self.lock)
            raise

    def refuse(self, reason: str) -> None:
        """Count a message refused for ``reason`` (a short, fixed phrase: the counters stay few)."""
        self.refused[reason] += 1

    def take(self) -> list[Any]:
        """The JSON values that arrived since the last call (at most max_per_take)."""
        values = []
        for _ in range(self.max_per_take):
            try:
                datagram = self.socket.recv(MAX_DATAGRAM_BYTES + 1)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                self.refuse("receive error")
                break
            if len(datagram) > MAX_DATAGRAM_BYTES:
                self.refuse("oversized")
                continue
            try:
                values.append(safejson.loads(datagram, max_bytes=MAX_DATAGRAM_BYTES, max_depth=MAX_DEPTH,
                                             max_values=2000))
            except safejson.JsonRefused:
                self.refuse("not acceptable JSON")
                continue
            self.received += 1
        return values

    def refused_total(self) -> int:
        return sum(self.refused.values())

    def close(self) -> None:
        self.socket.close()
        try:
            self.path.unlink()
        except OSError:
            pass
        os.close(self.lock)  # last: the socket is gone before another receiver may take the name


class Sender:
    """Sends datagrams to one receiver's socket; never waits, counts what could not be delivered."""

    def __init__(self, directory: Path, name: str) -> None:
        self.path = str(directory / name)
        self.dropped = 0
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.socket.setblocking(False)

    def send(self, message: dict[str, Any]) -> bool:
        """True when the datagram was handed to the receiver's socket."""
        try:
            data = safejson.dumps(message)
        except (TypeError, ValueError):
            self.dropped += 1
            return False
        if len(data) > MAX_DATAGRAM_BYTES:
            self.dropped += 1
            return False
        try:
            self.socket.sendto(data, self.path)
        except OSError:  # no receiver (yet), or its buffer is full
            self.dropped += 1
            return False
        return True

    def close(self) -> None:
        self.socket.close()


def _remove_stale_socket(path: Path) -> None:
    """A socket file left by a process that died is removed before binding; anything else at the path is not."""
    try:
        status = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(status.st_mode):
        raise OSError(f"{path} exists and is not a socket")
    path.unlink()
