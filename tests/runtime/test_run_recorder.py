"""The run recorder (runtime/run_recorder.py): a run from the doors closing to the doors open, sampled at a bounded
rate; a ring of the last 50; a run that never ends cut, never grown; and the real loop recording a run of the
simulated shaft and answering a service process's questions about it over the side channel."""

from __future__ import annotations

import base64
import tracemalloc
from collections import Counter
from pathlib import Path

from carctl.core.door import DoorPhase, DoorState
from carctl.core.faults import Fault
from carctl.core.phases import Phase, Run
from carctl.core.signals import Direction, Event, EventKind, Inputs
from carctl.core.state import ControllerState
from carctl.protocol import drive_map
from carctl.protocol.run_records import DOOR_LOCKED, DOOR_PHASES, MAX_RUNS, MAX_SAMPLES, RunCurves, RunSummary, \
    parse_answer, run_request, runs_request
from carctl.runtime.config import from_dict
from carctl.runtime.loop import ControlLoop, StructuredLog
from carctl.runtime.run_recorder import ARMED_AFTER_CLOSED_S, MAX_LEAD_SAMPLES, RunRecorder
from carctl.runtime.service_feed import ServiceFeed
from carctl.runtime.sidechannel import prepare_socket_dir
from carctl.service.feed import LoopFeed
from sim.drive import SimulatedDrive
from sim.panels import PanelBoards
from sim.physics import PhysicsConfig, Shaft
from tests.runtime.test_loop import FakePanels, NullStream

PERIOD_S = 0.02
LANDINGS_M = (0.0, 2.9, 5.8, 8.7, 11.6, 14.5)


class Car:
    """Drives a recorder through a car's phases by hand, one control cycle at a time."""

    def __init__(self) -> None:
        self.recorder = RunRecorder(PERIOD_S, wall_clock=lambda: 1_796_000_000.0)
        self.tick = 0
        self.position_m = 0.0
        self.landing = 0

    def cycles(self, count: int, phase: Phase, door: DoorPhase, speed_m_s: float = 0.0, locked: bool = True,
               events: tuple[Event, ...] = (), parking: bool = False,
               faults: frozenset[Fault] = frozenset()) -> None:
        run = Run(direction=Direction.UP, target=3, parking=parking) if phase is Phase.STARTING else None
        state = ControllerState(phase=phase, door=DoorState(phase=door), landing=self.landing, run=run, faults=faults)
        for _ in range(count):
            self.position_m += speed_m_s * PERIOD_S
            self.recorder.after_cycle(state, Inputs(tick=self.tick, position_m=self.position_m, speed_m_s=speed_m_s,
                                                    door_locked=locked), events, LANDINGS_M)
            events = ()
            self.tick += 1

    def ride(self, to_landing: int = 1, level_off_mm: float = 0.0) -> None:
        """Doors close, the car departs, runs, stops level (or ``level_off_mm`` off) and opens its doors."""
        self.cycles(1, Phase.STANDING, DoorPhase.OPEN, locked=False)
        self.cycles(150, Phase.STANDING, DoorPhase.CLOSING, locked=False)
        self.cycles(5, Phase.STANDING, DoorPhase.CLOSED)
        self.cycles(10, Phase.STARTING, DoorPhase.CLOSED)
        distance_m = LANDINGS_M[to_landing] - self.position_m
        self.cycles(100, Phase.RUNNING, DoorPhase.CLOSED, speed_m_s=distance_m / (100 * PERIOD_S))
        self.position_m = LANDINGS_M[to_landing] + level_off_mm / 1000
        self.cycles(10, Phase.STOPPING, DoorPhase.CLOSED)
        self.landing = to_landing
        self.cycles(125, Phase.STANDING, DoorPhase.OPENING, locked=False)
        self.cycles(1, Phase.STANDING, DoorPhase.OPEN, locked=False)


def curves_of(recorder: RunRecorder, run_id: int) -> tuple[RunSummary, RunCurves]:
    answer = parse_answer(recorder.run_answer(7, run_id))
    assert not isinstance(answer, str) and answer.summary is not None and answer.curves is not None
    return answer.summary, answer.curves


