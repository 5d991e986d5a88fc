"""The run recorder: the last MAX_RUNS runs' position, speed and door curves, kept by the loop in a bounded ring, for
the service tool's Run recorder page (docs/service-tool.md).

Rules of this module:
- A run is recorded from the doors starting to close (when the car then departs; a closing that ends with the doors
  open again, or with the car still standing ARMED_AFTER_CLOSED_S after the doors closed, is dropped) or from the
  departure (STARTING, CORRECTING or INSPECTING from a standing or halted car), through the stop, until the doors
  are open or POST_STOP_S has passed. A relevel while the doors open belongs to the run; one later is not a run.
- Samples every SAMPLE_EVERY_S (every 5th cycle at 50 Hz): position in mm, speed in mm/s, the door machine's
  phase and the lock, in three typed arrays (7 bytes a sample). A run stops growing at MAX_SAMPLES: it is kept as
  `cut` and the recorder waits for the car to stand before it records again. A lead-in (doors closing, no
  departure yet) longer than MAX_LEAD_SAMPLES is dropped. So memory is bounded by construction: MAX_RUNS finished
  runs and one in the making, each at most MAX_SAMPLES.
- The cost on a cycle: a few comparisons when the car stands; while recording, the peak speed and, every 5th cycle,
  three appends; the summary is made once, when a run ends. The wall clock is read once a run.
- The summary: from and to landing (-1 between landings), start (UTC), duration, peak speed, the levelling error
  at the stop (position against the landing's height, when the drive's reading was fresh), the faults raised.
  Every number is kept within the message's ranges (protocol/run_records.py), as the samples are: a drive's
  reading far out of range (a garbled register, a count gone wrong: the run a technician most wants to see) must
  not make the service tool refuse the summary, and with it the others of its datagram.
"""

from __future__ import annotations

import collections
import secrets
import time
from array import array
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from carctl.core.door import DoorPhase
from carctl.core.faults import parse_fault_detail
from carctl.core.phases import Phase
from carctl.core.signals import Event, EventKind, Inputs
from carctl.core.state import ControllerState
from carctl.protocol import run_records
from carctl.protocol.run_records import DOOR_LOCKED, DOOR_PHASES, MAX_FAULTS_PER_RUN, MAX_RUNS, MAX_SAMPLES, \
    SAMPLE_EVERY_S, RunSummary

Number = TypeVar("Number", int, float)
MAX_LEAD_SAMPLES = 200  # 20 s of doors closing (nudging included) before a departure
ARMED_AFTER_CLOSED_S = 3.0
POST_STOP_S = 8.0  # the doors open within door_open_s (2.5 s in the bench car) of the stop, or they do not
AT_LANDING_M = 0.1  # a run's start or stop this near a landing's height is at that landing
# A reading this many cycles old still gives the levelling error (the drive's status arrives every cycle).
FRESH_FOR_LEVELLING_TICKS = 2

_STILL = frozenset({Phase.STANDING, Phase.HALTED})
_DEPARTURES = {Phase.STARTING: "run", Phase.CORRECTING: "correction", Phase.INSPECTING: "inspection"}
_DOOR_CODES = {DoorPhase(name): code for code, name in enumerate(DOOR_PHASES)}

# What the recorder is doing.
_IDLE, _LEAD, _RUN, _ARRIVING, _WAIT_STILL = range(5)


class FinishedRun:
    """A run in the ring: its summary (as sent) and its columns, packed once."""

    __slots__ = ("summary", "summary_json", "columns")

    def __init__(self, summary: RunSummary, columns: dict[str, str]) -> None:
        self.summary = summary
        self.summary_json = run_records.summary_json(summary)
        self.columns = columns


