"""The maintenance actions seen in one cycle of the loop, for the maintenance record (docs/audit.md).

Rules of this module:
- Pure: the cycle's inputs and events, the faults before the step and the key switches before and after, in; the
  actions, each (action, via, who, details), out. The loop writes them (audit_log.py) and sends them on.
- Cheap when nothing happened: a cycle with no reset, no switch turned, no EEO button changed and no event costs a
  few comparisons (the loop runs this every cycle).
- The ends of the car's own maintenance runs, a shaft learning run and a brake test, are recorded from the core's
  events with their outcome (`via` controller: the car did it, whoever pressed the learn button).
- A key turned is recorded as itself (which switch, on or off), and what the car made of it as `mode_changed` (a key
  may be turned while a higher one is on, and change nothing).
- A press of a cabinet EEO button is recorded as a press, with `taken`: whether the cabinet had the car in that
  cycle (emergency electrical operation). With the car-top inspection switch on, or the EEO switch off, the press
  moves nothing, and the record must not read as a run.
"""

from __future__ import annotations

from typing import Any

from carctl.core.faults import Fault
from carctl.core.learning import landings_from_detail
from carctl.core.signals import Event, EventKind, Inputs, Mode
from carctl.protocol.sense import SwitchLevels

Action = tuple[str, str, str, dict[str, Any]]  # (action, via, who, details)

# The outcomes that end a brake test (core/braketest.py); "started" and "refused:<why>" answer a request.
BRAKE_TEST_ENDS = frozenset({"passed", "slipped", "no_answer", "abandoned"})

# Each key switch, and the name of the key that turns it.
SWITCH_KEYS = (("inspection", "car-top inspection switch"), ("eeo", "cabinet EEO switch"),
               ("fire", "fire-service switch"), ("independent", "independent-service key"))


def seen_in_cycle(inputs: Inputs, events: tuple[Event, ...], faults_before: frozenset[Fault],
                  switches_before: SwitchLevels, switches_now: SwitchLevels,
                  eeo_before: tuple[bool, bool], *, mode: Mode) -> list[Action]:
    """``mode``: the car's mode after this cycle's step (whether an EEO button's press was taken)."""
    actions: list[Action] = []
    if inputs.fault_reset:
        cleared = sorted(event.detail for event in events if event.kind is EventKind.FAULT_CLEARED)
        actions.append(("fault_reset", "car_key", "fault reset key",
                        {"faults_before": sorted(fault.value for fault in faults_before), "cleared": cleared}))
    if inputs.alarm_reset:
        actions.append(("alarm_reset", "car_key", "alarm reset key", {}))
    if switches_now is not switches_before and switches_now != switches_before:
        for name, key in SWITCH_KEYS:
            level = getattr(switches_now, name)
            if level != getattr(switches_before, name):
                actions.append(("mode_switch", "car_key", key, {"switch": name, "to": "on" if level else "off"}))
    if (inputs.eeo_up, inputs.eeo_down) != eeo_before:
        for held, was, direction in ((inputs.eeo_up, eeo_before[0], "up"), (inputs.eeo_down, eeo_before[1], "down")):
            if held and not was:
                taken = mode is Mode.EMERGENCY_ELECTRICAL
                actions.append(("eeo_run", "car_key", "cabinet EEO buttons",
                                {"direction": direction, "taken": taken, "mode": mode.value}))
    for event in events:
        if event.kind is EventKind.MODE_CHANGED:
            before, _, after = event.detail.partition("->")
            actions.append(("mode_changed", "controller", "controller", {"from": before, "to": after}))
        elif event.kind is EventKind.LEARNING and not event.detail.startswith("started"):
            # Its start is the mode_changed to learning; its end says what became of the landing table.
            actions.append(("learning_run", "controller", "controller", learning_outcome(event.detail)))
        elif event.kind is EventKind.BRAKE_TEST and event.detail.partition(":")[0] in BRAKE_TEST_ENDS:
            # A start or a refusal answers a request, which only the service tool makes: its record names the
            # account and the core's reason (runtime/commissioning.py). The car's own record is the test's end.
            actions.append(("brake_test", "controller", "controller", brake_test_outcome(event.detail)))
    return actions


def learning_outcome(detail: str) -> dict[str, Any]:
    """A learning run's end (core/learning.py): "done" with the landings learned, or "refused" / "interrupted" with
    the reason."""
    outcome, _, rest = detail.partition(":")
    if outcome == "done":
        landings = landings_from_detail(detail)
        return {"outcome": "done", "landings_m": list(landings) if landings is not None else rest}
    return {"outcome": outcome, "reason": rest}


def brake_test_outcome(detail: str) -> dict[str, Any]:
    """A brake test's end (core/braketest.py): "passed" or "slipped" with how far the car moved, "no_answer" (the drive
    never held its test torque) or "abandoned" (the idle moment ended)."""
    outcome, _, moved = detail.partition(":")
    details: dict[str, Any] = {"outcome": outcome}
    if outcome in ("passed", "slipped") and moved.isdigit():
        details["moved_mm"] = int(moved)
    return details


def settings_changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Each setting that differs, with its value before and after (None where it was or is not set)."""
    return {key: {"from": before.get(key), "to": after.get(key)}
            for key in sorted(set(before) | set(after)) if before.get(key) != after.get(key)}
