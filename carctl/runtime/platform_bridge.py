"""The control loop's side of the platform link: state and events out, accepted commands in, over loopback
datagrams to the link process. Nothing here waits: a missing link process means datagrams nobody reads.

State goes out when it changes (landing, door, mode, phase, faults) and at least every `platform.state_every_s`;
events as they happen (faults, mode changes, recognitions, trapped passengers). The only command the loop itself
applies is a mode change; it arrives as a mode request, exactly like a key switch.
"""

from __future__ import annotations

import json
import socket
import time
from typing import Any

from carctl.core.controller import ControllerState
from carctl.core.signals import Event, Inputs, Mode
from carctl.platform.telemetry import TrappedDetector, event_message, state_message
from carctl.runtime.config import FirmwareConfig

PLATFORM_MODES = {"normal": Mode.NORMAL, "out_of_service": Mode.OUT_OF_SERVICE, "independent": Mode.INDEPENDENT}


class PlatformBridge:
    def __init__(self, config: FirmwareConfig) -> None:
        settings = config.platform
        self.rated_load_kg = config.controller.car.rated_load_kg
        self.face_on = config.processes.face
        self.period_s = config.controller.car.control_period_s
        self.every_s = settings.state_every_s
        self.agent = ("127.0.0.1", settings.agent_port)
        self.out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.out.setblocking(False)
        self.inbox = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.inbox.bind(("127.0.0.1", settings.loop_port))
        self.inbox.setblocking(False)
        self.trapped = TrappedDetector(self.period_s)
        self.last_key: tuple[Any, ...] = ()
        self.last_sent_s = 0.0
        self.dropped = 0

    def _send(self, message: dict[str, Any]) -> None:
        try:
            self.out.sendto(json.dumps(message).encode(), self.agent)
        except OSError:
            self.dropped += 1

    def take(self) -> tuple[Mode | None, bool]:
        """(a mode the platform asked for, whether its settings changed) since the last cycle."""
        request = None
        reload = False
        for _ in range(8):
            try:
                data = json.loads(self.inbox.recv(4096))
            except (BlockingIOError, InterruptedError):
                break
            except (OSError, ValueError):
                continue
            if not isinstance(data, dict):
                continue
            if data.get("type") == "mode" and data.get("mode") in PLATFORM_MODES:
                request = PLATFORM_MODES[data["mode"]]
            elif data.get("type") == "reload":
                reload = True
        return request, reload

    def after_cycle(self, state: ControllerState, inputs: Inputs, events: tuple[Event, ...], lag_p99_ms: float) -> None:
        now = time.time()
        for event in events:
            message = event_message(event, self.period_s, now)
            if message is not None:
                self._send({"type": "event", "event": message})
        alarm = self.trapped.update(state, inputs)
        if alarm is not None:
            self._send({"type": "event", "event": {**alarm, "t": round(now, 3)}})
        key = (state.landing, state.door.phase, state.mode, state.phase, state.faults)
        if key != self.last_key or now - self.last_sent_s >= self.every_s:
            self.last_key = key
            self.last_sent_s = now
            self._send({"type": "state", "state": state_message(state, inputs, self.rated_load_kg, self.face_on,
                                                                lag_p99_ms, now)})

    def close(self) -> None:
        self.out.close()
        self.inbox.close()
