"""`carctl run`: load the configuration, take real-time priority, start the process table, run the loop.

Rules of this module:
- Everything that can be refused is refused before the loop starts, with exit code 2 and one line naming the key or
  the option (`--panel`, `--drive`, `--run-seconds`, `runtime.log`, `runtime.socket_dir`): the options go through
  the same section checks and ranges as the file's keys.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import stat
import sys
from pathlib import Path

from carctl.adapters.drive import DriveLink, Endpoint, combined_for
from carctl.adapters.panelbus import PanelBusMaster
from carctl.adapters.serial_latency import lower_latency
from carctl.core.config import ConfigError
from carctl.protocol import drive_map
from carctl.runtime import config as firmware_config
from carctl.runtime.loop import ControlLoop, uses_side_channels
from carctl.runtime.structlog import open_log
from carctl.runtime.processes import ProcessTable
from carctl.runtime.realtime import set_realtime
from carctl.runtime.sidechannel import FIRMWARE_LOCK, InUseError, SocketDirError, hold_lock, prepare_socket_dir

EXIT_BAD_INPUT = 2


def run_firmware(config_path: Path, drive: str | None, panel: str | None, run_seconds: float | None,
                 check: bool = False, modem: str | None = None) -> int:
    # Each option overrides a key of the file; a refusal names the option the person typed.
    overrides = {"drive.endpoint": ("--drive", drive), "panel.port": ("--panel", panel),
                 "runtime.run_seconds": ("--run-seconds", run_seconds), "alarm.modem_port": ("--modem", modem)}
    try:
        config = firmware_config.load(config_path)
        if drive is not None:
            config = dataclasses.replace(config, drive=firmware_config.build_table(
                firmware_config.DriveSection, {**_fields(config.drive), "endpoint": drive}, "drive",
                firmware_config.FirmwareConfigError))
        if panel is not None:
            config = dataclasses.replace(config, panel=dataclasses.replace(config.panel, port=panel))
        if run_seconds is not None:
            config = dataclasses.replace(config, runtime=dataclasses.replace(config.runtime, run_seconds=run_seconds))
        if modem is not None:
            config = dataclasses.replace(config, alarm=firmware_config.build_table(
                firmware_config.AlarmSection, {**_fields(config.alarm), "modem_port": modem}, "alarm",
                firmware_config.FirmwareConfigError))
    except (firmware_config.FirmwareConfigError, ConfigError) as error:
        option, value = overrides.get(error.key, ("", None))
        key = option if value is not None else error.key
        print(f"carctl run: error: {key + ': ' if key else ''}{error.message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if check:
        from carctl.runtime.check import check_board, print_verdicts

        return print_verdicts(check_board(config, config_path, "--panel" if panel is not None else "panel.port",
                                          "--drive" if drive is not None else "drive.endpoint"))
    ports = [("--panel" if panel is not None else "panel.port", config.panel.port)]
    endpoint = Endpoint.parse(config.drive.endpoint)
    if endpoint.kind == "rtu":
        ports.append(("--drive" if drive is not None else "drive.endpoint", endpoint.address))
    for option, port in ports:
        port_problem = firmware_config.placeholder_port_problem(port, "--panel") or _not_a_serial_port(port)
        if port_problem:
            print(f"carctl run: error: {option}: {port_problem}", file=sys.stderr)
            return EXIT_BAD_INPUT
    # The panel bus has one master: a second firmware on the same port (a technician's `carctl run` while the service
    # runs) would poll the boards and drive the car beside the first. The loop holds the port exclusively; refuse here.
    if not PanelBusMaster.port_free(config.panel.port):
        print(f"carctl run: error: {'--panel' if panel is not None else 'panel.port'}: {config.panel.port} is in use by "
              f"another process (another carctl run? on a car, `systemctl stop carctl` first)", file=sys.stderr)
        return EXIT_BAD_INPUT
    if uses_side_channels(config):
        # The side channels' directory: only the firmware's user may enter it (docs/security.md); and only one
        # firmware may use it, so a second `carctl run` cannot take the running car's sockets over.
        try:
            # The descriptor stays open, and the lock held, until the process exits.
            hold_lock(prepare_socket_dir(Path(config.runtime.socket_dir)) / FIRMWARE_LOCK, "this runtime.socket_dir")
        except SocketDirError as error:
            print(f"carctl run: error: runtime.socket_dir: {error}", file=sys.stderr)
            return EXIT_BAD_INPUT
        except InUseError as error:
            print(f"carctl run: error: runtime.socket_dir: {error}: another carctl run is running (on a car, "
                  f"`systemctl stop carctl` first)", file=sys.stderr)
            return EXIT_BAD_INPUT
        except OSError as error:
            print(f"carctl run: error: runtime.socket_dir: {error}", file=sys.stderr)
            return EXIT_BAD_INPUT
    try:
        log = open_log(config.runtime.log, config.runtime.log_max_bytes)
    except OSError as error:
        why = getattr(error, "reason", None) or f"cannot be opened ({error.strerror or error})"
        print(f"carctl run: error: runtime.log: {config.runtime.log} {why}",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    realtime = set_realtime(config.runtime.realtime_priority, None if config.runtime.cpu < 0 else config.runtime.cpu)
    log.write("start", fifo=realtime.fifo, priority=realtime.priority, cpus=list(realtime.cpus),
              memory_locked=realtime.memory_locked, notes=list(realtime.notes), drive=config.drive.endpoint,
              panel=config.panel.port, period_s=config.controller.car.control_period_s)
    # A USB adapter's latency timer (16 ms by default) longer than the reply timeouts would make every read time
    # out: lowered where the driver allows, and said once in the log when it cannot be.
    budgets = [(config.panel.port, config.panel.response_timeout_s, "panel.response_timeout_s")]
    if endpoint.kind == "rtu":
        budgets.append((endpoint.address, config.drive.timeout_s, "drive.timeout_s"))
    for port, budget_s, key in budgets:
        latency = lower_latency(port, budget_s)
        if latency.before_ms is not None:
            log.write("latency_timer", port=port, before_ms=latency.before_ms, after_ms=latency.after_ms,
                      too_slow_for=key if latency.too_slow_for(budget_s) else None, note=latency.note)
    link = DriveLink(endpoint, config.drive.timeout_s, config.drive.baud,
                     drive_map.Plausibility(config.controller.car.rated_speed_m_s),
                     combined=combined_for(config.drive.transaction, endpoint, config.drive.baud,
                                           config.controller.car.control_period_s))
    master = PanelBusMaster(config.panel.port, config.panel.baud, config.panel.response_timeout_s)
    processes = ProcessTable(config, config_path, log)
    if modem is not None:
        processes.extra_args["modem"] = ("--port", config.alarm.modem_port)
    loop = ControlLoop(config, link, master, log, child_pid=processes.pid_of)
    # The face worker runs while the feature is on, which the platform may switch; the platform link whenever
    # configured. The loop has the process table supervised about once a second.
    processes.set_enabled("face", loop.face_enabled)
    processes.set_enabled("platform", config.processes.platform)
    processes.set_enabled("modem", config.processes.modem)
    processes.set_enabled("service", config.processes.service)
    loop.on_face_switch = lambda enabled: processes.set_enabled("face", enabled)
    loop.on_second = processes.supervise
    processes.supervise()
    stopping = False

    def request_stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        loop.run(config.runtime.run_seconds, lambda: stopping)
    finally:
        processes.stop()
    log.write("stop", tick=loop.tick)
    log.close()
    return 0


def _not_a_serial_port(path: str) -> str | None:
    """Why ``path`` cannot be the panel bus, or None. A port that is not there yet (a USB adapter not plugged in) is
    allowed: the loop opens it again and again, and the boards' inputs go stale meanwhile."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return None
    except OSError as error:
        return f"{path}: {error.strerror}"
    if not stat.S_ISCHR(mode):
        return f"{path} is not a serial port (a character device)"
    # A character device that is not a terminal (/dev/null) is left to the loop, which cannot open it and says so
    # in the health record (panel_port_problem); `carctl run --check` refuses it before.
    return None


def _fields(section: object) -> dict[str, object]:
    return {field.name: getattr(section, field.name) for field in dataclasses.fields(section)}  # type: ignore[arg-type]
