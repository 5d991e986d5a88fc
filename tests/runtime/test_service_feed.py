"""The loop's feed to the service tool: a process that asks gets the live state, health and events at the promised
rate on its own socket; a lease not renewed ends; garbage and a dead, hung or flooding watcher cost the loop nothing
but counted drops; what the service takes from its socket is checked like any side channel."""

from __future__ import annotations

import io
import os
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from carctl.adapters.drive import DriveLink, Endpoint
from carctl.adapters.panelbus import PanelBusMaster
from carctl.core.signals import Commands, Event, EventKind, Inputs
from carctl.core.state import ControllerState
from carctl.protocol import loopback
from carctl.protocol.loopback import EventsReport, HealthReport, LiveReport, Refused, parse_service_message
from carctl.runtime.config import from_dict
from carctl.runtime.loop import ControlLoop, StructuredLog
from carctl.runtime.service_feed import LEASE_S, MAX_WATCHERS, ServiceFeed, _Watcher, watcher_socket
from carctl.runtime.sidechannel import LOOP_FROM_SERVICE, Sender, prepare_socket_dir
from carctl.service.feed import LoopFeed

PERIOD_S = 0.02


class Clock:
    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


def cycle(feed: ServiceFeed, count: int, events: tuple[Event, ...] = ()) -> None:
    for _ in range(count):
        feed.after_cycle(ControllerState(), Inputs(tick=1, position_m=2.9), Commands(car_call_lamps=frozenset({3})),
                         events, 0.4, lambda: {"tick": 1, "drive_errors": {"timeout": 2}, "alarm_modem": None})


def test_a_watcher_gets_the_live_state_ten_times_a_second_its_health_and_the_events(tmp_path: Path) -> None:
    directory = prepare_socket_dir(tmp_path / "run")
    clock = Clock()
    loop_side = ServiceFeed(directory, PERIOD_S, clock)
    service = LoopFeed(directory, clock=clock)
    try:
        cycle(loop_side, 5)
        service.take()
        assert service.live is None, "nothing is sent before anyone asks"
        service.ask()
        for number in range(50):  # a second; the service reads as it arrives (its socket's queue is short)
            cycle(loop_side, 1, (Event(EventKind.FAULT_RAISED, 7, -1, "overload:51:level2"),) if number == 25 else ())
            service.take()
        assert service.live_updates == 10
        assert service.live is not None and service.live["position_m"] == 2.9
        assert service.live["car_call_lamps"] == [3]
        assert service.health == {"tick": 1, "drive_errors": {"timeout": 2}, "alarm_modem": None}
        assert list(service.events)[0] == {"tick": 7, "event": "fault_raised", "landing": -1,
                                           "detail": "overload:51:level2"}
        assert not service.stale()
        assert loop_side.health()["watchers"] == 1
    finally:
        service.close()
        loop_side.close()


def test_a_lease_not_renewed_ends_and_a_dead_watcher_only_costs_counted_drops(tmp_path: Path) -> None:
    directory = prepare_socket_dir(tmp_path / "run")
    clock = Clock()
    loop_side = ServiceFeed(directory, PERIOD_S, clock)
    service = LoopFeed(directory, clock=clock)
    service.ask()
    cycle(loop_side, 5)
    assert loop_side.health()["watchers"] == 1
    service.close()  # dead: its socket is gone
    cycle(loop_side, 20)
    assert loop_side.dropped() >= 2
    clock.now_s += LEASE_S + 0.1
    cycle(loop_side, 5)
    assert loop_side.health()["watchers"] == 0
    loop_side.close()


def test_a_hung_watcher_fills_its_queue_and_the_loop_goes_on(tmp_path: Path) -> None:
    directory = prepare_socket_dir(tmp_path / "run")
    clock = Clock()
    loop_side = ServiceFeed(directory, PERIOD_S, clock)
    service = LoopFeed(directory, clock=clock)
    try:
        service.ask()
        started = time.perf_counter()
        cycle(loop_side, 20_000)  # never read: its socket's queue is full after a few datagrams
        per_cycle_us = (time.perf_counter() - started) / 20_000 * 1e6
        assert loop_side.dropped() > 0
        assert per_cycle_us < 200, f"{per_cycle_us:.0f} µs a cycle with a hung watcher"
    finally:
        service.close()
        loop_side.close()


