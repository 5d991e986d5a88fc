"""What the car reports to the platform: the state message, event messages, and the trapped-passenger alarm.

Rules of this module:
- Pure: controller state, inputs and loop health in, JSON-ready dicts out. No biometric data ever appears here: a
  recognition is reported by resident id at most.
- Every field belongs to one of the data categories of GB/T 24476 (elevator remote monitoring): running state,
  statistics, faults and alarms; docs/platform.md maps each field to its category.
- Daily statistics (trips, door cycles, running time, faults raised) are counted from the controller's events and
  phase and reported once per local day, at its first cycle after midnight (UTC+8 unless configured otherwise).
- A trapped passenger is declared by the core (carctl/core/watch.py: the car has stood outside the door zone, or
  with its doors failing to open, with load in it, for TRAPPED_AFTER_S, 30 s, as the Hangzhou pilot flagged
  entrapments); this module turns the core's TRAPPED_PASSENGER event into the platform's alarm message.
"""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass, field
from typing import Any

from carctl.core.controller import ControllerState, Phase
from carctl.core.signals import AlarmPhase, Event, EventKind, Inputs
from carctl.core.supervisor import FAULTS, Fault, SupervisorLimits, parse_fault_detail
from carctl.core.waiting import waiting_for
from carctl.protocol.sense import NEVER_SEEN
from carctl.core.watch import parse_trapped_detail

# Events the platform hears about, and their GB/T 24476 category.
REPORTED_EVENTS = {
    EventKind.FAULT_RAISED: "faults_and_alarms",
    EventKind.FAULT_CLEARED: "faults_and_alarms",
    EventKind.MODE_CHANGED: "running_state",
    EventKind.RECOGNISED: "running_state",
    EventKind.RESCUED: "faults_and_alarms",  # a power failure stranded the car; its passengers were let out
    EventKind.CORRECTION_RUN: "running_state",
    # Someone pressed the alarm button in the car (the EN 81-28 alarm and its voice call are the modem's), and the
    # end of an entrapment the platform was told of.
    EventKind.ALARM_BUTTON: "faults_and_alarms",
    EventKind.TRAPPED_PASSENGER_ENDED: "faults_and_alarms",
    EventKind.ALARM_TEST: "faults_and_alarms",  # the alarm's periodic test call: ok or failed
    # The periodic brake test (EN 81-20 5.6.7.3): passed, slipped, no answer from the drive, abandoned.
    EventKind.BRAKE_TEST: "faults_and_alarms",
}


def state_message(state: ControllerState, inputs: Inputs, rated_load_kg: float, face_on: bool,
                  loop_lag_p99_ms: float, time_s: float, limits: SupervisorLimits | None = None,
                  alarm_id: str = "", alarm_since_t: float | None = None) -> dict[str, Any]:
    """The retained state: where the car is and what it is doing (GB/T 24476 running state), what keeps it from
    serving (``limits``: the final limits, for saying the car is beyond one), and the alarm standing (its phase, and
    ``alarm_id``, the id its events carry, which an operator's acknowledgement may name)."""
    return {
        "t": round(time_s, 3),
        "landing": state.landing,
        "position_m": round(inputs.position_m, 3),
        "direction": int(state.direction),
        "door": state.door.phase.value,
        "mode": state.mode.value,
        "phase": state.phase.value,
        "load_pct": round(100.0 * inputs.load_kg / rated_load_kg, 1),
        "faults": sorted(fault.value for fault in state.faults),
        # Not from the placeholder position of a drive that has never answered.
        "waiting_for": waiting_for(state, inputs.position_m if inputs.drive_age_ticks < NEVER_SEEN else None,
                                   limits),
        "face": face_on,
        "loop_lag_p99_ms": round(loop_lag_p99_ms, 3),
        "alarm": state.alarm.value,
        "alarm_id": alarm_id or None,
        # When the alarm standing began (Unix time; null when none, or not known since a restart): an operator's
        # acknowledgement that names no alarm must have been issued after it.
        "alarm_since_t": alarm_since_t if alarm_id else None,
    }


