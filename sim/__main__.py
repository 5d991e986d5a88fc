"""`python -m sim serve` (the simulated shaft on real protocols) and `python -m sim ctl` (talk to it).

    python -m sim serve [--scenario FILE] [--host 127.0.0.1] [--modbus-port N] [--control-port N] [--baud 115200]
    python -m sim ctl --control HOST:PORT state
    python -m sim ctl --control HOST:PORT car-call 3
    python -m sim ctl --control HOST:PORT hall-call 2 down
    python -m sim ctl --control HOST:PORT inject comm_loss | clear comm_loss
    python -m sim ctl --control HOST:PORT modbus --drop 5 | --corrupt 5
    python -m sim ctl --control HOST:PORT panel-garbage 200
    python -m sim fleet --cars 223 --duration 3600 [--speed 1] [--faults-per-car-h 2] [--json FILE]

The control endpoint is printed by `serve`; `ctl` also reads it from $CARCTL_SIM_CONTROL.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

EXIT_BAD_INPUT = 2


def _serve(args: argparse.Namespace) -> int:
    from sim.scenario import Scenario, ScenarioError, load
    from sim.serve import serve

    try:
        scenario = load(args.scenario) if args.scenario else Scenario()
    except ScenarioError as error:
        print(f"sim: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return serve(scenario.controller, scenario.physics, host=args.host, modbus_port=args.modbus_port,
                 control_port=args.control_port, baud=args.baud)


def request(control: str, message: dict[str, Any], timeout_s: float = 5.0) -> dict[str, Any]:
    host, _, port = control.rpartition(":")
    with socket.create_connection((host, int(port)), timeout=timeout_s) as connection:
        connection.sendall((json.dumps(message) + "\n").encode())
        reply = b""
        while not reply.endswith(b"\n"):
            chunk = connection.recv(65536)
            if not chunk:
                break
            reply += chunk
    return json.loads(reply)  # type: ignore[no-any-return]


def _ctl(args: argparse.Namespace) -> int:
    control = args.control or os.environ.get("CARCTL_SIM_CONTROL")
    if not control:
        print("sim ctl: error: give --control HOST:PORT (printed by `sim serve`) or set CARCTL_SIM_CONTROL",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    words = args.words
    action = words[0]
    rest = words[1:]
    simple = {"state": {}, "seat-on": {"cmd": "seat", "occupied": True}, "seat-off": {"cmd": "seat", "occupied": False},
              "fire-on": {"cmd": "fire_switch", "on": True}, "fire-off": {"cmd": "fire_switch", "on": False}}
    try:
        if action in simple:
            message = {"cmd": action, **simple[action]} if simple[action] else {"cmd": "state"}
        elif action in ("car-call", "accessible-call"):
            message = {"cmd": action.replace("-", "_"), "landing": int(rest[0])}
        elif action == "hall-call":
            message = {"cmd": "hall_call", "landing": int(rest[0]), "direction": rest[1]}
        elif action == "button":
            message = {"cmd": "button", "name": rest[0]}
        elif action == "obstruct":
            message = {"cmd": "obstruct", "duration_s": float(rest[0])}
        elif action == "load":
            message = {"cmd": "load", "load_kg": float(rest[0])}
        elif action in ("inject", "clear"):
            message = {"cmd": action, "kind": rest[0]}
        elif action == "modbus":
            message = {"cmd": "modbus", "drop": args.drop, "corrupt": args.corrupt}
        elif action == "panel-garbage":
            message = {"cmd": "panel_garbage", "bytes": int(rest[0])}
        elif action == "panel-corrupt":
            message = {"cmd": "panel_corrupt", "frames": int(rest[0])}
        else:
            print(f"sim ctl: error: unknown action {action!r}", file=sys.stderr)
            return EXIT_BAD_INPUT
    except (IndexError, ValueError):
        print(f"sim ctl: error: bad arguments for {action!r}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        reply = request(control, message)
    except OSError as error:
        print(f"sim ctl: error: cannot reach the simulator at {control}: {error}", file=sys.stderr)
        return 1
    if not reply.get("ok"):
        print(f"sim ctl: error: {reply.get('error')}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(json.dumps(reply["state"], indent=2 if action == "state" else None))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sim", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the simulated shaft on real protocols")
    serve.add_argument("--scenario", type=Path)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--modbus-port", type=int, default=0)
    serve.add_argument("--control-port", type=int, default=0)
    serve.add_argument("--baud", type=int, default=115200, help="emulate the RTU line's byte time; 0: instant")
    ctl = commands.add_parser("ctl", help="press buttons, inject faults, read the shaft's true state")
    ctl.add_argument("--control", help="HOST:PORT of a running `sim serve`")
    ctl.add_argument("--drop", type=int, default=0, help="with 'modbus': drop the next N answers")
    ctl.add_argument("--corrupt", type=int, default=0, help="with 'modbus': corrupt the next N answers")
    ctl.add_argument("words", nargs="+", help="action and arguments")
    fleet = commands.add_parser("fleet", help="a community's cars, each with its own platform link, on one broker")
    fleet.add_argument("--cars", type=int, default=223)
    fleet.add_argument("--duration", type=float, default=3600.0, help="simulated seconds")
    fleet.add_argument("--speed", type=float, default=1.0, help="simulated seconds per wall second (1: real time)")
    fleet.add_argument("--faults-per-car-h", type=float, default=2.0)
    fleet.add_argument("--rate-pct-per-5min", type=float, default=8.0, help="residential traffic per car")
    fleet.add_argument("--seed", type=int, default=1)
    fleet.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args(argv)
    if args.command == "fleet":
        return _fleet(args)
    return _serve(args) if args.command == "serve" else _ctl(args)


def _fleet(args: argparse.Namespace) -> int:
    from sim.fleet import run_fleet
    from sim.mosquitto import BrokerUnavailable

    if not 1 <= args.cars <= 5000 or args.duration <= 0 or args.speed <= 0 or args.faults_per_car_h < 0:
        print("sim fleet: error: --cars 1..5000, --duration > 0, --speed > 0, --faults-per-car-h >= 0",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    # SIGTERM stops the fleet like Ctrl-C, so the broker and the shard processes are stopped on the way out.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        report = run_fleet(args.cars, args.duration, args.speed, args.faults_per_car_h, args.seed,
                           args.rate_pct_per_5min)
    except KeyboardInterrupt:
        print("sim fleet: stopped", file=sys.stderr)
        return 1
    except BrokerUnavailable as error:
        print(f"sim fleet: error: {error}", file=sys.stderr)
        return 1
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0 if report["events_missing"] == 0 and report["connected"] == report["cars"] else 1


if __name__ == "__main__":
    sys.exit(main())
