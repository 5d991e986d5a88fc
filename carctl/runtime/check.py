"""`carctl run --check`: everything the firmware needs from the board, checked once, without starting the loop.

One verdict per item, in the order a technician fixes them: the configuration (already loaded: a bad one never gets
here), the panel bus and the drive (the ports opened, the drive's status read once — read only, nothing is written
to the drive), the USB adapters' latency timers (lowered where the driver allows), the files the firmware writes
and reads, the side channels' directory, the clock, the free space, real-time priority, the camera.

Rules of this module:
- FAIL is what would keep the car from running or the firmware from keeping its records; warn is what the car runs
  without (no real-time priority, an unsynchronised clock with the platform off). Exit code 2 when anything fails.
- Each check is guarded: an unexpected error is that item's FAIL, with its reason, and the rest are still checked.
- Nothing here starts the loop or moves the car. The drive's status block is read, never its command block written.
"""

from __future__ import annotations

import os
import shutil
import stat
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from carctl.adapters.drive import DriveLink, Endpoint, LinkError, LinkErrorKind, combined_for
from carctl.adapters.panelbus import PanelBusMaster, is_terminal
from carctl.adapters.serial_latency import lower_latency
from carctl.clocksync import clock_synchronised
from carctl.filein import FileRefused, NotARegularFile, check_output
from carctl.protocol import drive_map
from carctl.protocol.drive_map import DriveStatus
from carctl.runtime.config import FirmwareConfig, placeholder_port_problem
from carctl.runtime.state_layout import LOG_DIR, STATE_DIR, written_files

OK, WARN, FAIL = "ok", "warn", "FAIL"
# Below this the fault log and the outbox may not find room for their next write.
MIN_FREE_BYTES = 16 * 1024 * 1024
LOW_FREE_BYTES = 128 * 1024 * 1024
DRIVE_READ_TRIES = 3


@dataclass(frozen=True, slots=True)
class Verdict:
    status: str  # OK, WARN or FAIL
    item: str
    text: str


def check_board(config: FirmwareConfig, config_path: Path, panel_option: str = "panel.port",
                drive_option: str = "drive.endpoint") -> list[Verdict]:
    checks: list[tuple[str, Callable[[], Iterator[Verdict]]]] = [
        (panel_option, lambda: _panel(config, panel_option)),
        (drive_option, lambda: _drive(config, drive_option)),
        ("files", lambda: _files(config)),
        ("keys", lambda: _keys(config)),
        ("runtime.socket_dir", lambda: _socket_dir(config)),
        ("clock", lambda: _clock(config)),
        ("disk", lambda: _free_space(config)),
        ("real-time", lambda: _realtime(config)),
        ("camera", lambda: _camera(config)),
        ("alarm.modem_port", lambda: _modem(config)),
    ]
    user = _user_name()
    verdicts = [*_tables(config_path), Verdict(OK, "configuration", f"{config_path}: {config.controller.building.landing_count} landings, "
                                             f"{config.controller.car.rated_speed_m_s} m/s, a cycle of "
                                             f"{config.controller.car.control_period_s * 1000:g} ms; checking as "
                                             f"user {user}")]
    if os.geteuid() == 0:
        verdicts.append(Verdict(WARN, "user", "checking as root, who may open and write everything: run it as the "
                                              "service's user (sudo -u carctl carctl run --check ...)"))
    for item, check in checks:
        try:
            verdicts.extend(check())
        except Exception as error:  # noqa: BLE001 - one item's surprise must not hide the others' verdicts
            verdicts.append(Verdict(FAIL, item, f"could not be checked: {error!r:.200}"))
    return verdicts


def _tables(config_path: Path) -> Iterator[Verdict]:
    """A configuration without [building] or [car] loads (on the example building's values, for the simulator and
    the tests), but on a car it describes some other lift."""
    import tomllib

    try:
        tables = tomllib.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return  # loaded a moment ago: gone or changed since, nothing more to say of it
    for table in ("building", "car"):
        if table not in tables:
            yield Verdict(FAIL, table, f"{config_path} has no [{table}] table: the car would run on the example "
                                       f"building's values, not this lift's (docs/commissioning.md, section 2)")


