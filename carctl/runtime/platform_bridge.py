"""The control loop's side of the platform link: state and events out, accepted commands in, over the side channel
to the link process (Unix datagram sockets in the firmware's private directory, sidechannel.py). Nothing here waits:
a missing link process means datagrams nobody reads.

Rules of this module:
- State goes out when it changes (landing, door, mode, phase, faults) and at least every `platform.state_every_s`;
  a lost state datagram is replaced by the next one.
- Events (faults, mode changes, recognitions, trapped passengers, the day's statistics) are kept in a bounded spool
  until the link process acknowledges that its outbox holds them, and sent again every RESEND_AFTER_S until then: a
  link process that is restarting, or dead for a while, loses nothing. The outbox dedupes by event id, so a resend
  never doubles an event. If the spool fills (SPOOL_LIMIT events, hours of faults), the oldest go first and are
  counted.
- The only command the loop itself applies is a mode change; it arrives as a mode request, exactly like a key
  switch. A "reload" tells it the platform's settings file changed.
- What arrives is checked by protocol/loopback.py: anything but those three messages, well formed, is refused and
  counted by reason in the health record; it never reaches the core.
"""

from __future__ import annotations

import itertools
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

from carctl.core.controller import ControllerState
from carctl.core.signals import Event, Inputs, Mode
from carctl.platform.telemetry import Reporter
from carctl.core.rates import max_age_s
from carctl.core.supervisor import SupervisorLimits
from carctl.protocol.loopback import (AlarmAcknowledged, EventStored, ModeRequest, Refused, ReloadSettings, age_problem,
                                      parse_platform_message)
from carctl.runtime.config import FirmwareConfig
from carctl.runtime.sidechannel import AGENT_FROM_LOOP, LOOP_FROM_PLATFORM, Inbox, Sender, SenderCheck, same_user

RESEND_AFTER_S = 1.0
RESENDS_PER_CYCLE = 8  # a backlog drains over a few cycles, never in one burst
SPOOL_LIMIT = 2000
# What the link process sends the loop is small (a mode, a reload, an event's id) and rare: a few per cycle, each
# under a kilobyte, so that no flood can take more than a few microseconds of a cycle.
MESSAGES_PER_CYCLE = 8
MESSAGE_BYTES = 1024
MESSAGE_VALUES = 16
MODE_MAX_AGE_S = max_age_s("platform_link")


class PlatformBridge:
    def __init__(self, config: FirmwareConfig, socket_dir: Path, sender: SenderCheck = same_user) -> None:
        settings = config.platform
        # The loop says when the face feature is on (ControlLoop.switch_face sets reporter.face_on).
        self.reporter = Reporter(config.controller.car.control_period_s, config.controller.car.rated_load_kg,
                                 settings.state_every_s, settings.utc_offset_h,
                                 limits=SupervisorLimits.from_config(config.controller))
        self.inbox = Inbox(socket_dir, LOOP_FROM_PLATFORM, MESSAGES_PER_CYCLE, MESSAGE_BYTES, MESSAGE_VALUES, sender)
        self.out = Sender(socket_dir, AGENT_FROM_LOOP)
        self.spool: OrderedDict[str, tuple[float, dict[str, Any]]] = OrderedDict()  # id -> (last sent, event)
        self.spool_overflow = 0
        # The alarm ids acknowledgements named ("": any) since the last cycle: a few, so that a late one for an alarm
        # reset since cannot wipe out the operator's for the alarm standing.
        self.alarm_acknowledged: set[str] = set()
        # The ids of the commands behind the last take()'s mode request and settings reload (the maintenance record).
        self.mode_command = ""
        self.settings_command = ""

    @property
    def dropped(self) -> int:
        return self.out.dropped

    def _send(self, message: dict[str, Any]) -> None:
        self.out.send(message)

    def send_event(self, event: dict[str, Any]) -> None:
        """Spool an event (it carries its unique id) and send it."""
        if len(self.spool) >= SPOOL_LIMIT:
            self.spool.popitem(last=False)
            self.spool_overflow += 1
        self.spool[event["id"]] = (time.monotonic(), event)
        self._send({"type": "event", "event": event})

    def _resend(self) -> None:
        """Send again what the link has not confirmed. The spool stays ordered by when each event was last sent
        (new and resent ones go to the back), so the due ones are at the front."""
        now = time.monotonic()
        for event_id in list(itertools.islice(self.spool, RESENDS_PER_CYCLE)):
            sent_s, event = self.spool[event_id]
            if now - sent_s < RESEND_AFTER_S:
                break
            self.spool[event_id] = (now, event)
            self.spool.move_to_end(event_id)
            self._send({"type": "event", "event": event})

    def take(self) -> tuple[Mode | None, bool]:
        """(a mode the platform asked for, whether its settings changed) since the last cycle."""
        request = None
        reload = False
        now_s = time.monotonic()
        for value in self.inbox.take():
            message = parse_platform_message(value)
            if isinstance(message, ModeRequest):
                # A mode asked for long ago may have been overtaken (a key switch, another request): not acted on.
                # Settings reloads and acknowledgements are never too old.
                stale = age_problem(value, now_s, MODE_MAX_AGE_S)
                if stale is not None:
                    self.inbox.refuse(stale)
                    continue
                request, self.mode_command = message.mode, message.command
            elif isinstance(message, ReloadSettings):
                reload, self.settings_command = True, message.command
            elif isinstance(message, AlarmAcknowledged):
                # Taken by the loop's next snapshot (take_acknowledgement); one that waited, as a mode request
                # would have, may belong to an alarm that has ended since.
                stale = age_problem(value, now_s, MODE_MAX_AGE_S)
                if stale is not None:
                    self.inbox.refuse(stale)
                    continue
                if len(self.alarm_acknowledged) < MESSAGES_PER_CYCLE:
                    self.alarm_acknowledged.add(message.alarm_id)
            elif isinstance(message, EventStored):
                self.spool.pop(message.event_id, None)
            elif isinstance(message, Refused):
                self.inbox.refuse(message.reason)
        return request, reload

    def take_acknowledgement(self, standing_alarm_id: str) -> bool:
        """Whether the platform's operator acknowledged the alarm standing (``standing_alarm_id``) since the last
        cycle (then forgotten). An acknowledgement that names another alarm — one reset at the car since the
        operator saw it — is refused and counted: the rider of a new alarm must not hear that help is on the way
        because of the old one."""
        named, self.alarm_acknowledged = self.alarm_acknowledged, set()
        if not named:
            return False
        if "" in named or standing_alarm_id in named:
            return True
        self.inbox.refuse("acknowledgement of an alarm not standing")
        return False

    def after_cycle(self, state: ControllerState, inputs: Inputs, events: tuple[Event, ...], lag_p99_ms: float) -> None:
        messages, status = self.reporter.update(state, inputs, events, lag_p99_ms, time.time())
        for message in messages:
            self.send_event(message)
        if self.spool:
            self._resend()
        if status is not None:
            self._send({"type": "state", "state": status})

    def close(self) -> None:
        self.out.close()
        self.inbox.close()
