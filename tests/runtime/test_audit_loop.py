"""The maintenance record written by the firmware's own road: the loop against the simulator's boards (a reset key
pressed, a key switch turned), and the platform's commands through the link process to the loop and its outbox."""

from __future__ import annotations

import dataclasses
import io
import json
import types
from pathlib import Path
from typing import Any

from carctl.adapters.drive import DriveLink, Endpoint
from carctl.adapters.panelbus import PanelBusMaster
from carctl.core.faults import Fault
from carctl.core.signals import Event, EventKind, Inputs, Mode
from carctl.platform.agent import Agent
from carctl.platform.keys import write_key
from carctl.platform.outbox import Outbox
from carctl.protocol.drive_map import DriveCommand, DriveStatus
from carctl.protocol.sense import SwitchLevels
from carctl.runtime.audit_actions import seen_in_cycle
from carctl.runtime.audit_chain import digest, verify
from carctl.runtime.config import from_dict
from carctl.runtime.loop import ControlLoop, StructuredLog
from sim.panels import PanelBoards
from sim.physics import PhysicsConfig, Shaft
from tests.runtime.test_loop import FakeDrive, FakePanels, NullStream


def audit_records(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_bytes().splitlines()]


def loop_with_audit(tmp_path: Path) -> tuple[ControlLoop, PanelBoards, Path]:
    audit = tmp_path / "audit.log"
    config = from_dict({"drive": {"endpoint": "tcp://127.0.0.1:1"}, "panel": {"port": "/dev/null"},
                        "runtime": {"fault_log": "", "latch_file": "", "learned_table": "", "socket_dir": str(tmp_path),
                                    "audit_log": str(audit)}})
    boards = PanelBoards(Shaft(config.controller, PhysicsConfig()), config.controller.building.landing_count, 0)
    return ControlLoop(config, FakeDrive(), FakePanels(boards), StructuredLog(NullStream())), boards, audit


def cycles(loop: ControlLoop, count: int) -> list[Event]:
    return [event for _ in range(count) for event in loop.cycle()[1]]


def test_a_fault_reset_by_the_key_and_a_key_switch_are_chained_on_disk(tmp_path: Path) -> None:
    loop, boards, audit = loop_with_audit(tmp_path)
    cycles(loop, 30)  # the car finds itself level at the bottom landing
    assert audit.read_bytes() == b""  # nothing done, nothing recorded
    # An overspeed latched, as a restart restores it from the latch record: only the key resets it.
    loop.state = dataclasses.replace(loop.state, faults=frozenset({Fault.OVERSPEED}))
    boards.press_car_button("fault_reset")
    cleared = [event for event in cycles(loop, 5) if event.kind is EventKind.FAULT_CLEARED]
    assert [event.detail for event in cleared] == ["overspeed"]  # the reset really happened
    boards.inspection = True
    changed = [event.detail for event in cycles(loop, 10) if event.kind is EventKind.MODE_CHANGED]
    assert changed == ["normal->inspection"]  # and the switch really took the car
    boards.inspection = False
    cycles(loop, 10)
    loop.audit.close()  # type: ignore[union-attr]
    records = audit_records(audit)
    assert [(r["action"], r["via"], r["who"], r["details"]) for r in records] == [
        ("fault_reset", "car_key", "fault reset key", {"faults_before": ["overspeed"], "cleared": ["overspeed"]}),
        ("mode_switch", "car_key", "car-top inspection switch", {"switch": "inspection", "to": "on"}),
        ("mode_changed", "controller", "controller", {"from": "normal", "to": "inspection"}),
        ("mode_switch", "car_key", "car-top inspection switch", {"switch": "inspection", "to": "off"}),
        ("mode_changed", "controller", "controller", {"from": "inspection", "to": "normal"}),
    ]
    assert [r["seq"] for r in records] == [1, 2, 3, 4, 5]
    assert verify([("audit.log", audit.read_bytes())]).intact
    assert loop.health()["audit_write_errors"] == 0


def test_a_restarted_loop_continues_the_chain(tmp_path: Path) -> None:
    loop, boards, audit = loop_with_audit(tmp_path)
    cycles(loop, 20)
    boards.press_car_button("fault_reset")
    cycles(loop, 3)
    loop.audit.close()  # type: ignore[union-attr]
    audit.write_bytes(audit.read_bytes() + b'{"action":"alarm_re')  # killed in the middle of a write
    again, boards, _ = loop_with_audit(tmp_path)
    cycles(again, 20)
    boards.independent_key = True
    cycles(again, 5)
    again.audit.close()  # type: ignore[union-attr]
    records = audit_records(audit)
    assert [r["action"] for r in records] == ["fault_reset", "torn_tail", "mode_switch", "mode_changed"]
    assert records[1]["details"]["bytes"] == len(b'{"action":"alarm_re')
    assert verify([("audit.log", audit.read_bytes())]).intact


