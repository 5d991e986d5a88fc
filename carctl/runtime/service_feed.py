"""The control loop's side of the service tool (docs/service-tool.md): its live state, health and events out, over
the side channels (sidechannel.py), to whichever service processes watch. Nothing here waits.

Rules of this module:
- A service process asks to watch with a `watch` datagram on `loop-service.sock`, renewed every second; the loop
  then sends to `service-<pid>.sock`, the pid being the one the kernel attached to the request, so a process can
  only have the state sent to its own socket. A lease not renewed for LEASE_S ends. At most MAX_WATCHERS at once:
  the process table's service tool and one started by hand (`carctl service --listen`), with room to spare.
- Any process of the firmware's user may watch (the socket directory keeps everyone else out): what it gets is what
  the page shows, and watching changes nothing in the car. One write that comes this way is `reload`: a
  maintenance account changed the settings file (runtime/overrides.py, validated there and again by the loop), and
  the loop applies it between two cycles, as the platform's (several in one take are one reload); the other is
  `commission` (below). The service tool's logins, logouts and changes come this way for the maintenance record
  (at most AUDIT_BACKLOG waiting for the loop; more are counted and dropped), recorded as the service tool's, with
  the account it names.
- The cost is bounded and paid only while someone watches: the live state every LIVE_EVERY_S (10 a second, the
  page needs 5), the health record every HEALTH_EVERY_S, a cycle's events when there are any. A watcher that is
  dead, hung or slow has a full socket queue: its datagrams are dropped and counted, and the loop goes on.
- The run recorder's questions (`runs`, `run`: run_recorder.py, protocol/run_records.py) are answered to a process
  that watches, at most one of each kind per take of requests (a few datagrams of at most 9 KiB, packed when the run
  ended); more in the same take are refused and counted.
- A commissioning request (`commission`: a learning run, a brake test, a reset of the latched faults) is queued
  (at most COMMISSION_BACKLOG, none older than COMMISSION_MAX_AGE_S) and passed to the core, one a cycle, as a
  one-cycle input; the core decides by its own rules, and its answer goes back to the watchers with the request's
  id (commissioning.py). It is the only way the service tool reaches the car's motion, and the core validates it.
- What arrives (`watch`, `audit`, `reload`, `runs`, `run`, `commission`) is checked by protocol/loopback.py; anything
  else is refused and counted by reason.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from carctl.core.controller import ControllerState
from carctl.core.faults import Fault
from carctl.core.signals import Commands, Event, Inputs
from carctl.protocol.loopback import MAX_EVENTS_PER_MESSAGE, Refused, ServiceAudit, ServiceCommission, \
    ServiceReload, age_problem, parse_service_request
from carctl.protocol.run_records import RunRequest, RunsRequest
from carctl.runtime.audit_actions import Action
from carctl.runtime.commissioning import Commissions
from carctl.runtime.run_recorder import RunRecorder
from carctl.runtime.sidechannel import LOOP_FROM_SERVICE, Inbox, Sender, same_user

LEASE_S = 3.0
MAX_WATCHERS = 4
LIVE_EVERY_S = 0.1
HEALTH_EVERY_S = 1.0
REQUESTS_PER_CYCLE = 4
REQUEST_BYTES = 512  # an audit record: four short texts
AUDIT_BACKLOG = 16
# Commissioning requests waiting for the next cycles (one is passed to the core per cycle), and how long one may have
# waited in the socket: the service tool waits COMMISSION_ANSWER_S for the answer and then says the car did not take
# it, so a request must never be acted on after that.
COMMISSION_BACKLOG = 4
COMMISSION_MAX_AGE_S = 1.0


def watcher_socket(pid: int) -> str:
    """The socket a service process of this pid binds, and the only one the loop sends it to."""
    return f"service-{pid}.sock"


@dataclass(slots=True)
class _Watcher:
    sender: Sender
    lease_until_s: float


def live_state(state: ControllerState, inputs: Inputs, commands: Commands, lag_p99_ms: float) -> dict[str, Any]:
    """What the live page draws: the car in the shaft, its doors, calls, lamps, load, seat, mode and faults."""
    return {
        "tick": inputs.tick,
        "position_m": round(inputs.position_m, 3),
        "speed_m_s": round(inputs.speed_m_s, 3),
        "landing": state.landing,
        "direction": int(state.direction),
        "door": state.door.phase.value,
        "door_locked": inputs.door_locked,
        "mode": state.mode.value,
        "phase": state.phase.value,
        "load_kg": round(inputs.load_kg, 1),
        "seat_occupied": inputs.seat_occupied,
        "car_calls": sorted(state.calls.car),
        "hall_up": sorted(state.calls.up),
        "hall_down": sorted(state.calls.down),
        "car_call_lamps": sorted(commands.car_call_lamps),
        "hall_up_lamps": sorted(commands.hall_up_lamps),
        "hall_down_lamps": sorted(commands.hall_down_lamps),
        "position_landing": commands.position_landing,
        "overload_lamp": commands.overload_lamp,
        "alarm": state.alarm.value,
        "faults": sorted(fault.value for fault in state.faults),
        "lag_p99_ms": round(lag_p99_ms, 3),
    }


def event_record(event: Event) -> dict[str, Any]:
    return {"tick": event.tick, "event": event.kind.value, "landing": event.landing, "detail": event.detail[:200]}


class ServiceFeed:
    def __init__(self, socket_dir: Path, period_s: float, clock: Callable[[], float] = time.monotonic,
                 recorder: RunRecorder | None = None) -> None:
        self.socket_dir = socket_dir
        self.recorder = recorder  # the runs the service tool may ask for (None: it gets no answer)
        self.clock = clock
        self.inbox = Inbox(socket_dir, LOOP_FROM_SERVICE, REQUESTS_PER_CYCLE, REQUEST_BYTES, 8, same_user)
        self.watchers: dict[int, _Watcher] = {}
        self.refused: Counter[str] = Counter()
        self.live_every_cycles = max(1, round(LIVE_EVERY_S / period_s))
        self.cycles = 0
        self.next_health_s = 0.0
        self.audit: list[ServiceAudit] = []  # for the maintenance record, until the loop takes them
        self.reload_wanted = False  # the settings file changed: the loop reloads it after this cycle
        self.commission_requests: list[ServiceCommission] = []  # for the core, one a cycle (take_commission)
        self.commissions = Commissions()

    def take_audit(self) -> list[ServiceAudit]:
        taken, self.audit = self.audit, []
        return taken

    def take_reload(self) -> bool:
        wanted, self.reload_wanted = self.reload_wanted, False
        return wanted

    def take_commission(self) -> ServiceCommission | None:
        """The next commissioning request, for this cycle's inputs (None: none)."""
        return self.commission_requests.pop(0) if self.commission_requests else None

    def commissioned(self, request: ServiceCommission | None, state: ControllerState, events: tuple[Event, ...],
                     faults_before: frozenset[Fault]) -> list[Action]:
        """After the cycle's step: the answer to the cycle's request sent to every watcher (the request's id tells
        the one that asked), and the maintenance record's actions (the request, a run or test it started ending)."""
        actions: list[Action] = []
        if request is not None:
            answer, action = self.commissions.answer(request, events, faults_before, state.faults)
            self._send(answer)
            actions.append(action)
        if events:
            self.commissions.seen(events)
        return actions

    def take_requests(self) -> None:
        now = self.clock()
        answered: set[type] = set()
        for pid, value in self.inbox.take_from():
            message = parse_service_request(value)
            if isinstance(message, Refused):
                self.inbox.refuse(message.reason)
                continue
            if isinstance(message, (RunsRequest, RunRequest)):
                self._answer_runs(pid, message, answered)
                continue
            if isinstance(message, ServiceAudit):
                if len(self.audit) < AUDIT_BACKLOG:
                    self.audit.append(message)
                else:
                    self.inbox.refuse("audit backlog full")
                continue
            if isinstance(message, ServiceReload):
                self.reload_wanted = True
                continue
            if isinstance(message, ServiceCommission):
                stale = age_problem(value, time.monotonic(), COMMISSION_MAX_AGE_S)
                if stale:
                    self.inbox.refuse(f"commission {stale}")
                elif len(self.commission_requests) >= COMMISSION_BACKLOG:
                    self.inbox.refuse("commission backlog full")
                else:
                    self.commission_requests.append(message)
                continue
            watcher = self.watchers.get(pid)
            if watcher is not None:
                watcher.lease_until_s = now + LEASE_S
            elif len(self.watchers) >= MAX_WATCHERS:
                self.inbox.refuse("too many watchers")
            else:
                self.watchers[pid] = _Watcher(Sender(self.socket_dir, watcher_socket(pid)), now + LEASE_S)
                self.next_health_s = 0.0  # a new watcher gets the health record at once
        for pid, watcher in list(self.watchers.items()):
            if now >= watcher.lease_until_s:
                watcher.sender.close()
                del self.watchers[pid]

    def _answer_runs(self, pid: int, request: RunsRequest | RunRequest, answered: set[type]) -> None:
        watcher = self.watchers.get(pid)
        if watcher is None or self.recorder is None:
            self.inbox.refuse("run request from a process that does not watch")
            return
        if type(request) in answered:
            self.inbox.refuse("run requests too frequent")
            return
        answered.add(type(request))
        if isinstance(request, RunsRequest):
            for message in self.recorder.runs_answers(request.ask):
                watcher.sender.send(message)
        else:
            watcher.sender.send(self.recorder.run_answer(request.ask, request.run_id))

    def after_cycle(self, state: ControllerState, inputs: Inputs, commands: Commands, events: tuple[Event, ...],
                    lag_p99_ms: float, health: Callable[[], dict[str, Any]]) -> None:
        self.cycles += 1
        if self.cycles % self.live_every_cycles == 0:
            self.take_requests()
        if not self.watchers:
            return
        if events:
            self._send({"type": "events", "events": [event_record(event)
                                                     for event in events[:MAX_EVENTS_PER_MESSAGE]]})
        if self.cycles % self.live_every_cycles == 0:
            self._send({"type": "live", "live": {**live_state(state, inputs, commands, lag_p99_ms),
                                                 **self.commissions.live(state)}})
            now = self.clock()
            if now >= self.next_health_s:
                self.next_health_s = now + HEALTH_EVERY_S
                self._send({"type": "health", "health": health()})

    def _send(self, message: dict[str, Any]) -> None:
        for watcher in self.watchers.values():
            watcher.sender.send(message)

    def dropped(self) -> int:
        return sum(watcher.sender.dropped for watcher in self.watchers.values())

    def health(self) -> dict[str, Any]:
        health = {"watchers": len(self.watchers), "dropped": self.dropped(), "refused": self.inbox.refused_total()}
        if self.recorder is not None:
            health["runs"] = self.recorder.health()
        return health

    def close(self) -> None:
        for watcher in self.watchers.values():
            watcher.sender.close()
        self.watchers.clear()
        self.inbox.close()
