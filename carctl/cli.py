"""The ``carctl`` command.

Exit codes: 0 success, 1 a run that finished with safety violations (or, for `carctl audit verify`, a maintenance
record tampered with), 2 bad input (a malformed scenario, an impossible configuration, a bad option, a file that
cannot be written, a fault log with malformed records), with one line naming the key or the option and no traceback; 141 (as for any command stopped by SIGPIPE), quietly, when whoever reads the
output stops reading (`carctl faults | head`); 130 (128 + SIGINT, as a shell reports it) when stopped by Ctrl-C, with one
line saying so and no traceback. Files a run writes are checked before the run starts, not after it:
a FIFO or a device is refused there, since writing to it would block or go nowhere. Text that cannot be encoded for
the terminal (a file name that is not UTF-8) is printed with backslash escapes, never refused.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

EXIT_OK = 0
EXIT_VIOLATIONS = 1
EXIT_BAD_INPUT = 2
EXIT_READER_GONE = 128 + signal.SIGPIPE
EXIT_INTERRUPTED = 128 + signal.SIGINT
DEFAULT_FAULT_LOG = Path("/var/lib/carctl/faults.json")  # runtime.fault_log's default


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # One line, naming the option: the usage would bury it (`--help` has it).
        print(f"{self.prog}: error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more (got {value})")
    return value


def _sheaves(text: str) -> int:
    value = _positive_int(text)
    if value > 12:
        raise argparse.ArgumentTypeError(f"must be 1 to 12 (got {value})")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0 (got {text})")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="carctl", description="Car controller for small residential lifts.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    sim = commands.add_parser("sim", help="run the controller against the simulated shaft on virtual time")
    sim.add_argument("--scenario", type=Path, help="scenario file (TOML); default: the default building, one "
                                                   "hour of morning residential traffic")
    sim.add_argument("--duration", type=_positive_float, help="traffic duration in seconds (overrides the file)")
    sim.add_argument("--seed", type=int, help="traffic seed (overrides the file)")
    sim.add_argument("--json", type=Path, metavar="FILE", help="write the report as JSON")
    sim.add_argument("--trace", type=Path, metavar="FILE", help="write a JSON Lines trace, one record per tick")
    sim.add_argument("--trace-every", type=_positive_int, default=1, metavar="N", help="trace every Nth tick")
    sim.add_argument("--plot", type=Path, metavar="FILE.png",
                     help="write a PNG: position, speed, doors, waiting times")
    sim.add_argument("--no-skip", action="store_true", help="step every tick, even idle ones (same result, slower)")
    sim.add_argument("--quiet", action="store_true", help="no progress bar")
    sim.add_argument("--progress", action="store_true",
                     help="a progress line on stderr even when it is not a terminal (a line every 10 %%); on a "
                          "terminal the bar is shown anyway")
    sim.add_argument("--rope-sheaves", type=_sheaves, default=None, metavar="N",
                     help="sheaves the hoist ropes pass over, for the report's rope bends (1..12; default 4: "
                          "2:1 roping, machine-room-less)")
    sim.add_argument("--face", action="store_true",
                     help="simulate the face feature: the car camera shows boarding residents to the recogniser")

    run = commands.add_parser("run", help="run the firmware's real-time control loop")
    run.add_argument("--config", type=Path, required=True, help="firmware configuration (TOML)")
    run.add_argument("--drive", metavar="ENDPOINT", help="tcp://IP:PORT or rtu:/dev/PATH (overrides drive.endpoint)")
    run.add_argument("--panel", metavar="PORT", help="panel bus serial port (overrides panel.port)")
    run.add_argument("--modem", metavar="PORT", help="the alarm's modem serial port (overrides alarm.modem_port)")
    run.add_argument("--run-seconds", type=_positive_float, help="stop after this long")
    run.add_argument("--check", action="store_true",
                     help="check the configuration, ports, drive, files, keys, clock and free space; print a verdict "
                          "per item and exit (0: ready, 2: a problem) without starting the loop or moving the car")

    faults = commands.add_parser("faults", help="show the car's fault log (runtime.fault_log); malformed records are "
                                                "left out, counted on stderr, and make the exit code 2")
    where = faults.add_mutually_exclusive_group()
    where.add_argument("--log", type=Path, help=f"the fault log (default: {DEFAULT_FAULT_LOG})")
    where.add_argument("--config", type=Path, help="the firmware configuration naming runtime.fault_log")
    faults.add_argument("--last", type=_positive_int, default=50, metavar="N", help="the last N records")
    faults.add_argument("--json", action="store_true", help="JSON lines instead of a table")

    from carctl.runtime.audit_cli import add_parser as add_audit_parser

    add_audit_parser(commands, _Parser)
    learned = commands.add_parser("learned", help="the landing table the last shaft learning run measured "
                                                  "(runtime.learned_table)")
    learned_commands = learned.add_subparsers(dest="learned_command", required=True, parser_class=_Parser)
    show = learned_commands.add_parser("show", help="the learned table beside the typed one; exit 2 when it is "
                                                    "refused (the car then runs on the typed table)")
    show.add_argument("--config", type=Path, required=True, help="the firmware's configuration (board.toml)")
    show.add_argument("--json", action="store_true", help="the record as JSON")

    from carctl.face.cli import add_parser as add_face_parser

    add_face_parser(commands, _Parser)
    from carctl.platform.console import add_parser as add_platform_parser

    add_platform_parser(commands, _Parser)
    from carctl.service.cli import add_parser as add_service_parser

    add_service_parser(commands, _Parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    tolerate_unencodable_output()
    try:
        code = _main(argv)
        sys.stdout.flush()  # here, where a reader that has gone is caught, not at exit
    except KeyboardInterrupt:
        # Ctrl-C is the person at the terminal deciding to stop: one line, not the stack of wherever it landed.
        print("carctl: stopped (Ctrl-C)", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _discard_stdout()
        return EXIT_READER_GONE
    except OSError as error:
        if error.errno not in (errno.ENOSPC, errno.EIO, errno.EFBIG, errno.EDQUOT):
            raise
        _discard_stdout()  # the output cannot be written (stdout on a full disk, /dev/full): say so in one line
        print(f"carctl: error: the output cannot be written ({error.strerror})", file=sys.stderr)
        return EXIT_BAD_INPUT
    return code



def tolerate_unencodable_output() -> None:
    """Print what the terminal's encoding cannot hold (a file name that is not UTF-8, under
    PYTHONIOENCODING=utf-8:strict) with backslash escapes instead of failing with UnicodeEncodeError."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            try:
                reconfigure(errors="backslashreplace")
            except (ValueError, OSError):  # a closed or detached stream: nothing will be printed to it anyway
                pass