def event_message(event: Event, period_s: float, time_s: float, drive_fault_code: int = 0) -> dict[str, Any] | None:
    """The platform's view of a core event, or None for events it does not need. A drive fault carries the drive's
    own fault code (docs/register-map.md), as the drive reported it in that cycle."""
    category = REPORTED_EVENTS.get(event.kind)
    if category is None:
        return None
    message: dict[str, Any] = {"id": uuid.uuid4().hex, "t": round(time_s, 3), "category": category,
                               "kind": event.kind.value, "tick": event.tick}
    if event.kind is EventKind.FAULT_RAISED:
        name, code, level = parse_fault_detail(event.detail)
        message.update(fault=name, code=code, level=level, meaning=FAULTS[Fault(name)].meaning)
        if name == Fault.DRIVE_FAULT.value:
            message.update(drive_code=drive_fault_code)
    elif event.kind is EventKind.FAULT_CLEARED:
        message.update(fault=event.detail)
    elif event.kind is EventKind.MODE_CHANGED:
        before, after = event.detail.split("->")
        message.update(mode_from=before, mode_to=after)
    elif event.kind is EventKind.RESCUED:
        message.update(landing=event.landing)
    elif event.kind is EventKind.CORRECTION_RUN:
        stage, _, reason = event.detail.partition(":")
        message.update(stage=stage, reason=reason)
    elif event.kind is EventKind.ALARM_BUTTON:
        message.update(button=event.detail)  # "pressed" or "released"
    elif event.kind is EventKind.TRAPPED_PASSENGER_ENDED:
        message.update(waited_s=float(event.detail))  # how long they were held in all
    elif event.kind is EventKind.ALARM_TEST:
        message.update(result=event.detail)  # "ok" or "failed"
    elif event.kind is EventKind.BRAKE_TEST:
        result, _, moved_mm = event.detail.partition(":")  # "passed:<mm>", "slipped:<mm>", "no_answer", "abandoned"
        message.update(result=result, moved_mm=int(moved_mm) if moved_mm.isdigit() else None)
    else:
        source, _, resident = event.detail.partition(":")
        message.update(source=source, resident=resident, home_landing=event.landing)
    return message


@dataclass(slots=True)
class StateCadence:
    """When the state goes out: when landing, door, mode, phase, faults or the alarm change, and at least every
    every_s."""

    every_s: float
    last_key: tuple[Any, ...] = ()
    last_sent_s: float = float("-inf")

    def due(self, state: ControllerState, time_s: float) -> bool:
        key = (state.landing, state.door.phase, state.mode, state.phase, state.faults, state.alarm)
        if key == self.last_key and time_s - self.last_sent_s < self.every_s:
            return False
        self.last_key = key
        self.last_sent_s = time_s
        return True


def trapped_message(event: Event, state: ControllerState, inputs: Inputs, time_s: float) -> dict[str, Any]:
    """The platform's trapped-passenger alarm for the core's TRAPPED_PASSENGER event: how long they have waited, why,
    where the car is, its load and its faults."""
    cause, waited_s = parse_trapped_detail(event.detail)
    return {"id": uuid.uuid4().hex, "category": "faults_and_alarms", "kind": "trapped_passenger",
            "tick": event.tick, "waited_s": round(waited_s, 1), "position_m": round(inputs.position_m, 3),
            "load_kg": round(inputs.load_kg), "cause": cause, "faults": sorted(fault.value for fault in state.faults),
            "t": round(time_s, 3)}


def alarm_message(event: Event, state: ControllerState, inputs: Inputs, time_s: float, period_s: float,
                  started_tick: int = -1) -> dict[str, Any]:
    """The platform's `alarm` event for the core's ALARM event (docs/alarm.md): the alarm's state, where the car is
    (at a landing, or between landings), its load, doors and faults, and how long the alarm has stood (for the
    reset's event, ``started_tick``: the state no longer knows)."""
    since = state.alarm_since_tick if state.alarm_since_tick >= 0 else started_tick
    return {"id": uuid.uuid4().hex, "category": "faults_and_alarms", "kind": "alarm", "tick": event.tick,
            "state": event.detail, "position_m": round(inputs.position_m, 3),
            "landing": state.landing if inputs.in_door_zone else None, "between_landings": not inputs.in_door_zone,
            "load_kg": round(inputs.load_kg), "door": state.door.phase.value,
            "faults": sorted(fault.value for fault in state.faults),
            "active_s": round((event.tick - since) * period_s, 1) if since >= 0 else 0.0, "t": round(time_s, 3)}


def audit_message(record: dict[str, Any], line: str, record_hash: str) -> dict[str, Any]:
    """The platform's `audit` event for a maintenance record (docs/audit.md): its fields, its exact line and its hash,
    so that the platform keeps a copy of the chain the car cannot rewrite. The id comes from the hash: the same
    record is the same event, however often it is sent."""
    return {"id": f"audit-{record_hash[:40]}", "t": record["t"], "category": "running_state", "kind": "audit",
            "seq": record["seq"], "action": record["action"], "via": record["via"], "who": record["who"],
            "prev": record["prev"], "hash": record_hash, "record": line}


