"""Commissioning from the service tool, the loop's side: the request is parsed totally (anything else refused and
counted), passed to the core for one cycle, and the core's answer goes back to the page and into the maintenance
record, with the account that asked."""

from __future__ import annotations

import io
import json
import socket
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from carctl.adapters.drive import DriveLink, Endpoint
from carctl.adapters.panelbus import PanelBusMaster
from carctl.core.faults import Fault
from carctl.core.signals import Commissioning, Event, EventKind
from carctl.protocol import loopback
from carctl.protocol.loopback import CommissionAnswer, Refused, ServiceCommission, parse_service_message, \
    parse_service_request
from carctl.runtime.commissioning import Commissions
from carctl.runtime.config import from_dict
from carctl.runtime.loop import ControlLoop, StructuredLog
from carctl.runtime.sidechannel import LOOP_FROM_SERVICE, Sender
from carctl.service.feed import LoopFeed

REQUEST_ID = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize("value", [
    {"type": "commission"},
    {"type": "commission", "action": "learn", "id": REQUEST_ID},  # no account
    {"type": "commission", "action": "run_up", "id": REQUEST_ID, "user": "li.wei"},
    {"type": "commission", "action": ["learn"], "id": REQUEST_ID, "user": "li.wei"},
    {"type": "commission", "action": "learn", "id": "../x", "user": "li.wei"},
    {"type": "commission", "action": "learn", "id": REQUEST_ID, "user": "li\nwei"},
    {"type": "commission", "action": "learn", "id": REQUEST_ID, "user": "x" * 65},
    {"type": "commission", "action": "learn", "id": REQUEST_ID, "user": "li.wei", "speed_m_s": 1.0},
    {"type": "commission", "action": "brake_test", "id": 7, "user": "li.wei"},
    {"type": "commission", "action": None, "id": REQUEST_ID, "user": "li.wei"},
])
def test_anything_but_a_commissioning_request_is_refused(value: Any) -> None:
    assert isinstance(parse_service_request(value), Refused)


def test_the_three_requests_are_taken() -> None:
    for action in Commissioning:
        parsed = parse_service_request(loopback.commission_request(action.value, REQUEST_ID, "li.wei"))
        assert parsed == ServiceCommission(action, REQUEST_ID, "li.wei")


@pytest.mark.parametrize("value", [
    {"type": "commission", "id": REQUEST_ID, "action": "learn", "outcome": "maybe", "reason": "", "cleared": [],
     "latched": []},
    {"type": "commission", "id": REQUEST_ID, "action": {}, "outcome": "refused", "reason": "", "cleared": [],
     "latched": []},
    {"type": "commission", "id": REQUEST_ID, "action": "learn", "outcome": "refused", "reason": "<script>",
     "cleared": [], "latched": []},
    {"type": "commission", "id": REQUEST_ID, "action": "reset_faults", "outcome": "accepted", "reason": "",
     "cleared": [1], "latched": []},
    {"type": "commission", "id": REQUEST_ID, "action": "reset_faults", "outcome": "accepted", "reason": "",
     "cleared": ["a"] * 65, "latched": []},
])
def test_the_service_refuses_an_answer_that_is_not_one(value: Any) -> None:
    assert isinstance(parse_service_message(value), Refused)


def test_the_answer_is_what_the_core_said_and_the_page_sees_how_the_run_ended() -> None:
    desk = Commissions()
    request = ServiceCommission(Commissioning.BRAKE_TEST, REQUEST_ID, "li.wei")
    answer, action = desk.answer(request, (Event(EventKind.BRAKE_TEST, 5, 0, "refused:not_in_inspection"),),
                                 frozenset(), frozenset())
    assert parse_service_message(answer) == CommissionAnswer(REQUEST_ID, "brake_test", False, "not_in_inspection")
    assert action == ("brake_test", "service_tool", "li.wei", {"outcome": "refused: not_in_inspection"})
    answer, action = desk.answer(request, (Event(EventKind.BRAKE_TEST, 6, 0, "started"),), frozenset(), frozenset())
    assert answer["outcome"] == "accepted" and action[3] == {"outcome": "started"}
    # How it ends is the page's to show; the record of the end is the loop's `controller` record, for every test.
    desk.seen((Event(EventKind.BRAKE_TEST, 200, 0, "passed:0"),))
    assert desk.last[EventKind.BRAKE_TEST] == "passed:0"
    desk.seen((Event(EventKind.BRAKE_TEST, 9000, 0, "slipped:4"),))  # a periodic test: shown the same
    assert desk.last[EventKind.BRAKE_TEST] == "slipped:4"
    # No answer from the core (it raised that cycle): refused, not taken.
    answer, _ = desk.answer(ServiceCommission(Commissioning.LEARNING_RUN, REQUEST_ID, "li.wei"), (), frozenset(),
                            frozenset())
    assert answer["outcome"] == "refused" and answer["reason"] == "not_taken"
    reset = ServiceCommission(Commissioning.FAULT_RESET, REQUEST_ID, "li.wei")
    answer, action = desk.answer(reset, (Event(EventKind.FAULT_CLEARED, 7, -1, "overspeed"),),
                                 frozenset({Fault.OVERSPEED, Fault.SHAFT_LIMIT}), frozenset({Fault.SHAFT_LIMIT}))
    assert answer["cleared"] == ["overspeed"] and answer["latched"] == ["shaft_limit"]
    assert action[0] == "fault_reset" and action[3]["cleared"] == ["overspeed"]


