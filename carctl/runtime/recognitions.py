"""Recognition events from the face worker, received without ever blocking the loop.

The worker sends datagrams to the loop's socket in the firmware's private socket directory (sidechannel.py); each
cycle the loop takes whatever has arrived. Anything but a well-formed recognition of an enrolled-looking resident
with landings that exist is refused and counted by reason (protocol/loopback.py). If the worker is slow, hung or
dead, nothing arrives and nothing else changes.
"""

from __future__ import annotations

from pathlib import Path

from carctl.core.signals import Recognition
from carctl.protocol.loopback import Refused, parse_recognition
from carctl.runtime.sidechannel import LOOP_FROM_FACE, Inbox

MAX_PER_CYCLE = 16


class RecognitionInbox:
    def __init__(self, socket_dir: Path, landing_count: int) -> None:
        self.landing_count = landing_count
        self.inbox = Inbox(socket_dir, LOOP_FROM_FACE, MAX_PER_CYCLE)
        self.accepted = 0

    @property
    def refused(self) -> int:
        return self.inbox.refused_total()

    def take(self) -> tuple[Recognition, ...]:
        found = []
        for value in self.inbox.take():
            message = parse_recognition(value, self.landing_count)
            if isinstance(message, Refused):
                self.inbox.refuse(message.reason)
                continue
            self.accepted += 1
            found.append(message)
        return tuple(found)

    def counters(self) -> dict[str, int]:
        return {"accepted": self.accepted, **self.inbox.refused}

    def close(self) -> None:
        self.inbox.close()
