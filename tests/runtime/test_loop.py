"""The real-time loop's cycle with fake adapters: no port, no network. The boards are the simulator's own (sans-I/O,
bytes in and out through the real codec and handshake); the drive is a small fake that follows the run bits."""

from __future__ import annotations

import gc
import io
import json
import time
import tracemalloc
from collections import Counter
from pathlib import Path
from typing import Any

from carctl.adapters.drive import LinkError, LinkErrorKind
from carctl.core.signals import EventKind
from carctl.core.supervisor import SAFE_STOP
from carctl.protocol import panelbus
from carctl.protocol.drive_map import DriveCommand, DriveStatus, TickFreshness
from carctl.protocol.panelbus import Frame, FrameDecoder
from carctl.runtime.config import from_dict
from carctl.runtime.interfaces import DrivePort, PanelPort
from carctl.runtime.loop import ControlLoop, StructuredLog
from sim.panels import PanelBoards
from sim.physics import PhysicsConfig, Shaft


class FakeDrive:
    """A drive standing at a landing: ready, chain closed, its TICK advancing with every read. ``silent`` makes it
    stop answering; ``frozen`` makes it answer with the same TICK, judged by the drive link's own rule
    (drive_map.TickFreshness)."""

    def __init__(self) -> None:
        self.exchanges = 0
        self.port_problem: str | None = None
        self.combined = False
        self.combined_refused = False
        self.errors: Counter[str] = Counter()
        self.tick = 0
        self.silent = False
        self.frozen = False
        self.raises = False
        self.speed_m_s = 0.0
        self.position_m = 0.0
        self.freshness = TickFreshness()
        self.commands: list[DriveCommand] = []

    def connect(self) -> bool:
        return True

    def close(self) -> None:
        """Nothing to release: no port."""

    def read_status(self) -> DriveStatus | LinkError:
        self.exchanges += 1
        if self.raises:
            raise RuntimeError("a bug in an adapter")
        if self.silent:
            self.errors["timeout"] += 1
            return LinkError(LinkErrorKind.TIMEOUT, "no answer")
        if not self.frozen:
            self.tick = (self.tick + 1) & 0xFFFF
        if not self.freshness.take(self.tick):
            self.errors["stale"] += 1
            return LinkError(LinkErrorKind.STALE, "TICK has not advanced")
        return DriveStatus(ready=True, running=False, faulted=False, brake_open=False, zero_speed=True,
                           comm_loss_trip=False, safety_chain_closed=True, speed_m_s=self.speed_m_s,
                           position_m=self.position_m, fault_code=0, current_a=0.0, load_kg=0.0, drive_tick=self.tick)

    def write_command(self, command: DriveCommand, watchdog: int) -> LinkError | None:
        if len(self.commands) < 10:
            self.commands.append(command)
        else:
            self.commands[-1] = command
        return None


class FakePanels:
    """The simulator's boards, answering the payloads the master's session makes, without a serial port or framing
    (the frame codec has its own tests, and the wire tests run it through a pseudo-terminal)."""

    def __init__(self, boards: PanelBoards) -> None:
        self.boards = boards
        self.decoder = FrameDecoder()
        self.polls = 0
        self.timeouts = 0
        self.serial_errors = 0
        self.port_problem: str | None = None

    def open(self) -> bool:
        return True

    def close(self) -> None:
        """Nothing to release: no port."""

    def poll(self, address: int, payload: bytes) -> Frame | None:
        self.polls += 1
        answer = self.boards.answer(address, payload)
        if answer is None:
            self.timeouts += 1
            return None
        return Frame(address, panelbus.STATUS, answer)


