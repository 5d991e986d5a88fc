"""The loop's side of commissioning from the service tool (docs/service-tool.md, "Commissioning"): a request in,
what the core made of it out, to the page and to the maintenance record.

Rules of this module:
- Pure: no socket, no clock. The service feed (service_feed.py) takes the requests from the side channel, already
  parsed (protocol/loopback.py parse_commission); the loop passes one a cycle to the core as Inputs.commission,
  then hands the cycle's events here.
- The core decides, and says so in its events: LEARNING or BRAKE_TEST "started" or "refused:<why>" in the cycle of
  the request; a reset is what update_faults() cleared (FAULT_CLEARED), the latched faults left being those whose
  condition is still there. A request the core gave no answer to (it raised that cycle) is refused as "not_taken".
- Every request is recorded with the account that asked, as the existing actions: `learning_run`, `brake_test`,
  `fault_reset` via `service_tool` (docs/audit.md), accepted or refused with the reason. How a run or test ends
  is the loop's `controller` record, made for every run and test whoever started it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from carctl.core.faults import Fault
from carctl.core.faults import latched as latched_among
from carctl.core.learning import vanes_seen
from carctl.core.signals import Commissioning, Event, EventKind
from carctl.core.state import ControllerState
from carctl.protocol.loopback import ServiceCommission, commission_answer
from carctl.runtime.audit_actions import Action

# The core's answer to each request, and the maintenance record's action for it.
ANSWERED_BY = {Commissioning.LEARNING_RUN: EventKind.LEARNING, Commissioning.BRAKE_TEST: EventKind.BRAKE_TEST}
RECORDED_AS = {Commissioning.LEARNING_RUN: "learning_run", Commissioning.BRAKE_TEST: "brake_test",
               Commissioning.FAULT_RESET: "fault_reset"}
MAX_DETAIL_CHARS = 200  # a learning run's "done:" lists every landing: cut to what a live field may hold


@dataclass(slots=True)
class Commissions:
    """The last outcome of the learning run and of the brake test, for the page."""

    last: dict[EventKind, str] = field(default_factory=dict)

    def answer(self, request: ServiceCommission, events: tuple[Event, ...], faults_before: frozenset[Fault],
               faults_after: frozenset[Fault]) -> tuple[dict[str, Any], Action]:
        """The answer for the service tool and the record of a request the core has just been given."""
        action, user = request.action, request.user
        if action is Commissioning.FAULT_RESET:
            cleared = tuple(sorted(event.detail for event in events if event.kind is EventKind.FAULT_CLEARED))
            still = tuple(sorted(fault.value for fault in latched_among(faults_after)))
            details: dict[str, Any] = {"faults_before": sorted(fault.value for fault in faults_before),
                                       "cleared": list(cleared), "outcome": "ok"}
            return (commission_answer(request.request_id, action.value, True, "", cleared, still),
                    ("fault_reset", "service_tool", user, details))
        kind = ANSWERED_BY[action]
        detail = next((event.detail for event in events if event.kind is kind
                       and (event.detail == "started" or event.detail.startswith("refused:"))), "refused:not_taken")
        accepted = detail == "started"
        reason = "" if accepted else detail.partition(":")[2]
        outcome = "started" if accepted else f"refused: {reason}"
        return (commission_answer(request.request_id, action.value, accepted, reason),
                (RECORDED_AS[action], "service_tool", user, {"outcome": outcome}))

    def seen(self, events: tuple[Event, ...]) -> None:
        """Every cycle's events: the last outcome of the learning run and the brake test, whoever started them, for
        the page. Their end is recorded by the loop for every run and test (the `controller` records)."""
        for event in events:
            if event.kind is EventKind.LEARNING or event.kind is EventKind.BRAKE_TEST:
                self.last[event.kind] = event.detail[:MAX_DETAIL_CHARS]

    def live(self, state: ControllerState) -> dict[str, Any]:
        """The live state's commissioning fields (flat): the learning run's vanes found so far and the last outcome,
        the brake test's stage ("", "asked": waiting for the drive's torque, "holding") and last outcome, and the
        latched faults."""
        run = state.learning
        if state.brake_test_since_tick < 0:
            stage = ""
        else:
            stage = "holding" if state.brake_test_held_since_tick >= 0 else "asked"
        return {
            "learning_found": vanes_seen(run) if run is not None else 0,
            "learning_last": self.last.get(EventKind.LEARNING, ""),
            "brake_test": stage,
            "brake_test_last": self.last.get(EventKind.BRAKE_TEST, ""),
            "latched_faults": sorted(fault.value for fault in latched_among(state.faults)),
        }


__all__ = ["Commissions"]
