"""Senders for the side channels' tests: a datagram from another process of the same user, or of another user."""

from __future__ import annotations

import os
import socket
from pathlib import Path

REFUSED = 13  # the child's exit code when the kernel refused the datagram (EACCES)


def send_from_another_process(path: Path, datagram: bytes, uid: int | None = None) -> int:
    """Send one datagram to ``path`` from a forked child, as user ``uid`` when given (nobody: 65534). The child's
    exit code: 0 sent, REFUSED when the kernel refused it, 1 for anything else."""
    child = os.fork()
    if child == 0:
        code = 0
        try:
            if uid is not None:
                os.setuid(uid)
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender:
                sender.sendto(datagram, str(path))
        except PermissionError:
            code = REFUSED
        except BaseException:  # noqa: BLE001 - anything else is a test failure, reported by the code
            code = 1
        os._exit(code)
    _, status = os.waitpid(child, 0)
    return os.waitstatus_to_exitcode(status)