def _discard_stdout() -> None:
    """Whoever read stdout has gone: what is left in its buffer, flushed at exit, goes nowhere instead of raising
    BrokenPipeError again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # not a file descriptor (a test's captured stdout)
        pass


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "sim":
        return run_sim(args)
    if args.command == "run":
        from carctl.runtime.main import run_firmware

        return run_firmware(args.config, args.drive, args.panel, args.run_seconds, args.check, modem=args.modem)
    if args.command == "faults":
        path = args.log if args.config is None else _fault_log_of(args.config)
        if isinstance(path, int):
            return path
        return _show_faults(path or DEFAULT_FAULT_LOG, args.last, args.json)
    if args.command == "audit":
        from carctl.runtime.audit_cli import run as run_audit

        return run_audit(args)
    if args.command == "learned":
        return _show_learned(args.config, args.json)
    if args.command == "face":
        from carctl.face.cli import run as run_face

        return run_face(args)
    if args.command == "platform":
        from carctl.platform.console import run as run_platform

        return run_platform(args)
    if args.command == "service":
        from carctl.service.cli import run as run_service

        return run_service(args)
    return EXIT_BAD_INPUT


def _fault_log_of(config_path: Path) -> Path | int:
    """runtime.fault_log of the configuration, as `carctl audit --config` and `carctl learned show` read theirs; an
    exit code (with its one sentence said) when the file is refused or keeps no fault log."""
    from carctl.runtime import config as firmware_config

    try:
        runtime = firmware_config.load(config_path).runtime
    except (OSError, ValueError) as error:
        message = str(error)
        return _fail(message if str(config_path) in message else f"{config_path}: {message}")
    if not runtime.fault_log:
        return _fail(f"{config_path}: runtime.fault_log is empty: this configuration keeps no fault log")
    return Path(runtime.fault_log)


def _drive_code_text(code: object) -> str:
    """The drive's own fault code as the drive's manual and docs/faults.md give it: 49 (0x31, comm loss)."""
    from carctl.protocol.drive_map import DriveFaultCode

    if isinstance(code, bool) or not isinstance(code, int):
        return str(code)
    try:
        name = DriveFaultCode(code).name.lower().replace("_", " ")
    except ValueError:
        return f"{code} (0x{code:02X})" if 0 <= code <= 0xFFFF else str(code)
    return f"{code} (0x{code:02X}, {name})"


def _show_faults(path: Path, last: int, as_json: bool) -> int:
    """Print the good records; a log with malformed records is still shown, then refused on stderr with exit 2."""
    import datetime

    from carctl.runtime.fault_log import read_log

    try:
        contents = read_log(path)
    except FileNotFoundError:
        return _fail(f"{path}: no fault log (has the firmware run with runtime.fault_log set?)")
    except (OSError, ValueError) as error:
        return _fail(str(error))
    for record in contents.records[-last:]:
        if as_json:
            print(json.dumps(record))
            continue
        # read_log() has checked every key printed here: its type, printable text, a time within 1970-2106.
        when = datetime.datetime.fromtimestamp(float(record["t"])).isoformat(sep=" ", timespec="seconds")
        print(f"{when}  {record['event']:7}  {record['code']:>3}  {record['fault']:24} "
              f"level {record['level']}  {record['mode']}/{record['phase']}  "
              f"landing {record['landing']}  {record['position_m']} m  "
              f"{record['speed_m_s']} m/s  {record['load_kg']} kg  doors {record['door']}"
              + (f"  drive code {_drive_code_text(record['drive_code'])}" if "drive_code" in record else ""))
    if contents.malformed:
        return _fail(f"{path}: {contents.malformed} malformed record(s) not shown; the first: "
                     f"{contents.first_problem}")
    return EXIT_OK


def _show_learned(config_path: Path, as_json: bool) -> int:
    """The learned landing table the firmware configured by ``config_path`` would use at start, beside the typed
    one, in millimetres of difference; a table the firmware would refuse is exit 2, with the reason."""
    from carctl.runtime import config as firmware_config
    from carctl.runtime.learned_table import read, startup

    try:
        config = firmware_config.load(config_path)
    except (OSError, ValueError) as error:
        return _fail(str(error))  # it names the file and the key
    path = config.runtime.learned_table
    if not path:
        print("runtime.learned_table is empty: no learned table is kept; the typed building.landings_m is used")
        return EXIT_OK
    try:
        record = read(Path(path))
    except (OSError, ValueError) as error:
        reason = getattr(error, "reason", None) or getattr(error, "strerror", None) or error
        return _fail(f"{path}: refused ({reason}); the firmware uses the typed table")
    if record is None:
        print(f"{path}: no learned table (no learning run yet); the typed building.landings_m is used")
        return EXIT_OK
    _, source, problem = startup(config.controller, path)
    if as_json:
        print(json.dumps({"path": path, "learned_at": record.learned_at, "landings_m": record.table.landings_m,
                          "typed_landings_m": config.controller.building.landings_m,
                          "vane_edges_m": record.table.vane_edges_m, "switch_edges": record.table.switch_edges,
                          "used": source, "problem": problem or None}))
    else:
        print(f"{path}: learned {record.learned_at}")
        typed = config.controller.building.landings_m
        print("landing  learned m  typed m  difference mm  vane lower m  vane upper m")
        edges = record.table.vane_edges_m
        for index, learned_m in enumerate(record.table.landings_m):
            typed_text = f"{'':7}  {'':13}"
            if index < len(typed):
                typed_text = f"{typed[index]:7.3f}  {(learned_m - typed[index]) * 1000:+13.1f}"
            # The bottom vane's lower and the top vane's upper edge are not passed by the run: "-".
            lower, upper = edges[index] if index < len(edges) else (None, None)
            print(f"{index:7}  {learned_m:9.4f}  {typed_text}  {_edge_text(lower):>12}  {_edge_text(upper):>12}")
        for name, edge, height_m in record.table.switch_edges:
            print(f"switch {name} {edge} at {height_m:.4f} m")
    if problem:
        return _fail(f"{problem}; the firmware uses the typed table")
    return EXIT_OK


def _edge_text(height_m: float | None) -> str:
    return "-" if height_m is None else f"{height_m:.4f}"


def _fail(message: str) -> int:
    print(f"carctl: error: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


def _unwritable(path: Path | None, option: str) -> str | None:
    """Why ``option``'s file cannot be written (checked before a run, not after it), or None if it can."""
    from carctl.filein import output_problem

    return None if path is None else output_problem(path, option)