def test_a_run_is_recorded_from_the_doors_closing_to_the_doors_open_with_its_summary() -> None:
    car = Car()
    car.cycles(100, Phase.STANDING, DoorPhase.OPEN, locked=False)
    assert not car.recorder.ring, "a car standing with its doors open makes no run"
    car.ride(to_landing=2, level_off_mm=-3.0)
    assert len(car.recorder.ring) == 1
    summary, curves = curves_of(car.recorder, 0)
    assert (summary.kind, summary.from_landing, summary.to_landing, summary.end) == ("run", 0, 2, "doors_open")
    assert summary.levelling_error_mm is not None and abs(summary.levelling_error_mm + 3.0) < 0.01
    assert abs(summary.peak_speed_m_s - 2.9) < 0.01 and summary.faults == ()
    assert summary.start_utc_s == 1_796_000_000.0
    assert abs(summary.duration_s - 401 * PERIOD_S) < 0.05
    assert summary.samples == len(curves.position_mm) == 81, "every 5th cycle of 401, and the first"
    doors = [DOOR_PHASES[code & 7] for code in curves.door]
    assert doors[0] == "closing" and doors[-1] == "open" and "closed" in doors
    assert not curves.door[0] & DOOR_LOCKED and any(code & DOOR_LOCKED for code in curves.door)
    assert curves.position_mm[0] == 0 and curves.position_mm[-1] == 5797
    assert max(curves.speed_mm_s) == 2900


def test_a_closing_without_a_departure_is_no_run_and_a_departure_without_a_closing_is_one() -> None:
    car = Car()
    car.cycles(50, Phase.STANDING, DoorPhase.CLOSING, locked=False)
    car.cycles(50, Phase.STANDING, DoorPhase.OPENING, locked=False)  # reopened: the light curtain
    car.cycles(50, Phase.STANDING, DoorPhase.OPEN, locked=False)
    car.cycles(50, Phase.STANDING, DoorPhase.CLOSING, locked=False)
    car.cycles(int(ARMED_AFTER_CLOSED_S / PERIOD_S) + 10, Phase.STANDING, DoorPhase.CLOSED)  # closed, no call
    assert not car.recorder.ring and car.recorder._mode == 0, "nothing kept, nothing recording"
    car.cycles(10, Phase.STARTING, DoorPhase.CLOSED, parking=True)  # later: the idle car leaves to park
    car.cycles(100, Phase.RUNNING, DoorPhase.CLOSED, speed_m_s=1.45)
    car.cycles(10, Phase.STOPPING, DoorPhase.CLOSED)
    car.cycles(500, Phase.STANDING, DoorPhase.CLOSED)  # parked, doors closed: the run ends after POST_STOP_S
    assert [run.summary.end for run in car.recorder.ring] == ["stopped"]
    summary, curves = curves_of(car.recorder, 0)
    assert summary.kind == "parking" and all(DOOR_PHASES[code & 7] == "closed" for code in curves.door)


def test_a_fault_during_the_run_is_in_its_summary_and_a_halt_ends_it() -> None:
    car = Car()
    car.cycles(10, Phase.STARTING, DoorPhase.CLOSED)
    car.cycles(40, Phase.RUNNING, DoorPhase.CLOSED, speed_m_s=1.0,
               events=(Event(EventKind.FAULT_RAISED, 3, -1, "overspeed:12:level4"),))
    car.cycles(500, Phase.HALTED, DoorPhase.CLOSED, faults=frozenset({Fault.OVERSPEED}))
    summary = car.recorder.ring[0].summary
    assert (summary.end, summary.faults, summary.to_landing, summary.levelling_error_mm) == (
        "halted", ("overspeed",), -1, None)
    car.cycles(1, Phase.HALTED, DoorPhase.CLOSED)
    car.cycles(300, Phase.CORRECTING, DoorPhase.CLOSED, speed_m_s=-0.3)
    car.cycles(500, Phase.HALTED, DoorPhase.CLOSED)  # at the reference mark: no fault, it recovers from there
    assert (car.recorder.ring[1].summary.kind, car.recorder.ring[1].summary.end) == ("correction", "stopped")