def make_loop(tmp_path: Path, log_to: Any = None, latch_file: str = "") -> tuple[ControlLoop, FakeDrive, FakePanels]:
    config = from_dict({"drive": {"endpoint": "tcp://127.0.0.1:1"}, "panel": {"port": "/dev/null"},
                        "runtime": {"fault_log": "", "audit_log": "", "socket_dir": str(tmp_path),
                                    "latch_file": latch_file, "learned_table": ""}})
    controller = config.controller
    boards = PanelBoards(Shaft(controller, PhysicsConfig()), controller.building.landing_count, 0)
    drive, panels = FakeDrive(), FakePanels(boards)
    _check_shapes(drive, panels)
    stream = log_to if log_to is not None else NullStream()
    return ControlLoop(config, drive, panels, StructuredLog(stream)), drive, panels


class NullStream(io.StringIO):
    """A log that keeps nothing (a StringIO would grow with every record)."""

    def write(self, text: str) -> int:
        return len(text)


def _check_shapes(drive: DrivePort, panels: PanelPort) -> None:
    """The fakes have the adapters' shape (checked by the type checker here)."""


def test_a_press_on_the_car_panel_goes_through_the_firmware_road_to_a_lamp(tmp_path: Path) -> None:
    loop, drive, panels = make_loop(tmp_path)
    for _ in range(20):
        loop.cycle()  # the car finds itself level at the bottom landing
    panels.boards.press_car_call(3)
    seen = [event.kind for _ in range(5) for event in loop.cycle()[1]]
    assert EventKind.CALL_REGISTERED in seen
    assert panels.boards.lamps()["car"] == [3]


def test_a_drive_that_stops_answering_or_freezes_is_stale_and_the_car_stops_at_once(tmp_path: Path) -> None:
    loop, drive, _ = make_loop(tmp_path)
    for _ in range(20):
        loop.cycle()
    assert "drive_stale" not in {fault.value for fault in loop.state.faults}
    for frozen in (False, True):
        drive.silent, drive.frozen = not frozen, frozen
        for _ in range(loop.freshness.drive + 1):
            loop.cycle()
        assert "drive_stale" in {fault.value for fault in loop.state.faults}
        assert drive.commands[-1].quick_stop
        drive.silent = drive.frozen = False
        for _ in range(3):
            loop.cycle()
        assert "drive_stale" not in {fault.value for fault in loop.state.faults}


def test_a_stale_drive_that_came_and_went_between_health_records_is_in_the_next_one(tmp_path: Path) -> None:
    loop, drive, _ = make_loop(tmp_path)
    for _ in range(20):
        loop.cycle()
    loop.fault_counts.next_window(fault.value for fault in loop.state.faults)  # as after a health record
    for _ in range(2):  # stale twice, cleared each time: the instant's `faults` shows nothing
        drive.silent = True
        for _ in range(loop.freshness.drive + 1):
            loop.cycle()
        drive.silent = False
        for _ in range(3):
            loop.cycle()
    health = loop.health()
    assert "drive_stale" not in health["faults"]
    assert health["faults_since_last_health"] == ["drive_stale"]
    assert health["fault_raises_since_last_health"] == {"drive_stale": 2}
    assert health["fault_raises_total"]["drive_stale"] >= 2
    loop.fault_counts.next_window(health["faults"])
    assert loop.health()["faults_since_last_health"] == [] and loop.health()["fault_raises_since_last_health"] == {}


def test_after_a_restart_between_landings_the_health_record_s_landing_is_the_nearest(tmp_path: Path) -> None:
    loop, drive, _ = make_loop(tmp_path)
    drive.position_m = 11.483  # stopped short of landing 4 (11.6 m) when the controller restarted
    assert loop.health()["landing"] == 0  # made before the drive had answered
    loop.cycle()
    health = loop.health()
    assert health["landing"] == 4 and health["nearest_landing"] == 4 and health["position_m"] == 11.483


def test_an_adapter_that_raises_is_counted_and_the_loop_goes_on(tmp_path: Path) -> None:
    loop, drive, _ = make_loop(tmp_path)
    drive.raises = True
    for _ in range(10):
        loop.cycle()
    assert loop.errors.counts["drive_read"] == 10 and loop.tick == 10
    assert drive.commands[-1].quick_stop  # stale from the start: stopped


