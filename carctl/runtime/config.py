"""The firmware's configuration file (TOML): the building and car (as in scenario files), the drive and panel-bus
ports, the loop's timing and priority, and which parts the process table starts.

Every problem is a FirmwareConfigError naming the key (`drive.endpoint`, `panel.port`); `carctl run` exits with
code 2 and no traceback. Every number has a plausible range, declared in its section's RANGES table (checked by
carctl.core.config.check_ranges); docs/deployment.md lists every key with its range.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from carctl.adapters.drive import TRANSACTIONS, Endpoint
from carctl.core.config import (YEAR_S, BuildingConfig, CarConfig, ConfigError, ControllerConfig, Range, check_ranges,
                                shown)
from carctl.platform.naming import host_problem, id_problem, is_loopback
from carctl.protocol.modem import number_problem
from carctl.tomlconfig import ConfigFileError, build_table, key_spelling, read_toml

__all__ = ["FirmwareConfig", "FirmwareConfigError", "build_table", "from_dict", "load"]


class FirmwareConfigError(ConfigFileError):
    pass


def check_absolute(section: object, name: str, keys: tuple[str, ...]) -> None:
    """Each of ``keys`` is an absolute path or "" (none): under the unit the working directory is /, read-only, and a
    relative path would be judged from wherever `carctl run --check` was typed."""
    for key in keys:
        value = getattr(section, key)
        if value and value != "-" and not value.startswith("/"):
            raise ConfigError(f"{name}.{key}", f"must be an absolute path (got {value!r:.80})")
        if any(ord(character) < 32 for character in value):
            raise ConfigError(f"{name}.{key}", "must not hold control characters")


# Unix socket paths are limited to 107 bytes; the longest socket name in the directory is 20.
SOCKET_DIR_MAX_BYTES = 80
MAX_ALARM_NUMBERS = 8
# A configuration file is a page or two of TOML.
MAX_FILE_BYTES = 1024 * 1024
BAUD = Range(9600, 230400, "baud")
PORT = Range(1, 65535)


@dataclass(frozen=True, slots=True)
class DriveSection:
    endpoint: str = "tcp://127.0.0.1:5020"
    baud: int = 115200
    timeout_s: float = 0.008
    # A comm-loss trip is reset automatically after this many good status reads in a row; other drive faults need
    # the maintenance reset.
    comm_loss_reset_reads: int = 10
    # One Read/Write Multiple Registers (0x17) transaction a cycle, or a read and a write: "auto" takes one where two
    # do not fit the period at this baud rate over RTU (docs/register-map.md), "combined" always, "separate" never.
    transaction: str = "auto"

    RANGES: ClassVar[Mapping[str, Range]] = {
        "baud": BAUD,
        # Two transactions must fit in a control cycle of at most 0.1 s.
        "timeout_s": Range(0.0, 0.1, "s", above=True, below=True),
        "comm_loss_reset_reads": Range(1, 1000, "reads"),
    }

    def __post_init__(self) -> None:
        check_ranges(self, "drive")
        try:
            Endpoint.parse(self.endpoint)
        except ValueError as error:
            raise ConfigError("drive.endpoint", str(error)) from None
        if self.baud not in (9600, 19200, 38400, 57600, 115200, 230400):
            raise ConfigError("drive.baud", f"must be a standard rate up to 230400 (got {self.baud})")
        if self.transaction not in TRANSACTIONS:
            raise ConfigError("drive.transaction", f"must be one of {', '.join(TRANSACTIONS)} (got "
                                                   f"{shown(self.transaction)})")


@dataclass(frozen=True, slots=True)
class PanelSection:
    port: str = "/dev/ttyAMA0"
    baud: int = 115200
    response_timeout_s: float = 0.005
    # Landing boards read per cycle, in turn (plus one whose lamps changed): 2 reads every landing of a six-storey
    # block within 60 ms.
    landing_polls_per_cycle: int = 2

    RANGES: ClassVar[Mapping[str, Range]] = {
        "baud": BAUD,
        # A board answers within 5 ms (docs/panelbus.md); waiting longer only delays the cycle.
        "response_timeout_s": Range(0.0, 0.02, "s", above=True),
        "landing_polls_per_cycle": Range(1, 8),
    }

    def __post_init__(self) -> None:
        check_ranges(self, "panel")
        if not self.port.startswith("/"):
            # A path, not a pyserial URL: `socket://…` would connect over the network from the control loop.
            raise ConfigError("panel.port", f"must be the serial port's path, e.g. /dev/ttyAMA0 (got {self.port!r:.80})")
        if self.baud not in (9600, 19200, 38400, 57600, 115200, 230400):
            raise ConfigError("panel.baud", f"must be a standard rate up to 230400 (got {self.baud})")


@dataclass(frozen=True, slots=True)
class RuntimeSection:
    realtime_priority: int = 50  # SCHED_FIFO priority where allowed; 0 disables
    cpu: int = -1  # CPU to pin the loop to; -1 leaves affinity alone
    log: str = "-"  # structured log (JSON lines): '-' for stderr (the journal, under systemd), or a file path
    # A log file past this size is renamed to <file>.1 and begun afresh (structlog.py): at most twice this on the card.
    log_max_bytes: int = 16 * 1024 * 1024
    run_seconds: float = 0.0  # stop after this long (tests, benches); 0 runs until SIGTERM
    fault_log: str = "/var/lib/carctl/faults.json"  # the on-disk fault log (fault_log.py); "" for none
    fault_log_capacity: int = 500
    # The maintenance record: hash-chained, append-only (audit_log.py, docs/audit.md); "" for none. Past
    # audit_log_max_bytes it is renamed to <file>.1 and a new file continues the chain: at most twice this on the card.
    audit_log: str = "/var/lib/carctl/audit.log"
    audit_log_max_bytes: int = 4 * 1024 * 1024
    # The latched faults (overspeed, a final limit, unintended movement...), kept across a restart or a power cycle
    # until the maintenance reset (latches.py); "" keeps none, for the simulator only: a car in service needs it.
    latch_file: str = "/var/lib/carctl/latched.json"
    # The directory of the side channels' Unix sockets (loop, platform link, face worker): created 0700 at start,
    # and refused unless only the firmware's user can enter it (docs/security.md).
    socket_dir: str = "/run/carctl"
    # The landing table the last shaft learning run measured (learned_table.py): used at start in place of
    # building.landings_m when it is there and sound; "" keeps none (the typed table always).
    learned_table: str = "/var/lib/carctl/learned_landings.json"

    RANGES: ClassVar[Mapping[str, Range]] = {
        "realtime_priority": Range(0, 99),
        "cpu": Range(-1, 255),
        "run_seconds": Range(0.0, YEAR_S, "s"),
        "log_max_bytes": Range(65_536, 1 << 30, "bytes"),
        "fault_log_capacity": Range(10, 100_000, "records"),
        "audit_log_max_bytes": Range(65_536, 16 * 1024 * 1024, "bytes"),
    }

    def __post_init__(self) -> None:
        check_ranges(self, "runtime")
        check_absolute(self, "runtime", ("log", "fault_log", "audit_log", "latch_file", "learned_table"))
        if not self.socket_dir.startswith("/") or len(self.socket_dir.encode()) > SOCKET_DIR_MAX_BYTES:
            raise ConfigError("runtime.socket_dir", f"must be an absolute path of at most {SOCKET_DIR_MAX_BYTES} "
                                                    f"bytes (a Unix socket's path is limited to 107)")


@dataclass(frozen=True, slots=True)
class FaceSection:
    """The face worker (docs/face.md); read only when processes.face is on."""

    gallery_dir: str = "/var/lib/carctl/gallery"
    # Created by the car when the platform switches the feature on, so it lives in the state directory (the
    # configuration directory is read-only to the service), in a folder of its own: a backup of the state leaves
    # keys/ out (docs/privacy.md).
    key_file: str = "/var/lib/carctl/keys/gallery.key"
    # With processes.platform on, platform.community when left out, and refused if different (from_dict).
    community: str = "community"
    source: str = "0"  # camera index, /dev/videoN, an rtsp:// or file URL, or a folder of images
    tolerance: float = 0.5
    liveness: str = "blink"  # blink, movement or off
    detect_width_px: int = 320
    upsample: int = 1
    agreement_frames: int = 2
    repeat_after_s: float = 60.0
    max_fps: float = 8.0
    # Images (enrolment photos, a folder of frames) larger than this are refused from their header, before decoding:
    # a 4,000 x 4,000 photo decodes to 48 MB, a decompression bomb to gigabytes.
    max_image_pixels: int = 16_000_000
    # No longer used: recognitions go to the loop over a Unix socket in runtime.socket_dir. Accepted so that older
    # configuration files still load.
    event_port: int = 47300

    RANGES: ClassVar[Mapping[str, Range]] = {
        "tolerance": Range(0.2, 0.7),
        "detect_width_px": Range(80, 4096, "px"),
        "upsample": Range(0, 3),
        "agreement_frames": Range(1, 100, "frames"),
        "repeat_after_s": Range(0.0, 3600.0, "s"),
        "max_fps": Range(0.0, 60.0, "frames/s", above=True),
        "max_image_pixels": Range(10_000, 100_000_000, "pixels"),
        "event_port": Range(1024, 65535),
    }

    def __post_init__(self) -> None:
        check_ranges(self, "face")
        check_absolute(self, "face", ("gallery_dir", "key_file"))
        if self.liveness not in ("blink", "movement", "off"):
            raise ConfigError("face.liveness", f"must be blink, movement or off (got {self.liveness!r})")


@dataclass(frozen=True, slots=True)
class PlatformSection:
    """The platform link (docs/platform.md); read only when processes.platform is on."""

    broker_host: str = "127.0.0.1"
    broker_port: int = 8883
    username: str = ""  # with the link on, "" is <community>-<car>: the broker account's naming convention
    password_file: str = "/etc/carctl/mqtt.password"
    tls_ca_file: str = ""
    # Without TLS the link sends its password in the clear; refused for a broker not on this machine unless this is
    # set (a lab network).
    allow_plaintext: bool = False
    # Required when processes.platform is on (from_dict): the defaults would be every unconfigured car's topics.
    community: str = "community"
    car: str = "car"
    # The key this car verifies commands with: the community's key, or (recommended) this car's own key derived
    # from it (`carctl platform car-key`), which cannot sign for any other car (docs/platform.md).
    key_file: str = "/etc/carctl/community.key"
    outbox_path: str = "/var/lib/carctl/outbox.db"
    # Settings the platform changed (home landing, floor permissions), applied at start and on every change.
    overrides_path: str = "/var/lib/carctl/overrides.json"
    # No longer used: the loop and the link process talk over Unix sockets in runtime.socket_dir. Accepted so that
    # older configuration files still load.
    agent_port: int = 47310
    loop_port: int = 47311
    state_every_s: float = 5.0
    utc_offset_h: float = 8.0  # the local day that daily statistics cover (China Standard Time)

    RANGES: ClassVar[Mapping[str, Range]] = {
        "broker_port": PORT,
        "agent_port": PORT,
        "loop_port": PORT,
        "state_every_s": Range(0.5, 60.0, "s"),
        "utc_offset_h": Range(-12.0, 14.0, "h"),
    }

    def __post_init__(self) -> None:
        check_ranges(self, "platform")
        check_absolute(self, "platform", ("password_file", "tls_ca_file", "key_file", "outbox_path", "overrides_path"))
        for key in ("community", "car"):
            problem = id_problem(key, getattr(self, key))
            if problem:
                raise ConfigError(f"platform.{key}", problem)
        problem = host_problem(self.broker_host)
        if problem:
            raise ConfigError("platform.broker_host", problem)
        if not self.tls_ca_file and not self.allow_plaintext and not is_loopback(self.broker_host):
            raise ConfigError("platform.tls_ca_file", f"the broker {self.broker_host} is not on this machine: set "
                                                      f"tls_ca_file so the password is not sent in the clear (or "
                                                      f"allow_plaintext = true on a lab network)")


@dataclass(frozen=True, slots=True)
class AlarmSection:
    """The alarm's voice call (docs/alarm.md): the GSM/4G module and the rescue service's numbers; read only when
    processes.modem is on."""

    modem_port: str = "/dev/ttyUSB1"
    baud: int = 115200
    # The rescue service's numbers, dialled in order until one answers (EN 81-28: the 24-hour rescue service first).
    numbers: tuple[str, ...] = ()
    command_timeout_s: float = 2.0
    ring_timeout_s: float = 60.0
    retry_after_s: float = 30.0
    # The periodic test call (EN 81-28: at least every 3 days), to test_number ("": the alarm's numbers).
    test_every_h: float = 72.0
    test_number: str = ""

    RANGES: ClassVar[Mapping[str, Range]] = {
        "baud": BAUD,
        "test_every_h": Range(1.0, 72.0, "h"),
        "command_timeout_s": Range(0.1, 30.0, "s"),
        "ring_timeout_s": Range(5.0, 300.0, "s"),
        "retry_after_s": Range(1.0, 300.0, "s"),
    }

    def __post_init__(self) -> None:
        check_ranges(self, "alarm")
        check_absolute(self, "alarm", ("modem_port",))
        if self.baud not in (9600, 19200, 38400, 57600, 115200, 230400):
            raise ConfigError("alarm.baud", f"must be a standard rate up to 230400 (got {self.baud})")
        if len(self.numbers) > MAX_ALARM_NUMBERS:
            raise ConfigError("alarm.numbers", f"at most {MAX_ALARM_NUMBERS} numbers (got {len(self.numbers)})")
        for number in self.numbers:
            problem = number_problem(number)
            if problem:
                raise ConfigError("alarm.numbers", problem)
        if self.test_number and number_problem(self.test_number):
            raise ConfigError("alarm.test_number", number_problem(self.test_number) or "")


@dataclass(frozen=True, slots=True)
class ServiceSection:
    """The technician's service tool, a web page served by the board (docs/service-tool.md); read only when
    processes.service is on or `carctl service` is run."""

    # HOST:PORT: an IP address (a name would be looked up); the car's own network, never the internet.
    listen: str = "127.0.0.1:8080"
    # TLS when both are set; without it the page shows a warning banner (passwords cross the network in the clear).
    tls_cert_file: str = ""
    tls_key_file: str = ""
    # The technicians' accounts: scrypt hashes, written by `carctl service add-user` (0600).
    users_file: str = "/var/lib/carctl/service-users.json"
    session_s: float = 1800.0
    # Failed logins in a row, per account and per client address, before that account or address is locked out.
    lockout_failures: int = 5
    lockout_s: float = 300.0

    RANGES: ClassVar[Mapping[str, Range]] = {
        "session_s": Range(60.0, 43_200.0, "s"),
        "lockout_failures": Range(2, 20, "failures"),
        "lockout_s": Range(10.0, 86_400.0, "s"),
    }

    def __post_init__(self) -> None:
        check_ranges(self, "service")
        check_absolute(self, "service", ("tls_cert_file", "tls_key_file", "users_file"))
        if listen_problem(self.listen):
            raise ConfigError("service.listen", listen_problem(self.listen) or "")
        if bool(self.tls_cert_file) != bool(self.tls_key_file):
            raise ConfigError("service.tls_key_file" if self.tls_cert_file else "service.tls_cert_file",
                              "TLS needs both the certificate and its key (or neither)")


# configs/sim.toml's panel.port: a path under /dev/null, which is not a folder, so it can never be a real device
# (a /dev/pts/N placeholder can be another program's terminal). `carctl run` and `--check` refuse it by name.
PLACEHOLDER_PORT_PREFIX = "/dev/null/"


def placeholder_port_problem(path: str, option: str) -> str | None:
    """Why ``path`` is the simulator configuration's placeholder and not a port, or None."""
    if not path.startswith(PLACEHOLDER_PORT_PREFIX):
        return None
    return (f"{path} is a placeholder, not a port: give {option} the port `python -m sim serve` prints "
            f"(docs/deployment.md, \"Running against the simulator\")")