def test_a_run_with_impossible_drive_readings_is_still_one_the_service_takes() -> None:
    """A drive's speed or position reading far out of range (a faulty encoder, a garbled register: an overspeed
    run is the one a technician wants to see) is kept within the message's ranges, so that the service tool does
    not refuse that run's summary, nor the nine that travel with it."""
    car = Car()
    car.ride(to_landing=1)
    car.cycles(1, Phase.STANDING, DoorPhase.CLOSING, locked=False)
    car.cycles(5, Phase.STANDING, DoorPhase.CLOSED)
    car.cycles(10, Phase.STARTING, DoorPhase.CLOSED)
    car.cycles(3, Phase.RUNNING, DoorPhase.CLOSED, speed_m_s=-32.768)  # the drive's SPEED register at its extreme
    car.position_m = 2_000_000.0  # a position 2,000 km up: the drive's count gone wrong
    car.cycles(10, Phase.STOPPING, DoorPhase.CLOSED)
    car.cycles(5, Phase.STANDING, DoorPhase.OPENING, locked=False)
    car.cycles(1, Phase.STANDING, DoorPhase.OPEN, locked=False)
    assert len(car.recorder.ring) == 2
    answer = parse_answer(car.recorder.runs_answers(3)[0])
    assert not isinstance(answer, str), answer
    assert [summary.id for summary in answer.runs] == [1, 0]
    summary, curves = curves_of(car.recorder, 1)
    assert summary.peak_speed_m_s == 20.0 and summary.levelling_error_mm == 100_000.0
    assert max(curves.position_mm) == 1_000_000


def test_the_ring_keeps_the_last_50_runs() -> None:
    car = Car()
    for number in range(MAX_RUNS + 12):
        car.ride(to_landing=1 + number % 5)
    ring = car.recorder.ring
    assert len(ring) == MAX_RUNS
    assert [run.summary.id for run in ring] == list(range(12, MAX_RUNS + 12))
    answers = [parse_answer(message) for message in car.recorder.runs_answers(3)]
    assert len(answers) == 5 and all(not isinstance(answer, str) for answer in answers)
    listed = [summary.id for answer in answers for summary in answer.runs]  # type: ignore[union-attr]
    assert listed == list(range(MAX_RUNS + 11, 11, -1)), "newest first"
    assert parse_answer(car.recorder.run_answer(1, 3)) == parse_answer(
        {"type": "run", "boot": car.recorder.boot, "ask": 1, "id": 3, "missing": True})


def test_a_run_that_never_ends_is_cut_and_memory_stays_bounded() -> None:
    car = Car()
    tracemalloc.start()
    try:
        for number in range(MAX_RUNS + 2):
            car.cycles(1, Phase.STANDING, DoorPhase.CLOSED)
            car.cycles(MAX_SAMPLES * 5 + 500, Phase.INSPECTING, DoorPhase.CLOSED, speed_m_s=0.001)
            car.cycles(1, Phase.HALTED, DoorPhase.CLOSED)
        held_bytes, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    ring = car.recorder.ring
    assert len(ring) == MAX_RUNS and car.recorder.cut == MAX_RUNS + 2
    assert all(run.summary.end == "cut" and run.summary.samples == MAX_SAMPLES for run in ring)
    assert all(run.summary.kind == "inspection" for run in ring)
    assert car.recorder._mode == 0, "the car stood: the recorder waits for the next run"
    # The ring full of runs at their cap: 50 x 900 samples x 7 bytes, packed once, in base64.
    assert held_bytes < 1_000_000, f"{held_bytes} bytes held by a full ring"
    answer = car.recorder.run_answer(1, ring[-1].summary.id)
    assert len(str(answer)) < 12_000, "a run at its cap fits one datagram"
    car.cycles(MAX_LEAD_SAMPLES * 5 + 50, Phase.STANDING, DoorPhase.CLOSING, locked=False)
    assert car.recorder._mode == 0, "a lead-in that goes on and on is dropped"


def test_the_columns_are_little_endian_base64() -> None:
    car = Car()
    car.ride(to_landing=1)
    columns = car.recorder.ring[0].columns
    assert base64.b64decode(columns["position_mm"])[-4:] == (2900).to_bytes(4, "little")


