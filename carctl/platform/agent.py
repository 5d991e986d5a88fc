"""The platform link as its own process: `python -m carctl.platform.agent --config FILE` (started by the process
table when processes.platform is on).

It takes the control loop's state and events from a loopback port, publishes the state (retained), writes every event
to the durable outbox and then tells the loop it is stored (the loop keeps it until then), and checks every command
that arrives. Accepted commands:
- `car.mode` is forwarded to the loop, which applies it like a key switch;
- `car.home_landing`, `permissions.set`, `face.enable` and `face.disable` are written atomically to the overrides
  file and the loop reloads them between two cycles (the face switch starts or stops the face worker);
- `resident.enroll`, `resident.delete` and `face.disable` with `wipe` change the encrypted gallery here
  (face_admin.py); the face worker reloads it;
- `config.get` answers with the car's last state and its settings.
Enrolments, deletions and the face switch are reported as events too, never with biometric data.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from carctl.platform.face_admin import FaceAdmin, FaceCommandError
from carctl.platform.link import BrokerSettings, PlatformLink
from carctl.platform.outbox import Outbox
from carctl.runtime import overrides
from carctl.runtime.config import FirmwareConfig

EXIT_BAD_CONFIG = 3


class Agent:
    def __init__(self, config: FirmwareConfig) -> None:
        settings = config.platform
        self.settings = settings
        self.face_default = config.processes.face
        self.overrides_path = Path(settings.overrides_path)
        self.last_state: dict[str, Any] = {}
        self.stopping = threading.Event()
        self.to_loop = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.from_loop = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.from_loop.bind(("127.0.0.1", settings.agent_port))
        self.from_loop.settimeout(0.5)
        self.faces = FaceAdmin(Path(config.face.gallery_dir), Path(config.face.key_file), config.face.community,
                               config.controller.building.landing_count)
        broker = BrokerSettings(settings.broker_host, settings.broker_port, settings.username,
                                Path(settings.password_file).read_text().strip(), settings.tls_ca_file)
        self.link = PlatformLink(broker, settings.community, settings.car, Path(settings.key_file).read_bytes(),
                                 Outbox(Path(settings.outbox_path)), self.apply)

    # -- commands (in the link's network thread) -----------------------------------------------------------------

    def apply(self, command: dict[str, Any]) -> dict[str, Any]:
        kind = command["type"]
        params = command["params"]
        if kind == "car.mode":
            self._tell_loop({"type": "mode", "mode": params["mode"]})
            return {"mode_requested": params["mode"]}
        if kind == "config.get":
            return {"state": self.last_state, "settings": overrides.read(self.overrides_path)}
        if kind == "car.home_landing":
            return {"settings": self._change_settings({"home_landing": params["landing"]})}
        if kind == "permissions.set":
            changes = {"permissions_enabled": params["enabled"]}
            if "free_landings" in params:
                changes["free_landings"] = params["free_landings"]
            return {"settings": self._change_settings(changes)}
        try:
            return self._apply_face(kind, params)
        except FaceCommandError as error:
            raise RuntimeError(str(error)) from None

    def _apply_face(self, kind: str, params: dict[str, Any]) -> dict[str, Any]:
        if kind == "face.enable":
            enrolled = self.faces.check_usable()
            result = {"face": True, "residents": enrolled, "settings": self._change_settings({"face_enabled": True})}
            self._event("running_state", "face_switched", face=True)
            return result
        if kind == "face.disable":
            result = {"face": False, "settings": self._change_settings({"face_enabled": False})}
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

    def _change_settings(self, changes: dict[str, Any]) -> dict[str, Any]:
        settings = overrides.write(self.overrides_path, changes)
        self._tell_loop({"type": "reload"})
        return settings

    def _event(self, category: str, kind: str, **fields: Any) -> None:
        self.link.send_event({"id": uuid.uuid4().hex, "t": round(time.time(), 3), "category": category,
                              "kind": kind, **fields})

    def _tell_loop(self, message: dict[str, Any]) -> None:
        self.to_loop.sendto(json.dumps(message).encode(), ("127.0.0.1", self.settings.loop_port))

    # -- the loop's state and events -----------------------------------------------------------------------------

    def run(self) -> None:
        self.link.start()
        while not self.stopping.is_set():
            try:
                data = json.loads(self.from_loop.recv(65536))
            except TimeoutError:
                continue
            except (OSError, ValueError):
                continue
            if not isinstance(data, dict):
                continue
            if data.get("type") == "state" and isinstance(data.get("state"), dict):
                self.last_state = data["state"]
                self.link.publish_state(self.last_state)
            elif data.get("type") == "event" and isinstance(data.get("event"), dict) and "id" in data["event"]:
                event_id = self.link.send_event(data["event"])
                self._tell_loop({"type": "event_stored", "id": event_id})

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

    try:
        agent = Agent(firmware_config.load(args.config))
    except (firmware_config.FirmwareConfigError, OSError) as error:
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