class RunRecorder:
    def __init__(self, period_s: float, wall_clock: Callable[[], float] = time.time) -> None:
        self.period_s = period_s
        self.every_cycles = max(1, round(SAMPLE_EVERY_S / period_s))
        self.wall_clock = wall_clock
        self.boot = secrets.token_hex(8)  # the service forgets what it had from another start of the loop
        self.ring: collections.deque[FinishedRun] = collections.deque(maxlen=MAX_RUNS)
        self.next_id = 0
        self.cut = 0  # runs cut at MAX_SAMPLES since the start
        self._mode = _IDLE
        self._door_before = DoorPhase.CLOSED
        self._new_recording()

    def _new_recording(self) -> None:
        self._position_mm = array("i")
        self._speed_mm_s = array("h")
        self._door = array("b")
        self._cycles = 0  # since the recording began
        self._closed_cycles = 0  # the lead-in: since the doors closed
        self._stop_cycles = 0  # since the stop
        self._start_tick = 0
        self._start_utc_s = 0.0
        self._kind = "run"
        self._from = -1
        self._to = -1
        self._peak_m_s = 0.0
        self._level_mm: float | None = None
        self._faults: list[str] = []
        self._end = "stopped"

    # -- every cycle ------------------------------------------------------------------------------------------------

    def after_cycle(self, state: ControllerState, inputs: Inputs, events: tuple[Event, ...],
                    landings_m: Sequence[float]) -> None:
        phase, door = state.phase, state.door.phase
        mode = self._mode
        if mode == _IDLE:
            if phase in _DEPARTURES:
                self._begin(state, inputs, landings_m, lead=False)
            elif door is DoorPhase.CLOSING and self._door_before is not DoorPhase.CLOSING:
                self._begin(state, inputs, landings_m, lead=True)
            self._door_before = door
            return
        self._door_before = door
        if mode == _WAIT_STILL:
            if phase in _STILL:
                self._mode = _IDLE
            return
        self._take(inputs, events, door)
        if mode == _LEAD:
            if phase in _DEPARTURES:
                self._depart(state)
            elif door is DoorPhase.OPEN or door is DoorPhase.OPENING or len(self._door) > MAX_LEAD_SAMPLES:
                self._drop()
            elif door is DoorPhase.CLOSED:
                self._closed_cycles += 1
                if self._closed_cycles * self.period_s > ARMED_AFTER_CLOSED_S:
                    self._drop()
        elif mode == _RUN:
            if phase in _STILL:
                self._stop(state, inputs, landings_m)
        elif mode == _ARRIVING:
            self._stop_cycles += 1
            if phase in _DEPARTURES:  # off again before the doors opened: a new run from here
                self._finish()
                self._begin(state, inputs, landings_m, lead=False)
                return
            if door is DoorPhase.OPEN:
                self._end = "doors_open" if self._end == "stopped" else self._end
                self._finish()
            elif self._stop_cycles * self.period_s >= POST_STOP_S:
                self._finish()
        if self._mode in (_RUN, _ARRIVING) and len(self._door) >= MAX_SAMPLES:
            self._end = "cut"
            self.cut += 1
            self._finish()
            self._mode = _WAIT_STILL

    def _take(self, inputs: Inputs, events: tuple[Event, ...], door: DoorPhase) -> None:
        speed = inputs.speed_m_s if inputs.speed_m_s >= 0 else -inputs.speed_m_s
        if speed > self._peak_m_s:
            self._peak_m_s = speed
        if events:
            for event in events:
                if event.kind is EventKind.FAULT_RAISED and len(self._faults) < MAX_FAULTS_PER_RUN:
                    self._faults.append(_fault_name(event.detail))
        self._cycles += 1
        if self._cycles % self.every_cycles == 0:
            self._sample(inputs, door)

    def _sample(self, inputs: Inputs, door: DoorPhase) -> None:
        self._position_mm.append(_clamp(round(inputs.position_m * 1000), run_records.MAX_POSITION_MM))
        self._speed_mm_s.append(_clamp(round(inputs.speed_m_s * 1000), run_records.MAX_SPEED_MM_S))
        # The door phase as the core keeps it, and the lock as it read this cycle.
        self._door.append(_DOOR_CODES[door] | (DOOR_LOCKED if inputs.door_locked else 0))

    # -- the run's boundaries (once a run each) ------------------------------------------------------------------

    def _begin(self, state: ControllerState, inputs: Inputs, landings_m: Sequence[float], lead: bool) -> None:
        self._new_recording()
        self._start_tick = inputs.tick
        self._start_utc_s = self.wall_clock()
        self._from = _landing_at(inputs.position_m, landings_m)
        self._peak_m_s = abs(inputs.speed_m_s)
        self._sample(inputs, state.door.phase)
        if lead:
            self._mode = _LEAD
        else:
            self._depart(state)

    def _depart(self, state: ControllerState) -> None:
        self._mode = _RUN
        kind = _DEPARTURES.get(state.phase, "run")
        self._kind = "parking" if kind == "run" and state.run is not None and state.run.parking else kind

    def _stop(self, state: ControllerState, inputs: Inputs, landings_m: Sequence[float]) -> None:
        self._mode = _ARRIVING
        self._stop_cycles = 0
        self._to = _landing_at(inputs.position_m, landings_m)
        if state.phase is Phase.HALTED:
            # A fault stopped it; without one, it is the end of a correction run or of an inspection journey.
            self._end = "halted" if state.faults else "stopped"
        elif inputs.drive_age_ticks <= FRESH_FOR_LEVELLING_TICKS and 0 <= state.landing < len(landings_m):
            self._to = state.landing
            self._level_mm = (inputs.position_m - landings_m[state.landing]) * 1000.0

    def _drop(self) -> None:
        self._mode = _IDLE
        self._new_recording()

    def _finish(self) -> None:
        samples = len(self._door)
        summary = RunSummary(
            id=self.next_id, kind=self._kind, from_landing=self._from, to_landing=self._to,
            start_utc_s=self._start_utc_s, duration_s=self._cycles * self.period_s,
            peak_speed_m_s=min(self._peak_m_s, run_records.MAX_SPEED_MM_S / 1000),
            levelling_error_mm=None if self._level_mm is None else _clamp(self._level_mm,
                                                                          run_records.MAX_LEVEL_ERROR_MM),
            faults=tuple(self._faults), end=self._end, samples=samples)
        columns = {"position_mm": run_records.pack_column(self._position_mm),
                   "speed_mm_s": run_records.pack_column(self._speed_mm_s),
                   "door": run_records.pack_column(self._door)}
        self.ring.append(FinishedRun(summary, columns))
        self.next_id = (self.next_id + 1) % (run_records.MAX_ID + 1)
        self._mode = _IDLE
        self._new_recording()

    # -- the service tool's questions ----------------------------------------------------------------------------

    def find(self, run_id: int) -> FinishedRun | None:
        for run in self.ring:
            if run.summary.id == run_id:
                return run
        return None

    def runs_answers(self, ask: int) -> list[dict[str, Any]]:
        oldest = self.ring[0].summary.id if self.ring else self.next_id
        newest = self.ring[-1].summary.id if self.ring else -1
        return run_records.runs_answers(self.boot, ask, oldest, newest,
                                        [run.summary_json for run in reversed(self.ring)])

    def run_answer(self, ask: int, run_id: int) -> dict[str, Any]:
        run = self.find(run_id)
        return run_records.run_answer(self.boot, ask, run_id, run.summary_json if run else None,
                                      run.columns if run else None)

    def health(self) -> dict[str, Any]:
        return {"runs": len(self.ring), "recorded": self.next_id, "cut": self.cut}


def _clamp(value: Number, limit: Number) -> Number:
    return limit if value > limit else -limit if value < -limit else value


def _landing_at(position_m: float, landings_m: Sequence[float]) -> int:
    for index, height_m in enumerate(landings_m):
        if abs(position_m - height_m) <= AT_LANDING_M:
            return index
    return -1


def _fault_name(detail: str) -> str:
    try:
        name = parse_fault_detail(detail)[0]
    except ValueError:
        return "unknown"
    return name if run_records.NAME.fullmatch(name) else "unknown"