def print_verdicts(verdicts: list[Verdict], out: object = sys.stdout) -> int:
    width = max(len(v.item) for v in verdicts)
    for verdict in verdicts:
        print(f"{verdict.status:4}  {verdict.item:{width}}  {verdict.text}", file=out)  # type: ignore[arg-type]
    failed = [v.item for v in verdicts if v.status == FAIL]
    if failed:
        print(f"carctl run --check: {len(failed)} problem(s): {', '.join(failed)}", file=out)  # type: ignore[arg-type]
        return 2
    print("carctl run --check: ready to run", file=out)  # type: ignore[arg-type]
    return 0


# -- the ports ------------------------------------------------------------------------------------------------------

def _serial_port(path: str, item: str, budget_s: float, budget_key: str) -> Iterator[Verdict]:
    """A serial port's verdicts: there, a character device, ours to open, free, and fast enough."""
    option = {"panel.port": "--panel", "drive.endpoint": "--drive", "alarm.modem_port": "--modem"}.get(item, item)
    placeholder = placeholder_port_problem(path, option)
    if placeholder:
        yield Verdict(FAIL, item, placeholder)
        return
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        yield Verdict(FAIL, item, f"{path} does not exist (the adapter unplugged, or the UART not enabled: "
                                  f"docs/wiring.md)")
        return
    except OSError as error:
        yield Verdict(FAIL, item, f"{path}: {error.strerror}")
        return
    if not stat.S_ISCHR(mode):
        yield Verdict(FAIL, item, f"{path} is not a serial port (a character device)")
        return
    if not os.access(path, os.R_OK | os.W_OK):
        yield Verdict(FAIL, item, f"{path} cannot be opened by user {_user_name()} (add it to group dialout)")
        return
    if not is_terminal(path):
        yield Verdict(FAIL, item, f"{path} is a character device but not a serial port (not a terminal)")
        return
    if not PanelBusMaster.port_free(path):
        yield Verdict(FAIL, item, f"{path} is in use by another process (the service? `systemctl stop carctl` "
                                  f"first)")
        return
    latency = lower_latency(path, budget_s)
    if latency.before_ms is None:
        yield Verdict(OK, item, f"{path}: a serial port, free")
    elif latency.too_slow_for(budget_s):
        yield Verdict(FAIL, item, f"{path}: the USB adapter's latency timer is {latency.after_ms} ms, not under "
                                  f"{budget_key} ({budget_s * 1000:g} ms), so every answer would come too late"
                                  f"{'; ' + latency.note if latency.note else ''}: set it to 1 ms (docs/wiring.md, "
                                  f"the udev rule)")
    elif latency.after_ms != latency.before_ms:
        yield Verdict(WARN, item, f"{path}: the USB adapter's latency timer was {latency.before_ms} ms, now "
                                  f"{latency.after_ms} ms (low-latency mode, until it is unplugged; the firmware "
                                  f"sets it at every start): install the udev rule of docs/wiring.md")
    else:
        yield Verdict(OK, item, f"{path}: a serial port, free; latency timer {latency.after_ms} ms")


def _panel(config: FirmwareConfig, item: str) -> Iterator[Verdict]:
    yield from _serial_port(config.panel.port, item, config.panel.response_timeout_s, "panel.response_timeout_s")