MOVING_PHASES = frozenset({Phase.STARTING, Phase.RUNNING, Phase.STOPPING, Phase.RELEVELLING})


@dataclass(slots=True)
class DailyStatistics:
    """The day's trips, door cycles, running time and faults (GB/T 24476 statistics), reported once a day."""

    period_s: float
    utc_offset_h: float = 8.0
    day: str = ""
    since_s: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)
    running_ticks: int = 0
    next_day_s: float = float("-inf")  # the next local midnight: the date is worked out only when it is passed

    def _local_day(self, time_s: float) -> tuple[str, float]:
        """The local date at time_s, and the time of the next local midnight."""
        zone = datetime.timezone(datetime.timedelta(hours=self.utc_offset_h))
        now = datetime.datetime.fromtimestamp(time_s, zone)
        midnight = datetime.datetime.combine(now.date() + datetime.timedelta(days=1), datetime.time(), zone)
        return now.date().isoformat(), midnight.timestamp()

    def update(self, state: ControllerState, events: tuple[Event, ...], time_s: float) -> dict[str, Any] | None:
        """Count one cycle; at the first cycle of a new day, the report of the day before."""
        report = None
        if time_s >= self.next_day_s:
            today, self.next_day_s = self._local_day(time_s)
            if not self.day:
                self.day, self.since_s = today, time_s
            elif today != self.day:
                report = self.report(time_s)
                self.day, self.since_s, self.counts, self.running_ticks = today, time_s, {}, 0
        for event in events:
            name = COUNTED.get(event.kind)
            if name is not None:
                self.counts[name] = self.counts.get(name, 0) + 1
        if state.phase in MOVING_PHASES:
            self.running_ticks += 1
        return report

    def report(self, time_s: float) -> dict[str, Any]:
        running_s = self.running_ticks * self.period_s
        return {"id": uuid.uuid4().hex, "t": round(time_s, 3), "category": "statistics",
                "kind": "daily_statistics", "day": self.day, "since_t": round(self.since_s, 3),
                "trips": self.counts.get("trips", 0), "door_cycles": self.counts.get("door_cycles", 0),
                "faults_raised": self.counts.get("faults_raised", 0), "running_s": round(running_s, 1),
                "running_h": round(running_s / 3600.0, 4)}


COUNTED = {EventKind.RUN_STARTED: "trips", EventKind.DOORS_OPENING: "door_cycles",
           EventKind.FAULT_RAISED: "faults_raised"}
# A press of the alarm button is reported at most this often: a rider pressing again and again, or a chattering
# contact, must not flood the outbox. The presses in between are counted in the next report ("presses").
ALARM_REPORT_EVERY_S = 10.0


@dataclass(slots=True)
class AlarmReports:
    """Which of the core's ALARM_BUTTON events go to the platform, timed by the core's ticks (not the wall clock,
    which may step): a press at most every ``every_ticks``; the presses left out are told at the end of the window,
    with the button as it is then."""

    every_ticks: int
    next_tick: int = -(1 << 62)
    unreported: int = 0
    open: bool = False  # a press was reported and its release not yet

    def keep(self, event: Event) -> dict[str, Any] | None:
        """Extra fields of the message for ``event``, or None to leave it out."""
        if event.detail == "pressed":
            if event.tick < self.next_tick:
                self.unreported += 1
                return None
            presses, self.unreported = 1 + self.unreported, 0
            self.next_tick, self.open = event.tick + self.every_ticks, True
            return {"presses": presses}
        if not self.open:
            return None
        self.open = False
        return {}

    def window_end(self, tick: int, held: bool) -> dict[str, Any] | None:
        """At the end of a window in which presses were left out: the button now, and how many presses."""
        if not self.unreported or tick < self.next_tick:
            return None
        presses, self.unreported = self.unreported, 0
        self.next_tick, self.open = tick + self.every_ticks, held
        return {"button": "pressed" if held else "released", "presses": presses}