def listen_problem(text: str) -> str | None:
    """Why ``text`` is not IP:PORT ([IPv6]:PORT), or None. Port 0 lets the system choose (tests)."""
    import ipaddress

    host, colon, port = text.rpartition(":")
    if not colon or not port.isascii() or not port.isdigit() or len(port) > 5 or int(port) > 65535:
        return f"must be IP:PORT, e.g. 127.0.0.1:8080 (got {text[:80]!r})"
    try:
        ipaddress.ip_address(host[1:-1] if host.startswith("[") and host.endswith("]") else host)
    except ValueError:
        return f"must be an IP address and a port, not a name (got {text[:80]!r})"
    return None


@dataclass(frozen=True, slots=True)
class ProcessesSection:
    face: bool = False
    platform: bool = False
    modem: bool = False  # the alarm's voice call (docs/alarm.md)
    service: bool = False  # the technician's web page (docs/service-tool.md)


@dataclass(frozen=True, slots=True)
class FirmwareConfig:
    controller: ControllerConfig = field(default_factory=ControllerConfig)
    drive: DriveSection = field(default_factory=DriveSection)
    panel: PanelSection = field(default_factory=PanelSection)
    runtime: RuntimeSection = field(default_factory=RuntimeSection)
    processes: ProcessesSection = field(default_factory=ProcessesSection)
    face: FaceSection = field(default_factory=FaceSection)
    platform: PlatformSection = field(default_factory=PlatformSection)
    alarm: AlarmSection = field(default_factory=AlarmSection)
    service: ServiceSection = field(default_factory=ServiceSection)


