"""The platform link as its own process: `python -m carctl.platform.agent --config FILE` (started by the process
table when processes.platform is on).

It takes the control loop's state and events from a loopback port, publishes the state (retained) and sends the
events through the durable outbox, and checks every command that arrives. An accepted `car.mode` is forwarded to the
loop, which applies it like a key switch; `car.home_landing` and `permissions.set` are written atomically to the
overrides file and the loop reloads them; `config.get` answers with the car's last state and those settings.
Commands whose effect this
firmware does not yet carry out on the car are refused with that reason, never acknowledged as done.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import time
from pathlib import Path
from typing import Any

from carctl.platform.link import BrokerSettings, PlatformLink
from carctl.platform.outbox import Outbox
from carctl.runtime import overrides

EXIT_BAD_CONFIG = 3


class Agent:
    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self.last_state: dict[str, Any] = {}
        self.to_loop = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.from_loop = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.from_loop.bind(("127.0.0.1", settings.agent_port))
        self.from_loop.settimeout(0.5)
        broker = BrokerSettings(settings.broker_host, settings.broker_port, settings.username,
                                Path(settings.password_file).read_text().strip(), settings.tls_ca_file)
        self.link = PlatformLink(broker, settings.community, settings.car, Path(settings.key_file).read_bytes(),
                                 Outbox(Path(settings.outbox_path)), self.apply)

    def apply(self, command: dict[str, Any]) -> dict[str, Any]:
        kind = command["type"]
        if kind == "car.mode":
            message = {"type": "mode", "mode": command["params"]["mode"]}
            self.to_loop.sendto(json.dumps(message).encode(), ("127.0.0.1", self.settings.loop_port))
            return {"mode_requested": command["params"]["mode"]}
        if kind == "config.get":
            return {"state": self.last_state, "settings": overrides.read(Path(self.settings.overrides_path))}
        if kind in ("car.home_landing", "permissions.set"):
            params = command["params"]
            changes = ({"home_landing": params["landing"]} if kind == "car.home_landing" else
                       {"permissions_enabled": params["enabled"],
                        **({"free_landings": params["free_landings"]} if "free_landings" in params else {})})
            settings = overrides.write(Path(self.settings.overrides_path), changes)
            self.to_loop.sendto(json.dumps({"type": "reload"}).encode(), ("127.0.0.1", self.settings.loop_port))
            return {"settings": settings}
        raise NotImplementedError(f"{kind} is not carried out by this firmware yet")

    def run(self) -> None:
        self.link.start()
        while True:
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
            elif data.get("type") == "event" and isinstance(data.get("event"), dict):
                self.link.send_event(data["event"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m carctl.platform.agent")
    parser.add_argument("--config", type=Path, required=True)
    args = parser.parse_args(argv)
    from carctl.runtime import config as firmware_config

    try:
        settings = firmware_config.load(args.config).platform
        agent = Agent(settings)
    except (firmware_config.FirmwareConfigError, OSError) as error:
        print(f"platform agent: not starting: {error}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    try:
        agent.run()
    except KeyboardInterrupt:
        pass
    finally:
        agent.link.stop()
    time.sleep(0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