class TrippedDrive(FakeDrive):
    """A drive that reports a comm-loss trip until the controller resets it."""

    def __init__(self) -> None:
        super().__init__()
        self.tripped = True
        self.resets = 0

    def read_status(self) -> Any:
        status = super().read_status()
        return dataclasses.replace(status, comm_loss_trip=self.tripped) if isinstance(status, DriveStatus) else status

    def write_command(self, command: DriveCommand, watchdog: int) -> None:
        if command.fault_reset:
            self.resets += 1
            self.tripped = False


def test_the_loops_own_reset_of_a_comm_loss_trip_is_recorded_once(tmp_path: Path) -> None:
    loop, _, audit = loop_with_audit(tmp_path)
    drive = TrippedDrive()
    loop.drive = drive
    cycles(loop, 30)
    assert drive.resets == 1 and not drive.tripped  # the loop really reset the drive
    drive.tripped = True  # a second trip later: a second record
    cycles(loop, 30)
    loop.audit.close()  # type: ignore[union-attr]
    records = audit_records(audit)
    assert [(r["action"], r["via"], r["who"]) for r in records] == [
        ("fault_reset", "controller", "drive comm-loss reset")] * 2


def test_the_eeo_buttons_and_the_alarm_reset_are_seen_once_per_press() -> None:
    off = SwitchLevels()
    held = Inputs(tick=1, eeo_up=True)
    eeo = Mode.EMERGENCY_ELECTRICAL
    assert seen_in_cycle(held, (), frozenset(), off, off, (False, False), mode=eeo) == [
        ("eeo_run", "car_key", "cabinet EEO buttons",
         {"direction": "up", "taken": True, "mode": "emergency_electrical"})]
    assert seen_in_cycle(held, (), frozenset(), off, off, (True, False), mode=eeo) == []  # still held: not again
    assert seen_in_cycle(Inputs(tick=1), (), frozenset(), off, off, (True, False), mode=eeo) == []  # let go
    assert seen_in_cycle(Inputs(tick=1, alarm_reset=True), (), frozenset(), off, off, (False, False), mode=eeo) == [
        ("alarm_reset", "car_key", "alarm reset key", {})]
    eeo_on = SwitchLevels(eeo=True)
    assert seen_in_cycle(Inputs(tick=1), (), frozenset(), off, eeo_on, (False, False), mode=eeo) == [
        ("mode_switch", "car_key", "cabinet EEO switch", {"switch": "eeo", "to": "on"})]
    assert seen_in_cycle(Inputs(tick=1), (), frozenset(), eeo_on, eeo_on, (False, False), mode=eeo) == []


def test_an_eeo_press_while_the_car_top_has_the_car_is_recorded_as_not_taken() -> None:
    both_on = SwitchLevels(inspection=True, eeo=True)
    actions = seen_in_cycle(Inputs(tick=1, eeo_up=True), (), frozenset(), both_on, both_on, (False, False),
                            mode=Mode.INSPECTION)
    assert actions == [("eeo_run", "car_key", "cabinet EEO buttons",
                        {"direction": "up", "taken": False, "mode": "inspection"})]