def _drive(config: FirmwareConfig, item: str) -> Iterator[Verdict]:
    endpoint = Endpoint.parse(config.drive.endpoint)
    if endpoint.kind == "rtu" and os.path.realpath(endpoint.address) == os.path.realpath(config.panel.port):
        yield Verdict(FAIL, item, f"{endpoint.address} is also the panel bus's port: the drive and the panel bus "
                                  f"need a line each")
        return
    if os.path.exists(config.panel.port) and not PanelBusMaster.port_free(config.panel.port):
        # The firmware holds the panel bus while it runs: a second Modbus master beside it (another TCP client,
        # or the same RTU line) could disturb the car it is driving.
        yield Verdict(WARN, item, "not read: another process holds the panel bus (the service running? "
                                  "`systemctl stop carctl` first)")
        return
    if endpoint.kind == "rtu":
        verdicts = list(_serial_port(endpoint.address, item, config.drive.timeout_s, "drive.timeout_s"))
        yield from verdicts
        if any(v.status == FAIL for v in verdicts):
            return
        period_s, baud = config.controller.car.control_period_s, config.drive.baud
        combined = combined_for(config.drive.transaction, endpoint, baud, period_s)
        if not drive_map.transactions_fit(baud, period_s, combined):
            # Over the whole period, the loop overruns every cycle; over half, the panel bus is squeezed.
            exchange_s = drive_map.exchange_time_s(baud, combined)
            yield Verdict(FAIL if exchange_s > period_s else WARN, item,
                          f"at {baud} baud one cycle's drive exchanges take about {exchange_s * 1000:.0f} ms "
                          f"({'one 0x17 transaction' if combined else 'two transactions'}), more than "
                          f"{'the' if exchange_s > period_s else 'half the'} {period_s * 1000:.0f} ms control "
                          f"period: raise drive.baud (and the drive's), or car.control_period_s, or let "
                          f"drive.transaction be auto (docs/register-map.md)")
            if exchange_s > period_s:
                return
    # One read of the status block, a few tries a cycle apart: read only, whatever is running.
    link = DriveLink(endpoint, config.drive.timeout_s, config.drive.baud)
    try:
        answer: DriveStatus | LinkError = LinkError(LinkErrorKind.DISCONNECTED, "not tried")
        for _ in range(DRIVE_READ_TRIES):
            answer = link.read_status()
            if not isinstance(answer, LinkError):
                break
            time.sleep(config.controller.car.control_period_s)
    finally:
        link.close()
    if isinstance(answer, LinkError):
        where = f"{endpoint.address}:{endpoint.port}" if endpoint.kind == "tcp" else endpoint.address
        what = ("its IP address and port, that Modbus TCP is on, the cable" if endpoint.kind == "tcp"
                else "its Modbus address, baud rate and parity, the cable, A and B the right way round")
        yield Verdict(FAIL, item, f"the drive at {where} did not answer a status read ({answer.kind.value}); "
                                  f"check {what} (docs/drive-parameters.md)")
        return
    assert isinstance(answer, DriveStatus)
    # A drive in fault or an open safety chain: the link works, but the car will not run until they are seen to.
    trouble = answer.faulted or not answer.safety_chain_closed
    yield Verdict(WARN if trouble else OK, item,
                  f"the drive answers: TICK {answer.drive_tick}, at {answer.position_m:.3f} m, "
                  f"{'not referenced' if answer.position_unreferenced else 'referenced'}, safety chain "
                  f"{'closed' if answer.safety_chain_closed else 'OPEN'}"
                  f"{f', drive fault {answer.fault_code} (docs/register-map.md)' if answer.faulted else ''}")


# -- files ----------------------------------------------------------------------------------------------------------

def _nearest_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path("/")


def _files(config: FirmwareConfig) -> Iterator[Verdict]:
    if not config.runtime.latch_file:
        yield Verdict(WARN, "runtime.latch_file", "empty: latched faults would not survive a restart (the simulator "
                                                  "only; a car in service needs it)")
    writable = (STATE_DIR, LOG_DIR)
    for file in written_files(config):
        path = Path(file.path)
        yield _file_verdict(file.key, path, file.what)
        if not any(path.is_relative_to(folder) for folder in writable):
            yield Verdict(WARN, file.key, f"{path} is outside {' and '.join(writable)}, the folders the unit lets the "
                                          f"service write (ProtectSystem=strict): add a ReadWritePaths= drop-in "
                                          f"(systemctl edit carctl) or the service cannot write it")