def from_dict(data: dict[str, Any]) -> FirmwareConfig:
    if not isinstance(data, dict):
        raise FirmwareConfigError("", f"a configuration is a table of tables (got {type(data).__name__})")
    sections = {"building", "car", "drive", "panel", "runtime", "processes", "face", "platform", "alarm",
                "service"}
    for key in data:
        if key not in sections:
            raise FirmwareConfigError(key_spelling(key), f"unknown table (known: {', '.join(sorted(sections))})")
    for key in ("drive", "panel"):
        if key not in data:
            raise FirmwareConfigError(key, "missing table: the firmware needs its drive and panel ports")
        if not isinstance(data[key], dict):
            raise FirmwareConfigError(key, f"must be a table (got {type(data[key]).__name__})")
    if "endpoint" not in data["drive"]:
        raise FirmwareConfigError("drive.endpoint", "missing key: tcp://HOST:PORT or rtu:/dev/PATH")
    if "port" not in data["panel"]:
        raise FirmwareConfigError("panel.port", "missing key: the panel bus serial port")
    building = build_table(BuildingConfig, data.get("building", {}), "building", FirmwareConfigError)
    car = build_table(CarConfig, data.get("car", {}), "car", FirmwareConfigError)
    try:
        controller = ControllerConfig(building, car)
    except ConfigError as error:
        raise FirmwareConfigError(error.key, error.message) from None
    processes = build_table(ProcessesSection, data.get("processes", {}), "processes", FirmwareConfigError)
    face = build_table(FaceSection, data.get("face", {}), "face", FirmwareConfigError)
    platform = build_table(PlatformSection, data.get("platform", {}), "platform", FirmwareConfigError)
    alarm = build_table(AlarmSection, data.get("alarm", {}), "alarm", FirmwareConfigError)
    if processes.modem and not alarm.numbers:
        raise FirmwareConfigError("alarm.numbers", "must name at least one number when processes.modem is on: the "
                                                   "rescue service the alarm calls")
    if processes.modem:
        _modem_port_apart(alarm, data)
    if processes.platform:
        face = _platform_cross_checks(data, face, platform)
        if not platform.username:
            # The broker account's name by the convention the ACL relies on (docs/platform.md).
            platform = dataclasses.replace(platform, username=f"{platform.community}-{platform.car}")
    return FirmwareConfig(
        controller,
        build_table(DriveSection, data["drive"], "drive", FirmwareConfigError),
        build_table(PanelSection, data["panel"], "panel", FirmwareConfigError),
        build_table(RuntimeSection, data.get("runtime", {}), "runtime", FirmwareConfigError),
        processes,
        face,
        platform,
        alarm,
        build_table(ServiceSection, data.get("service", {}), "service", FirmwareConfigError),
    )


