"""The control loop's side of the alarm's modem process (carctl/adapters/modem.py): the call wanted out, the call's
state in, over the side channels (sidechannel.py). Nothing here waits.

Rules of this module:
- What arrives is checked (protocol/loopback.py parse_alarm_channel) and its age too: anything else is refused and
  counted by reason in the health record, never handed to the core.
- The state reported is the core's input (alarm_transmitted, alarm_voice). A voice connection not confirmed for
  the alarm_modem source's maximum age (core/rates.py) counts as ended; "transmitted" is kept as last reported (the
  core never moves an alarm back from transmitted, and the modem process restarting says it again).
- The call wanted goes out on every change and every second: a restarted modem process is told within a second.
"""

from __future__ import annotations

import time
from pathlib import Path

from carctl.core.rates import max_age_s
from carctl.protocol import loopback
from carctl.protocol.loopback import AlarmChannel, Refused, age_problem, parse_alarm_channel
from carctl.runtime.sidechannel import LOOP_FROM_MODEM, MODEM_FROM_LOOP, Inbox, Sender, SenderCheck, same_user

MAX_AGE_S = max_age_s("alarm_modem")
TELL_EVERY_S = 1.0
# The modem process silent this long (not started, crashed, restarting with a backoff): the alarm has no voice call.
SILENT_AFTER_S = 10.0


class AlarmBridge:
    def __init__(self, socket_dir: Path, sender: SenderCheck = same_user) -> None:
        self.inbox = Inbox(socket_dir, LOOP_FROM_MODEM, max_per_take=8, sender=sender)
        self.to_modem = Sender(socket_dir, MODEM_FROM_LOOP)
        self.transmitted = False
        self.voice = False
        self.dead_reported = False
        self.heard_s = -1.0
        self.opened_s = time.monotonic()  # when the modem process last reported (monotonic; -1: never)
        self.reports = 0
        self.test = ""  # the last periodic test's result
        self.tests_seen = -1  # the process's test count last seen (-1: none yet)
        self.new_test = ""  # a result not yet handed to the core (alarm_test: once)
        self._told: bool | None = None
        self._next_tell_s = 0.0

    def channel(self) -> tuple[bool, bool]:
        """(transmitted, voice) for this cycle's inputs."""
        now_s = time.monotonic()
        for value in self.inbox.take():
            problem = age_problem(value, now_s, MAX_AGE_S)
            message: AlarmChannel | Refused = Refused(problem) if problem else parse_alarm_channel(value)
            if isinstance(message, Refused):
                self.inbox.refuse(message.reason)
                continue
            self.dead_reported, self.heard_s = message.dead, now_s
            self.reports += 1
            if message.tests != self.tests_seen and message.test:
                if self.tests_seen >= 0 or message.tests > 0:
                    self.new_test = message.test
                self.test = message.test
            self.tests_seen = message.tests
            if message.call == bool(self._told):  # a report about the call as it now stands, not an earlier one
                self.transmitted, self.voice = message.transmitted, message.voice
        if self.voice and now_s - self.heard_s > MAX_AGE_S:
            self.voice = False  # not confirmed: the connection counts as ended
        return self.transmitted, self.voice

    def take_test(self) -> tuple[str, bool]:
        """(a periodic test's result new since the last cycle, or ""; whether the last test failed)."""
        new, self.new_test = self.new_test, ""
        return new, self.test == "failed"

    def dead(self) -> bool:
        """The module answers nothing, or the modem process has not reported for long (it is not running)."""
        return self.dead_reported or self.heard_s < 0 and time.monotonic() - self.opened_s > SILENT_AFTER_S or (
            self.heard_s >= 0 and time.monotonic() - self.heard_s > SILENT_AFTER_S)

    def tell(self, call: bool) -> None:
        """The core's wish for the call, after the cycle."""
        now_s = time.monotonic()
        if call != self._told or now_s >= self._next_tell_s:
            self.to_modem.send(loopback.alarm_call(call))
            self._told, self._next_tell_s = call, now_s + TELL_EVERY_S
        if not call:
            self.transmitted = self.voice = False  # the alarm ended: a new one starts from nothing

    def health(self) -> dict[str, object]:
        return {"reports": self.reports, "dead": self.dead_reported, "test": self.test, "silent": self.heard_s < 0
                or time.monotonic() - self.heard_s > MAX_AGE_S, "refused": dict(self.inbox.refused)}

    def close(self) -> None:
        self.inbox.close()
        self.to_modem.close()