def test_the_loop_passes_a_request_to_the_core_answers_the_page_and_records_it(tmp_path: Path) -> None:
    config = from_dict({"drive": {"endpoint": "tcp://127.0.0.1:1"}, "panel": {"port": "/dev/null"},
                        "processes": {"service": True}, "platform": {"overrides_path": str(tmp_path / "o.json")},
                        "runtime": {"socket_dir": str(tmp_path / "run"), "fault_log": "", "latch_file": "",
                                    "learned_table": "", "audit_log": str(tmp_path / "audit.log")}})
    loop = ControlLoop(config, DriveLink(Endpoint.parse("tcp://127.0.0.1:1"), 0.005), PanelBusMaster("/dev/null"),
                       StructuredLog(io.StringIO()))
    service = LoopFeed(Path(config.runtime.socket_dir))
    to_loop = Sender(Path(config.runtime.socket_dir), LOOP_FROM_SERVICE)
    learn_id, reset_id, late_id = (uuid.uuid4().hex for _ in range(3))
    try:
        assert loop.service_feed is not None
        service.ask()
        to_loop.send(loopback.commission_request("learn", learn_id, "li.wei"))
        to_loop.send(loopback.commission_request("reset_faults", reset_id, "li.wei"))
        to_loop.send({"type": "commission", "action": "run_up", "id": late_id, "user": "li.wei"})  # refused
        for _ in range(10):
            loop.cycle()
        service.take()
        # The car is in normal service (and its drive silent): the learning run is refused with the core's reason.
        assert service.answers[learn_id] == CommissionAnswer(learn_id, "learn", False,
                                                                "not_in_emergency_electrical")
        assert service.answers[reset_id].accepted and service.answers[reset_id].latched == ()
        assert service.live is not None and service.live["learning_last"] == "refused:not_in_emergency_electrical"
        assert service.live["latched_faults"] == [] and service.live["brake_test"] == ""
        assert len(service.live) <= loopback.MAX_LIVE_FIELDS
        assert loop.service_feed.inbox.refused["commission with an action that is not one"] == 1
        # A request that waited longer than a second is not acted on (the page has said it was not taken).
        stale = {**loopback.commission_request("brake_test", late_id, "li.wei"),
                 loopback.SENT_KEY: time.monotonic() - 5}
        raw = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        raw.sendto(json.dumps(stale).encode(), str(Path(config.runtime.socket_dir) / LOOP_FROM_SERVICE))
        raw.close()
        for _ in range(10):
            loop.cycle()
        service.take()
        assert late_id not in service.answers
        assert loop.service_feed.inbox.refused["commission waited longer than its maximum age"] == 1
        assert loop.health()["loop_errors"] == {}
    finally:
        to_loop.close()
        service.close()
        loop.service_feed.close()  # type: ignore[union-attr]
        loop.audit.close()  # type: ignore[union-attr]
    records = [json.loads(line) for line in (tmp_path / "audit.log").read_text().splitlines()]
    learning = [r for r in records if r["action"] == "learning_run"]
    assert learning and learning[0]["via"] == "service_tool" and learning[0]["who"] == "li.wei"
    assert learning[0]["details"] == {"outcome": "refused: not_in_emergency_electrical"}
    resets = [r for r in records if r["action"] == "fault_reset" and r["via"] == "service_tool"]
    assert resets and resets[0]["details"]["outcome"] == "ok"