def test_an_exception_in_the_core_is_the_safe_stop_then_a_fault_like_any_other(tmp_path: Path) -> None:
    loop, drive, _ = make_loop(tmp_path)
    for _ in range(20):
        loop.cycle()
    real_step = loop.controller.step
    loop.controller.step = lambda state, inputs: 1 / 0  # type: ignore[method-assign]
    commands, events = loop.cycle()
    assert commands == SAFE_STOP and events == () and drive.commands[-1].quick_stop
    loop.controller.step = real_step  # type: ignore[method-assign]
    _, events = loop.cycle()
    assert [(event.kind, event.detail.split(":")[0]) for event in events
            if event.kind is EventKind.FAULT_RAISED] == [(EventKind.FAULT_RAISED, "controller_error")]
    assert drive.commands[-1].quick_stop
    cleared_after = 0
    while "controller_error" in {fault.value for fault in loop.state.faults}:
        if cleared_after == 10:  # failing again within the hold: the same fault stays, no new event
            loop.controller.step = lambda state, inputs: 1 / 0  # type: ignore[method-assign]
            assert loop.cycle()[1] == ()
            loop.controller.step = real_step  # type: ignore[method-assign]
        _, events = loop.cycle()
        assert all(event.kind is not EventKind.FAULT_RAISED for event in events)
        cleared_after += 1
    assert cleared_after == 10 + round(1.0 / loop.period_s) + 1  # held a second after the last failure
    assert loop.errors.counts["core"] == 2


def test_a_latched_fault_is_in_force_from_the_first_cycle_after_a_restart(tmp_path: Path) -> None:
    latch_file = tmp_path / "latched.json"
    latch_file.write_text('{"version": 1, "latched": []}')  # as the commissioning reset leaves it
    loop, drive, _ = make_loop(tmp_path, latch_file=str(latch_file))
    for _ in range(20):
        loop.cycle()
    drive.speed_m_s = 1.2  # above 110 % of rated speed: overspeed, latched
    loop.cycle()
    drive.speed_m_s = 0.0
    for _ in range(20):
        loop.cycle()
    assert "overspeed" in {fault.value for fault in loop.state.faults}
    loop.latches.close()  # type: ignore[union-attr]
    assert "overspeed" in latch_file.read_text()
    again, drive, _ = make_loop(tmp_path, latch_file=str(latch_file))
    commands, events = again.cycle()
    assert "overspeed" in {fault.value for fault in again.state.faults} and commands.quick_stop
    assert drive.commands[0].quick_stop and not (drive.commands[0].run_up or drive.commands[0].run_down)
    latch_file.write_text("{not json")
    held, drive, _ = make_loop(tmp_path, latch_file=str(latch_file))
    for _ in range(30):
        held.cycle()
    assert {fault.value for fault in held.state.faults} == {"latch_record_unreadable"}
    assert all(command.quick_stop for command in drive.commands)


def test_a_record_that_cannot_be_written_is_shown_as_a_fault(tmp_path: Path) -> None:
    (tmp_path / "state").write_text("a file where the state folder should be")
    loop, drive, _ = make_loop(tmp_path, latch_file=str(tmp_path / "state" / "latched.json"))
    deadline = time.monotonic() + 5
    while "latch_record_unwritable" not in {fault.value for fault in loop.state.faults}:
        assert time.monotonic() < deadline
        loop.cycle()
        time.sleep(0.01)
    assert "latch_record_unreadable" in {fault.value for fault in loop.state.faults}  # and nothing restored
    assert loop.health()["latch_write_errors"] >= 1


