"""The firmware's real-time loop: read the drive, poll the panels, step the core, write the drive.

Rules of this module:
- One cycle per control period, kept by RateKeeper; the lag of every cycle is measured and published.
- Every input carries its age in cycles since its last good reading. A timeout, a Modbus exception, a corrupted
  frame simply does not refresh its input: the supervisor sees the age grow and reacts (signals.MAX_AGE_TICKS).
- Panel polling: the car-top board and the car operating panel every cycle (doors and car buttons matter at once),
  `panel.landing_polls_per_cycle` landing boards per cycle in turn, plus one whose lamps have just changed, so a
  landing call's lamp lights one cycle after the call registers. Outputs computed in one cycle go out with the
  next cycle's polls.
- A comm-loss trip of the drive is reset by the loop itself once the link has been healthy for
  `drive.comm_loss_reset_reads` reads in a row; every other drive fault needs the deliberate reset.
- The loop never exits mid-run. Each step outside the core (adapters, side channels, the platform bridge, the fault
  log, the structured log) is guarded: an exception is counted by where it happened and logged with its traceback
  (the first, then at most every LOG_ERROR_EVERY_S), and the cycle goes on without that step's result. An exception
  inside the core is answered with a stop at once (quick stop, no run, doors held) for that cycle.
- The side channels (platform link, face worker) are Unix sockets in `runtime.socket_dir` (sidechannel.py), checked
  when the loop starts; what they deliver is parsed and range-checked (protocol/loopback.py) and what is refused is
  counted in the health record, never handed to the core.
"""

from __future__ import annotations

import collections
import json
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable
from typing import IO, Any

from carctl.adapters.drive import DriveLink
from carctl.adapters.panelbus import PanelBusMaster
from carctl.core.config import ConfigError
from carctl.core.controller import Controller, ControllerState
from carctl.core.signals import EMPTY, Commands, Direction, Event, Inputs, Mode, Recognition
from carctl.filein import check_output
from carctl.protocol import panelbus
from carctl.protocol.drive_map import DriveCommand, DriveStatus
from carctl.protocol.panelbus import (CarPanelInputs, CarPanelOutputs, CarTopInputs, CarTopOutputs, LandingInputs,
                                      LandingOutputs, PayloadError)
from carctl.runtime import overrides
from carctl.runtime.config import FirmwareConfig
from carctl.runtime.fault_log import FaultLog
from carctl.runtime.platform_bridge import PlatformBridge
from carctl.runtime.ratekeeper import RateKeeper
from carctl.runtime.recognitions import RecognitionInbox
from carctl.runtime.sidechannel import SenderCheck, SocketDirError, only_process, prepare_socket_dir, same_user

NEVER_SEEN = 1 << 20  # the age of an input never received: stale from the start
HEALTH_EVERY_S = 5.0
LOG_ERROR_EVERY_S = 10.0
CYCLE_WINDOW = 3000  # cycle times kept for the health record's percentiles (a minute at 50 Hz)
# The core's answer could not be had this cycle: stop at once and hold the doors as they are.
SAFE_STOP = Commands(quick_stop=True)


