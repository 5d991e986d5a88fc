"""The service tool's side of the loop's feed (carctl/runtime/service_feed.py): ask to watch, take what comes.

Rules of this module:
- The process binds `service-<its pid>.sock` in the firmware's private socket directory and asks the loop to watch
  every WATCH_EVERY_S (the loop's lease is 3 s): a loop that restarts is watched again within a second.
- What arrives is hostile until parsed (protocol/loopback.py parse_service_message); refused messages are counted.
  Run by the process table, only the loop that started it may send here; run by hand, any process of the firmware's
  user (the directory keeps others out).
- Kept: the latest live state and health record, a ring of the last RECENT_EVENTS events, the run recorder's
  answers (run_store.py), and the loop's answers to the last ANSWERS_KEPT commissioning requests (by the request's
  id: every watcher gets every answer). `stale()` says when the loop has been silent for STALE_AFTER_S: the page
  shows that instead of a car frozen in place.
"""

from __future__ import annotations

import collections
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from carctl.protocol.loopback import CommissionAnswer, EventsReport, HealthReport, LiveReport, Refused, \
    parse_service_message, watch_request
from carctl.protocol.run_records import RunAnswer, RunsAnswer
from carctl.runtime.service_feed import watcher_socket
from carctl.runtime.sidechannel import LOOP_FROM_SERVICE, Inbox, Sender, SenderCheck, same_user
from carctl.service.run_store import RunStore

WATCH_EVERY_S = 1.0
STALE_AFTER_S = 1.0
RECENT_EVENTS = 200
MESSAGES_PER_TAKE = 64
ANSWERS_KEPT = 32  # the loop's answers to commissioning requests, by request id, the oldest forgotten first


class LoopFeed:
    def __init__(self, socket_dir: Path, sender: SenderCheck = same_user,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.inbox = Inbox(socket_dir, watcher_socket(os.getpid()), MESSAGES_PER_TAKE, sender=sender)
        self.to_loop = Sender(socket_dir, LOOP_FROM_SERVICE)
        self.live: dict[str, Any] | None = None
        self.health: dict[str, Any] | None = None
        self.events: collections.deque[dict[str, Any]] = collections.deque(maxlen=RECENT_EVENTS)
        self.heard_s = float("-inf")
        self.live_updates = 0  # how many live states have arrived (a waiting page sends when it changes)
        self.next_watch_s = 0.0
        self.runs = RunStore(self.to_loop.send, clock)
        self.answers: collections.OrderedDict[str, CommissionAnswer] = collections.OrderedDict()

    def fileno(self) -> int:
        return self.inbox.fileno()

    def ask(self) -> None:
        """Renew the lease with the loop when due (cheap: call as often as you like)."""
        now = self.clock()
        if now >= self.next_watch_s:
            self.next_watch_s = now + WATCH_EVERY_S
            self.to_loop.send(watch_request())

    def take(self) -> None:
        for value in self.inbox.take():
            message = parse_service_message(value)
            if isinstance(message, Refused):
                self.inbox.refuse(message.reason)
                continue
            self.heard_s = self.clock()
            if isinstance(message, LiveReport):
                self.live = message.live
                self.live_updates += 1
            elif isinstance(message, HealthReport):
                self.health = message.health
            elif isinstance(message, EventsReport):
                self.events.extend(message.events)
            elif isinstance(message, (RunsAnswer, RunAnswer)):
                self.runs.take(message)
            elif isinstance(message, CommissionAnswer):
                self.answers[message.request_id] = message
                while len(self.answers) > ANSWERS_KEPT:
                    self.answers.popitem(last=False)

    def stale(self) -> bool:
        return self.clock() - self.heard_s > STALE_AFTER_S

    def close(self) -> None:
        self.to_loop.close()
        self.inbox.close()