def _modem_port_apart(alarm: AlarmSection, data: dict[str, Any]) -> None:
    """The modem's port is neither the panel bus's nor the drive's: the modem process opens its port again and again,
    and must never take the safety bus or write AT commands onto it."""
    modem = os.path.realpath(alarm.modem_port)
    endpoint = str(data["drive"].get("endpoint", ""))
    for key, port in (("panel.port", str(data["panel"].get("port", ""))),
                      ("drive.endpoint", endpoint[len("rtu:"):] if endpoint.startswith("rtu:") else "")):
        if port and os.path.realpath(port) == modem:
            raise FirmwareConfigError("alarm.modem_port", f"is {key}'s port ({port[:80]}): the modem needs a line "
                                                          f"of its own")


def _platform_cross_checks(data: dict[str, Any], face: FaceSection, platform: PlatformSection) -> FaceSection:
    """With the platform link on: the car's topic names must be set, and its gallery is its platform community's.

    - `platform.community` and `platform.car` name the car's topics (`carctl/<community>/<car>/…`) and its broker
      account. Their defaults are there only so that a configuration without the link loads: a car left on them
      would publish as carctl/community/car, on top of every other car left so, and take their commands.
    - The residents the platform enrols (`resident.enroll`) go to the gallery of `face.community`, which is also the
      gallery the face worker recognises from. The platform enrols them for its community, so the two must be one:
      left out, `face.community` is `platform.community`; set to another community, the residents would be enrolled
      where the platform does not look for them, and the configuration is refused. (Checked whether or not
      processes.face is on: the platform's `face.enable` switches the feature on at run time.)
    """
    table = data.get("platform", {})
    for key in ("community", "car"):
        if key not in table:
            raise FirmwareConfigError(f"platform.{key}", f"must be set when processes.platform is on: it names this "
                                                         f"car's topics, and the default {getattr(platform, key)!r} "
                                                         f"would be every unconfigured car's")
    if "community" not in data.get("face", {}):
        return dataclasses.replace(face, community=platform.community)
    if face.community != platform.community:
        raise FirmwareConfigError("face.community", f"is {face.community!r} but platform.community is "
                                                    f"{platform.community!r}: the residents the platform enrols go to "
                                                    f"this car's gallery, which must be its platform community's "
                                                    f"(set both the same, or leave face.community out)")
    return face


def load(path: str | Path) -> FirmwareConfig:
    return from_dict(read_toml(Path(path), "the configuration", MAX_FILE_BYTES, FirmwareConfigError))
