"""The platform link as its own process: `python -m carctl.platform.agent --config FILE` (started by the process
table when processes.platform is on).

It takes the control loop's state and events from its socket in the firmware's private socket directory
(carctl/runtime/sidechannel.py), publishes the state (retained), writes every event to the durable outbox and then
tells the loop it is stored (the loop keeps it until then), and checks every command that arrives. What the loop's
socket delivers is checked too (carctl/protocol/loopback.py): a malformed message, or daily statistics with
impossible counts that would corrupt the running totals, is refused and counted, never stored. Accepted commands:
- `car.mode` is forwarded to the loop, which applies it like a key switch;
- `car.home_landing`, `permissions.set`, `face.enable` and `face.disable` are written atomically to the overrides
  file and the loop reloads them between two cycles (the face switch starts or stops the face worker);
- `resident.enroll`, `resident.delete` and `face.disable` with `wipe` change the encrypted gallery here
  (face_admin.py); the face worker reloads it;
- `config.get` answers with the car's last state and its settings.
The state it publishes is the loop's with one key added, `clock_synchronised` (true, false, or null when the kernel
cannot be asked: carctl/clocksync.py); the same is in the health record (`config.get`'s `link`).
Enrolments, deletions and the face switch are reported as events too, never with biometric data.
"""

from __future__ import annotations

import argparse
import os
import select
import sys
import threading
import time
import traceback
import uuid
from pathlib import Path
from typing import Any

from carctl import clocksync
from carctl.filein import read_bounded
from carctl.platform.face_admin import FaceAdmin, FaceCommandError
from carctl.platform.keys import KeyFileError, ca_file_problem, load_key
from carctl.platform.link import BrokerSettings, PlatformLink
from carctl.platform.outbox import Outbox
from carctl.protocol import loopback
from carctl.protocol.loopback import EventReport, Refused, StateReport, parse_loop_message
from carctl.runtime import overrides
from carctl.runtime.config import FirmwareConfig
from carctl.runtime.sidechannel import (AGENT_FROM_LOOP, LOOP_FROM_PLATFORM, LOOP_PID_VARIABLE, Inbox, Sender,
                                        only_process, prepare_socket_dir, same_user)

EXIT_BAD_CONFIG = 3
HEALTH_EVERY_S = 60.0
MAX_PASSWORD_BYTES = 1024
TRACEBACK_EVERY_S = 60.0


class AgentStartError(Exception):
    """The link process cannot start; the message names the file or key."""


def read_password(path: Path) -> str:
    try:
        data = read_bounded(path, MAX_PASSWORD_BYTES)
    except OSError as error:
        raise AgentStartError(f"password file {path}: {error.strerror or error}") from None
    try:
        password = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise AgentStartError(f"password file {path} is not UTF-8 text") from None
    if not password:
        raise AgentStartError(f"password file {path} must hold one password of 1-{MAX_PASSWORD_BYTES} bytes")
    return password


