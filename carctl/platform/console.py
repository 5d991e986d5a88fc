"""`carctl platform …`: the operator's console. It signs commands with the community's key, publishes them, and
shows the car's verdict; `watch` prints state and events as they arrive.

    carctl platform --broker 127.0.0.1:1883 --user platform --password-file pw --key-file xihan.key \\
        face-enable --community xihan [--car b7u2]
    carctl platform ... mode --community xihan --car b7u2 out_of_service
    carctl platform ... watch --community xihan
"""

from __future__ import annotations

import argparse
import base64
import json
import queue
import sys
import time
import uuid
from pathlib import Path
from typing import Any

EXIT_BAD_INPUT = 2
EXIT_NO_ANSWER = 1
LIFETIME_S = 60.0


def add_parser(commands: argparse._SubParsersAction, parser_class: type) -> None:  # type: ignore[type-arg]
    platform = commands.add_parser("platform", help="the operator's console: signed commands to cars")
    platform.add_argument("--broker", default="127.0.0.1:1883", help="HOST:PORT")
    platform.add_argument("--user", default="platform")
    platform.add_argument("--password-file", type=Path, required=True)
    platform.add_argument("--key-file", type=Path, help="the community's command key (not needed for watch)")
    platform.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for the car's answer")
    actions = platform.add_subparsers(dest="platform_command", required=True, parser_class=parser_class)

    def target(sub: argparse.ArgumentParser, car_required: bool = False) -> None:
        sub.add_argument("--community", required=True)
        sub.add_argument("--car", default="*" if not car_required else None, required=car_required,
                         help="car id; without it, every car of the community that reports its state")

    for name in ("face-enable", "config-get"):
        target(actions.add_parser(name))
    disable = actions.add_parser("face-disable")
    target(disable)
    disable.add_argument("--wipe", action="store_true", help="also delete the gallery and its key on the car")
    enroll = actions.add_parser("resident-enroll", help="enrol a resident from photos (sent in the signed command)")
    target(enroll)
    enroll.add_argument("resident")
    enroll.add_argument("--home-landing", type=int, required=True)
    enroll.add_argument("--allowed-landings", default="", help="comma-separated landing indices")
    enroll.add_argument("--consent", required=True, help="reference of the resident's separate consent record")
    enroll.add_argument("photos", type=Path, nargs="+", help="1-5 photos of the resident alone")
    mode = actions.add_parser("mode")
    target(mode, car_required=True)
    mode.add_argument("mode", choices=["normal", "out_of_service", "independent"])
    home = actions.add_parser("home-landing")
    target(home, car_required=True)
    home.add_argument("landing", type=int)
    delete = actions.add_parser("resident-delete")
    target(delete)
    delete.add_argument("resident")
    permissions = actions.add_parser("permissions")
    target(permissions)
    permissions.add_argument("state", choices=["on", "off"])
    permissions.add_argument("--free-landings", default="", help="comma-separated landing indices")
    watch = actions.add_parser("watch", help="print state and events as they arrive")
    watch.add_argument("--community", required=True)
    watch.add_argument("--seconds", type=float, default=0.0, help="stop after this long (0: until Ctrl-C)")


def build_command(kind: str, community: str, car: str, params: dict[str, Any], key: bytes,
                  now_s: float | None = None) -> dict[str, Any]:
    from carctl.platform.commands import sign

    now = time.time() if now_s is None else now_s
    return sign({"id": uuid.uuid4().hex, "type": kind, "community": community, "car": car, "issued_at": now,
                 "expires_at": now + LIFETIME_S, "params": params}, key)


def _client(args: argparse.Namespace) -> Any:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    host, _, port = args.broker.rpartition(":")
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"carctl-console-{uuid.uuid4().hex[:8]}")
    client.username_pw_set(args.user, args.password_file.read_text().strip())
    client.connect(host, int(port), keepalive=10)
    return client


def run(args: argparse.Namespace) -> int:
    try:
        password_ok = args.password_file.is_file()
    except OSError:
        password_ok = False
    if not password_ok:
        print(f"carctl platform: error: password file {args.password_file} is not readable", file=sys.stderr)
        return EXIT_BAD_INPUT
    action = args.platform_command
    try:
        client = _client(args)
    except (OSError, ValueError) as error:
        print(f"carctl platform: error: cannot reach the broker {args.broker}: {error}", file=sys.stderr)
        return EXIT_NO_ANSWER
    messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
    client.on_message = lambda c, u, m: messages.put((m.topic, m.payload))
    client.loop_start()
    try:
        if action == "watch":
            return _watch(client, messages, args)
        return _send(client, messages, args)
    finally:
        client.disconnect()
        client.loop_stop()


