"""The side channels between the firmware's own processes: Unix datagram sockets in a private directory.

Rules of this module:
- Authentication is the file system: every socket lives in `runtime.socket_dir`, a directory that only the
  firmware's user may enter (mode 0700, owned by that user, not a symbolic link), checked by every process before it
  binds or sends. A process of another user cannot reach a socket inside it, so it can neither stop the loop nor
  forge a mode change, a recognition or an event (docs/security.md). Root is out of scope: it can do anything.
- Each receiver binds its own socket, accepts only its own message types (a recognition on the platform's socket is
  refused) and, where it knows who its sender must be, only datagrams from that process: the kernel attaches the
  sender's pid and uid to every datagram (SO_PASSCRED), which the sender cannot forge. The loop takes the platform
  socket's datagrams only from the platform link process it started, and the face socket's only from its face worker;
  the link process takes its socket's only from the loop that started it. So a process of the firmware's own user —
  a compromised link process decoding hostile photos, say — cannot speak for the face worker or the loop.
- Nothing here waits, and nothing here can be made slow: sockets are non-blocking; a receiver takes at most
  `max_per_take` datagrams of at most `max_bytes` per call, parsed within `max_values` values (the loop's receivers
  take a few small messages per cycle, so a flood costs the loop microseconds, not the cycle), and a sender whose
  receiver is absent or full drops the datagram and counts it.
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
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from carctl import safejson
from carctl.protocol.loopback import SENT_KEY

# One socket per receiver; the name says who reads it and from whom.
LOOP_FROM_PLATFORM = "loop-platform.sock"
LOOP_FROM_FACE = "loop-face.sock"
AGENT_FROM_LOOP = "agent.sock"
LOOP_FROM_MODEM = "loop-modem.sock"
MODEM_FROM_LOOP = "modem.sock"
# The service tool asks the loop for its live state here; the loop sends it to service-<pid>.sock (service_feed.py).
LOOP_FROM_SERVICE = "loop-service.sock"
FIRMWARE_LOCK = "carctl-run.lock"
# The environment variable through which the process table tells a part the pid of the loop that started it.
LOOP_PID_VARIABLE = "CARCTL_LOOP_PID"

MAX_DATAGRAM_BYTES = 16384  # a state or an event is under 2 KiB; an audit event, with its record's line, under 10 KiB
MAX_DEPTH = 6
RECEIVE_BUFFER_BYTES = 262144
_CREDENTIALS = struct.Struct("3i")  # struct ucred: pid, uid, gid

# Who may send to an inbox, from the pid and uid the kernel attached to the datagram.
SenderCheck = Callable[[int, int], bool]


def same_user(pid: int, uid: int) -> bool:
    """Any process of the firmware's user (the directory's permission already says as much)."""
    return uid == os.geteuid()


def only_process(expected_pid: Callable[[], int | None]) -> SenderCheck:
    """Only the process whose pid ``expected_pid()`` gives now (None: nobody, e.g. while it is being restarted)."""
    def check(pid: int, uid: int) -> bool:
        return uid == os.geteuid() and pid == expected_pid()

    return check


class SocketDirError(Exception):
    """The socket directory is missing, not a directory, or open to other users; the message names it."""


class InUseError(OSError):
    """Another process holds the lock of a socket (or of the firmware); the message names its pid."""


def hold_lock(path: Path, what: str) -> int:
    """An exclusive lock on ``path`` (created 0600), held until the returned descriptor is closed; InUseError naming
    the holder's pid when another process has it, OSError when the lock file cannot be one (a folder, a FIFO, a
    link). Not inherited by child processes."""
    try:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o600)
    except OSError as error:
        raise OSError(error.errno, f"lock file {path} cannot be used ({error.strerror})") from None
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise OSError(f"lock file {path} is not a regular file")
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(descriptor, 16, 0).decode("ascii", "replace").strip()
        os.close(descriptor)
        # Whatever the holder wrote, only digits are repeated (no terminal escapes through a message).
        raise InUseError(f"{what} is in use by another process (pid {holder if holder.isdigit() else 'unknown'})") \
            from None
    except BaseException:
        os.close(descriptor)
        raise
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

    def __init__(self, directory: Path, name: str, max_per_take: int = 64, max_bytes: int = MAX_DATAGRAM_BYTES,
                 max_values: int = 2000, sender: SenderCheck = same_user) -> None:
        self.path = directory / name
        self.max_per_take = max_per_take
        self.max_bytes = max_bytes
        self.max_values = max_values
        self.sender = sender
        self.received = 0
        self.refused: collections.Counter[str] = collections.Counter()
        self.lock = hold_lock(directory / f"{name}.lock", f"socket {self.path}")
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            _remove_stale_socket(self.path)
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER_BYTES)
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
            self.socket.bind(str(self.path))
            os.chmod(self.path, 0o600)
            self.socket.setblocking(False)
        except OSError:
            self.socket.close()
            os.close(self.lock)
            raise
        self._ancillary_bytes = socket.CMSG_SPACE(_CREDENTIALS.size)

    def refuse(self, reason: str) -> None:
        """Count a message refused for ``reason`` (a short, fixed phrase: the counters stay few)."""
        self.refused[reason] += 1

    def take(self) -> list[Any]:
        """The JSON values that arrived since the last call from an allowed sender (at most max_per_take)."""
        return [value for _, value in self.take_from()]

    def take_from(self) -> list[tuple[int, Any]]:
        """As take(), each value with the pid of the process that sent it (the kernel's word, not the sender's)."""
        values = []
        for _ in range(self.max_per_take):
            try:
                datagram, ancillary, _, _ = self.socket.recvmsg(self.max_bytes + 1, self._ancillary_bytes)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                self.refuse("receive error")
                break
            pid = self._allowed_sender(ancillary)
            if pid is None:
                self.refuse("sender not allowed")
                continue
            if len(datagram) > self.max_bytes:
                self.refuse("oversized")
                continue
            try:
                values.append((pid, safejson.loads(datagram, max_bytes=self.max_bytes, max_depth=MAX_DEPTH,
                                                   max_values=self.max_values)))
            except safejson.JsonRefused:
                self.refuse("not acceptable JSON")
                continue
            self.received += 1
        return values

    def _allowed_sender(self, ancillary: list[tuple[int, int, bytes]]) -> int | None:
        """The sender's pid when it may send here, else None."""
        for level, kind, data in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS and len(data) >= _CREDENTIALS.size:
                pid, uid, _ = _CREDENTIALS.unpack_from(data)
                return pid if self.sender(pid, uid) else None
        return None  # the kernel always attaches them with SO_PASSCRED: without them, do not trust the datagram

    def refused_total(self) -> int:
        return sum(self.refused.values())

    def fileno(self) -> int:
        """The socket, for select(): a process that waits for its datagrams wakes when one arrives."""
        return self.socket.fileno()

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
        """True when the datagram was handed to the receiver's socket. The message goes stamped with this process's
        monotonic clock (protocol/loopback.py SENT_KEY), so the receiver can tell how long it waited."""
        try:
            data = safejson.dumps({**message, SENT_KEY: round(time.monotonic(), 4)})
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