class Agent:
    def __init__(self, config: FirmwareConfig, loop_pid: int | None = None) -> None:
        settings = config.platform
        self.settings = settings
        self.face_default = config.processes.face
        self.overrides_path = Path(settings.overrides_path)
        self.last_state: dict[str, Any] = {}
        self.stopping = threading.Event()
        self.handler_errors = 0
        self._traceback_logged_s = float("-inf")
        try:
            key = load_key(Path(settings.key_file))
        except KeyFileError as error:
            raise AgentStartError(str(error)) from None
        password = read_password(Path(settings.password_file))
        socket_dir = prepare_socket_dir(Path(config.runtime.socket_dir))
        self.faces = FaceAdmin(Path(config.face.gallery_dir), Path(config.face.key_file), config.face.community,
                               config.controller.building.landing_count,
                               max_image_pixels=config.face.max_image_pixels)
        if settings.tls_ca_file:  # read and parsed first: paho would open a FIFO blocking, and hang the link
            problem = ca_file_problem(settings.tls_ca_file)
            if problem is not None:
                raise AgentStartError(f"platform.tls_ca_file {problem}")
        broker = BrokerSettings(settings.broker_host.strip("[]"), settings.broker_port, settings.username, password,
                                settings.tls_ca_file)
        # Only the loop that started this process may speak on its socket (sidechannel.py); run on its own (a test),
        # any process of the firmware's user.
        self.from_loop = Inbox(socket_dir, AGENT_FROM_LOOP,
                               sender=same_user if loop_pid is None else only_process(lambda: loop_pid))
        self.to_loop = Sender(socket_dir, LOOP_FROM_PLATFORM)
        outbox = Outbox(Path(settings.outbox_path))
        if outbox.set_aside is not None:
            print(f"platform agent: the outbox was not a usable database; set aside as {outbox.set_aside}, a new one "
                  f"begun (its running totals start again)", file=sys.stderr, flush=True)
        self.link = PlatformLink(broker, settings.community, settings.car, key, outbox, self.apply)

    # -- commands (in the link's network thread) -----------------------------------------------------------------

    def apply(self, command: dict[str, Any]) -> dict[str, Any]:
        """Carry out a command the gate accepted (its parameters fit its type)."""
        kind = command["type"]
        params = command.get("params") or {}
        command_id = str(command.get("id", ""))
        if kind == "car.mode":
            self._tell_loop(loopback.mode_request(params["mode"], command_id))
            return {"mode_requested": params["mode"]}
        if kind == "alarm.acknowledge":
            return self._acknowledge_alarm(params.get("alarm", ""), float(command["issued_at"]))
        if kind == "config.get":
            return {"state": self.last_state, "settings": overrides.read(self.overrides_path),
                    "link": self.health()}
        if kind == "car.home_landing":
            return {"settings": self._change_settings({"home_landing": params["landing"]}, command_id)}
        if kind == "permissions.set":
            changes = {"permissions_enabled": params["enabled"]}
            if "free_landings" in params:
                changes["free_landings"] = params["free_landings"]
            return {"settings": self._change_settings(changes, command_id)}
        try:
            return self._apply_face(kind, params, command_id)
        except FaceCommandError as error:
            raise RuntimeError(str(error)) from None

    def _acknowledge_alarm(self, named: str, issued_at: float = float("inf")) -> dict[str, Any]:
        """The operator's acknowledgement, checked against the car's last state so that the operator hears at once
        why it does nothing; the loop checks it again against the alarm standing when it takes it (a reset at the
        car may come in between). One that names no alarm is taken only if it was issued after the alarm standing
        began (it may have waited at the broker while an earlier alarm was reset and a new one began)."""
        phase = self.last_state.get("alarm")
        standing = self.last_state.get("alarm_id")
        since = self.last_state.get("alarm_since_t")
        if phase is None:
            raise RuntimeError("the car has not reported its alarm yet (the link just started): send it again in a "
                               "few seconds")
        if phase == "idle":
            raise RuntimeError("no alarm is standing at the car")
        if phase == "requested":
            raise RuntimeError("the rescue service does not have the alarm yet: the car tells the rider help is on "
                               "the way once it has (phone the rescue service)")
        if named and isinstance(standing, str) and named != standing:
            raise RuntimeError(f"alarm {named} is not the one standing at the car ({standing})")
        if not named and not (isinstance(since, (int, float)) and issued_at >= since):
            raise RuntimeError(f"issued before the alarm standing began, or the car cannot say when it did: name it "
                               f"(alarm-ack --alarm {standing if isinstance(standing, str) else 'ID'})")
        self._tell_loop(loopback.alarm_acknowledged(named))
        return {"acknowledged": True, "alarm": standing if isinstance(standing, str) else None}

    def _apply_face(self, kind: str, params: dict[str, Any], command_id: str) -> dict[str, Any]:
        if kind == "face.enable":
            enrolled = self.faces.check_usable()
            result = {"face": True, "residents": enrolled,
                      "settings": self._change_settings({"face_enabled": True}, command_id)}
            self._event("running_state", "face_switched", face=True)
            return result
        if kind == "face.disable":
            result = {"face": False, "settings": self._change_settings({"face_enabled": False}, command_id)}
            self._event("running_state", "face_switched", face=False)
            if params.get("wipe", False):
                result.update(self.faces.wipe())
                self._event("running_state", "gallery_wiped", residents_removed=result["residents_removed"])
            return result
        if kind == "resident.enroll":
            result = self.faces.enroll(params)
            self._event("running_state", "resident_enrolled", resident=result["resident"],
                        home_landing=result["home_landing"], templates=result["templates"])
            return result
        if kind == "resident.delete":
            result = self.faces.delete(params["resident"])
            self._event("running_state", "resident_deleted", resident=result["resident"])
            return result
        raise RuntimeError(f"{kind} is not a command this firmware knows")

    def _change_settings(self, changes: dict[str, Any], command_id: str) -> dict[str, Any]:
        """Write the settings and tell the loop, with the command's id: the loop records the change (docs/audit.md)."""
        settings = overrides.write(self.overrides_path, changes)
        self._tell_loop(loopback.reload_settings(command_id))
        return settings

    def _event(self, category: str, kind: str, **fields: Any) -> None:
        self.link.send_event({"id": uuid.uuid4().hex, "t": round(time.time(), 3), "category": category,
                              "kind": kind, **fields})

    def _tell_loop(self, message: dict[str, Any]) -> None:
        self.to_loop.send(message)

    # -- the loop's state and events -----------------------------------------------------------------------------

    def run(self) -> None:
        self.link.start()
        next_health_s = time.monotonic() + HEALTH_EVERY_S
        while not self.stopping.is_set():
            ready, _, _ = select.select([self.from_loop.socket], [], [], 0.5)
            if ready:
                for value in self.from_loop.take():
                    try:
                        self.handle_loop_message(value)
                    except Exception:  # noqa: BLE001 - counted and logged; the link process goes on
                        self.handler_errors += 1
                        # The traceback once a minute at most: a fault that repeats on every event cannot flood
                        # the journal.
                        if time.monotonic() - self._traceback_logged_s >= TRACEBACK_EVERY_S:
                            self._traceback_logged_s = time.monotonic()
                            print(f"platform agent: error handling a message from the loop ({self.handler_errors} "
                                  f"so far, counted):\n{traceback.format_exc()}", file=sys.stderr, flush=True)
            if time.monotonic() >= next_health_s:
                next_health_s = time.monotonic() + HEALTH_EVERY_S
                if (self.from_loop.refused_total() or self.handler_errors or any(self.link.health().values())
                        or clocksync.clock_synchronised() is False):
                    print(f"platform agent: health {self.health()}", file=sys.stderr, flush=True)

    def handle_loop_message(self, value: Any) -> None:
        message = parse_loop_message(value)
        if isinstance(message, StateReport):
            # The link process, not the loop, asks the kernel: an unsynchronised clock is why a car refuses every
            # command as expired, and the platform should see that in the car's state before it sends one.
            self.last_state = {**message.state, "clock_synchronised": clocksync.clock_synchronised()}
            self.link.publish_state(self.last_state)
        elif isinstance(message, EventReport):
            event_id = self.link.send_event(message.event)
            self._tell_loop(loopback.event_stored(event_id))
        elif isinstance(message, Refused):
            self.from_loop.refuse(message.reason)

    def health(self) -> dict[str, Any]:
        return {"from_loop": self.from_loop.received, "from_loop_refused": dict(self.from_loop.refused),
                "handler_errors": self.handler_errors, **self.link.health(),
                "clock_synchronised": clocksync.clock_synchronised()}

    def close(self) -> None:
        self.link.stop()
        self.link.outbox.close()
        self.to_loop.close()
        self.from_loop.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m carctl.platform.agent")
    parser.add_argument("--config", type=Path, required=True)
    args = parser.parse_args(argv)
    from carctl.runtime import config as firmware_config

    from carctl.runtime.sidechannel import SocketDirError

    loop_pid = os.environ.get(LOOP_PID_VARIABLE, "")
    try:
        agent = Agent(firmware_config.load(args.config), int(loop_pid) if loop_pid.isdigit() else None)
    except (firmware_config.FirmwareConfigError, AgentStartError, SocketDirError, OSError) as error:
        print(f"platform agent: not starting: {error}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    try:
        agent.run()
    except KeyboardInterrupt:
        pass
    finally:
        agent.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
