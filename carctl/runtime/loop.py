"""The firmware's real-time loop: read the drive, poll the panels, sense, step the core, output, write the drive.

Rules of this module:
- One cycle per control period, kept by RateKeeper; the lag of every cycle is measured and published.
- The road from the boards' bytes to the core and back is shared with the lockstep simulator: the panel bus's
  handshake and schedule are protocol/panel_session.py, the translation to Inputs and from Commands is
  protocol/sense.py; this module only moves bytes through the adapters (interfaces.py) and keeps time.
- Every input carries its age in cycles since its last good reading. A timeout, a Modbus exception, a corrupted
  frame, a drive status whose TICK did not advance simply does not refresh its input: the supervisor sees the age
  grow and reacts (core/rates.py declares how old each may be).
- Outputs computed in one cycle go out with the next cycle's polls.
- A comm-loss trip of the drive is reset by the loop itself once the link has been healthy for
  `drive.comm_loss_reset_reads` reads in a row; every other drive fault needs the deliberate reset.
- The loop never exits mid-run. Each step outside the core (adapters, side channels, the platform bridge, the fault
  log, the maintenance record, the structured log) is guarded: an exception is counted by where it happened and
  logged with its traceback (the first, then at most every LOG_ERROR_EVERY_S), and the cycle goes on without that
  step's result. An exception inside the core is answered with the supervisor's SAFE_STOP (quick stop, no run,
  doors held) for that cycle, and the next step that succeeds raises the stop-at-once fault controller_error.
- Maintenance actions (the reset keys, a key switch turned, an EEO button, a platform mode command or settings
  change, a commissioning request from the service tool) are chained into the maintenance record in memory and
  written by its own thread (audit_log.py): the loop never waits for the card on their account.
- The side channels (platform link, face worker) are Unix sockets in `runtime.socket_dir` (sidechannel.py), checked
  when the loop starts; what they deliver is parsed and range-checked (protocol/loopback.py) and what is refused is
  counted in the health record, never handed to the core.
"""

from __future__ import annotations

import collections
import dataclasses
import time
import traceback
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable
from typing import Any

from carctl.core.config import ConfigError
from carctl.core.controller import Controller, ControllerState, Phase
from carctl.core.faults import Fault
from carctl.core.rates import Freshness
from carctl.core.state import kept_alarm, latched_faults
from carctl.core.supervisor import SAFE_STOP
from carctl.core.signals import AlarmPhase, Commands, Event, Inputs, Mode, Recognition
from carctl.core.waiting import waiting_for
from carctl.platform.telemetry import audit_message
from carctl.protocol.drive_map import DriveCommand, DriveStatus
from carctl.protocol.loopback import ServiceCommission
from carctl.protocol.panel_session import MasterSession
from carctl.protocol.sense import Presses, SwitchLevels, mode_request, output, sense, switch_levels
from carctl.runtime import overrides
from carctl.runtime.config import FirmwareConfig
from carctl.runtime.alarm_bridge import AlarmBridge
from carctl.runtime.audit_actions import seen_in_cycle, settings_changes
from carctl.runtime.audit_log import AuditLog
from carctl.runtime.fault_counts import FaultCounts
from carctl.runtime.fault_log import FaultLog
from carctl.runtime.interfaces import DrivePort, PanelPort
from carctl.runtime.latches import LatchRecord
from carctl.runtime.learned_table import LandingTable
from carctl.runtime.platform_bridge import PlatformBridge
from carctl.runtime.ratekeeper import RateKeeper
from carctl.runtime.structlog import StructuredLog, open_log
from carctl.runtime.recognitions import RecognitionInbox
from carctl.runtime.run_recorder import RunRecorder
from carctl.runtime.service_feed import ServiceFeed
from carctl.runtime.sidechannel import SenderCheck, SocketDirError, only_process, prepare_socket_dir, same_user

HEALTH_EVERY_S = 5.0
LOG_ERROR_EVERY_S = 10.0
CONTROLLER_ERROR_HOLD_S = 1.0
CYCLE_WINDOW = 3000  # cycle times kept for the health record's percentiles (a minute at 50 Hz)