class StructuredLog:
    """JSON lines: one record per event, plus a health record every few seconds. A record that cannot be written
    (a full disk, a closed stream) is counted, never raised into the loop."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.failed_writes = 0

    def write(self, kind: str, **fields: Any) -> None:
        try:
            record = {"t": round(time.time(), 3), "kind": kind, **fields}
            self.stream.write(json.dumps(record, default=str) + "\n")
            self.stream.flush()
        except (OSError, ValueError, TypeError):
            self.failed_writes += 1


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


@dataclass(slots=True)
class BoardInputs:
    """The freshest inputs of every board and their ages in cycles."""

    landings: int
    drive: DriveStatus | None = None
    drive_age: int = NEVER_SEEN
    car_top: CarTopInputs = field(default_factory=CarTopInputs)
    car_top_age: int = NEVER_SEEN
    car_panel: CarPanelInputs = field(default_factory=CarPanelInputs)
    car_panel_age: int = NEVER_SEEN
    landing: dict[int, LandingInputs] = field(default_factory=dict)
    landing_age: dict[int, int] = field(default_factory=dict)
    acks: dict[int, int] = field(default_factory=dict)

    def age_all(self) -> None:
        self.drive_age = min(NEVER_SEEN, self.drive_age + 1)
        self.car_top_age = min(NEVER_SEEN, self.car_top_age + 1)
        self.car_panel_age = min(NEVER_SEEN, self.car_panel_age + 1)
        for landing in range(self.landings):
            self.landing_age[landing] = min(NEVER_SEEN, self.landing_age.get(landing, NEVER_SEEN) + 1)


class ControlLoop:
    def __init__(self, config: FirmwareConfig, drive: DriveLink, panels: PanelBusMaster, log: StructuredLog,
                 child_pid: Callable[[str], int | None] | None = None) -> None:
        self.config = config
        self.controller = Controller(config.controller)
        self.drive = drive
        self.panels = panels
        self.log = log
        self.period_s = config.controller.car.control_period_s
        self.landings = config.controller.building.landing_count
        self.main_landing = config.controller.building.main_landing
        self.state: ControllerState = self.controller.initial_state(0.0)
        self.commands = Commands()
        self.tick = 0
        self.watchdog = 0
        self.board = BoardInputs(self.landings)
        self.landing_cursor = 0
        self.good_drive_reads = 0
        self.switches: dict[str, bool] = {"inspection": False, "fire": False, "independent": False}
        self.payload_errors = 0
        self.sent_landing_outputs: dict[int, LandingOutputs] = {}
        self.rate = RateKeeper(self.period_s)
        self.cycle_s: collections.deque[float] = collections.deque(maxlen=CYCLE_WINDOW)
        self.errors = LoopErrors(log)
        # Who may speak on each side channel: the part of that name the process table started (main.py), or, with no
        # process table (a test that runs the parts in one process), any process of the firmware's user.
        self.child_pid = child_pid
        # The side channels' private directory, checked before any socket is made (SocketDirError if it is open to
        # other users); only a car with a platform link or a face feature needs it.
        self.socket_dir = Path(config.runtime.socket_dir)
        if config.processes.platform or config.processes.face:
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
        if config.processes.platform:
            self._open_bridge()
            self.reload_overrides()
        else:
            self.switch_face(config.processes.face)

    # -- one cycle -----------------------------------------------------------------------------------------------

    def cycle(self) -> tuple[Commands, tuple[Event, ...]]:
        started = time.perf_counter()
        board = self.board
        board.age_all()
        try:
            reading = self.drive.read_status()
        except Exception:  # noqa: BLE001 - the adapter promises not to raise; if it does, the drive is not fresh
            self.errors.caught("drive_read")
            reading = None
        if isinstance(reading, DriveStatus):
            board.drive = reading
            board.drive_age = 0
            self.good_drive_reads += 1
        else:
            self.good_drive_reads = 0
        try:
            presses = self._poll_panels()
        except Exception:  # noqa: BLE001 - a board's answer this cycle is lost; its age grows
            self.errors.caught("panel_bus")
            presses = _no_presses()
        inputs: Inputs | None = None
        try:
            inputs = self._inputs(presses)
            self.state, commands, events = self.controller.step(self.state, inputs)
        except Exception:  # noqa: BLE001 - DESIGN.md rule 7: the core failing is a stop at once
            self.errors.caught("core" if inputs is not None else "inputs")
            commands, events = SAFE_STOP, ()
        if inputs is None:
            return self._write_drive(commands, started), events
        if self.bridge is not None:
            try:
                self.bridge.after_cycle(self.state, inputs, events, self.lag_p99_ms)
            except Exception:  # noqa: BLE001
                self.errors.caught("platform_bridge")
        if events and self.fault_log is not None:
            try:
                self.fault_log.add(events, self.state, inputs)
            except Exception:  # noqa: BLE001
                self.errors.caught("fault_log")
        for event in events:
            self.log.write("event", tick=event.tick, event=event.kind.value, landing=event.landing,
                           detail=event.detail)
        return self._write_drive(commands, started), events

    def _write_drive(self, commands: Commands, started: float) -> Commands:
        """The cycle's command to the drive (the watchdog advances with it), and the cycle's bookkeeping."""
        self.commands = commands
        self.watchdog = (self.watchdog + 1) & 0xFFFF
        try:
            self.drive.write_command(self._drive_command(commands), self.watchdog)
        except Exception:  # noqa: BLE001 - the drive's watchdog stops the car if writes stop arriving
            self.errors.caught("drive_write")
        self.tick += 1
        self.cycle_s.append(time.perf_counter() - started)
        return commands

    def _drive_command(self, commands: Commands) -> DriveCommand:
        status = self.board.drive
        auto_reset = (status is not None and status.comm_loss_trip
                      and self.good_drive_reads >= self.config.drive.comm_loss_reset_reads)
        return DriveCommand(commands.run_up, commands.run_down, commands.speed_ref_m_s,
                            commands.fault_reset or auto_reset, commands.quick_stop)

    def _poll(self, address: int, payload: bytes) -> bytes | None:
        frame = self.panels.poll(address, payload)
        return None if frame is None else frame.payload

    def _poll_panels(self) -> dict[str, Any]:
        board = self.board
        commands = self.commands
        presses = _no_presses()
        answer = self._poll(panelbus.CAR_TOP, CarTopOutputs(
            board.acks.get(panelbus.CAR_TOP, 0), commands.door_open, commands.door_close, commands.door_nudge,
            commands.door_slow, commands.car_light, commands.car_fan).to_payload())
        if answer is not None:
            try:
                board.car_top = CarTopInputs.from_payload(answer)
                board.car_top_age = 0
            except PayloadError:
                self.payload_errors += 1
        position = commands.position_landing
        answer = self._poll(panelbus.CAR_PANEL, CarPanelOutputs(
            board.acks.get(panelbus.CAR_PANEL, 0), commands.car_call_lamps, position,
            commands.direction is Direction.UP, commands.direction is Direction.DOWN, commands.gong,
            commands.buzzer, commands.overload_lamp,
            commands.announce_landing if commands.announce_landing >= 0 else panelbus.NO_LANDING,
            commands.rescue_notice).to_payload())
        if answer is not None:
            try:
                panel = CarPanelInputs.from_payload(answer)
            except PayloadError:
                self.payload_errors += 1
            else:
                if panel.sequence != board.acks.get(panelbus.CAR_PANEL):
                    presses["car"] |= panel.calls_pressed
                    presses["door_open"] = panel.door_open_button
                    presses["door_close"] = panel.door_close_button
                    presses["accessible"] = panel.accessible_button
                    presses["fault_reset"] = panel.fault_reset_key
                board.acks[panelbus.CAR_PANEL] = panel.sequence
                board.car_panel = panel
                board.car_panel_age = 0
        for landing in self._landings_to_poll(commands):
            self._poll_landing(landing, commands, presses)
        return presses

    def _landing_outputs(self, landing: int, commands: Commands) -> LandingOutputs:
        return LandingOutputs(
            self.board.acks.get(panelbus.landing_address(landing), 0), landing in commands.hall_up_lamps,
            landing in commands.hall_down_lamps, commands.direction is Direction.UP,
            commands.direction is Direction.DOWN, commands.gong and commands.announce_landing == landing,
            commands.position_landing)

    def _landings_to_poll(self, commands: Commands) -> list[int]:
        """The next landings in turn, plus one whose lamps changed since it was last told (so a registered call
        lights its lamp on the next cycle, not a whole round later)."""
        chosen = []
        for _ in range(min(self.landings, self.config.panel.landing_polls_per_cycle)):
            chosen.append(self.landing_cursor)
            self.landing_cursor = (self.landing_cursor + 1) % self.landings
        for landing in range(self.landings):
            if landing in chosen:
                continue
            sent = self.sent_landing_outputs.get(landing)
            wanted = (landing in commands.hall_up_lamps, landing in commands.hall_down_lamps)
            if sent is None or (sent.up_lamp, sent.down_lamp) != wanted:
                chosen.append(landing)
                break
        return chosen

    def _poll_landing(self, landing: int, commands: Commands, presses: dict[str, Any]) -> None:
        board = self.board
        address = panelbus.landing_address(landing)
        outputs = self._landing_outputs(landing, commands)
        answer = self._poll(address, outputs.to_payload())
        if answer is None:
            return
        self.sent_landing_outputs[landing] = outputs
        try:
            hall = LandingInputs.from_payload(answer)
        except PayloadError:
            self.payload_errors += 1
            return
        if hall.sequence != board.acks.get(address):
            if hall.up_pressed:
                presses["up"].add(landing)
            if hall.down_pressed:
                presses["down"].add(landing)
        board.acks[address] = hall.sequence
        board.landing[landing] = hall
        board.landing_age[landing] = 0

    def _mode_request(self) -> Mode | None:
        """Key switches are levels; the core wants a request when one changes."""
        board = self.board
        fire_landing = board.landing.get(self.main_landing)
        now = {"inspection": board.car_top.inspection, "fire": bool(fire_landing and fire_landing.fire_switch),
               "independent": board.car_panel.independent_key}
        changed = [name for name, on in now.items() if on != self.switches[name]]
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
        if not changed:
            # The platform may ask for a mode too (normal, out of service, independent); key switches come first.
            return platform_mode
        for name, mode in (("inspection", Mode.INSPECTION), ("fire", Mode.FIRE), ("independent", Mode.INDEPENDENT)):
            if now[name]:
                return mode
        return Mode.NORMAL

    def _inputs(self, presses: dict[str, Any]) -> Inputs:
        board = self.board
        drive = board.drive
        top = board.car_top
        return Inputs(
            tick=self.tick,
            period_s=self.period_s,
            drive_age_ticks=board.drive_age,
            drive_ready=drive.ready if drive else False,
            drive_running=drive.running if drive else False,
            drive_fault_code=drive.fault_code if drive else 0,
            brake_open=drive.brake_open if drive else False,
            safety_chain_closed=drive.safety_chain_closed if drive else False,
            speed_m_s=drive.speed_m_s if drive else 0.0,
            position_m=drive.position_m if drive else 0.0,
            load_kg=drive.load_kg if drive else 0.0,
            car_top_age_ticks=board.car_top_age,
            door_open_limit=top.door_open_limit,
            door_closed_limit=top.door_closed_limit,
            door_locked=top.door_locked,
            light_curtain_blocked=top.light_curtain_blocked,
            safety_edge=top.safety_edge,
            in_door_zone=top.in_door_zone,
            car_panel_age_ticks=board.car_panel_age,
            car_calls_pressed=frozenset(presses["car"]) if presses["car"] else EMPTY,
            door_open_button=presses["door_open"],
            door_close_button=presses["door_close"],
            accessible_button=presses["accessible"],
            seat_occupied=board.car_panel.seat_occupied,
            landing_age_ticks=max(board.landing_age.values(), default=NEVER_SEEN),
            hall_up_pressed=frozenset(presses["up"]) if presses["up"] else EMPTY,
            hall_down_pressed=frozenset(presses["down"]) if presses["down"] else EMPTY,
            recognitions=self._recognitions(),
            fault_reset=presses["fault_reset"],
            mode_request=self._mode_request(),
            fire_detected=frozenset(landing for landing, hall in board.landing.items() if hall.fire_detector),
            # Held levels, trusted only while the car-top board answers (one lost answer is forgiven; a silent board
            # stops the car anyway).
            inspection_up=top.inspection_up and board.car_top_age <= 2,
            inspection_down=top.inspection_down and board.car_top_age <= 2,
            on_battery=drive.on_battery if drive else False,
            # Before the drive first answers it is stale (a stop-at-once fault): nothing moves on its position.
            position_unreferenced=drive.position_unreferenced if drive else False,
            below_reference_mark=drive.below_reference_mark if drive else False,
        )

    def _open_bridge(self) -> None:
        try:
            self.bridge = PlatformBridge(self.config, self.socket_dir, self._sender("platform"))
        except OSError as error:
            self._unavailable("platform", error)
            return
        self.bridge.reporter.face_on = self.face_enabled
        self._available("platform")

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

    def reload_overrides(self) -> None:
        """Apply the platform's settings (home landing, permissions, the face switch) between two cycles, keeping
        the car's state."""
        settings = overrides.read(Path(self.config.platform.overrides_path))
        if settings == self.applied_settings:
            return  # a reload that changes nothing rebuilds nothing and logs nothing (a flood of them fills no disk)
        self.applied_settings = settings
        self.switch_face(settings.get("face_enabled", self.config.processes.face))
        try:
            self.controller = Controller(overrides.apply(self.config.controller, settings))
        except ConfigError as error:
            self.log.write("platform", state="settings refused", error=str(error))
            return
        self.log.write("platform", state="settings applied", settings=settings)

    # -- running -------------------------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        cycles = sorted(self.cycle_s) or [0.0]
        return {
            "tick": self.tick,
            "phase": self.state.phase.value,
            "mode": self.state.mode.value,
            "landing": self.state.landing,
            "faults": sorted(fault.value for fault in self.state.faults),
            "lag_p50_ms": round(self.rate.percentile_ms(0.5), 3),
            "lag_p99_ms": round(self.rate.percentile_ms(0.99), 3),
            "missed_cycles": self.rate.missed,
            "cycle_p50_ms": round(cycles[len(cycles) // 2] * 1000, 3),
            "cycle_p99_ms": round(cycles[int(0.99 * (len(cycles) - 1))] * 1000, 3),
            "drive_exchanges": self.drive.exchanges,
            "drive_errors": dict(self.drive.errors),
            "panel_polls": self.panels.polls,
            "panel_timeouts": self.panels.timeouts,
            "panel_bad_crc": self.panels.decoder.counters.bad_crc,
            "panel_bad_length": self.panels.decoder.counters.bad_length,
            "panel_garbage_bytes": self.panels.decoder.counters.garbage_bytes,
            "panel_payload_errors": self.payload_errors,
            "fault_log_write_errors": self.fault_log.write_errors if self.fault_log is not None else None,
            "platform_spool": len(self.bridge.spool) if self.bridge is not None else None,
            "platform_spool_dropped": self.bridge.spool_overflow if self.bridge is not None else None,
            "recognitions": self.inbox.accepted if self.inbox is not None else None,
            "recognitions_refused": dict(self.inbox.inbox.refused) if self.inbox is not None else None,
            "platform_messages_refused": dict(self.bridge.inbox.refused) if self.bridge is not None else None,
            "side_channels_unavailable": dict(self.unavailable),
            "loop_errors": dict(self.errors.counts),
            "log_write_failures": self.log.failed_writes,
        }

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
        self.close_platform()


def _no_presses() -> dict[str, Any]:
    return {"car": set(), "up": set(), "down": set(), "door_open": False, "door_close": False, "accessible": False,
            "fault_reset": False}


def open_log(target: str) -> StructuredLog:
    """The structured log: stderr for "-", else a file appended to. OSError if it cannot be opened, NotARegularFile
    (one) for a FIFO, a device or a folder: writing to a FIFO would block the loop until someone reads it."""
    if target == "-":
        return StructuredLog(sys.stderr)
    check_output(target)
    return StructuredLog(open(target, "a", encoding="utf-8"))  # noqa: SIM115 - lives as long as the process


__all__ = ["ControlLoop", "StructuredLog", "open_log"]
