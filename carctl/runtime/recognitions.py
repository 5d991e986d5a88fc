"""Recognition events from the face worker, received without ever blocking the loop.

The worker sends datagrams to the loop's socket in the firmware's private socket directory (sidechannel.py); each
cycle the loop takes what has arrived from the worker it started (a few per cycle at most). Anything but a
well-formed recognition of an enrolled-looking resident with landings that exist is refused and counted by reason
(protocol/loopback.py), and so is one that waited longer than the face worker's maximum age (core/rates.py): the
resident it names may have left the car. If the worker is slow, hung or dead, nothing arrives and nothing else
changes.
"""

from __future__ import annotations

import time
from pathlib import Path

from carctl.core.rates import max_age_s
from carctl.core.signals import Recognition
from carctl.protocol.loopback import Refused, age_problem, parse_recognition
from carctl.runtime.sidechannel import LOOP_FROM_FACE, Inbox, SenderCheck, same_user

# A ride brings one recognition per resident: a few per cycle at most, each a few hundred bytes.
MAX_PER_CYCLE = 4
MAX_BYTES = 2048
MAX_VALUES = 128  # a resident may be allowed every landing of a building of 100
MAX_AGE_S = max_age_s("face_worker")


class RecognitionInbox:
    def __init__(self, socket_dir: Path, landing_count: int, sender: SenderCheck = same_user) -> None:
        self.landing_count = landing_count
        self.inbox = Inbox(socket_dir, LOOP_FROM_FACE, MAX_PER_CYCLE, MAX_BYTES, MAX_VALUES, sender)
        self.accepted = 0

    @property
    def refused(self) -> int:
        return self.inbox.refused_total()

    def take(self) -> tuple[Recognition, ...]:
        found = []
        now_s = time.monotonic()
        for value in self.inbox.take():
            stale = age_problem(value, now_s, MAX_AGE_S)
            if stale is not None:
                self.inbox.refuse(stale)
                continue
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
