"""`python -m sim serve` (the simulated shaft on real protocols) and `python -m sim ctl` (talk to it).

    python -m sim serve [--scenario FILE] [--host 127.0.0.1] [--modbus-port N] [--control-port N] [--baud 115200]
    python -m sim ctl --control HOST:PORT state
    python -m sim ctl --control HOST:PORT car-call 3
    python -m sim ctl --control HOST:PORT hall-call 2 down
    python -m sim ctl --control HOST:PORT inject comm_loss | clear comm_loss
    python -m sim ctl --control HOST:PORT modbus --drop 5 | --corrupt 5
    python -m sim ctl --control HOST:PORT key eeo on | eeo-run down | eeo-run stop
    python -m sim ctl --control HOST:PORT key inspection on | inspection-run down | learn
    python -m sim ctl --control HOST:PORT panel-garbage 200
    python -m sim fleet --cars 223 --duration 3600 [--speed 1] [--faults-per-car-h 2] [--json FILE]
    python -m sim fleet --lockstep --cars 223 --duration 86400 [--jobs N] [--scenario FILE] [--faults-per-car-h 0]
                        [--json FILE]

The control endpoint is printed by `serve`; `ctl` also reads it from $CARCTL_SIM_CONTROL.

Exit codes: 0 done, 1 a fleet that lost events or cars (with --lockstep: a car that failed or had a safety
violation), 2 bad input (a bad option, scenario or request, a simulator that cannot be reached at --control or
answers nonsense), with one line on stderr and no traceback; 130 a lockstep fleet stopped by Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import math
import os
import re
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from carctl.core.config import YEAR_S, Range

EXIT_BAD_INPUT = 2
# Arrivals per 5 minutes, % of a car's residents, when neither --rate-pct-per-5min nor a --scenario gives one.
DEFAULT_RATE_PCT_PER_5MIN = 8.0
# The drive's and panel bus's standard rates, or 0: no byte time (instant).
BAUDS = (0, 9600, 19200, 38400, 57600, 115200, 230400)
# A state reply is a few kilobytes; anything past this is not the simulator talking.
MAX_REPLY_BYTES = 1024 * 1024


# The actions of `sim ctl`, with their arguments (for the refusal of an unknown one, and --help).
ACTIONS: dict[str, str] = {
    "state": "", "car-call": "LANDING", "accessible-call": "LANDING", "hall-call": "LANDING up|down",
    "button": "door_open|door_close|alarm|accessible|fault_reset|alarm_reset [--hold S]",
    "obstruct": "SECONDS [front|rear]", "load": "KG",
    "seat-on": "", "seat-off": "", "fire-on": "", "fire-off": "", "alarm-hold": "", "alarm-release": "",
    "inject": "KIND", "clear": "KIND",
    "key": "inspection|eeo|independent on|off", "inspection-run": "up|down|stop", "eeo-run": "up|down|stop",
    "modbus": "(with --drop N, --corrupt N)", "panel-garbage": "BYTES", "panel-corrupt": "FRAMES",
    "rescue": "answer|busy|no-answer|hangup [NUMBER]", "modem-dead": "", "modem-alive": "", "learn": "",
}
# One label of a host name (RFC 1123; '_' too, which resolvers accept): what the IDNA codec takes without failing.
_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)")


class ControlError(ValueError):
    """A --control address that is malformed, or a simulator whose answer is not a JSON object."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # One line, naming the option: the usage would bury it (`--help` has it).
        print(f"{self.prog}: error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT)


def _in(span: Range, whole: bool = False) -> Callable[[str], float]:
    """An option's type: a number (a whole one if ``whole``) inside ``span``; NaN and infinities are refused."""

    def parse(text: str) -> float:
        try:
            value: float = int(text) if whole else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a {'whole ' if whole else ''}number: {text[:40]!r}") from None
        if not (math.isfinite(value) and span.holds(value)):
            kind = "a whole number" if whole else "a number"
            raise argparse.ArgumentTypeError(f"must be {kind} {span.words()} (got {text[:40]})")
        return value

    return parse


PORT = _in(Range(0, 65535), whole=True)


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


def _address(control: str) -> tuple[str, int]:
    host, _, port = control.rpartition(":")
    if not host or not (port.isascii() and port.isdigit() and len(port) <= 5) or not 1 <= int(port) <= 65535:
        raise ControlError(f"--control {control[:80]!r} is not HOST:PORT (the control endpoint `sim serve` prints)")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]  # [::1]:PORT
    if not _is_host(host):
        raise ControlError(f"--control {control[:80]!r}: {host[:80]!r} is not a host name or an IP address")
    return host, int(port)