def _params(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    action = args.platform_command
    if action == "mode":
        return "car.mode", {"mode": args.mode}
    if action == "home-landing":
        return "car.home_landing", {"landing": args.landing}
    if action == "resident-delete":
        return "resident.delete", {"resident": args.resident}
    if action == "resident-enroll":
        allowed = [int(n) for n in args.allowed_landings.split(",") if n.strip()]
        photos = [base64.b64encode(path.read_bytes()).decode() for path in args.photos]
        return "resident.enroll", {"resident": args.resident, "home_landing": args.home_landing,
                                   "consent": args.consent, "photos": photos,
                                   **({"allowed_landings": allowed} if allowed else {})}
    if action == "face-disable":
        return "face.disable", {"wipe": True} if args.wipe else {}
    if action == "permissions":
        free = [int(n) for n in args.free_landings.split(",") if n.strip()]
        return "permissions.set", {"enabled": args.state == "on", **({"free_landings": free} if free else {})}
    return {"face-enable": "face.enable", "config-get": "config.get"}[action], {}


def _discover_cars(client: Any, messages: queue.Queue[tuple[str, bytes]], community: str) -> list[str]:
    """Every car of the community that has published its (retained) state."""
    client.subscribe(f"carctl/{community}/+/state", qos=1)
    cars = set()
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        try:
            topic, _ = messages.get(timeout=0.1)
        except queue.Empty:
            continue
        parts = topic.split("/")
        if len(parts) == 4 and parts[3] == "state":
            cars.add(parts[2])
    client.unsubscribe(f"carctl/{community}/+/state")
    return sorted(cars)


def _send(client: Any, messages: queue.Queue[tuple[str, bytes]], args: argparse.Namespace) -> int:
    if args.key_file is None:
        print("carctl platform: error: --key-file is needed to sign commands", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        kind, params = _params(args)
    except ValueError:
        print("carctl platform: error: landings must be whole numbers", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as error:
        print(f"carctl platform: error: cannot read photo {error.filename}: {error.strerror}", file=sys.stderr)
        return EXIT_BAD_INPUT
    cars = [args.car] if args.car != "*" else _discover_cars(client, messages, args.community)
    if not cars:
        print(f"carctl platform: no car of {args.community} has reported its state; give --car", file=sys.stderr)
        return EXIT_NO_ANSWER
    command = build_command(kind, args.community, args.car, params, args.key_file.read_bytes())
    client.subscribe(f"carctl/{args.community}/+/ack", qos=1)
    time.sleep(0.2)
    for car in cars:
        client.publish(f"carctl/{args.community}/{car}/cmd", json.dumps(command), qos=1).wait_for_publish(
            timeout=args.timeout)
    waiting = set(cars)
    refused = False
    deadline = time.monotonic() + args.timeout
    while waiting and time.monotonic() < deadline:
        try:
            topic, payload = messages.get(timeout=max(0.01, deadline - time.monotonic()))
        except queue.Empty:
            break
        car = topic.split("/")[2]
        try:
            ack = json.loads(payload)
        except ValueError:
            continue
        if car in waiting and ack.get("id") == command["id"]:
            waiting.discard(car)
            refused |= not ack.get("accepted")
            print(json.dumps({"car": car, **ack}))
    for car in sorted(waiting):
        print(f"carctl platform: no answer from car {car} within {args.timeout} s (it may be offline)",
              file=sys.stderr)
    if waiting:
        return EXIT_NO_ANSWER
    return EXIT_BAD_INPUT if refused else 0


def _watch(client: Any, messages: queue.Queue[tuple[str, bytes]], args: argparse.Namespace) -> int:
    for kind in ("state", "events", "ack"):
        client.subscribe(f"carctl/{args.community}/+/{kind}", qos=1)
    stop_at = time.monotonic() + args.seconds if args.seconds else None
    try:
        while stop_at is None or time.monotonic() < stop_at:
            try:
                topic, payload = messages.get(timeout=0.2)
            except queue.Empty:
                continue
            print(f"{topic} {payload.decode(errors='replace')}", flush=True)
    except KeyboardInterrupt:
        pass
    return 0