def test_the_loop_does_not_grow_over_60000_cycles(tmp_path: Path) -> None:
    """Every rolling record the loop keeps is bounded: after a warm-up that fills them, 60,000 more cycles (20
    minutes at 50 Hz; a byte kept per cycle would pass the limit below), with car and landing calls pressed all along — the fake drive never moves, so they stay
    registered — and the latch record kept) leave the traced memory where it was."""
    latch_file = tmp_path / "latched.json"
    latch_file.write_text('{"version": 1, "latched": []}')
    loop, drive, panels = make_loop(tmp_path, latch_file=str(latch_file))
    boards = panels.boards

    def cycles(count: int) -> None:
        for index in range(count):
            if index % 500 == 0:
                boards.press_car_call((index // 500) % 6)  # the fake drive never moves: calls stay registered
                boards.press_hall_call(3, "up")
            loop.cycle()

    cycles(20_000)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        cycles(60_000)
        gc.collect()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename") if stat.size_diff > 0)
    assert loop.tick == 80_000
    assert grown < 64 * 1024, [str(stat) for stat in after.compare_to(before, "lineno")[:5]]


def test_a_port_that_cannot_be_opened_is_logged_once_per_change_and_in_the_health_record(tmp_path: Path) -> None:
    """Before, a missing panel port showed as polls and no timeouts, and a missing drive port as a flood of
    pymodbus lines: now the health record says why, and the log says it once when it appears and when it clears."""
    stream = io.StringIO()
    loop, drive, panels = make_loop(tmp_path, log_to=stream)
    panels.port_problem = "/dev/ttyAMA0 does not exist (the adapter unplugged, or the UART not enabled)"
    for _ in range(5):
        loop.report_port_problems()
    panels.port_problem = None
    loop.report_port_problems()
    loop.report_port_problems()
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    ports = [(r["port"], r["state"]) for r in records if r["kind"] == "port"]
    assert ports == [("panel", "unusable"), ("panel", "open")]
    drive.port_problem = "no connection to 10.0.0.9:502 (the drive off, its address, the cable)"
    health = loop.health()
    assert health["drive_port_problem"].startswith("no connection") and health["panel_port_problem"] is None
    assert "panel_serial_errors" in health


def test_an_alarm_in_the_latch_record_is_active_again_after_a_restart(tmp_path: Path) -> None:
    from carctl.core.signals import AlarmPhase

    latch_file = tmp_path / "latched.json"
    latch_file.write_text('{"version": 1, "latched": [], "alarm": "requested"}')
    stream = io.StringIO()
    loop, _, _ = make_loop(tmp_path, log_to=stream, latch_file=str(latch_file))
    assert loop.state.alarm is AlarmPhase.REQUESTED
    for _ in range(5):
        loop.cycle()
    assert loop.state.alarm is AlarmPhase.REQUESTED and loop.commands.alarm_call
    assert any(json.loads(line).get("state") == "alarm restored" for line in stream.getvalue().splitlines())
    loop.latches.close()  # type: ignore[union-attr]
    assert json.loads(latch_file.read_text())["alarm"] == "requested"


def test_a_corrupt_learned_table_at_start_gives_the_typed_table_a_log_record_and_a_display_fault(
        tmp_path: Path) -> None:
    from carctl.core.faults import FAULTS, Fault, FaultLevel

    table = tmp_path / "learned.json"
    table.write_bytes(b'{"version": 1, "landings_m": [0.0, 2.9')  # torn by a power cut
    config = from_dict({"drive": {"endpoint": "tcp://127.0.0.1:1"}, "panel": {"port": "/dev/null"},
                        "runtime": {"fault_log": "", "socket_dir": str(tmp_path), "latch_file": "",
                                    "audit_log": "", "learned_table": str(table)}})
    controller = config.controller
    boards = PanelBoards(Shaft(controller, PhysicsConfig()), controller.building.landing_count, 0)
    stream = io.StringIO()
    loop = ControlLoop(config, FakeDrive(), FakePanels(boards), StructuredLog(stream))
    assert loop.controller.landings_m == controller.building.landings_m  # the typed table
    assert "learned table refused: the typed table is used" in stream.getvalue()
    loop.cycle()
    assert Fault.LANDING_TABLE_REFUSED in loop.state.faults
    assert FAULTS[Fault.LANDING_TABLE_REFUSED].level is FaultLevel.DISPLAY
    health = loop.health()
    assert health["landing_table"] == "typed" and str(table) in str(health["landing_table_problem"])