def _file_verdict(key: str, path: Path, what: str) -> Verdict:
    """As the firmware writes it: a new file beside it then renamed over it (the log: rotated beside it), so the
    folder must be writable, not only the file; and the log is refused where `carctl run` refuses it."""
    if key == "runtime.log":
        try:
            check_output(path)
            if path.is_symlink():
                raise NotARegularFile(path, "is a symbolic link")
        except OSError as error:
            return Verdict(FAIL, key, str(error) if isinstance(error, FileRefused) else f"{path}: {error.strerror}")
        if not path.parent.is_dir():
            # As `carctl run` has it: the log's folder is not made (a typing mistake there would go unnoticed).
            return Verdict(FAIL, key, f"{path}: its folder {path.parent} does not exist")
    if path.is_dir():
        return Verdict(FAIL, key, f"{path} is a folder, not a file ({what})")
    folder = _nearest_existing(path.parent)
    if not folder.is_dir():
        return Verdict(FAIL, key, f"{path} cannot be created ({what}): {folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        if folder == path.parent:
            return Verdict(FAIL, key, f"{path} cannot be written ({what}): user {_user_name()} may not write in "
                                      f"{folder}")
        return Verdict(FAIL, key, f"{path} cannot be created ({what}): {path.parent} does not exist and user "
                                  f"{_user_name()} may not make it; make it with `sudo install -d -o carctl -g carctl "
                                  f"-m 0750 {path.parent}` (install.sh and the unit do)")
    if path.exists() and not os.access(path, os.W_OK):
        return Verdict(FAIL, key, f"{path} cannot be written by user {_user_name()} ({what})")
    return Verdict(OK, key, f"{path} can be {'written' if path.exists() else 'created'}")


def _keys(config: FirmwareConfig) -> Iterator[Verdict]:
    """Each key and password as the part that uses it loads it (its own loader: size, privacy, contents)."""
    from carctl.platform.agent import AgentStartError, read_password
    from carctl.platform.keys import KeyFileError, ca_file_problem, load_key

    def loaded(key: str, load: Callable[[], object], what: str) -> Verdict:
        try:
            load()
        except (KeyFileError, AgentStartError, OSError, ValueError) as error:
            return Verdict(FAIL, key, f"{error} ({what})")
        return Verdict(OK, key, f"loads ({what})")

    if config.processes.platform:
        platform = config.platform
        yield loaded("platform.key_file", lambda: load_key(Path(platform.key_file)),
                     "the key commands are verified with")
        if platform.username:
            yield loaded("platform.password_file", lambda: read_password(Path(platform.password_file)),
                         "the broker password")
        if platform.tls_ca_file:
            problem = ca_file_problem(platform.tls_ca_file)
            yield Verdict(FAIL if problem else OK, "platform.tls_ca_file", problem or f"{platform.tls_ca_file}: a "
                                                                                     f"usable CA certificate")
    key_file = Path(config.face.key_file)
    if key_file.exists() or key_file.is_symlink():
        yield loaded("face.key_file", lambda: _face_key(key_file), "the gallery key")
    elif config.processes.face:
        yield Verdict(FAIL, "face.key_file", f"{key_file} does not exist: with processes.face on, the face worker "
                                             f"will not start without it (the platform's face.enable creates it, "
                                             f"or `carctl face enroll` with the first resident)")
    if config.processes.face:
        import importlib.util

        missing = [name for name in ("face_recognition", "dlib", "cv2") if importlib.util.find_spec(name) is None]
        if missing:
            yield Verdict(FAIL, "processes.face", f"the face packages are not installed ({', '.join(missing)}): "
                                                  f"install with FACE=1 (docs/installation.md)")


def _face_key(path: Path) -> None:
    from carctl.face.gallery import GalleryError
    from carctl.face.keys import load_key as load_gallery_key

    try:
        load_gallery_key(path)
    except GalleryError as error:
        raise ValueError(str(error)) from None


def _socket_dir(config: FirmwareConfig) -> Iterator[Verdict]:
    if not (config.processes.platform or config.processes.face or config.processes.modem
            or config.processes.service):
        return
    path = Path(config.runtime.socket_dir)
    try:
        status = os.lstat(path)
    except FileNotFoundError:
        parent = _nearest_existing(path.parent)
        usable = os.access(parent, os.W_OK | os.X_OK)
        yield Verdict(OK if usable else FAIL, "runtime.socket_dir",
                      f"{path} {'will be created' if usable else f'cannot be created ({parent} is not writable)'}"
                      f" (the unit's RuntimeDirectory makes it)")
        return
    private = stat.S_ISDIR(status.st_mode) and status.st_uid == os.geteuid() and not status.st_mode & 0o077
    yield Verdict(OK if private else FAIL, "runtime.socket_dir",
                  f"{path}: {'private to' if private else 'not a directory private to'} user {_user_name()}")


# -- the board ------------------------------------------------------------------------------------------------------

def _clock(config: FirmwareConfig) -> Iterator[Verdict]:
    synchronised = clock_synchronised()
    if synchronised:
        yield Verdict(OK, "clock", "synchronised (NTP)")
    elif synchronised is None:
        yield Verdict(WARN, "clock", "cannot tell whether the clock is synchronised")
    else:
        yield Verdict(FAIL if config.processes.platform else WARN, "clock",
                      "not synchronised: the board has no real-time clock, and until NTP sets it the platform's "
                      "signed commands are refused and records carry a wrong time (docs/platform.md, the car's "
                      "clock)")


def _free_space(config: FirmwareConfig) -> Iterator[Verdict]:
    folders = {_nearest_existing(Path(file.path).parent) for file in written_files(config)}
    for folder in sorted(folders):
        free = shutil.disk_usage(folder).free
        status = FAIL if free < MIN_FREE_BYTES else WARN if free < LOW_FREE_BYTES else OK
        yield Verdict(status, "disk", f"{folder}: {free / 1e6:,.0f} MB free")


def _realtime(config: FirmwareConfig) -> Iterator[Verdict]:
    priority = config.runtime.realtime_priority
    if priority == 0 or not hasattr(os, "sched_setscheduler"):
        yield Verdict(WARN, "real-time", "runtime.realtime_priority is 0: the loop runs at normal priority")
        return
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except OSError as error:
        yield Verdict(WARN, "real-time", f"SCHED_FIFO {priority} not allowed ({error.strerror}): the loop would run "
                                         f"at normal priority (the unit grants it: LimitRTPRIO, CAP_SYS_NICE)")
        return
    os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    yield Verdict(OK, "real-time", f"SCHED_FIFO {priority} allowed")


def _camera(config: FirmwareConfig) -> Iterator[Verdict]:
    if not (config.processes.face or config.processes.platform):
        return  # the feature cannot be switched on
    source = config.face.source
    device = f"/dev/video{source}" if source.isdigit() else source if source.startswith("/dev/") else None
    if device is None:
        return
    if not os.path.exists(device):
        yield Verdict(FAIL if config.processes.face else WARN, "face.source",
                      f"{device} does not exist (the camera unplugged?)")
    elif not os.access(device, os.R_OK | os.W_OK):
        yield Verdict(FAIL if config.processes.face else WARN, "face.source",
                      f"{device} cannot be opened by user {_user_name()} (add it to group video)")
    else:
        yield Verdict(OK, "face.source", f"{device} can be opened")


def _modem(config: FirmwareConfig) -> Iterator[Verdict]:
    if config.processes.modem:  # the alarm's GSM module: a serial port of its own (its answers are the process's)
        yield from _serial_port(config.alarm.modem_port, "alarm.modem_port", config.alarm.command_timeout_s,
                                "alarm.command_timeout_s")


def _user_name() -> str:
    try:
        import pwd

        return pwd.getpwuid(os.geteuid()).pw_name
    except (ImportError, KeyError):
        return str(os.geteuid())
