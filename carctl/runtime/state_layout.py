"""Where the firmware keeps what it writes, and who may read it (docs/deployment.md, "What the car keeps where").

On the board the unit (deploy/carctl.service) runs as user `carctl` under `ProtectSystem=strict`: the whole file
system is read-only to it except the three directories systemd makes for it. Every file the firmware writes lives
in one of them, so a default configuration can write everything it must and nothing else:

- STATE_DIR, /var/lib/carctl (StateDirectory, 0750, carctl:carctl): the latched faults, the fault log, the
  maintenance record, the learned landing table, the platform's outbox and settings, the face galleries and the
  gallery key, the service tool's accounts.
- LOG_DIR, /var/log/carctl (LogsDirectory, 0750): the structured control log, when `runtime.log` is a file.
- RUNTIME_DIR, /run/carctl (RuntimeDirectory, 0700): the side channels' sockets.

The configuration, /etc/carctl (ConfigurationDirectory), is root's and read-only to the service: board.toml, the
command key, the broker password and the broker's CA certificate, put there by the installer.

Technicians are members of group `carctl`: what they read (the fault log, the maintenance record, the latched faults,
the control log, the platform's settings) is group-readable (0640); what holds residents' data or a secret (the outbox, the galleries,
the keys) is the firmware's alone (0600).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from carctl.runtime.config import FirmwareConfig

STATE_DIR = "/var/lib/carctl"
LOG_DIR = "/var/log/carctl"
CONFIG_DIR = "/etc/carctl"
RUNTIME_DIR = "/run/carctl"

# Read by technicians (group carctl).
TECHNICIAN_READABLE = 0o640
# Residents' data and secrets: the firmware's user only.
PRIVATE = 0o600


@dataclass(frozen=True, slots=True)
class StateFile:
    key: str  # the configuration key that names it
    path: str
    mode: int  # the mode the firmware gives it
    written_by: str  # which part writes it: "loop", "platform link", "face", "carctl service add-user"
    what: str


def written_files(config: FirmwareConfig) -> list[StateFile]:
    """Every file this configuration has the firmware write (empty paths, which keep none, and the parts switched
    off are left out). The face gallery and its key are written by the platform link (face.enable, enrolments)."""
    runtime, platform, face = config.runtime, config.platform, config.face
    files = [
        StateFile("runtime.latch_file", runtime.latch_file, TECHNICIAN_READABLE, "loop", "the latched faults"),
        StateFile("runtime.fault_log", runtime.fault_log, TECHNICIAN_READABLE, "loop", "the fault log"),
        StateFile("runtime.audit_log", runtime.audit_log, TECHNICIAN_READABLE, "loop",
                  "the maintenance record (hash-chained; <file>.1 after a rotation, <file>.reserved)"),
        StateFile("runtime.learned_table", runtime.learned_table, TECHNICIAN_READABLE, "loop",
                  "the landing table the last shaft learning run measured"),
    ]
    if runtime.log != "-":
        files.append(StateFile("runtime.log", runtime.log, TECHNICIAN_READABLE, "loop", "the control log"))
    if config.processes.platform:
        files += [
            StateFile("platform.outbox_path", platform.outbox_path, PRIVATE, "platform link",
                      "the events waiting for the broker (resident ids)"),
            StateFile("platform.overrides_path", platform.overrides_path, TECHNICIAN_READABLE, "platform link",
                      "the settings the platform changed"),
            StateFile("face.key_file", face.key_file, PRIVATE, "platform link",
                      "the gallery key, created when the platform switches face recognition on"),
            StateFile("face.gallery_dir", face.gallery_dir.rstrip("/") + f"/{face.community}.gallery", PRIVATE,
                      "platform link", "the community's gallery, written at the first enrolment"),
        ]
    if config.processes.service:
        # Written by `sudo -u carctl carctl service add-user`, read by the service tool: password hashes, private.
        files.append(StateFile("service.users_file", config.service.users_file, PRIVATE, "carctl service add-user",
                               "the service tool's accounts (scrypt hashes)"))
        if not config.processes.platform:
            # The Parameters page saves a change here whether or not the platform link runs.
            files.append(StateFile("platform.overrides_path", platform.overrides_path, TECHNICIAN_READABLE,
                                   "service tool", "the settings changed on the Parameters page"))
    return [file for file in files if file.path]