def _is_host(host: str) -> bool:
    """An IP address, or a host name whose every label the resolver takes (``a..b`` would raise UnicodeError)."""
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    name = host.removesuffix(".")
    return 0 < len(name) <= 253 and all(_HOST_LABEL.fullmatch(label) for label in name.split("."))


def request(control: str, message: dict[str, Any], timeout_s: float = 5.0) -> dict[str, Any]:
    """The simulator's answer to one request; OSError if it cannot be reached or does not answer within
    ``timeout_s``, ControlError for a malformed address or an answer that is not a JSON object."""
    from carctl import safejson

    host, port = _address(control)
    deadline = time.monotonic() + timeout_s
    with socket.create_connection((host, port), timeout=timeout_s) as connection:
        connection.sendall((json.dumps(message, allow_nan=False) + "\n").encode())
        reply = b""
        while not reply.endswith(b"\n") and len(reply) <= MAX_REPLY_BYTES:
            connection.settimeout(max(0.001, deadline - time.monotonic()))
            chunk = connection.recv(65536)
            if not chunk:
                break
            reply += chunk
    try:
        answer = safejson.loads(reply, max_bytes=MAX_REPLY_BYTES, max_values=100_000)
    except safejson.JsonRefused as refused:
        raise ControlError(f"the answer from {control} is not the simulator's ({refused})") from None
    if not isinstance(answer, dict):
        raise ControlError(f"the answer from {control} is not the simulator's (not a JSON object)")
    return answer


def _message(action: str, rest: list[str], args: argparse.Namespace) -> dict[str, Any] | None:
    """The request for one `ctl` action, or None for an unknown action; ValueError or IndexError for bad
    arguments. Ranges are the simulator's to check: it knows the building."""
    simple = {"state": {"cmd": "state"}, "seat-on": {"cmd": "seat", "occupied": True},
              "seat-off": {"cmd": "seat", "occupied": False}, "fire-on": {"cmd": "fire_switch", "on": True},
              "fire-off": {"cmd": "fire_switch", "on": False}, "alarm-hold": {"cmd": "alarm", "held": True},
              "alarm-release": {"cmd": "alarm", "held": False}, "modem-dead": {"cmd": "modem", "dead": True},
              "modem-alive": {"cmd": "modem", "dead": False}, "learn": {"cmd": "learn"}}
    if action in simple:
        return simple[action]
    if action in ("car-call", "accessible-call"):
        return {"cmd": action.replace("-", "_"), "landing": int(rest[0])}
    if action == "hall-call":
        return {"cmd": "hall_call", "landing": int(rest[0]), "direction": rest[1]}
    if action == "button":
        return {"cmd": "button", "name": rest[0], **({"hold_s": args.hold} if args.hold is not None else {})}
    if action == "obstruct":
        # The front (or only) door's light curtain unless the rear one is named (a car with doors on both sides).
        return {"cmd": "obstruct", "duration_s": _finite(rest[0]), **({"side": rest[1]} if len(rest) > 1 else {})}
    if action == "load":
        return {"cmd": "load", "load_kg": _finite(rest[0])}
    if action in ("inject", "clear"):
        return {"cmd": action, "kind": rest[0]}
    if action == "key":  # a key switch: the car top's inspection, the cabinet's emergency electrical operation
        if rest[1] not in ("on", "off"):
            raise ValueError(f"key {rest[0]} takes on or off (got {rest[1][:20]!r})")
        return {"cmd": "key", "name": rest[0], "on": rest[1] == "on"}
    if action in ("inspection-run", "eeo-run"):  # hold a hold-to-run button, or let go (stop)
        if rest[0] not in ("up", "down", "stop"):
            raise ValueError(f"{action} takes up, down or stop (got {rest[0][:20]!r})")
        return {"cmd": action.replace("-", "_"), "direction": None if rest[0] == "stop" else rest[0]}
    if action == "modbus":
        return {"cmd": "modbus", "drop": args.drop, "corrupt": args.corrupt}
    if action == "panel-garbage":
        return {"cmd": "panel_garbage", "bytes": int(rest[0])}
    if action == "panel-corrupt":
        return {"cmd": "panel_corrupt", "frames": int(rest[0])}
    if action == "rescue":  # what the simulated rescue centre does with the alarm's calls, or it hangs up
        # With a number: what it does with the calls to that number only (the first busy, the second answers).
        return {"cmd": "rescue", "action": rest[0], **({"number": rest[1]} if len(rest) > 1 else {})}
    return None