def run_sim(args: argparse.Namespace) -> int:
    import dataclasses

    from carctl.core.config import ConfigError
    from sim.lockstep import Lockstep
    from sim.scenario import Scenario, ScenarioError, check_traffic_volume, load

    try:
        scenario = load(args.scenario) if args.scenario else Scenario(name="default")
    except ScenarioError as error:
        return _fail(str(error))
    for path, option in ((args.json, "--json"), (args.trace, "--trace"), (args.plot, "--plot")):
        problem = _unwritable(path, option)
        if problem:
            return _fail(problem)
    if args.plot is not None and args.plot.suffix.lower() != ".png":
        return _fail(f"--plot {args.plot}: the plot is a PNG; name the file *.png")
    traffic = scenario.traffic
    # The options go through the traffic table's own ranges (TrafficConfig.RANGES), as the file's values do.
    for option, key, value in (("--duration", "duration_s", args.duration), ("--seed", "seed", args.seed)):
        if value is not None:
            try:
                traffic = dataclasses.replace(traffic, **{key: value})
            except ConfigError as error:
                return _fail(f"{option}: {error.message}")
    if args.duration is not None:
        try:
            check_traffic_volume(scenario.controller.building, traffic)
        except ScenarioError as error:
            return _fail(f"--duration: {error.message}")
    scenario = dataclasses.replace(scenario, traffic=traffic)

    trace_file: _TraceFile | None = None
    plot_trace: list[str] | None = None
    try:
        if args.trace:
            trace_file = _TraceFile(args.trace)
        elif args.plot:
            plot_trace = []
        sink: Any = trace_file if trace_file is not None else (_ListSink(plot_trace) if plot_trace is not None
                                                                else None)
        every = args.trace_every if trace_file is not None else max(args.trace_every, 5)
        camera = None
        if args.face:
            from sim.camera import SimulatedCamera

            camera = SimulatedCamera(scenario.controller.building.landing_count, scenario.traffic.seed)
        # Bounded memory (a year's run) unless the plot wants every passenger's wait or the camera every passenger.
        lockstep = Lockstep(scenario, skip_idle=not args.no_skip, trace=sink, trace_every=every, camera=camera,
                            bounded=args.plot is None and camera is None)
        shown = not args.quiet and (args.progress or sys.stderr.isatty())
        progress = _Progress(traffic.duration_s) if shown else None
        try:
            report = lockstep.run(progress)
        except KeyboardInterrupt:
            if progress is not None:
                progress.done()
            simulated_s = lockstep.tick * lockstep.period_s
            print(f"carctl sim: stopped (Ctrl-C) after {simulated_s:,.0f} of {traffic.duration_s:,.0f} simulated s; "
                  f"no report was written", file=sys.stderr)
            return EXIT_INTERRUPTED
        if progress is not None:
            progress.done()
        if trace_file is not None:
            trace_file.close()  # the last lines are written here: a full disk shows now, not at exit
    except OSError as error:
        return _fail(str(error) if isinstance(error, _OutputError) else f"{error.filename}: {error.strerror}")
    finally:
        if trace_file is not None:
            trace_file.abandon()  # closed already, unless the run stopped on an error
    from sim.maintenance import ROPE_SHEAVES, maintenance_report

    report.update(maintenance_report(report, args.rope_sheaves or ROPE_SHEAVES))
    if args.json:
        try:
            args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        except OSError as error:
            return _fail(f"--json {args.json}: {error.strerror}")
    print(summary_table(report))
    if args.plot:
        from sim.plot import plot_run

        waits = [(p.boarded_tick - p.arrival_tick) * scenario.controller.car.control_period_s
                 for p in lockstep.flow.everyone if p.boarded_tick >= 0]
        try:
            lines = plot_trace if plot_trace is not None else args.trace.read_text(encoding="utf-8").splitlines()
            plot_run([json.loads(line) for line in lines], waits, args.plot, scenario.name)
        except OSError as error:
            return _fail(f"--plot {args.plot}: {error.strerror}")
        print(f"plot written to {args.plot}")
    return EXIT_VIOLATIONS if report["safety_violations"] else EXIT_OK