def test_platform_commands_are_recorded_with_their_ids_and_reach_the_outbox(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("secret")
    write_key(tmp_path / "key", b"k" * 32)
    audit = tmp_path / "audit.log"
    config = from_dict({
        "drive": {"endpoint": "tcp://127.0.0.1:1"}, "panel": {"port": "/dev/null"},
        "processes": {"platform": True},
        "runtime": {"socket_dir": str(tmp_path / "run"), "fault_log": "", "latch_file": "", "learned_table": "",
                    "audit_log": str(audit)},
        "face": {"gallery_dir": str(tmp_path / "gallery"), "key_file": str(tmp_path / "gallery.key"),
                 "community": "xihan"},
        "platform": {"broker_port": 1, "password_file": str(tmp_path / "pw"), "key_file": str(tmp_path / "key"),
                     "outbox_path": str(tmp_path / "outbox.db"), "overrides_path": str(tmp_path / "overrides.json"),
                     "community": "xihan", "car": "b7u2"},
    })
    loop = ControlLoop(config, DriveLink(Endpoint.parse("tcp://127.0.0.1:1"), 0.01), PanelBusMaster("/dev/null"),
                       StructuredLog(io.StringIO()))
    agent = Agent(config)
    try:
        agent.apply({"id": "cmd-home-3", "type": "car.home_landing", "params": {"landing": 3}})
        assert loop._mode_request() is None  # takes the reload notice between cycles
        assert loop.controller.config.car.home_landing == 3  # the change really took
        agent.apply({"id": "cmd-free", "type": "permissions.set", "params": {"enabled": True, "free_landings": [9]}})
        loop._mode_request()  # a landing that does not exist: refused, and recorded as refused
        agent.apply({"id": "cmd-oos", "type": "car.mode", "params": {"mode": "out_of_service"}})
        assert loop._mode_request() is Mode.OUT_OF_SERVICE
        # The independent-service key turned off in the same cycle as a platform command: the key's request wins.
        loop.switches = SwitchLevels(independent=True)
        agent.apply({"id": "cmd-idle", "type": "car.mode", "params": {"mode": "independent"}})
        assert loop._mode_request() is Mode.NORMAL
        assert loop.audit is not None and loop.bridge is not None
        loop.audit.close()
        records = audit_records(audit)
        assert [(r["action"], r["via"], r["who"]) for r in records] == [
            ("parameter_change", "platform", "cmd-home-3"), ("parameter_change", "platform", "cmd-free"),
            ("mode_command", "platform", "cmd-oos"), ("mode_command", "platform", "cmd-idle")]
        assert records[0]["details"] == {"changes": {"home_landing": {"from": None, "to": 3}}, "applied": True}
        assert records[1]["details"]["applied"] is False and "car.free_landings" in records[1]["details"]["refused"]
        assert records[1]["details"]["changes"] == {"free_landings": {"from": None, "to": [9]},
                                                    "permissions_enabled": {"from": None, "to": True}}
        assert records[2]["details"] == {"mode": "out_of_service", "taken": True}
        assert records[3]["details"] == {"mode": "independent", "taken": False}
        assert verify([("audit.log", audit.read_bytes())]).intact
        # Each record went to the link process as an `audit` event, which its outbox keeps for the broker.
        for value in agent.from_loop.take():
            agent.handle_loop_message(value)
        assert agent.from_loop.refused_total() == 0
    finally:
        agent.close()
        loop.close_platform()
    outbox = Outbox(tmp_path / "outbox.db")
    try:
        events = [json.loads(payload) for _, _, payload in outbox.pending()]
    finally:
        outbox.close()
    audits = [event for event in events if event["kind"] == "audit"]
    lines = audit.read_bytes().splitlines()
    assert [event["seq"] for event in audits] == [1, 2, 3, 4]
    assert [event["record"].encode() for event in audits] == lines  # the platform holds the very lines
    assert [event["hash"] for event in audits] == [digest(line) for line in lines]
    assert audits[2]["who"] == "cmd-oos" and audits[2]["category"] == "running_state"


def test_the_hooks_for_a_learning_run_and_a_brake_test_are_ready(tmp_path: Path) -> None:
    loop, _, audit = loop_with_audit(tmp_path)
    loop.record_action("learning_run", "service_tool", "technician li", {"landings_found": 6})
    loop.record_action("brake_test", "service_tool", "technician li", {"result": "held", "load_kg": 788})
    loop.record_action("coffee_break", "service_tool", "technician li", {})  # not an action: counted, not raised
    loop.audit.close()  # type: ignore[union-attr]
    records = audit_records(audit)
    assert [(r["action"], r["via"], r["who"]) for r in records] == [
        ("learning_run", "service_tool", "technician li"), ("brake_test", "service_tool", "technician li")]
    assert loop.errors.counts["audit_log"] == 1


def loop_hearing_the_service_tool(tmp_path: Path, audit: Path) -> ControlLoop:
    """A loop with the service tool's side channel open and its maintenance record at `audit`."""
    config = from_dict({"drive": {"endpoint": "tcp://127.0.0.1:1"}, "panel": {"port": "/dev/null"},
                        "processes": {"service": True}, "platform": {"overrides_path": str(tmp_path / "o.json")},
                        "runtime": {"fault_log": "", "latch_file": "", "learned_table": "",
                                    "socket_dir": str(tmp_path / "run"), "audit_log": str(audit)}})
    boards = PanelBoards(Shaft(config.controller, PhysicsConfig()), config.controller.building.landing_count, 0)
    return ControlLoop(config, FakeDrive(), FakePanels(boards), StructuredLog(NullStream()))


def close_loop_hearing_the_service_tool(loop: ControlLoop) -> None:
    loop.audit.close()  # type: ignore[union-attr]
    if loop.service_feed is not None:
        loop.service_feed.close()


def service_records(audit: Path) -> list[dict[str, Any]]:
    return [r for r in audit_records(audit) if str(r["action"]).startswith("service_")]


def test_the_service_tools_logins_and_changes_reach_the_maintenance_record(tmp_path: Path) -> None:
    """Through the service tool's side channel, as carctl/service/audit.py sends them: a refused login (a name with
    a control character in it, as anyone may type), a login, a refused change and a logout; garbage is refused and
    counted, never recorded."""
    import time as clock

    from carctl.protocol import loopback
    from carctl.runtime.sidechannel import LOOP_FROM_SERVICE, Sender
    from carctl.service.audit import StructuredLogAudit

    audit = tmp_path / "audit.log"
    loop = loop_hearing_the_service_tool(tmp_path, audit)
    service = Sender(tmp_path / "run", LOOP_FROM_SERVICE)
    trail = StructuredLogAudit(StructuredLog(NullStream()), service)
    try:
        trail.record("login", "wang\x1bli", "10.0.0.7", "refused: wrong password")
        trail.record("login", "wangli", "10.0.0.7", "ok", role="maintenance")
        trail.record("/faults/reset", "wangli", "10.0.0.7", "refused: no valid CSRF token")
        trail.record("logout", "wangli", "10.0.0.7", "ok")
        service.send({"type": "audit", "action": "login", "user": ["x"], "client": "", "outcome": "ok"})
        service.send({"type": "audit", "action": "LOGIN; rm", "user": "x", "client": "", "outcome": "ok"})
        clock.sleep(0.05)
        cycles(loop, 20)
        refused = loop.service_feed.inbox.refused if loop.service_feed is not None else {}
    finally:
        service.close()
        close_loop_hearing_the_service_tool(loop)
    records = service_records(audit)
    assert [(r["action"], r["via"], r["who"], r["details"]["outcome"]) for r in records] == [
        ("service_login", "service_tool", "wang?li", "refused: wrong password"),
        ("service_login", "service_tool", "wangli", "ok"),
        ("service_change", "service_tool", "wangli", "refused: no valid CSRF token"),
        ("service_logout", "service_tool", "wangli", "ok")]
    assert records[2]["details"]["path"] == "/faults/reset"
    assert sum(refused.values()) == 2, refused  # the garbage: refused and counted, not recorded
    assert verify([("audit.log", audit.read_bytes())]).intact


def test_refusals_past_their_budget_are_counted_and_the_record_says_how_many(tmp_path: Path) -> None:
    """A flood of refused logins (anyone on the network can make them) reaches the maintenance record only up to the
    service tool's budget; the next window's first record says how many were left out, and a good login always
    goes through."""
    from carctl.runtime.sidechannel import LOOP_FROM_SERVICE, Sender
    from carctl.service.audit import LEFT_OUT_ACTION, REFUSAL_WINDOW_S, REFUSALS_PER_WINDOW, StructuredLogAudit

    audit = tmp_path / "audit.log"
    loop = loop_hearing_the_service_tool(tmp_path, audit)
    now_s = [100.0]
    service = Sender(tmp_path / "run", LOOP_FROM_SERVICE)
    trail = StructuredLogAudit(StructuredLog(NullStream()), service, clock=lambda: now_s[0])
    left_out = 7
    try:
        for _ in range(REFUSALS_PER_WINDOW + left_out):
            trail.record("login", "guess", "10.0.0.9", "refused: no valid form token")
            cycles(loop, 5)  # one take of the loop's requests: the socket never holds more than a few
        trail.record("login", "wangli", "10.0.0.7", "ok", role="maintenance")
        cycles(loop, 5)
        now_s[0] += REFUSAL_WINDOW_S
        trail.record("logout", "wangli", "10.0.0.7", "ok")
        cycles(loop, 10)
    finally:
        service.close()
        close_loop_hearing_the_service_tool(loop)
    records = service_records(audit)
    assert [r["who"] for r in records] == ["guess"] * REFUSALS_PER_WINDOW + ["wangli", "", "wangli"]
    summary = records[-2]
    assert summary["action"] == "service_change" and summary["details"]["path"] == LEFT_OUT_ACTION
    assert summary["details"]["outcome"] == f"refused: {left_out} more, left out (see the journal)"
    assert verify([("audit.log", audit.read_bytes())]).intact


def test_the_end_of_a_learning_run_and_of_a_brake_test_reach_the_record_and_the_platform(tmp_path: Path) -> None:
    """The core's events at the end of each run (core/learning.py, core/braketest.py) are recorded by the loop, via
    the car itself, with their outcome, and sent to the platform as every record is."""
    loop, _, audit = loop_with_audit(tmp_path)
    sent: list[dict[str, Any]] = []

    class Platform:
        """The platform link's side of the loop, keeping what is sent."""

        reporter = types.SimpleNamespace(alarm_id="", face_on=False)

        def take(self) -> tuple[None, bool]:
            return None, False

        def take_acknowledgement(self, alarm_id: str) -> bool:
            return False

        def after_cycle(self, *args: Any) -> None:
            """Nothing of the cycle's to pass on here."""

        def send_event(self, message: dict[str, Any]) -> None:
            sent.append(message)

    loop.bridge = Platform()  # type: ignore[assignment]
    step = loop.controller.step
    ends = [Event(EventKind.LEARNING, 0, -1, "refused:not_at_bottom"),
            Event(EventKind.BRAKE_TEST, 0, 0, "passed:0"), Event(EventKind.LEARNING, 0, -1, "started")]

    def step_with_ends(state: Any, inputs: Inputs) -> Any:
        state, commands, events = step(state, inputs)
        return state, commands, events + (tuple(ends) if inputs.tick == 3 else ())

    loop.controller.step = step_with_ends  # type: ignore[method-assign]
    cycles(loop, 5)
    loop.audit.close()  # type: ignore[union-attr]
    records = audit_records(audit)
    assert [(r["action"], r["via"], r["details"]) for r in records] == [
        ("learning_run", "controller", {"outcome": "refused", "reason": "not_at_bottom"}),
        ("brake_test", "controller", {"outcome": "passed", "moved_mm": 0})]
    assert [(message["kind"], message["action"]) for message in sent] == [("audit", "learning_run"),
                                                                          ("audit", "brake_test")]
    assert not loop.errors.counts, loop.errors.counts
    assert verify([("audit.log", audit.read_bytes())]).intact


def test_a_record_that_cannot_be_opened_is_said_in_the_health_record_and_the_car_runs_on(tmp_path: Path) -> None:
    audit = tmp_path / "no-such-folder" / "audit.log"
    config = from_dict({"drive": {"endpoint": "tcp://127.0.0.1:1"}, "panel": {"port": "/dev/null"},
                        "runtime": {"fault_log": "", "latch_file": "", "learned_table": "", "socket_dir": str(tmp_path),
                                    "audit_log": str(audit)}})
    boards = PanelBoards(Shaft(config.controller, PhysicsConfig()), config.controller.building.landing_count, 0)
    loop = ControlLoop(config, FakeDrive(), FakePanels(boards), StructuredLog(NullStream()))
    assert loop.audit is None
    cycles(loop, 20)
    boards.press_car_button("fault_reset")
    cycles(loop, 5)
    health = loop.health()
    assert "No such file or directory" in health["audit_log_unavailable"]
    assert health["audit_records_not_kept"] == 1 and not loop.errors.counts
    assert not audit.parent.exists()  # nothing made in its place
    working, _, _ = loop_with_audit(tmp_path)
    assert (working.health()["audit_log_unavailable"], working.health()["audit_records_not_kept"]) == (None, None)
    working.audit.close()  # type: ignore[union-attr]


def test_the_cars_brake_test_record_is_its_end_with_the_millimetres_and_never_a_reason_in_their_place() -> None:
    """Every outcome of core/braketest.py's event. The start and a refusal answer the service tool's request and are
    recorded with the account and the reason by the loop's commissioning path (via service_tool); the car's own
    record (via controller) is the end of the test, docs/audit.md. A refusal read as an end put the reason where
    the millimetres go: {"outcome": "refused", "moved_mm": "not_in_inspection"}."""
    off = SwitchLevels()

    def recorded(detail: str) -> list[dict[str, Any]]:
        actions = seen_in_cycle(Inputs(tick=900), (Event(EventKind.BRAKE_TEST, 900, 2, detail),), frozenset(), off,
                                off, (False, False), mode=Mode.INSPECTION)
        return [details for name, via, _, details in actions if name == "brake_test" and via == "controller"]

    assert recorded("passed:0") == [{"outcome": "passed", "moved_mm": 0}]
    assert recorded("slipped:12") == [{"outcome": "slipped", "moved_mm": 12}]
    assert recorded("no_answer") == [{"outcome": "no_answer"}]
    assert recorded("abandoned") == [{"outcome": "abandoned"}]
    assert recorded("started") == []
    assert recorded("refused:not_in_inspection") == []