class LoopErrors:
    """Exceptions caught in the loop, counted by where they happened; each place's traceback is logged the first
    time and then at most every LOG_ERROR_EVERY_S, so a bug that fires every cycle cannot flood the log."""

    def __init__(self, log: StructuredLog) -> None:
        self.log = log
        self.counts: collections.Counter[str] = collections.Counter()
        self.logged_s: dict[str, float] = {}

    def caught(self, where: str) -> None:
        self.counts[where] += 1
        now = time.monotonic()
        if now - self.logged_s.get(where, -LOG_ERROR_EVERY_S) >= LOG_ERROR_EVERY_S:
            self.logged_s[where] = now
            self.log.write("loop_error", where=where, count=self.counts[where], traceback=traceback.format_exc())


class ControlLoop:
    def __init__(self, config: FirmwareConfig, drive: DrivePort, panels: PanelPort, log: StructuredLog,
                 child_pid: Callable[[str], int | None] | None = None) -> None:
        self.config = config
        # The learned landing table, when there is a sound one, in place of the typed landings (learned_table.py).
        self.landing_table = LandingTable(config.controller, config.runtime.learned_table)
        if self.landing_table.problem:
            log.write("landing_table", state="learned table refused: the typed table is used",
                      problem=self.landing_table.problem)
        else:
            log.write("landing_table", state=self.landing_table.source)
        self.controller = Controller(self.landing_table.config)
        self.drive = drive
        self.panels = panels
        self.log = log
        self.period_s = config.controller.car.control_period_s
        self.landings = config.controller.building.landing_count
        self.main_landing = config.controller.building.main_landing
        self.freshness = Freshness.from_config(config.controller.car)
        # The latched faults of the last run are in force before the first drive command (docs/faults.md).
        self.latches: LatchRecord | None = None
        restored: frozenset[Fault] | None = frozenset()
        if config.runtime.latch_file:
            self.latches = LatchRecord(Path(config.runtime.latch_file))
            restored = self.latches.restore()
            if restored is None:
                log.write("latches", state="no record to trust: held on latch_record_unreadable until the "
                                          "maintenance reset", problem=self.latches.problem,
                          set_aside=str(self.latches.set_aside) if self.latches.set_aside else None)
            elif restored:
                log.write("latches", state="restored", faults=sorted(fault.value for fault in restored))
        if self.latches is not None and self.latches.alarm is not AlarmPhase.IDLE:
            log.write("latches", state="alarm restored", alarm=self.latches.alarm.value)
        self.state: ControllerState = self.controller.initial_state(
            0.0, latched=restored, alarm=self.latches.alarm if self.latches is not None else AlarmPhase.IDLE)
        # The state above was made before the drive had answered (position 0.0, landing 0): its landing is taken from
        # the drive's first status, as the lockstep simulator makes it from the encoder (health `landing`).
        self.landing_unknown = True
        self._faults_kept: frozenset[Fault] | None = None  # the fault set last handed to the latch record
        self._alarm_kept: AlarmPhase | None = None  # ... and the alarm
        # The id of the alarm standing, from its hold to the rescuer's reset: its platform events carry it, and an
        # operator's acknowledgement naming another is not taken. Kept with the alarm across a restart.
        self.alarm_id = self.latches.alarm_id if self.latches is not None else ""
        self.commands = Commands()
        self.outputs = output(self.commands)
        self.tick = 0
        self.watchdog = 0
        self.session = MasterSession(self.landings, config.panel.landing_polls_per_cycle,
                                     config.controller.building.cabinet_landing_index,
                                     rear_door=config.controller.building.rear_door)
        self.good_drive_reads = 0
        self.drive_reset_held = False  # the loop's own reset of a comm-loss trip, as the last cycle sent it
        self.switches = SwitchLevels()
        self.switches_before = self.switches  # the key switches a cycle before (the maintenance record)
        self.eeo_held = (False, False)  # the EEO buttons a cycle before
        # The core raised: controller_error is an input until this tick.
        self.controller_error_until_tick = 0
        self.controller_error_hold_ticks = max(1, round(CONTROLLER_ERROR_HOLD_S / self.period_s))
        self.platform_modes_refused = 0
        self.reported_port_problems: dict[str, str | None] = {}  # the last problem logged per port
        self.rate = RateKeeper(self.period_s)
        self.cycle_s: collections.deque[float] = collections.deque(maxlen=CYCLE_WINDOW)
        self.errors = LoopErrors(log)
        # Who may speak on each side channel: the part of that name the process table started (main.py), or, with no
        # process table (a test that runs the parts in one process), any process of the firmware's user.
        self.child_pid = child_pid
        # The side channels' private directory, checked before any socket is made (SocketDirError if it is open to
        # other users); only a car with a platform link or a face feature needs it.
        self.socket_dir = Path(config.runtime.socket_dir)
        if uses_side_channels(config):
            prepare_socket_dir(self.socket_dir)
        # The fault log on disk (written by its own thread); a log that could not be read was set aside.
        self.fault_log: FaultLog | None = None
        if config.runtime.fault_log:
            try:
                self.fault_log = FaultLog(Path(config.runtime.fault_log), config.runtime.fault_log_capacity)
            except OSError as error:
                log.write("fault_log", state="unavailable", error=str(error))
            else:
                if self.fault_log.set_aside is not None:
                    log.write("fault_log", state="unreadable log set aside", path=str(self.fault_log.set_aside))
        # The maintenance record (audit_log.py, docs/audit.md): its writer continues the chain from the last record.
        self.audit: AuditLog | None = None
        # Why the record the configuration asks for is off for this run, and the records it has not kept: in the
        # health record, not only in one line of the log at start. Not tried again while the loop runs: opening it
        # reads and fsyncs the card, which the loop never waits for.
        self.audit_problem: str | None = None
        self.audit_not_kept = 0
        if config.runtime.audit_log:
            try:
                self.audit = AuditLog(Path(config.runtime.audit_log), config.runtime.audit_log_max_bytes)
            except Exception as error:  # noqa: BLE001 - the record is not in the safety path: the car runs without
                self.audit_problem = str(error)[:200] or type(error).__name__
                log.write("audit_log", state="unavailable", error=self.audit_problem)
        # Recognition events from the face worker, only while the community has the feature on: the installer's
        # processes.face, unless the platform has switched it since (overrides.py).
        self.inbox: RecognitionInbox | None = None
        self.face_enabled = False
        # Told when the face feature is switched, to start or stop the worker (main.py wires the process table).
        self.on_face_switch: Callable[[bool], None] | None = None
        # Housekeeping outside the safety path, called about once a second between cycles (the process table).
        self.on_second: Callable[[], None] | None = None
        # The platform link's side channel, only when the car has one.
        self.bridge: PlatformBridge | None = None
        self.applied_settings: dict[str, Any] | None = None
        self.lag_p99_ms = 0.0
        # Why a side channel the car should have is not open (its socket held by another process, say): in the health
        # record, and tried again every second until it opens.
        self.unavailable: dict[str, str] = {}
        self.fault_counts = FaultCounts()  # the raises between health records (fault_counts.py)
        # The alarm's modem process, when the car has one (docs/alarm.md).
        self.alarm_bridge: AlarmBridge | None = None
        if config.processes.modem:
            self._open_alarm_bridge()
        # The service tool's live state, while a service process watches (service_feed.py); and the last runs, kept
        # for it whether or not it watches (run_recorder.py).
        self.service_feed: ServiceFeed | None = None
        self.run_recorder = RunRecorder(self.period_s) if config.processes.service else None
        if config.processes.service:
            self._open_service_feed()
        if config.processes.platform:
            self._open_bridge()
        if config.processes.platform or config.processes.service:
            # The settings file is written by the platform link and by the service tool (a maintenance account).
            self.reload_overrides()
        else:
            self.switch_face(config.processes.face)
        if self.audit is not None and self.audit.recovery is not None:
            # Recorded once the platform's bridge is open, so that the platform hears of it too.
            log.write("audit_log", state=self.audit.recovery.action, **self.audit.recovery.details)
            self.record_action(self.audit.recovery.action, "controller", "audit log", self.audit.recovery.details)

    # -- one cycle -----------------------------------------------------------------------------------------------

    def _landing_from_first_status(self, status: DriveStatus) -> None:
        """The landing nearest the car by the drive's first status, while the core has not moved it (halted, no run):
        after a restart with the car at 11.48 m the record says landing 4, not the 0 of a state made blind."""
        self.landing_unknown = False
        if self.state.run is None and self.state.phase is Phase.HALTED:
            self.state = dataclasses.replace(self.state, landing=self.controller.nearest_landing(status.position_m))

    def cycle(self) -> tuple[Commands, tuple[Event, ...]]:
        started = time.perf_counter()
        faults_before = self.state.faults
        readings = self.session.readings
        readings.age_all()
        try:
            reading = self.drive.read_status()
        except Exception:  # noqa: BLE001 - the adapter promises not to raise; if it does, the drive is not fresh
            self.errors.caught("drive_read")
            reading = None
        if isinstance(reading, DriveStatus):
            readings.take_drive(reading)
            self.good_drive_reads += 1
            if self.landing_unknown:
                self._landing_from_first_status(reading)
        else:
            self.good_drive_reads = 0
        presses = Presses()
        try:
            self._poll_panels(presses)
        except Exception:  # noqa: BLE001 - a board's answer this cycle is lost; its age grows
            self.errors.caught("panel_bus")
            presses = Presses()
        inputs: Inputs | None = None
        request = self._commission_request()
        try:
            inputs = sense(readings, presses, self.freshness, self.tick, requested_mode=self._mode_request(),
                           recognitions=self._recognitions(),
                           controller_error=self.tick < self.controller_error_until_tick,
                           latch_record_failing=self.latches is not None and self.latches.failing,
                           alarm_channel=self._alarm_channel(),
                           alarm_acknowledged=(self.bridge is not None
                                               and self.bridge.take_acknowledgement(self.alarm_id)),
                           alarm_modem_dead=self.alarm_bridge is not None and self.alarm_bridge.dead(),
                           alarm_test=self.alarm_bridge.take_test() if self.alarm_bridge is not None else ("", False),
                           landing_table_refused=bool(self.landing_table.problem),
                           commission=request.action if request is not None else None)
            self.state, commands, events = self.controller.step(self.state, inputs)
        except Exception:  # noqa: BLE001 - the core failing is a stop at once (docs/faults.md, 38)
            # Logged with its traceback. The clean steps of the next CONTROLLER_ERROR_HOLD_S raise controller_error,
            # so the stop is a fault that reaches the fault log and the platform like any other; held that long, a
            # core that fails now and then shows one fault, not one per failure.
            self.errors.caught("core" if inputs is not None else "inputs")
            self.controller_error_until_tick = self.tick + 1 + self.controller_error_hold_ticks
            commands, events = SAFE_STOP, ()
        if inputs is None:
            return self._write_drive(commands, started), events
        if self.alarm_bridge is not None:
            try:
                # From the alarm's phase, not the cycle's commands: a core that failed this cycle (SAFE_STOP) leaves
                # the phase as it was, and must not hang up a trapped rider's call.
                self.alarm_bridge.tell(self.state.alarm is not AlarmPhase.IDLE)
            except Exception:  # noqa: BLE001
                self.errors.caught("alarm_channel")
        if self.state.alarm is not AlarmPhase.IDLE and not self.alarm_id:
            self.alarm_id = uuid.uuid4().hex  # a new alarm (or one restored from a record without its id)
        if self.bridge is not None:
            try:
                self.bridge.reporter.alarm_id = self.alarm_id  # the reset's "cancelled" still carries it
                self.bridge.after_cycle(self.state, inputs, events, self.lag_p99_ms)
            except Exception:  # noqa: BLE001
                self.errors.caught("platform_bridge")
        if self.run_recorder is not None:
            try:
                self.run_recorder.after_cycle(self.state, inputs, events, self.controller.landings_m)
            except Exception:  # noqa: BLE001 - the recorder is never in the safety path
                self.errors.caught("run_recorder")
        if self.service_feed is not None:
            try:
                for action in self.service_feed.commissioned(request, self.state, events, faults_before):
                    self.record_action(*action)  # what the core made of the service tool's request
                self.service_feed.after_cycle(self.state, inputs, commands, events, self.lag_p99_ms, self.health)
                for record in self.service_feed.take_audit():
                    action = {"login": "service_login", "logout": "service_logout"}.get(record.action,
                                                                                         "service_change")
                    details = {"client": record.client, "outcome": record.outcome}
                    if action == "service_change":
                        details["path"] = record.action
                    self.record_action(action, "service_tool", record.user, details)
                if self.service_feed.take_reload():
                    self.reload_overrides("service_tool")  # between two cycles, as the platform's reload
            except Exception:  # noqa: BLE001 - the service tool is never in the safety path
                self.errors.caught("service_feed")
        if self.audit is not None or self.audit_problem is not None:  # (counted, when the record is off)
            try:
                for action in seen_in_cycle(inputs, events, faults_before, self.switches_before, self.switches,
                                            self.eeo_held, mode=self.state.mode):
                    self.record_action(*action)
                self.eeo_held = (inputs.eeo_up, inputs.eeo_down)
            except Exception:  # noqa: BLE001
                self.errors.caught("audit_log")
        if events and self.fault_log is not None:
            try:
                self.fault_log.add(events, self.state, inputs)
            except Exception:  # noqa: BLE001
                self.errors.caught("fault_log")
        if self.latches is not None and (self.state.faults is not self._faults_kept
                                         or self.state.alarm is not self._alarm_kept):
            try:
                self._faults_kept, self._alarm_kept = self.state.faults, self.state.alarm
                self.latches.keep(latched_faults(self.state), kept_alarm(self.state), self.alarm_id)
            except Exception:  # noqa: BLE001
                self.errors.caught("latches")
        if self.state.alarm is AlarmPhase.IDLE:
            self.alarm_id = ""
        if self.state.learned is not None and events:
            learned = self.landing_table.take(self.state.learned, events)
            if learned is not None:  # a learning run just ended with a table: in force at once, and written
                self.controller = Controller(learned)
                self.log.write("landing_table", state=self.landing_table.source,
                               landings_m=list(learned.building.landings_m))
        self.fault_counts.add(events)
        for event in events:
            self.log.write("event", tick=event.tick, event=event.kind.value, landing=event.landing,
                           detail=event.detail)
        return self._write_drive(commands, started), events

    def _write_drive(self, commands: Commands, started: float) -> Commands:
        """The cycle's command to the drive (the watchdog advances with it), and the cycle's bookkeeping. The
        boards' outputs go out with the next cycle's polls."""
        status = self.session.readings.drive
        # A comm-loss trip is the loop's own to reset, once the link has been healthy for a while; every other
        # drive fault needs the deliberate reset.
        auto_reset = (status is not None and status.comm_loss_trip
                      and self.good_drive_reads >= self.config.drive.comm_loss_reset_reads)
        if auto_reset != self.drive_reset_held:
            self.drive_reset_held = auto_reset
            if auto_reset:  # the loop's own reset is a reset path too: in the maintenance record, once per trip
                self.record_action("fault_reset", "controller", "drive comm-loss reset", {"drive": "comm_loss_trip"})
        self.commands = commands
        self.outputs = outputs = output(commands, drive_fault_reset=auto_reset)
        self.watchdog = (self.watchdog + 1) & 0xFFFF
        try:
            self.drive.write_command(outputs.drive, self.watchdog)
        except Exception:  # noqa: BLE001 - the drive's watchdog stops the car if writes stop arriving
            self.errors.caught("drive_write")
        self.tick += 1
        self.cycle_s.append(time.perf_counter() - started)
        return commands

    def _poll_panels(self, presses: Presses) -> None:
        session = self.session
        for poll in session.polls(self.outputs):
            frame = self.panels.poll(poll.address, poll.payload)
            session.take_answer(poll, None if frame is None else frame.payload, presses)

    def _commission_request(self) -> ServiceCommission | None:
        """The service tool's commissioning request for this cycle, if one waits (service_feed.py)."""
        if self.service_feed is None:
            return None
        try:
            return self.service_feed.take_commission()
        except Exception:  # noqa: BLE001 - the service tool is never in the safety path
            self.errors.caught("service_feed")
            return None

    def _mode_request(self) -> Mode | None:
        """A key switch that changed makes the request; else the platform's, if it asked (sense.mode_request)."""
        now = switch_levels(self.session.readings, self.main_landing)
        self.switches_before = before = self.switches
        self.switches = now
        platform_mode = None
        if self.bridge is not None:
            try:
                platform_mode, reload = self.bridge.take()
                if reload:
                    self.reload_overrides()
            except Exception:  # noqa: BLE001 - whatever the link process sent, the loop goes on
                self.errors.caught("platform_messages")
                platform_mode = None
        requested = mode_request(now, before, platform_mode)
        if platform_mode is not None:
            if requested is None:
                self.platform_modes_refused += 1  # a key switch is on: the platform does not take the car from it
            # Taken only when no key switch changed this cycle: a key turned now makes the request itself.
            taken = requested is not None and now == before
            self.record_action("mode_command", "platform", self.bridge.mode_command if self.bridge else "",
                               {"mode": platform_mode.value, "taken": taken})
        return requested

    def record_action(self, action: str, via: str, who: str, details: dict[str, Any]) -> None:
        """Add a maintenance action to the record (audit_log.py: the disk is its writer thread's) and send it to the
        platform as an `audit` event: every record, whoever makes it (the cycle, the platform, the service tool)."""
        if self.audit is None:
            if self.audit_problem is not None:
                self.audit_not_kept += 1
            return
        try:
            for written in self.audit.record(action, via, who, details):
                if self.bridge is not None:
                    self.bridge.send_event(audit_message(written.record, written.line, written.hash))
        except Exception:  # noqa: BLE001 - the record is not in the safety path
            self.errors.caught("audit_log")

    def _open_bridge(self) -> None:
        try:
            self.bridge = PlatformBridge(self.config, self.socket_dir, self._sender("platform"))
        except OSError as error:
            self._unavailable("platform", error)
            return
        self.bridge.reporter.face_on = self.face_enabled
        self._available("platform")

    def _open_alarm_bridge(self) -> None:
        try:
            self.alarm_bridge = AlarmBridge(self.socket_dir, self._sender("modem"))
        except OSError as error:
            self._unavailable("modem", error)
            return
        self._available("modem")

    def _open_service_feed(self) -> None:
        try:
            self.service_feed = ServiceFeed(self.socket_dir, self.period_s, recorder=self.run_recorder)
        except OSError as error:
            self._unavailable("service", error)
            return
        self._available("service")

    def _alarm_channel(self) -> tuple[bool, bool]:
        if self.alarm_bridge is None:
            return False, False
        try:
            return self.alarm_bridge.channel()
        except Exception:  # noqa: BLE001 - the alarm's channel is not in the safety path
            self.errors.caught("alarm_channel")
            return False, False

    def _open_inbox(self) -> None:
        try:
            self.inbox = RecognitionInbox(prepare_socket_dir(self.socket_dir),
                                          self.config.controller.building.landing_count, self._sender("face"))
        except (OSError, SocketDirError) as error:
            self._unavailable("face", error)
            return
        self._available("face")

    def _unavailable(self, part: str, error: Exception) -> None:
        if part not in self.unavailable:
            self.log.write(part, state="side channel unavailable", error=str(error))
        self.unavailable[part] = str(error)

    def _available(self, part: str) -> None:
        if self.unavailable.pop(part, None) is not None:
            self.log.write(part, state="side channel open")

    def reopen_side_channels(self) -> None:
        """About once a second: open again a side channel that could not be opened (it is needed and missing)."""
        if self.config.processes.platform and self.bridge is None:
            self._open_bridge()
        if self.face_enabled and self.inbox is None:
            self._open_inbox()
        if self.config.processes.modem and self.alarm_bridge is None:
            self._open_alarm_bridge()
        if self.config.processes.service and self.service_feed is None:
            self._open_service_feed()

    def _sender(self, part: str) -> SenderCheck:
        child_pid = self.child_pid
        if child_pid is None:
            return same_user
        return only_process(lambda: child_pid(part))

    def _recognitions(self) -> tuple[Recognition, ...]:
        if self.inbox is None:
            return ()
        try:
            return self.inbox.take()
        except Exception:  # noqa: BLE001 - whatever the face worker sent, the loop goes on
            self.errors.caught("recognitions")
            return ()

    def close_platform(self) -> None:
        if self.bridge is not None:
            self.bridge.close()
            self.bridge = None

    def switch_face(self, enabled: bool) -> None:
        """Open or close the recognition inbox and have the face worker started or stopped."""
        if enabled == self.face_enabled:
            return
        self.face_enabled = enabled
        if enabled:
            self._open_inbox()
        else:
            self.unavailable.pop("face", None)
            if self.inbox is not None:
                self.inbox.close()
                self.inbox = None
        if self.bridge is not None:
            self.bridge.reporter.face_on = enabled
        if self.on_face_switch is not None:
            self.on_face_switch(enabled)
        self.log.write("face", state="on" if enabled else "off")

    def reload_overrides(self, via: str = "platform") -> None:
        """Apply the platform's settings (home landing, permissions, the face switch) between two cycles, keeping
        the car's state."""
        settings = overrides.read(Path(self.config.platform.overrides_path))
        if settings == self.applied_settings:
            return  # a reload that changes nothing rebuilds nothing and logs nothing (a flood of them fills no disk)
        before, self.applied_settings = self.applied_settings, settings
        self.switch_face(settings.get("face_enabled", self.config.processes.face))
        try:
            self.controller = Controller(overrides.apply(self.config.controller, settings))
        except ConfigError as error:
            self.log.write("platform", state="settings refused", error=str(error))
            self._record_settings(before, settings, str(error), via)
            return
        self.log.write("platform", state="settings applied", settings=settings)
        self._record_settings(before, settings, "", via)

    def _record_settings(self, before: dict[str, Any] | None, settings: dict[str, Any], refused: str,
                         via: str = "platform") -> None:
        """A change of the platform's settings in the maintenance record (not those found at start: nobody changed
        them then, and a change made while the loop was stopped is in the platform's own record of its command)."""
        if before is None:
            return
        details: dict[str, Any] = {"changes": settings_changes(before, settings), "applied": not refused}
        if refused:
            details["refused"] = refused[:200]
        who = self.bridge.settings_command if self.bridge is not None and via == "platform" else ""
        self.record_action("parameter_change", via, who, details)

    # -- running -------------------------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        cycles = sorted(self.cycle_s) or [0.0]
        drive = self.session.readings.drive
        return {
            "tick": self.tick,
            "phase": self.state.phase.value,
            "mode": self.state.mode.value,
            # The landing the car last stood at (at start: the nearest by the drive's count); not a run's target.
            "landing": self.state.landing,
            # Where the car is now, by the drive's last status (None before it has answered).
            "position_m": round(drive.position_m, 3) if drive is not None else None,
            "nearest_landing": self.controller.nearest_landing(drive.position_m) if drive is not None else None,
            "faults": sorted(fault.value for fault in self.state.faults),
            # `faults` is this cycle's; a stop-at-once fault raised and cleared since the last record shows here.
            "faults_since_last_health": self.fault_counts.since_last(fault.value for fault in self.state.faults),
            "fault_raises_since_last_health": dict(self.fault_counts.raises_since_last),
            "fault_raises_total": dict(self.fault_counts.raises_total),
            # After a stop the car waits to be seen at rest before its brake may lift (docs/faults.md).
            "settling": self.state.settling,
            # What keeps the car from serving, if anything (carctl/core/waiting.py, docs/faults.md).
            "waiting_for": waiting_for(self.state, drive.position_m if drive is not None else None,
                                       self.controller.context.supervisor_limits),
            "lag_p50_ms": round(self.rate.percentile_ms(0.5), 3),
            "lag_p99_ms": round(self.rate.percentile_ms(0.99), 3),
            "missed_cycles": self.rate.missed,
            "cycle_p50_ms": round(cycles[len(cycles) // 2] * 1000, 3),
            "cycle_p99_ms": round(cycles[int(0.99 * (len(cycles) - 1))] * 1000, 3),
            "drive_exchanges": self.drive.exchanges,
            "drive_errors": dict(self.drive.errors),
            "drive_port_problem": self.drive.port_problem,
            # One 0x17 transaction a cycle, or two (docs/register-map.md); and whether the drive refused 0x17.
            "drive_transaction": "combined" if self.drive.combined else "separate",
            "drive_combined_refused": self.drive.combined_refused,
            "panel_polls": self.panels.polls,
            "panel_timeouts": self.panels.timeouts,
            "panel_serial_errors": self.panels.serial_errors,
            "panel_port_problem": self.panels.port_problem,
            "panel_bad_crc": self.panels.decoder.counters.bad_crc,
            "panel_bad_length": self.panels.decoder.counters.bad_length,
            "panel_garbage_bytes": self.panels.decoder.counters.garbage_bytes,
            "panel_payload_errors": self.session.payload_errors,
            "panel_repeated_status": self.session.repeated_status,
            "fault_log_write_errors": self.fault_log.write_errors if self.fault_log is not None else None,
            "audit_write_errors": self.audit.write_errors if self.audit is not None else None,
            "audit_records_lost": self.audit.lost if self.audit is not None else None,
            # The record the configuration asks for could not be opened at start: why, and what it has not kept.
            "audit_log_unavailable": self.audit_problem,
            "audit_records_not_kept": self.audit_not_kept if self.audit_problem is not None else None,
            "latch_write_errors": self.latches.write_errors if self.latches is not None else None,
            "latch_rewrites": self.latches.rewrites if self.latches is not None else None,
            **self.landing_table.health(),
            "platform_spool": len(self.bridge.spool) if self.bridge is not None else None,
            "platform_spool_dropped": self.bridge.spool_overflow if self.bridge is not None else None,
            "recognitions": self.inbox.accepted if self.inbox is not None else None,
            "recognitions_refused": dict(self.inbox.inbox.refused) if self.inbox is not None else None,
            "platform_messages_refused": dict(self.bridge.inbox.refused) if self.bridge is not None else None,
            "platform_modes_refused": self.platform_modes_refused,
            "alarm_modem": self.alarm_bridge.health() if self.alarm_bridge is not None else None,
            "service_feed": self.service_feed.health() if self.service_feed is not None else None,
            "side_channels_unavailable": dict(self.unavailable),
            "loop_errors": dict(self.errors.counts),
            "log_write_failures": self.log.failed_writes,
            "log_rotation_failures": self.log.rotation_failures,
        }

    def report_port_problems(self) -> None:
        """A port's problem logged once when it appears, changes or clears (not every cycle it lasts: with the
        drive unplugged that was a hundred lines a second); the health record carries it meanwhile."""
        for name, port in (("drive", self.drive), ("panel", self.panels)):
            problem = port.port_problem
            if problem != self.reported_port_problems.get(name):
                self.reported_port_problems[name] = problem
                self.log.write("port", port=name, problem=problem, state="unusable" if problem else "open")

    def run(self, run_seconds: float, stop: Any) -> None:
        """Cycle until stop() is true (or run_seconds have passed, when positive)."""
        self.drive.connect()
        self.panels.open()
        started = time.monotonic()
        next_health = started + HEALTH_EVERY_S
        next_second = started + 1.0
        self.rate = RateKeeper(self.period_s)
        while not stop():
            try:
                self.cycle()
            except Exception:  # noqa: BLE001 - the last guard: the loop never exits mid-run
                self.errors.caught("cycle")
            now = time.monotonic()
            if now >= next_second:
                next_second = now + 1.0
                try:
                    self.report_port_problems()
                    self.reopen_side_channels()
                    if self.on_second is not None:
                        self.on_second()
                except Exception:  # noqa: BLE001 - housekeeping (the process table) must not stop the car
                    self.errors.caught("housekeeping")
            if now >= next_health:
                next_health = now + HEALTH_EVERY_S
                try:
                    self.lag_p99_ms = self.rate.percentile_ms(0.99)
                    self.log.write("health", **self.health())
                    self.fault_counts.next_window(fault.value for fault in self.state.faults)
                except Exception:  # noqa: BLE001
                    self.errors.caught("health")
            if run_seconds and now - started >= run_seconds:
                break
            self.rate.keep()
        # Leave the drive stopped; its watchdog would stop it anyway.
        self.drive.write_command(DriveCommand(quick_stop=not self.state.phase.value == "standing"), self.watchdog)
        self.log.write("health", **self.health())
        self.drive.close()
        self.panels.close()
        if self.inbox is not None:
            self.inbox.close()
        if self.fault_log is not None:
            self.fault_log.close()
        if self.audit is not None:
            self.audit.close()
        if self.latches is not None:
            self.latches.close()
        self.landing_table.close()
        self.close_platform()
        if self.alarm_bridge is not None:
            self.alarm_bridge.close()
        if self.service_feed is not None:
            self.service_feed.close()


def uses_side_channels(config: FirmwareConfig) -> bool:
    """Whether the loop has a side channel to open, and so needs the private socket directory."""
    processes = config.processes
    return processes.platform or processes.face or processes.modem or processes.service


__all__ = ["ControlLoop", "StructuredLog", "open_log"]