class _OutputError(OSError):
    """A file the run writes could not be written; the message names the option and the file."""


class _TraceFile:
    """The --trace file; a write that fails (a full disk) is an _OutputError naming --trace and the file, where a
    bare OSError from a write names no file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.file = path.open("w", encoding="utf-8")
        except OSError as error:
            raise self._error(error) from None

    def _error(self, error: OSError) -> _OutputError:
        return _OutputError(f"--trace {self.path}: {error.strerror or error}")

    def write(self, text: str) -> None:
        try:
            self.file.write(text)
        except OSError as error:
            raise self._error(error) from None

    def close(self) -> None:
        try:
            self.file.close()
        except OSError as error:
            raise self._error(error) from None

    def abandon(self) -> None:
        """Close, if close() has not, after a failure that is reported already."""
        try:
            self.file.close()
        except OSError:
            pass


class _ListSink:
    def __init__(self, lines: list[str]) -> None:
        self.lines = lines

    def write(self, text: str) -> None:
        self.lines.append(text.rstrip("\n"))


class _Progress:
    """A progress bar on stderr, rewritten in place on a terminal and printed every 10 % otherwise (--progress), with
    the simulated days and the time left at the rate so far. Never on stdout, which the summary (and a report
    piped on) owns."""

    def __init__(self, duration_s: float) -> None:
        self.duration_s = duration_s
        self.tty = sys.stderr.isatty()
        self.last_decile = -1
        self.started = time.monotonic()

    def _left(self, fraction: float) -> str:
        elapsed_s = time.monotonic() - self.started
        if fraction <= 0.0 or elapsed_s < 1.0:
            return ""
        left_s = elapsed_s * (1.0 - fraction) / fraction
        return f", {left_s / 60:.0f} min left" if left_s >= 120 else f", {left_s:.0f} s left"

    def __call__(self, fraction: float) -> None:
        if self.tty:
            bar = "#" * int(fraction * 30)
            simulated_s = fraction * self.duration_s
            amount = (f"{simulated_s / 86400:6.1f} d of {self.duration_s / 86400:.1f} d"
                      if self.duration_s >= 2 * 86400 else f"{simulated_s:8.0f} s of {self.duration_s:.0f} s")
            print(f"\rsimulating {amount} [{bar:<30}]{self._left(fraction):<18}", end="", file=sys.stderr,
                  flush=True)
            return
        decile = int(fraction * 10)
        if decile > self.last_decile:
            self.last_decile = decile
            print(f"simulating: {decile * 10} %{self._left(fraction)}", file=sys.stderr, flush=True)

    def done(self) -> None:
        if self.tty:
            print(file=sys.stderr)


def summary_table(report: dict[str, Any]) -> str:
    def row(name: str, value: str) -> str:
        return f"  {name:<38} {value}"

    def dist(key: str) -> str:
        d = report[key]
        return f"mean {d['mean']:6.1f}   p95 {d['p95']:6.1f}   max {d['max']:6.1f}"

    lines = [
        f"carctl sim — {report['scenario']} (pattern {report['pattern']}, seed {report['seed']})",
        row("simulated", f"{report['sim_seconds']:.0f} s in {report['wall_seconds']:.2f} s wall "
                         f"({report['sim_seconds'] / max(report['wall_seconds'], 1e-9):,.0f}x real time)"),
        row("passengers generated / served", f"{report['passengers_generated']} / {report['passengers_served']}"),
        row("waiting time (s)", dist("wait_s")),
        row("transit time (s)", dist("transit_s")),
        row("time to destination (s)", dist("time_to_destination_s")),
        row("worst 5-minute mean wait (s)", f"{report['worst_5min_mean_wait_s']:.1f}"),
        row("handling capacity (5 min)", f"{report['handling_capacity_5min']} persons "
                                         f"({report['handling_capacity_pct_5min']:.1f} % of population)"),
        row("trips / door cycles", f"{report['trips']} / {report['door_cycles']}"),
        row("levelling error (mm)", f"mean {report['levelling_error_mm']['mean']:.2f}   "
                                    f"max {report['levelling_error_mm']['max']:.2f}"),
        row("energy (kWh)", f"{report['energy_kwh']:.3f}"),
        *_maintenance_rows(report, row),
        row("faults raised", str(len(report["faults"]))),
        row("faults active at the end", ", ".join(report.get("active_faults", [])) or "none"),
        row("safety violations", str(report["safety_violations"])),
    ]
    lines += _warnings(report)
    face = report.get("face")
    if face:
        lines += [
            row("face: rides started by a face", f"{face['rides_started_by_face']} of {face['residents_seen']} "
                                                 f"enrolled residents seen"),
            row("face: residents missed / wrong person", f"{face['residents_missed']} / {face['wrong_person']}"),
            row("face: visitors accepted", f"{face['visitors_accepted']} of {face['visitors_seen']}"),
        ]
    return "\n".join(lines)


def _warnings(report: dict[str, Any]) -> list[str]:
    """Plain sentences for what the counts above hide: `safety violations 0` says nothing about a car that a fault
    stopped, so a run that left passengers waiting or ended with a fault active says so. The exit code is unchanged
    (0 unless there were safety violations): it is a contract (DESIGN.md), and a fault the car reacted to is not one."""
    warnings: list[str] = []
    unserved = report["passengers_generated"] - report["passengers_served"]
    if unserved > 0:
        warnings.append(f"note: {unserved} of {report['passengers_generated']} passengers were not served "
                        f"by the end of the run")
    active = report.get("active_faults") or []
    if active:
        warnings.append(f"note: the run ended with {', '.join(active)} active: the car was stopped or restricted, "
                        f"see `faults` in --json for when each was raised")
    return warnings


def _maintenance_rows(report: dict[str, Any], row: Any) -> list[str]:
    """The planner's lines (sim/maintenance.py), when the report has them."""
    plan = report.get("maintenance")
    if not plan:
        return []
    yearly = plan["per_year"]
    lines = [
        row("running hours / starts per hour", f"{report['running_hours']:.1f} h / {report['starts_per_hour']:.1f}"),
        row("rope bends", f"{report['rope_bends']} ({plan['rope_sheaves']} sheaves a trip)"),
        row("per year", f"{yearly['trips']:,} trips, {yearly['door_cycles']:,} door cycles, "
                        f"{yearly['rope_bends']:,} rope bends, {yearly['running_hours']:,.0f} running h"),
    ]
    for interval in plan["intervals"]:
        low, high = interval["count_in_interval"]
        span = f"{low:,}" if low == high else f"{low:,}-{high:,}"
        lines.append(row(f"  {interval['item'][:36]}", f"{span} {interval['counts'].replace('_', ' ')} (typical)"))
    return lines


if __name__ == "__main__":
    raise SystemExit(main())
