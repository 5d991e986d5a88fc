"""Recognition events from the face worker, received without ever blocking the loop.

The worker sends JSON datagrams to a loopback UDP port; each cycle the loop takes whatever has arrived. A malformed
datagram is counted and dropped. If the worker is slow, hung or dead, nothing arrives and nothing else changes.
"""

from __future__ import annotations

import json
import socket

from carctl.core.signals import Recognition

MAX_PER_CYCLE = 16


class RecognitionInbox:
    def __init__(self, port: int) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1", port))
        self.socket.setblocking(False)
        self.received = 0
        self.malformed = 0

    def take(self) -> tuple[Recognition, ...]:
        found = []
        for _ in range(MAX_PER_CYCLE):
            try:
                datagram = self.socket.recv(4096)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                break
            try:
                data = json.loads(datagram)
                if data.get("type") != "recognition":
                    raise ValueError("not a recognition")
                resident = str(data["resident"])
                home = int(data["home_landing"])
                allowed = frozenset(int(n) for n in data["allowed_landings"])
            except (ValueError, KeyError, TypeError, AttributeError):
                self.malformed += 1
                continue
            self.received += 1
            found.append(Recognition(resident, home, allowed, "face"))
        return tuple(found)

    def close(self) -> None:
        self.socket.close()