@dataclass(slots=True)
class Reporter:
    """What the car tells the platform after each cycle: its events (with the trapped-passenger alarm), the day's
    statistics, and its state when due. Used by the loop's bridge and by each car of the fleet simulator."""

    period_s: float
    rated_load_kg: float
    state_every_s: float
    utc_offset_h: float = 8.0
    face_on: bool = False
    limits: SupervisorLimits | None = None  # the car's final limits, for the state's waiting_for
    statistics: DailyStatistics = field(init=False)
    cadence: StateCadence = field(init=False)
    alarms: AlarmReports = field(init=False)
    alarm_started_tick: int = -1  # the tick of the alarm standing now (for how long it stood, told at its reset)
    # The id shared by the trapped-passenger event and the alarm events of one entrapment ("" when there is none).
    entrapment: str = ""
    # The id of the alarm standing ("" when none): every event of one alarm carries it, from requested to
    # cancelled. The loop sets it before each update (its id survives a restart in the latch record); without a
    # loop to set it, one is made at the alarm's first event.
    alarm_id: str = ""
    alarm_since_t: float | None = None  # when the alarm standing was requested (wall clock; None: not seen here)

    def __post_init__(self) -> None:
        self.alarms = AlarmReports(max(1, round(ALARM_REPORT_EVERY_S / self.period_s)))
        self.statistics = DailyStatistics(self.period_s, self.utc_offset_h)
        self.cadence = StateCadence(self.state_every_s)

    def _entrapment(self) -> str:
        if not self.entrapment:
            self.entrapment = uuid.uuid4().hex
        return self.entrapment

    def update(self, state: ControllerState, inputs: Inputs, events: tuple[Event, ...], lag_p99_ms: float,
               time_s: float) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """(event messages, the state message or None) for one cycle."""
        out = []
        for event in events:
            message = event_message(event, self.period_s, time_s, inputs.drive_fault_code)
            if message is None:
                continue
            if event.kind is EventKind.ALARM_BUTTON:
                extra = self.alarms.keep(event)
                if extra is None:
                    continue
                message.update(extra)
            elif (event.kind is EventKind.FAULT_RAISED or event.kind is EventKind.FAULT_CLEARED) and (
                    message["fault"] == Fault.ALARM_BATTERY.value):
                # The alarm unit's battery has an event of its own (EN 81-28: it must carry the alarm for an
                # hour), besides the fault: the platform's maintenance planning looks for it by name.
                out.append(message)
                message = {"id": uuid.uuid4().hex, "t": message["t"], "category": "faults_and_alarms",
                           "kind": "alarm_battery", "tick": event.tick,
                           "battery": "low" if event.kind is EventKind.FAULT_RAISED else "ok"}
            elif event.kind is EventKind.TRAPPED_PASSENGER_ENDED and self.entrapment:
                message["entrapment"] = self.entrapment
                if state.alarm is AlarmPhase.IDLE:
                    self.entrapment = ""  # over: no one held, no alarm standing
            out.append(message)
        told = self.alarms.window_end(inputs.tick, inputs.alarm_button)
        if told is not None:
            message = event_message(Event(EventKind.ALARM_BUTTON, inputs.tick, -1, told["button"]), self.period_s,
                                    time_s)
            if message is not None:
                out.append({**message, **told})
        for event in events:
            kind = event.kind
            if kind is EventKind.TRAPPED_PASSENGER:
                out.append({**trapped_message(event, state, inputs, time_s), "entrapment": self._entrapment()})
            elif kind is EventKind.ALARM:
                message = alarm_message(event, state, inputs, time_s, self.period_s, self.alarm_started_tick)
                if event.detail != "filtered":  # a hold held back at open doors is not an alarm
                    self.alarm_id = self.alarm_id or uuid.uuid4().hex
                    message["alarm_id"] = self.alarm_id
                if self.entrapment or state.trapped_since_tick >= 0 or state.trapped:
                    message["entrapment"] = self._entrapment()  # someone held in the car: the same entrapment
                out.append(message)
                if event.detail == "requested":
                    self.alarm_started_tick = event.tick
                    self.alarm_since_t = round(time_s, 3)
                elif event.detail == "cancelled":
                    self.alarm_started_tick = -1
                    self.alarm_id = ""  # the next alarm is another
                    if state.trapped_since_tick < 0:
                        self.entrapment = ""
        if state.alarm is AlarmPhase.IDLE:
            self.alarm_id = ""
            self.alarm_since_t = None
        report = self.statistics.update(state, events, time_s)
        if report is not None:
            out.append(report)
        status = None
        if self.cadence.due(state, time_s):
            status = state_message(state, inputs, self.rated_load_kg, self.face_on, lag_p99_ms, time_s, self.limits,
                                   self.alarm_id, self.alarm_since_t)
        return out, status