def _missing(action: str, rest: list[str]) -> str:
    """One sentence naming what an action lacks: `key eeo` is missing on|off, not "missing arguments"."""
    usage = ACTIONS.get(action, "")
    required = re.sub(r"\[[^\]]*\]", "", usage).split()  # optional words ([NUMBER], [--hold S]) are not missing
    lacking = required[len(rest):] or required
    return f"{' '.join([action, *rest])[:60]!r} is missing {' '.join(lacking)} (usage: {action} {usage})"


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"not a finite number: {text}")
    return value


def _ctl(args: argparse.Namespace) -> int:
    control = args.control or os.environ.get("CARCTL_SIM_CONTROL")
    if not control:
        print("sim ctl: error: give --control HOST:PORT (printed by `sim serve`) or set CARCTL_SIM_CONTROL",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    action, rest = args.words[0], args.words[1:]
    try:
        message = _message(action, rest, args)
    except IndexError:
        print(f"sim ctl: error: {_missing(action, rest)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except ValueError as error:
        print(f"sim ctl: error: bad arguments for {action[:40]!r} ({str(error)[:80]})", file=sys.stderr)
        return EXIT_BAD_INPUT
    if message is None:
        print(f"sim ctl: error: unknown action {action[:40]!r} (known: {', '.join(ACTIONS)})", file=sys.stderr)
        return EXIT_BAD_INPUT
    # Words beyond the action's arguments are refused, not ignored: `rescue answer 1234 extra` was meant otherwise.
    # (Each word of an action's arguments in ACTIONS is one argument; button's --hold and modbus's are options.)
    takes = {"button": 1, "modbus": 0}.get(action, len(ACTIONS[action].split()))
    if len(rest) > takes:
        print(f"sim ctl: error: {action[:40]!r} takes {takes} argument{'s' if takes != 1 else ''} "
              f"({ACTIONS[action] or 'none'}), not {len(rest)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        reply = request(control, message)
    except ControlError as error:
        print(f"sim ctl: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as error:
        print(f"sim ctl: error: cannot reach the simulator at {control[:80]} ({error.strerror or error}); is "
              f"`sim serve` running, and is --control the control endpoint it printed?", file=sys.stderr)
        return EXIT_BAD_INPUT
    if not reply.get("ok") or not isinstance(reply.get("state"), dict):
        print(f"sim ctl: error: {str(reply.get('error', 'the simulator answered without a state'))[:300]}",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    print(json.dumps(reply["state"], indent=2 if action == "state" else None))
    return 0


def main(argv: list[str] | None = None) -> int:
    from carctl.cli import tolerate_unencodable_output

    tolerate_unencodable_output()  # a path that is not UTF-8 is printed escaped, whatever PYTHONIOENCODING says
    parser = _Parser(prog="python -m sim", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    serve = commands.add_parser("serve", help="run the simulated shaft on real protocols")
    serve.add_argument("--scenario", type=Path)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--modbus-port", type=PORT, default=0, help="0..65535; 0: any free port")
    serve.add_argument("--control-port", type=PORT, default=0, help="0..65535; 0: any free port")
    serve.add_argument("--baud", type=int, choices=BAUDS, default=115200,
                       help="emulate the RTU line's byte time; 0: instant")
    ctl = commands.add_parser("ctl", help="press buttons, inject faults, read the shaft's true state")
    ctl.add_argument("--control", help="HOST:PORT of a running `sim serve`")
    line_faults = _in(Range(0, 10_000), whole=True)
    ctl.add_argument("--drop", type=line_faults, default=0, help="with 'modbus': drop the next N answers (0..10000)")
    ctl.add_argument("--corrupt", type=line_faults, default=0,
                     help="with 'modbus': corrupt the next N answers (0..10000)")
    ctl.add_argument("--hold", type=_in(Range(0.0, 600.0, "s", above=True)), default=None,
                     help="with 'button': hold it down for this many seconds (0..600), e.g. button alarm --hold 1.5")
    ctl.add_argument("words", nargs="+", metavar="ACTION", help="the action and its arguments: " + "; ".join(
        f"{action} {arguments}".rstrip() for action, arguments in ACTIONS.items()))
    fleet = commands.add_parser("fleet", help="a community's cars, each with its own platform link, on one broker; "
                                              "or, with --lockstep, every car on virtual time on all cores")
    fleet.add_argument("--cars", type=int, default=223)
    fleet.add_argument("--duration", type=_in(Range(0.0, YEAR_S, "s", above=True)), default=3600.0,
                       help="simulated seconds")
    fleet.add_argument("--speed", type=_in(Range(0.0, 10_000.0, above=True)), default=None,
                       help="simulated seconds per wall second (1, the default: real time); not with --lockstep")
    fleet.add_argument("--faults-per-car-h", type=_in(Range(0.0, 3600.0)), default=None,
                       help="drive faults injected per car-hour (default 2; 0 with --lockstep)")
    fleet.add_argument("--lockstep", action="store_true",
                       help="no broker: every car on virtual time, as fast as the cores allow (docs/performance.md)")
    fleet.add_argument("--jobs", type=_in(Range(1, 256), whole=True), default=None,
                       help="with --lockstep: worker processes, 1..256 (default: the CPU count)")
    fleet.add_argument("--rate-pct-per-5min", type=_in(Range(0.0, 100.0, "%")), default=None,
                       help="traffic per car (default 8, or the --scenario file's rate)")
    fleet.add_argument("--scenario", type=Path, metavar="FILE",
                       help="with --lockstep: every car runs this scenario's building, car, traffic and events "
                            "(default: the default building, residential traffic)")
    fleet.add_argument("--seed", type=_in(Range(0, 2**63 - 1), whole=True), default=1)
    fleet.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args(argv)
    if args.command == "fleet":
        return _lockstep_fleet(args) if args.lockstep else _fleet(args)
    return _serve(args) if args.command == "serve" else _ctl(args)


def _fleet(args: argparse.Namespace) -> int:
    from sim.fleet import run_fleet
    from sim.mosquitto import BrokerUnavailable

    problem = _fleet_problem(args)
    if args.jobs is not None and not problem:
        problem = "--jobs is for the lockstep fleet (add --lockstep)"
    if args.scenario is not None and not problem:
        problem = "--scenario is for the lockstep fleet (add --lockstep)"
    if problem:
        print(f"sim fleet: error: {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    # SIGTERM stops the fleet like Ctrl-C, so the broker and the shard processes are stopped on the way out.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        report = run_fleet(args.cars, args.duration, 1.0 if args.speed is None else args.speed,
                           2.0 if args.faults_per_car_h is None else args.faults_per_car_h, args.seed,
                           DEFAULT_RATE_PCT_PER_5MIN if args.rate_pct_per_5min is None else args.rate_pct_per_5min)
    except KeyboardInterrupt:
        print("sim fleet: stopped", file=sys.stderr)
        return 1
    except BrokerUnavailable as error:
        print(f"sim fleet: error: {error}", file=sys.stderr)
        return 1
    if not _print_report(report, args.json):
        return EXIT_BAD_INPUT
    return 0 if report["events_missing"] == 0 and report["connected"] == report["cars"] else 1


def _fleet_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with the options both fleets take, in one sentence, or None."""
    if not 1 <= args.cars <= 5000:
        return f"--cars 1..5000 (got {args.cars})"
    if args.json is not None:
        from carctl.filein import output_problem

        return output_problem(args.json, "--json")  # before the run, which may take minutes, not after it
    return None


def _lockstep_fleet(args: argparse.Namespace) -> int:
    """`sim fleet --lockstep`: exit 0 when every car ran without a safety violation, 1 when a car failed or
    violated, 2 for bad options, 130 when stopped (Ctrl-C or SIGTERM)."""
    from sim.community import default_jobs, run_community

    problem = _fleet_problem(args)
    if problem is None and args.speed is not None:
        problem = "--speed is for the real-time fleet; --lockstep runs as fast as the cores allow"
    scenario = None
    if problem is None and args.scenario is not None:
        scenario, problem = _fleet_scenario(args)
    if problem:
        print(f"sim fleet: error: {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    rate = args.rate_pct_per_5min
    if rate is None:
        rate = scenario.traffic.rate_pct_per_5min if scenario is not None else DEFAULT_RATE_PCT_PER_5MIN
    jobs = args.jobs if args.jobs is not None else default_jobs()
    tty = sys.stderr.isatty()

    def done(finished: int, total: int) -> None:
        if tty:
            print(f"\rsim fleet: {finished} of {total} cars done", end="" if finished < total else "\n",
                  file=sys.stderr, flush=True)

    signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM stops the workers as Ctrl-C does
    try:
        report = run_community(args.cars, args.duration, jobs, args.seed, rate, args.faults_per_car_h or 0.0,
                               on_done=done, scenario=scenario)
    except KeyboardInterrupt:
        print("\nsim fleet: stopped; the workers were stopped", file=sys.stderr)
        return 130
    if not _print_report(report, args.json):
        return EXIT_BAD_INPUT
    for failure in report["cars_failed"]:
        print(f"sim fleet: car {failure['car']} failed: {failure['error']}", file=sys.stderr)
    return 0 if not report["cars_failed"] and report["community"]["safety_violations"] == 0 else 1


def _fleet_scenario(args: argparse.Namespace) -> tuple[Any, str | None]:
    """--scenario, loaded and checked with the fleet's duration and rate as every car will run it: (the scenario,
    None), or (None, the one sentence that refuses it)."""
    import dataclasses

    from carctl.core.config import ConfigError
    from sim.scenario import ScenarioError, check_traffic_volume, load

    try:
        scenario = load(args.scenario)
        changes: dict[str, Any] = {"duration_s": args.duration}
        if args.rate_pct_per_5min is not None and scenario.traffic.hourly_rate_pct_per_5min:
            return None, (f"--rate-pct-per-5min: {args.scenario} gives a rate for each hour of the day "
                          f"(traffic.hourly_rate_pct_per_5min), which the option would not change")
        if args.rate_pct_per_5min is not None:
            changes["rate_pct_per_5min"] = args.rate_pct_per_5min
        traffic = dataclasses.replace(scenario.traffic, **changes)
        check_traffic_volume(scenario.controller.building, traffic)
    except ScenarioError as error:
        return None, str(error)
    except ConfigError as error:
        return None, f"--scenario {args.scenario}: {error.message}"
    return scenario, None


def _print_report(report: dict[str, Any], json_path: Path | None) -> bool:
    """The fleet's report on stdout, and in ``json_path`` if given; False (said on stderr) when that cannot be
    written."""
    text = json.dumps(report, indent=2)
    print(text)
    if json_path:
        try:
            json_path.write_text(text + "\n")
        except OSError as error:
            print(f"sim fleet: error: --json {json_path}: {error.strerror}", file=sys.stderr)
            return False
    return True


if __name__ == "__main__":
    sys.exit(main())
