"""The core and the shaft stepped together on virtual time, as fast as the CPU allows.

Rules of this module:
- One loop iteration is one control tick: scripted events, the boards' and the drive's readings of the shaft,
  the firmware's own sense step (carctl/protocol/sense.py) to Inputs, Controller.step, the firmware's own output
  step to the drive's command block and the car-top board's outputs, the independent safety check on the true
  shaft state, trace, Shaft.update from those outputs (as the simulated drive on the wire does), passengers.
- Idle ticks are skipped only when the result is provably the same as stepping them: the controller returned its
  state unchanged with no events, the commands repeat, the shaft is steady under them (the car at rest; only the
  door, the lifting brake's timer or a passenger crossing the threshold moves, each on a known schedule), nobody
  pressed a button, and no timer (controller deadlines, the passengers' next move, the next scripted event, an
  obstruction ending, the brake opening, the end of the run) falls inside the skipped span.
  tests/sim/test_lockstep.py checks a seeded day both ways.
- A run's ticks are cruised where that is provably the same as stepping them (_cruise): after a step that returned
  its state unchanged with no events and no input, the controller's cruise law (Controller.cruise, core/cruise.py)
  gives the speed reference step() would command from the drive's position and speed alone, or refuses; the shaft
  moves by it (Shaft.run_plain, the law's compiled form asked each tick: update()'s arithmetic for a plain run,
  checked by Shaft.plain_run() on entry), the safety check and the trace see every tick (the shaft hands over a tick
  where the check may find something, and every tick when a trace is written), and no snapshot, command record or
  board reading is built.
  A cruise stops before a tick at which the law refuses, a reading other than the drive's position and speed, the
  door zone and the reference mark would change (the brake, a slowdown switch, the true speed reaching zero, which
  the passengers see), or anything else may happen (the passengers' next move, a scripted event, an obstruction or
  a held alarm ending, the end of the traffic or the drain, until_tick), and the tick before that is stepped in
  full, so that a source withheld from then on keeps the reading stepping every tick leaves; never with a recording
  (it records every stepped snapshot), a stop callback, a withheld or silent source, a learn procedure, the alarm
  line busy or a fault injected; on a car with a rear door, only with that door shut, still and locked too
  (Shaft.plain_run), and never past a rear obstruction's end. A cruise begins at a tick sensed as any
  (Cruise.holds_for: its inputs differ from the law's quiet step's only in the car's motion, whatever changed
  between two advance() calls), and the next stepped tick reads the boards afresh. tests/sim/test_cruise.py checks
  the law against step() and the traces three ways; cruise=False (or skip_idle=False) steps every run in full.
- A stepped tick is a car starting, stopping or standing under feedback, so its cost still counts: records are
  built by the fast constructors (core/records.py) and nothing is rebuilt that did not change.
- Deterministic for a scenario and seed: no clock, no unseeded randomness.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

from carctl.core.config import ConfigError
from carctl.core.controller import Controller, ControllerState, Phase
from carctl.core.cruise import Cruise
from carctl.core.learning import landings_from_detail, with_learned_landings
from carctl.core.records import replace
from carctl.core.state import kept_alarm, latched_faults
from carctl.protocol.modem import Step
from sim.modem import AlarmLine
from carctl.core.rates import Freshness
from carctl.core.signals import EMPTY, Commands, Commissioning, Event, EventKind, Inputs, Mode, Recognition
from carctl.core.supervisor import RELEVEL_LIMIT_M_S, parse_fault_detail
from carctl.protocol.panelbus import CarPanelInputs, LandingInputs
from carctl.protocol.sense import (BoardReadings, SwitchLevels, car_top_outputs, drive_command, mode_request,
                                   rear_car_top_outputs, sense, switch_levels)
from sim.metrics import passenger_metrics
from sim.panels import car_top_reading, rear_car_top_reading
from sim.physics import Actuators, Shaft, actuators
from sim.learnrun import LearnProcedure
from sim.scenario import Scenario, ScriptedEvent
from sim.runstats import LevellingStats, PassengerStats, levelling_summary_mm
from sim.traffic import Passenger, PassengerFlow, Presses, generate, stream

# The simulated rescue service: called on the alarm's line, it answers after this long (sim/modem.py).
RESCUE_ANSWERS_AFTER_S = 0.5
ALARM_NUMBERS = ("+8653281234567", "053280001111")  # configs/sim.toml's: the rescue service's two lines
NEVER = 1 << 62
# Scenario faults that silence a panel board: its answers stop, so its data ages.
BOARD_SILENCES = {"car_top_silent": "car_top", "car_panel_silent": "car_panel", "landing_silent": "landing"}
# The independent safety check counts the car as moving above this true speed.
MOVING_M_S = 0.001


@dataclass(slots=True)
class Violation:
    t_s: float
    kind: str
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"t_s": round(self.t_s, 3), "kind": self.kind, "detail": self.detail}


@dataclass(slots=True)
class _Pending:
    """One-tick inputs set by scripted events."""

    mode_request: Mode | None = None
    fault_reset: bool = False
    door_open_button: bool = False
    door_close_button: bool = False
    accessible_button: bool = False
    alarm_reset: bool = False
    recognitions: tuple[Recognition, ...] = ()
    # The service tool's commissioning request (the firmware's loop passes it from its side channel): none in a
    # scenario unless a test sets it.
    commission: Commissioning | None = None

    def any(self) -> bool:
        return (self.mode_request is not None or self.fault_reset or self.door_open_button
                or self.door_close_button or self.accessible_button or self.alarm_reset or bool(self.recognitions)
                or self.commission is not None)


@dataclass
class Recording:
    """The inputs and commands of every stepped tick, for replay tests."""

    inputs: list[Inputs] = field(default_factory=list)
    commands: list[Commands] = field(default_factory=list)


class Lockstep:
    def __init__(self, scenario: Scenario, skip_idle: bool = True, trace: IO[str] | None = None,
                 trace_every: int = 1, recording: Recording | None = None,
                 extra_passengers: list[Passenger] | None = None, keep_events: bool = False,
                 camera: Any = None, bounded: bool = False, cruise: bool = True) -> None:
        """``bounded``: memory that does not grow with the run (a year): passengers are drawn as they arrive and
        counted into streaming statistics (sim/runstats.py), with the same report; not with a camera. ``cruise``:
        runs cruised by the controller's cruise law where that is the same as stepping them (_cruise)."""
        self.scenario = scenario
        config = scenario.controller
        self.config = config
        self.period_s = config.car.control_period_s
        self.controller = Controller(config)
        self.shaft = Shaft(config, scenario.physics)
        if bounded:
            passengers = list(extra_passengers or [])
            self.flow = PassengerFlow(passengers, self.shaft, config.car.capacity_persons, config.car.transfer_s,
                                      source=stream(scenario.traffic, config.building.population,
                                                    config.building.main_landing, self.period_s),
                                      stats=PassengerStats(self.period_s))
        else:
            passengers = generate(scenario.traffic, config.building.population, config.building.main_landing,
                                  self.period_s)
            passengers.extend(extra_passengers or [])
            self.flow = PassengerFlow(passengers, self.shaft, config.car.capacity_persons, config.car.transfer_s)
        self.camera = camera
        if camera is not None:
            for passenger in passengers:
                camera.assign(passenger)
            self.flow.camera = camera
        self.skip_idle = skip_idle
        # Runs cruised (_cruise): only with skip_idle, as the other way of not doing what changes nothing.
        self.cruise_runs = cruise and skip_idle
        self._cruise_law: Cruise | None = None
        self.cruised_ticks = 0
        self.trace = trace
        self.trace_every = max(1, trace_every)
        self.recording = recording
        self.script = list(scenario.events)
        self.script.reverse()
        # The tick since which the drive's status has not reached the controller (comm loss: no answers; a frozen
        # drive: answers whose TICK does not advance, which the drive link refuses as stale), or -1.
        self.comm_lost_since = -1
        self.frozen_since = -1
        self.silent_since: dict[str, int] = {}  # board -> the tick it went silent
        self.fire_detected: frozenset[int] = EMPTY  # landings whose fire detector is active
        self.inspection_buttons = (False, False)  # the car-top station's up and down buttons, held
        self.inspection_switch = False  # the car-top station's switch (a key switch: a mode request when it changes)
        # The controller cabinet's emergency electrical operation switch and its up and down buttons, read by the
        # cabinet landing's board; and what that board last reported of them.
        self.cabinet = (False, False, False)
        self._cabinet_read = self.cabinet
        # The cabinet's learn button (the same board), what that board last reported of it, and the scenario event
        # learn in progress (sim/learnrun.py; None: none).
        self.learn_button = False
        self._learn_read = False
        self.learn_procedure: LearnProcedure | None = None
        self.violations: list[Violation] = []
        building = config.building
        self._overspeed_m_s = config.car.governor_trip_m_s
        self._lowest_m = building.landings_m[0] - building.overtravel_m
        self._highest_m = building.landings_m[-1] + building.overtravel_m
        self.violation_count = 0
        self._violating: set[str] = set()
        self._brake_lifts_seen = 0
        self.fault_log: list[dict[str, Any]] = []
        self.trips = 0
        self.alarm_presses = 0
        self.alarms = {"requested": 0, "filtered": 0}  # alarms started, and holds held back at open doors
        self.trapped_passengers = 0
        self.levelling_errors_m: list[float] | LevellingStats = LevellingStats() if bounded else []
        self.learnings: list[str] = []  # how each learning run ended (LEARNING event details)
        self.stepped_ticks = 0
        self.tick = 0
        self.state: ControllerState = self.controller.initial_state(self.shaft.encoder_m())
        self.commands = Commands()
        self.freshness = Freshness.from_config(config.car)
        self.switches = SwitchLevels()
        self._main_landing = config.building.main_landing
        # The readings the key switches were last taken from (_sense): unchanged readings, unchanged switches.
        self._switch_sources: tuple[object, ...] = (None, None, None, None)
        self.alarm_until_tick = -1  # the alarm button is held until this tick
        # The alarm's channel: the AT session against the simulated module and a rescue centre that answers
        # (sim/modem.py), with the configuration's numbers when it has them.
        self.alarm_line = AlarmLine(ALARM_NUMBERS, RESCUE_ANSWERS_AFTER_S)
        self._alarm_channel = (False, False)
        self._alarm_unreachable = False  # the module answers nothing, or no call reaches anyone (AtSession)
        self._car_top_key: tuple[object, ...] = ()
        self._rear_car_top_key: tuple[object, ...] = ()
        self.readings = self._first_readings()
        self._next_ident = 1 << 40 if bounded else len(passengers)  # scripted passengers after generated ones
        self.end_tick = round(scenario.traffic.duration_s / self.period_s)
        self.drain_end_tick = self.end_tick + round(scenario.traffic.drain_s / self.period_s)
        self.presses = Presses()
        self.pending = _Pending()
        self._previous_inputs: Inputs | None = None
        # The last step changed nothing: same state, same commands, no events, no input.
        self._repeating = False
        self._commands_before = self.commands
        self.event_log: list[Event] | None = [] if keep_events else None

    # -- scripted events -----------------------------------------------------------------------------------------

    def _apply_script(self, tick: int, presses: Presses, pending: _Pending) -> None:
        script = self.script
        while script and round(script[-1].t_s / self.period_s) <= tick:
            self._apply_event(script.pop(), tick, presses, pending)

    def _apply_event(self, event: ScriptedEvent, tick: int, presses: Presses, pending: _Pending) -> None:
        shaft = self.shaft
        kind = event.type
        if kind == "hall_call":
            (presses.up if event.direction == "up" else presses.down).add(event.landing)
        elif kind == "car_call":
            presses.car.add(event.landing)
        elif kind == "accessible_call":
            presses.car.add(event.landing)
            pending.accessible_button = True
        elif kind == "passenger":
            self.flow.add(Passenger(self._next_ident, tick, event.origin, event.destination,
                                    self.scenario.traffic.passenger_mass_kg))
            self._next_ident += 1
        elif kind == "fault":
            self.inject(event.kind)
        elif kind == "clear_fault":
            self.clear(event.kind)
        elif kind == "seat_occupied":
            shaft.seat_occupied = True
        elif kind == "seat_free":
            shaft.seat_occupied = False
        elif kind == "obstruct":
            until_tick = tick + max(1, round(event.duration_s / self.period_s))
            if event.side == "rear" and shaft.rear is not None:
                shaft.rear.obstructed_until_tick = until_tick
            else:
                shaft.obstructed_until_tick = until_tick
        elif kind == "alarm":
            self.alarm_until_tick = tick + max(1, round(event.duration_s / self.period_s))
        elif kind == "mode":
            pending.mode_request = Mode(event.mode)
        elif kind == "door_open_button":
            pending.door_open_button = True
        elif kind == "door_close_button":
            pending.door_close_button = True
        elif kind == "fault_reset":
            pending.fault_reset = True
        elif kind == "alarm_reset":
            pending.alarm_reset = True
        elif kind == "rescue":
            self.alarm_line.rescue(event.action, event.number)
        elif kind == "fire_detected":
            self.fire_detected = self.fire_detected | {event.landing}
        elif kind == "fire_detector_reset":
            self.fire_detected = self.fire_detected - {event.landing}
        elif kind == "controller_restart":
            self.restart_controller()
        elif kind == "load":
            shaft.extra_load_kg = event.load_kg
            shaft.set_load(shaft.load_kg)
        elif kind == "learn" and self.learn_procedure is None:
            self.learn_procedure = LearnProcedure(tick, self.period_s)

    def inject(self, kind: str) -> None:
        """A scenario fault: in the shaft, or (comm loss, a silent board) in what reaches the controller."""
        self.shaft.inject(kind)
        if kind == "comm_loss" and self.comm_lost_since < 0:
            self.comm_lost_since = self.tick
        if kind == "drive_frozen" and self.frozen_since < 0:
            self.frozen_since = self.tick
        if kind in BOARD_SILENCES:
            self.silent_since.setdefault(BOARD_SILENCES[kind], self.tick)
        if kind == "modem_dead":
            self.alarm_line.modem.dead = True

    def clear(self, kind: str) -> None:
        self.shaft.clear(kind)
        if kind == "comm_loss":
            self.comm_lost_since = -1
        if kind == "drive_frozen":
            self.frozen_since = -1
        if kind in BOARD_SILENCES:
            self.silent_since.pop(BOARD_SILENCES[kind], None)
        if kind == "modem_dead":
            self.alarm_line.modem.dead = False

    def restart_controller(self) -> None:
        """The controller reboots (its state is lost but for the latched faults, which the firmware keeps on disk);
        the shaft, the drive and its position count carry on."""
        self.state = self.controller.initial_state(self.shaft.encoder_m(), latched=latched_faults(self.state),
                                                   alarm=kept_alarm(self.state))
        self.commands = Commands()
        self.switches = SwitchLevels()
        self._switch_sources = (None, None, None, None)
        self._repeating = False

    # -- sensing -------------------------------------------------------------------------------------------------

    def _first_readings(self) -> BoardReadings:
        """Every board and the drive answering from the start."""
        building = self.config.building
        readings = BoardReadings(building.landing_count, building.cabinet_landing_index, rear_door=building.rear_door)
        readings.take_drive(self.shaft.drive_status())
        readings.take_car_top(car_top_reading(self.shaft))
        if building.rear_door:
            readings.take_rear_car_top(rear_car_top_reading(self.shaft))
        readings.take_car_panel(CarPanelInputs(seat_occupied=self.shaft.seat_occupied))
        for landing in range(readings.landing_count):
            readings.take_landing(landing, LandingInputs())
        return readings

    def _read_boards(self, tick: int, presses: Presses) -> None:
        """This tick's readings of the shaft by the drive and the boards, as the panel-bus session and the drive link
        would leave them: a withheld source keeps its last reading and ages."""
        shaft = self.shaft
        readings = self.readings
        lost, frozen = self.comm_lost_since, self.frozen_since
        if lost >= 0 or frozen >= 0:  # withheld since the earlier of the two
            readings.drive_age = tick - (min(lost, frozen) if lost >= 0 and frozen >= 0 else max(lost, frozen))
        else:
            readings.take_drive(self.shaft.drive_status())
        silent = self.silent_since
        # A silent board's reading is not refreshed (the session hears nothing from it) and ages from when it fell
        # silent; its presses are not heard.
        if "car_top" in silent:
            readings.car_top_age = tick - silent["car_top"]
            if shaft.rear is not None:  # the car-top boards share the car's travelling cable: silent together
                readings.rear_car_top_age = tick - silent["car_top"]
        else:
            if shaft.rear is not None:
                self._read_rear_car_top()
            up, down = self.inspection_buttons
            key = (shaft.door_units, shaft.door_locked(), shaft.light_curtain_blocked(), shaft.in_door_zone(), up,
                   down, shaft.slowdown, self.inspection_switch, "alarm_battery" in shaft.injected)
            if key != self._car_top_key:  # the board's inputs changed: a new reading
                self._car_top_key = key
                readings.take_car_top(car_top_reading(shaft, inspection=self.inspection_switch, inspection_up=up,
                                                      inspection_down=down))
            else:
                readings.car_top_age = 0
        if "car_panel" in silent:
            readings.car_panel_age = tick - silent["car_panel"]
            presses.car.clear()
            presses.door_open = presses.door_close = presses.accessible = presses.fault_reset = False
            presses.alarm_reset = False
        else:
            alarm = tick < self.alarm_until_tick
            panel = readings.car_panel
            if panel.seat_occupied != shaft.seat_occupied or panel.alarm_button != alarm:
                readings.take_car_panel(CarPanelInputs(seat_occupied=shaft.seat_occupied, alarm_button=alarm))
            else:
                readings.car_panel_age = 0
        if "landing" in silent:
            age = tick - silent["landing"]
            readings.landing_age = [age] * readings.landing_count
            presses.up.clear()
            presses.down.clear()
        elif (self.fire_detected != readings.fire_detected or self.cabinet != self._cabinet_read
              or self.learn_button is not self._learn_read):
            self._cabinet_read = switch, up, down = self.cabinet
            self._learn_read = learn = self.learn_button
            cabinet = readings.cabinet_landing
            for landing in range(readings.landing_count):
                at_cabinet = landing == cabinet
                readings.take_landing(landing, LandingInputs(fire_detector=landing in self.fire_detected,
                                                             eeo_switch=switch and at_cabinet,
                                                             eeo_up=up and at_cabinet, eeo_down=down and at_cabinet,
                                                             learn_button=learn and at_cabinet))
        elif readings.landing_age[0]:  # heard again after a silence
            readings.landing_age = [0] * readings.landing_count

    def _read_rear_car_top(self) -> None:
        """The rear door's car-top board: a new reading when what it reads changed (as _read_boards' front one)."""
        shaft, readings = self.shaft, self.readings
        rear = shaft.rear
        assert rear is not None
        key = (rear.units, rear.locked(), shaft.rear_light_curtain_blocked(), shaft.in_door_zone())
        if key != self._rear_car_top_key:
            self._rear_car_top_key = key
            readings.take_rear_car_top(rear_car_top_reading(shaft))
        else:
            readings.rear_car_top_age = 0

    def _sense(self, tick: int, presses: Presses, pending: _Pending) -> Inputs:
        if (pending.door_open_button or pending.door_close_button or pending.accessible_button or pending.fault_reset
                or pending.alarm_reset):
            presses.door_open |= pending.door_open_button
            presses.door_close |= pending.door_close_button
            presses.accessible |= pending.accessible_button
            presses.fault_reset |= pending.fault_reset
            presses.alarm_reset |= pending.alarm_reset
        self._read_boards(tick, presses)
        readings = self.readings
        top, panel = readings.car_top, readings.car_panel
        landings = readings.landing
        if (top is self._switch_sources[0] and panel is self._switch_sources[1]
                and landings.get(self._main_landing) is self._switch_sources[2]
                and landings.get(readings.cabinet_landing) is self._switch_sources[3]
                and pending.mode_request is None):
            requested = None  # the same readings: no key switch changed (mode_request), and nothing else asks
        else:
            switches = switch_levels(readings, self._main_landing)
            requested = mode_request(switches, self.switches, pending.mode_request)
            self.switches = switches
            self._switch_sources = (top, panel, landings.get(self._main_landing),
                                    landings.get(readings.cabinet_landing))
        line = self.alarm_line
        if self.commands.alarm_call or line.session.wanted or line.session.step is not Step.IDLE:  # AlarmLine.busy
            self._alarm_channel = self.alarm_line.exchange(self.commands.alarm_call, tick * self.period_s)
            self._alarm_unreachable = line.session.unreachable
        return sense(readings, presses, self.freshness, tick, requested_mode=requested,
                     recognitions=pending.recognitions, alarm_channel=self._alarm_channel,
                     alarm_modem_dead=self._alarm_unreachable, commission=pending.commission)

    # -- checks and records --------------------------------------------------------------------------------------

    def _check_safety(self, tick: int) -> None:
        """Independent of the controller: the shaft's truth against the rules the car must never break."""
        shaft = self.shaft
        speed = abs(shaft.speed_m_s)
        door_open_moving = speed > MOVING_M_S and not shaft.doors_locked() and (not shaft.in_door_zone()
                                                                               or speed >= RELEVEL_LIMIT_M_S)
        overspeed = speed > self._overspeed_m_s
        outside = not self._lowest_m <= shaft.position_m <= self._highest_m
        # The brake lifted while the car was still moving (sliding on it after a stop at once): a run begun at
        # speed, perhaps the other way. Also a run commanded at all while the car slides on its closed brake, once
        # the drive's status showing it has reached the controller (a withheld status leaves it none the wiser).
        commands = self.commands
        lifted_moving = (shaft.brake_lifts != self._brake_lifts_seen and abs(shaft.lift_speed_m_s) > MOVING_M_S) or (
            (commands.run_up or commands.run_down) and not shaft.brake_open and speed > MOVING_M_S
            and self.comm_lost_since < 0 and self.frozen_since < 0)
        self._brake_lifts_seen = shaft.brake_lifts
        if door_open_moving or overspeed or outside or lifted_moving or self._violating:
            found = {kind for kind, holds in (("moving_with_door_open", door_open_moving), ("overspeed", overspeed),
                                              ("left_shaft", outside), ("brake_lifted_while_moving", lifted_moving))
                     if holds}
            for kind in found - self._violating:
                self.violation_count += 1
                if len(self.violations) < 100:
                    self.violations.append(Violation(tick * self.period_s, kind,
                                                      f"position {shaft.position_m:.3f} m speed {shaft.speed_m_s:.3f}"
                                                      f" m/s door {self._doors_shown()}"))
            self._violating = found

    def _doors_shown(self) -> str:
        rear = self.shaft.rear
        return self.shaft.door_state() + ("" if rear is None else f" rear door {rear.state()}")

    def _on_events(self, events: tuple[Event, ...]) -> None:
        if self.event_log is not None:
            self.event_log.extend(events)
        for event in events:
            if event.kind is EventKind.RUN_STARTED:
                self.trips += 1
            elif event.kind is EventKind.ALARM_BUTTON and event.detail == "pressed":
                self.alarm_presses += 1
            elif event.kind is EventKind.ALARM and event.detail in ("requested", "filtered"):
                self.alarms[event.detail] += 1
            elif event.kind is EventKind.TRAPPED_PASSENGER:
                self.trapped_passengers += 1
            elif event.kind is EventKind.LEARNING:
                self._on_learning(event)
            elif event.kind is EventKind.ARRIVED:
                shaft = self.shaft
                self.levelling_errors_m.append(abs(shaft.position_m - shaft.landings_m[event.landing]))
            elif event.kind is EventKind.FAULT_RAISED:
                name, code, level = parse_fault_detail(event.detail)
                self.fault_log.append({"kind": name, "code": code, "level": level,
                                       "raised_t_s": round(event.tick * self.period_s, 3), "cleared_t_s": None})
            elif event.kind is EventKind.FAULT_CLEARED:
                for entry in reversed(self.fault_log):
                    if entry["kind"] == event.detail and entry["cleared_t_s"] is None:
                        entry["cleared_t_s"] = round(event.tick * self.period_s, 3)
                        break

    def _on_learning(self, event: Event) -> None:
        """A learning run's end: a learned table becomes the controller's (as the firmware builds its configuration
        from the table it wrote); the scenario's learn procedure hears how it ended."""
        if event.detail == "started":
            return
        self.learnings.append(event.detail)
        landings_m = landings_from_detail(event.detail)
        if landings_m is not None:
            try:
                self.controller = Controller(with_learned_landings(self.config, landings_m))
            except ConfigError as error:
                self.learnings.append(f"not_used:{error}")
        if self.learn_procedure is not None:
            self.learn_procedure.result = event.detail

    def _trace_record(self, tick: int) -> dict[str, Any]:
        shaft = self.shaft
        commands = self.commands
        state = self.state
        return {
            "t_s": round(tick * self.period_s, 3),
            "position_m": round(shaft.position_m, 4),
            "speed_m_s": round(shaft.speed_m_s, 4),
            "door": shaft.door_state(),
            "door_open_fraction": round(shaft.door_open_fraction(), 4),
            "drive_run": commands.run_up or commands.run_down,
            "load_kg": round(shaft.total_load_kg(), 1),
            "passengers": len(self.flow.in_car),
            "mode": state.mode.value,
            "faults": sorted(fault.value for fault in state.faults),
            "phase": state.phase.value,
            "direction": int(state.direction),
            "speed_ref_m_s": round(commands.speed_ref_m_s, 4),
            **self._rear_trace(),
        }

    def _rear_trace(self) -> dict[str, Any]:
        """On a car with doors on both sides: the rear door as ``door`` and ``door_open_fraction`` show the front
        one, and the landing's side (docs/scenarios.md). Nothing on a car with one door (its trace is as before)."""
        rear = self.shaft.rear
        if rear is None:
            return {}
        return {"rear_door": rear.state(), "rear_door_open_fraction": round(rear.open_fraction(), 4),
                "door_side": self.config.building.door_side(self.state.landing)}

    def _write_trace(self, first_tick: int, last_tick: int) -> None:
        """Records for ticks first..last (inclusive) that fall on the trace grid; they are identical but for t_s."""
        assert self.trace is not None
        every = self.trace_every
        start = first_tick + (-first_tick) % every
        if start > last_tick:
            return
        record = self._trace_record(start)
        for tick in range(start, last_tick + 1, every):
            record["t_s"] = round(tick * self.period_s, 3)
            self.trace.write(json.dumps(record) + "\n")

    # -- the loop ------------------------------------------------------------------------------------------------

    def finished(self) -> bool:
        """The traffic is over and everyone has arrived, or the drain time ran out."""
        tick = self.tick
        if tick < self.end_tick:
            return False
        if tick >= self.drain_end_tick:
            return True
        flow = self.flow
        return (not flow.pending and not flow.waiting and not flow.in_car and flow.transfer is None
                and not self.state.calls.any() and not self.script)

    def run(self, progress: Callable[[float], None] | None = None) -> dict[str, Any]:
        """Run the scenario to its end and return the report."""
        wall_start = time.perf_counter()
        chunk = max(1, self.end_tick // 100)
        while not self.finished():
            self.advance(min(self.tick + chunk, self.drain_end_tick), until_finished=True)
            if progress is not None:
                progress(min(1.0, self.tick / self.end_tick))
        return self.report(time.perf_counter() - wall_start)

    def advance(self, until_tick: int, stop: Callable[[], bool] | None = None,
                until_finished: bool = False) -> bool:
        """Step until ``until_tick``; return True as soon as ``stop()`` holds after a tick (then the rest is not
        run), False at until_tick."""
        controller = self.controller
        shaft = self.shaft
        recording = self.recording
        while self.tick < until_tick:
            if until_finished and self.tick >= self.end_tick and self.finished():
                return False
            tick = self.tick
            presses = self.presses
            pending = self.pending
            if self.script:
                self._apply_script(tick, presses, pending)
            if self.learn_procedure is not None and self.learn_procedure.step(self, tick):
                self.learn_procedure = None
            inputs = self._sense(tick, presses, pending)
            if self._cruise_law is not None:
                # This tick's inputs, sensed as any stepped tick's, must be what the law was made for but for the
                # car's motion: whatever else changed since (a scripted event, a procedure between two advance()
                # calls: an alarm held, a door obstructed, a key turned) is stepped.
                law, self._cruise_law = self._cruise_law, None
                if stop is None and law.holds_for(inputs) and self._cruise(law, tick, until_tick) > tick:
                    continue
            previous = self._previous_inputs
            had_input = presses.any() or pending.any() or self.learn_procedure is not None
            if (self._repeating and self.skip_idle and previous is not None and not had_input
                    and not self.alarm_line.busy
                    and shaft.is_steady(self.commands)
                    and self.commands == self._commands_before and inputs == replace(previous, tick=tick)
                    and self.comm_lost_since < 0 and self.frozen_since < 0
                    and not self.silent_since):  # a withheld source ages every tick
                horizon = min(self._horizon(tick), until_tick)
                if horizon > tick + 1:
                    # Every tick from here to the horizon would repeat the last step exactly: the controller's
                    # state, inputs and timers are unchanged and only the door moves, by the same arithmetic.
                    self._advance_steady(tick, horizon)
                    self.tick = horizon
                    self._update_flow(horizon, self.commands, presses)
                    if stop is not None and stop():
                        return True
                    continue
            state = self.state
            new_state, commands, events = controller.step(state, inputs)
            if controller is not self.controller:  # a learned table took over (_on_learning)
                controller = self.controller
            self.stepped_ticks += 1
            if recording is not None:
                recording.inputs.append(inputs)
                recording.commands.append(commands)
            if events:
                self._on_events(events)
            # Whether the commands repeat too is checked only when a skip is possible (it costs a comparison).
            self._repeating = new_state is state and not events and not had_input
            self._commands_before = self.commands
            self._previous_inputs = inputs
            self.state = new_state
            self.commands = commands
            if self._repeating and self.cruise_runs and new_state.phase is Phase.RUNNING and recording is None:
                self._cruise_law = controller.cruise(new_state, inputs, commands)
            self._check_safety(tick)
            if self.trace is not None:
                self._write_trace(tick, tick)
            shaft.update(self._output(commands))
            if had_input:
                self.presses = presses = Presses()
                self.pending = _Pending()
            self.tick = tick + 1
            self._update_flow(tick + 1, commands, presses)
            if stop is not None and stop():
                return True
        return False

    def _output(self, commands: Commands) -> Actuators:
        """The firmware's output step: what the drive and the car-top board get (the car panel's and landings'
        outputs move nothing), as what moves the shaft."""
        return actuators(drive_command(commands), car_top_outputs(commands),
                         rear=rear_car_top_outputs(commands) if self.shaft.rear is not None else None)

    def _cruise(self, law: Cruise, tick: int, until_tick: int) -> int:
        """Step the run on from ``tick`` (its inputs sensed, and found to hold for ``law``) by the controller's cruise
        law (core/cruise.py) while only the car's motion changes, and return the tick reached (``tick``: none
        stepped). Each tick is what a stepped one is, but that
        the snapshot, the command record and the readings are not built: the drive's position and speed as it
        reports them go to the law, its speed reference to the shaft, and the safety check and the trace see the
        tick. Ends before a tick whose readings differ in anything else, where the law refuses, and at the first
        tick anything else may happen (a passenger's move, a scripted event, an obstruction ending, the end of the
        traffic); the readings are taken afresh by the next stepped tick."""
        shaft = self.shaft
        if (law.state is not self.state or self.comm_lost_since >= 0 or self.frozen_since >= 0 or self.silent_since
                or self.learn_procedure is not None or self.alarm_line.busy or shaft.injected
                or shaft.door_units or shaft.drive_fault_code or self.presses.any() or self.pending.any()):
            return tick
        rear_obstructed_until_tick = -1 if shaft.rear is None else shaft.rear.obstructed_until_tick
        # The last tick before the horizon is stepped in full: at the horizon a source may fall silent or be withheld
        # (a scripted fault, or one injected between two advance() calls), which keeps its last reading, and that
        # must be the reading of the tick before, as stepping every tick leaves it.
        horizon = min(until_tick, self.flow.next_event_tick(), self._next_script_tick(),
                      self.end_tick if tick < self.end_tick else NEVER, self.drain_end_tick,
                      self.alarm_until_tick if self.alarm_until_tick > tick else NEVER,
                      shaft.obstructed_until_tick if shaft.obstructed_until_tick > tick else NEVER,
                      rear_obstructed_until_tick if rear_obstructed_until_tick > tick else NEVER) - 1
        template = law.commands
        if not shaft.plain_run(self._output(template)) or self._violating or (
                shaft.brake_lifts != self._brake_lifts_seen):
            return tick
        # The safety check (_check_safety) on a car in a plain run (doors locked, brake open since its last lift)
        # can find only the overspeed and the shaft's limits: the shaft calls watch where either may hold, and
        # every tick where the trace is written.
        bounds = (self._overspeed_m_s, self._lowest_m, self._highest_m)
        trace = self.trace

        def watch(at_tick: int, position_m: float, speed_ref_m_s: float) -> None:
            speed_m_s = shaft.speed_m_s
            if (speed_m_s > bounds[0] or -speed_m_s > bounds[0]
                    or not bounds[1] <= shaft.position_m <= bounds[2]):
                self._check_safety(at_tick)
            if trace is not None:
                self.commands = law.commands_at(position_m, speed_ref_m_s)
                self._write_trace(at_tick, at_tick)

        # The readings of each tick differ from the law's inputs only in the drive's position and speed (and the
        # door-zone sensor and the reference mark, which the law does not look at) while the car moves, its brake
        # open (a plain run leaves it so) and no slowdown switch actuated: the shaft stops at any other.
        reached, last_position_m, speed_ref = shaft.run_plain(law.compiled(), tick, horizon, template.run_up, watch,
                                                              trace is not None, bounds)
        if reached > tick:
            stepped = reached - tick
            self.stepped_ticks += stepped
            self.cruised_ticks += stepped
            self.commands = law.commands_at(last_position_m, speed_ref)
            self._repeating = False
            self.tick = reached
            self._update_flow(reached, self.commands, self.presses)
        return reached

    def _update_flow(self, tick: int, commands: Commands, presses: Presses) -> None:
        """Passengers move; what the car camera recognised as they boarded reaches the controller next tick."""
        flow = self.flow
        flow.update(tick, commands, presses)
        if flow.recognitions:
            self.pending.recognitions = tuple(flow.recognitions)
            flow.recognitions.clear()

    def _horizon(self, tick: int) -> int:
        """The first tick at which anything may differ from repeating the last step."""
        return min(self.controller.next_deadline_tick(self.state, after=tick - 1),
                   self.shaft.next_input_change_tick(self.commands), self.flow.next_event_tick(),
                   self._next_script_tick(), self.end_tick if tick < self.end_tick else NEVER, self.drain_end_tick,
                   self.alarm_until_tick if self.alarm_until_tick > tick else NEVER)

    def _advance_steady(self, tick: int, horizon: int) -> None:
        shaft = self.shaft
        commands = self.commands
        if self.trace is None:
            shaft.advance_steady(commands, horizon - tick)
            return
        for skipped in range(tick, horizon):
            self._write_trace(skipped, skipped)
            shaft.advance_steady(commands)

    def _next_script_tick(self) -> int:
        if not self.script:
            return NEVER
        return round(self.script[-1].t_s / self.period_s)

    # -- the report ----------------------------------------------------------------------------------------------

    def report(self, wall_seconds: float) -> dict[str, Any]:
        config = self.config
        flow = self.flow
        sim_seconds = self.tick * self.period_s
        standby_j = self.scenario.physics.standby_power_w * sim_seconds
        report: dict[str, Any] = {
            "scenario": self.scenario.name,
            "seed": self.scenario.traffic.seed,
            "pattern": self.scenario.traffic.pattern,
        }
        if flow.stats is not None:
            report.update(flow.stats.report(flow.not_arrived(), sum(config.building.population)))
        else:
            report.update(passenger_metrics(flow.everyone + [p for p in flow.pending], self.period_s,
                                            sum(config.building.population)))
        report.update({
            "trips": self.trips,
            "alarm_presses": self.alarm_presses,
            "alarms": self.alarms["requested"],
            "alarms_filtered": self.alarms["filtered"],
            "alarm_at_end": self.state.alarm.value,
            "trapped_passengers": self.trapped_passengers,
            "door_cycles": flow.door_openings,
            "levelling_error_mm": levelling_summary_mm(self.levelling_errors_m),
            "safety_violations": self.violation_count,
            "safety_violation_log": [violation.as_dict() for violation in self.violations],
            "faults": self.fault_log,
            "active_faults": sorted(fault.value for fault in self.state.faults),
            "calls_pending_at_end": {"car": sorted(self.state.calls.car), "up": sorted(self.state.calls.up),
                                     "down": sorted(self.state.calls.down)},
            "energy_kwh": round((self.shaft.energy_j + standby_j) / 3.6e6, 3),
            "running_s": round(self.shaft.moving_ticks * self.period_s, 2),
            "sim_seconds": round(sim_seconds, 3),
            "wall_seconds": round(wall_seconds, 3),
            "stepped_ticks": self.stepped_ticks,
            "skipped_ticks": self.tick - self.stepped_ticks,
            "learning_runs": list(self.learnings),
        })
        if self.camera is not None:
            report["face"] = self.camera.stats.report()
        return report


__all__ = ["Lockstep", "Recording"]