class InProcessDrive:
    """`sim serve`'s drive (sim/drive.py) without its Modbus server: the loop's read steps it one period."""

    def __init__(self, drive: SimulatedDrive, period_s: float) -> None:
        self.drive, self.period_s, self.now_s = drive, period_s, 0.0
        self.exchanges = 0
        self.port_problem: str | None = None
        self.combined = False
        self.combined_refused = False
        self.errors: Counter[str] = Counter()

    def connect(self) -> bool:
        return True

    def close(self) -> None:
        """Nothing to release."""

    def read_status(self) -> drive_map.DriveStatus:
        self.exchanges += 1
        self.drive.step(self.now_s)
        self.now_s += self.period_s
        return drive_map.decode_status(
            self.drive.registers[drive_map.STATUS:drive_map.STATUS + drive_map.STATUS_BLOCK_COUNT])

    def write_command(self, command: drive_map.DriveCommand, watchdog: int) -> None:
        self.drive.registers[drive_map.CONTROL:drive_map.CONTROL + 3] = drive_map.encode_command(command, watchdog)


def test_the_real_loop_records_a_run_and_a_service_process_reads_it(tmp_path: Path) -> None:
    config = from_dict({"drive": {"endpoint": "tcp://127.0.0.1:1"}, "panel": {"port": "/dev/null"},
                        "processes": {"service": True}, "platform": {"overrides_path": str(tmp_path / "o.json")},
                        "runtime": {"fault_log": "", "audit_log": "", "latch_file": "", "learned_table": "",
                                    "socket_dir": str(tmp_path / "run")}})
    controller = config.controller
    shaft = Shaft(controller, PhysicsConfig())
    boards = PanelBoards(shaft, controller.building.landing_count, controller.building.main_landing)
    loop = ControlLoop(config, InProcessDrive(SimulatedDrive(shaft, boards), controller.car.control_period_s),
                       FakePanels(boards), StructuredLog(NullStream()))
    service = LoopFeed(prepare_socket_dir(tmp_path / "run"))
    try:
        for _ in range(300):
            loop.cycle()
        assert loop.state.phase is Phase.STANDING and loop.run_recorder is not None
        assert not loop.run_recorder.ring
        boards.press_car_call(3)
        for _ in range(1500):  # 30 s: doors close, the run, the doors open at landing 3
            loop.cycle()
            if loop.run_recorder.ring:
                break
        assert len(loop.run_recorder.ring) == 1, "one run recorded"
        summary = loop.run_recorder.ring[0].summary
        assert (summary.from_landing, summary.to_landing, summary.end) == (0, 3, "doors_open")
        assert summary.levelling_error_mm is not None and abs(summary.levelling_error_mm) <= 10
        assert 0.9 <= summary.peak_speed_m_s <= 1.05, "the bench car's rated 1 m/s"
        assert abs(shaft.position_m - 8.7) < 0.02

        # A service process asks for the list and the run, over the side channel.
        service.ask()
        for _ in range(10):
            loop.cycle()
        ask = service.runs.ask_list()
        for _ in range(10):
            loop.cycle()
        service.take()
        assert service.runs.list_ready(ask)
        assert [listed.id for listed in service.runs.newest_first()] == [0]
        service.runs.ask_run(0)
        for _ in range(10):
            loop.cycle()
        service.take()
        found = service.runs.run(0)
        assert found is not None and found[0] == service.runs.summaries[0]
        curves = found[1]
        assert len(curves.position_mm) == summary.samples and max(curves.position_mm) >= 8690
        assert loop.health()["loop_errors"] == {}
        assert loop.health()["service_feed"]["runs"] == {"runs": 1, "recorded": 1, "cut": 0}
    finally:
        service.close()
        if loop.service_feed is not None:
            loop.service_feed.close()


def test_the_loop_answers_only_a_watcher_and_one_question_of_each_kind_a_take(tmp_path: Path) -> None:
    directory = prepare_socket_dir(tmp_path / "run")
    car = Car()
    car.ride()
    loop_side = ServiceFeed(directory, PERIOD_S, recorder=car.recorder)
    service = LoopFeed(directory)
    try:
        service.to_loop.send(runs_request(1))
        loop_side.take_requests()
        assert loop_side.inbox.refused["run request from a process that does not watch"] == 1
        service.ask()
        for ask in range(2, 5):
            service.to_loop.send(runs_request(ask))
        service.to_loop.send(run_request(5, 0))
        loop_side.take_requests()  # four requests a take: the run's waits for the next
        assert loop_side.inbox.refused["run requests too frequent"] == 2
        loop_side.take_requests()
        service.take()
        assert service.runs.list_ready(2) and not service.runs.list_ready(3)
        assert service.runs.run(0) is not None
    finally:
        service.close()
        loop_side.close()