def test_watchers_are_bounded_and_garbage_is_refused_and_counted(tmp_path: Path) -> None:
    directory = prepare_socket_dir(tmp_path / "run")
    clock = Clock()
    loop_side = ServiceFeed(directory, PERIOD_S, clock)
    try:
        for datagram in (b"", b"\xff\xfe", b"[" * 5000, b'{"type":"mode","mode":"normal"}', b'{"type":"watch",'
                         b'"socket":"../x"}', b"9" * 300):
            raw = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            raw.sendto(datagram, str(directory / LOOP_FROM_SERVICE))
            raw.close()
        loop_side.take_requests()
        assert loop_side.health()["refused"] == 4, "a few requests a cycle at most: the rest wait"
        loop_side.take_requests()
        assert loop_side.health() == {"watchers": 0, "dropped": 0, "refused": 6}
        for pid in range(1, MAX_WATCHERS + 1):  # as if other processes were watching
            loop_side.watchers[pid] = _Watcher(Sender(directory, watcher_socket(pid)), clock.now_s + LEASE_S)
        asking = Sender(directory, LOOP_FROM_SERVICE)
        asking.send(loopback.watch_request())
        asking.close()
        loop_side.take_requests()
        assert os.getpid() not in loop_side.watchers
        assert loop_side.inbox.refused["too many watchers"] == 1
    finally:
        loop_side.close()


@pytest.mark.parametrize("value", [
    None, [], "live", {"type": "live"}, {"type": "live", "live": {"x": {"nested": 1}}},
    {"type": "live", "live": {f"k{n}": n for n in range(100)}}, {"type": "health", "health": {"a": {"b": {"c": {"d": 1}}}}},
    {"type": "events", "events": [{"tick": 1}] * 100}, {"type": "events", "events": [[1]]},
    {"type": "live", "live": {"x": float("nan")}}, {"type": "state", "state": {}},
])
def test_the_service_refuses_what_is_not_the_loops_message(value: Any) -> None:
    assert isinstance(parse_service_message(value), Refused)


def test_the_service_takes_the_loops_messages() -> None:
    assert isinstance(parse_service_message({"type": "live", "live": {"faults": ["overload"], "x": 1.5}}), LiveReport)
    assert isinstance(parse_service_message({"type": "health", "health": {"alarm_modem": {"refused": {"a": 1}}}}),
                      HealthReport)
    assert isinstance(parse_service_message({"type": "events", "events": [{"tick": 1, "event": "x"}]}), EventsReport)


def test_the_loop_feeds_a_watcher_with_processes_service_on(tmp_path: Path) -> None:
    config = from_dict({"drive": {"endpoint": "tcp://127.0.0.1:1"}, "panel": {"port": "/dev/null"},
                        "processes": {"service": True}, "platform": {"overrides_path": str(tmp_path / "o.json")},
                        "runtime": {"socket_dir": str(tmp_path / "run"), "fault_log": "", "latch_file": "",
                                    "audit_log": "", "learned_table": ""}})
    loop = ControlLoop(config, DriveLink(Endpoint.parse("tcp://127.0.0.1:1"), 0.005), PanelBusMaster("/dev/null"),
                       StructuredLog(io.StringIO()))
    service = LoopFeed(Path(config.runtime.socket_dir))
    try:
        assert loop.service_feed is not None
        service.ask()
        for _ in range(25):
            loop.cycle()
        service.take()
        assert service.live is not None and service.live["mode"] == loop.state.mode.value
        assert service.health is not None and service.health["service_feed"]["watchers"] == 1
        assert loop.health()["loop_errors"] == {}
    finally:
        service.close()
        loop.service_feed.close()  # type: ignore[union-attr]
