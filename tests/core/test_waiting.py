"""What the car waits for (carctl/core/waiting.py): the first reason that holds, in the documented words."""

from dataclasses import replace

from carctl.core.config import CarConfig, ControllerConfig
from carctl.core.faults import Fault
from carctl.core.signals import Mode
from carctl.core.state import ControllerState
from carctl.core.supervisor import SupervisorLimits
from carctl.core.waiting import waiting_for

LIMITS = SupervisorLimits.from_config(ControllerConfig())  # final limits at -0.05 m and 14.55 m
SERVING = ControllerState()


def test_each_reason_in_its_order() -> None:
    beyond = replace(SERVING, faults=frozenset({Fault.SHAFT_LIMIT, Fault.TERMINAL_SPEED}), settling=True)
    assert waiting_for(beyond, 14.6, LIMITS) == "emergency_electrical_operation"
    assert waiting_for(beyond, 14.5, LIMITS) == "maintenance_reset"  # back inside: the reset is next
    assert waiting_for(beyond, None, LIMITS) == "maintenance_reset"  # no position yet: not claimed
    assert waiting_for(beyond, 14.6, None) == "maintenance_reset"
    # From the cabinet: the buttons, once only the bridged final limit holds the car; the reset first otherwise.
    assert waiting_for(replace(beyond, mode=Mode.EMERGENCY_ELECTRICAL), 14.6, LIMITS) == "maintenance_reset"
    only_limit = replace(beyond, mode=Mode.EMERGENCY_ELECTRICAL, faults=frozenset({Fault.SHAFT_LIMIT}))
    assert waiting_for(only_limit, 14.6, LIMITS) == "hold_to_run"
    assert waiting_for(replace(SERVING, mode=Mode.INSPECTION), 3.0, LIMITS) == "hold_to_run"
    assert waiting_for(replace(SERVING, faults=frozenset({Fault.CAR_PANEL_STALE}), settling=True), 3.0,
                       LIMITS) == "fault_to_clear"
    assert waiting_for(replace(SERVING, faults=frozenset({Fault.LANDING_STALE})), 3.0, LIMITS) == ""  # display only
    assert waiting_for(replace(SERVING, settling=True), 3.0, LIMITS) == "standstill"
    untrusted = replace(SERVING, correction="unreferenced", settling=True)
    assert waiting_for(untrusted, 3.0, LIMITS) == "correction_run"
    # From the cabinet with no slowdown switches the buttons cannot move it; with them they can.
    assert waiting_for(replace(untrusted, mode=Mode.EMERGENCY_ELECTRICAL), 3.0, LIMITS) == "correction_run"
    switched = SupervisorLimits.from_config(ControllerConfig(car=CarConfig(terminal_switches_m=(0.5, 0.25))))
    assert waiting_for(replace(untrusted, mode=Mode.EMERGENCY_ELECTRICAL), 3.0, switched) == "hold_to_run"
    assert waiting_for(replace(untrusted, mode=Mode.INSPECTION), 3.0, LIMITS) == "hold_to_run"  # down to the mark
    assert waiting_for(SERVING, 3.0, LIMITS) == ""
    for mode in (Mode.FIRE, Mode.OUT_OF_SERVICE, Mode.RESCUE):  # modes that take no calls say so
        assert waiting_for(replace(SERVING, mode=mode), 3.0, LIMITS) == mode.value
    assert waiting_for(replace(SERVING, mode=Mode.INDEPENDENT), 3.0, LIMITS) == ""
