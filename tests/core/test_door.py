"""The door machine, walked state by state with no I/O (openpilot's state.py tests are the model)."""

from dataclasses import replace

import pytest

from carctl.core.config import CarConfig, Timing
from carctl.core.door import TRANSITIONS, DoorInputs, DoorPhase, DoorState, Stimulus, door_commands, update
from carctl.core.faults import Fault

TIMING = Timing.from_config(CarConfig())
QUIET = DoorInputs(open_request=False, close_request=False, reopen_request=False, hold_open=False, auto_close=True,
                   open_limit=False, closed_locked=False, light_curtain=False, safety_edge=False, open_button=False)


def seen(**changes: bool) -> DoorInputs:
    return replace(QUIET, **changes)


def test_every_transition_in_the_table_is_reachable() -> None:
    starts = {
        Stimulus.OPEN_REQUEST: (DoorState(DoorPhase.CLOSED), seen(open_request=True), 0),
        Stimulus.OPEN_LIMIT: (DoorState(DoorPhase.OPENING, deadline_tick=100), seen(open_limit=True), 0),
        Stimulus.OPEN_TIMEOUT: (DoorState(DoorPhase.OPENING, deadline_tick=100), QUIET, 100),
        Stimulus.CLOSE_REQUEST: (DoorState(DoorPhase.OPEN, deadline_tick=100), QUIET, 100),
        Stimulus.NUDGE: (DoorState(DoorPhase.OPEN, deadline_tick=100, blocked_since_tick=0),
                         seen(light_curtain=True), TIMING.nudge_after),
        Stimulus.REOPEN: (DoorState(DoorPhase.CLOSING, deadline_tick=100), seen(light_curtain=True), 0),
        Stimulus.CLOSED_LIMIT: (DoorState(DoorPhase.CLOSING, deadline_tick=100), seen(closed_locked=True), 0),
        Stimulus.CLOSE_TIMEOUT: (DoorState(DoorPhase.CLOSING, deadline_tick=100), QUIET, 100),
    }
    for (phase, stimulus), target in TRANSITIONS.items():
        state, inputs, tick = starts[stimulus]
        assert state.phase is phase
        new, fired = update(state, tick, inputs, TIMING)
        assert fired is stimulus, (phase, stimulus)
        assert new.phase is target


@pytest.mark.parametrize("phase", list(DoorPhase))
def test_no_stimulus_leaves_the_state_alone(phase: DoorPhase) -> None:
    state = DoorState(phase, deadline_tick=1000)
    new, fired = update(state, 10, QUIET, TIMING)
    assert fired is None and new is state


@pytest.mark.parametrize("obstruction", ["light_curtain", "safety_edge", "open_button", "reopen_request"])
def test_closing_door_reopens_at_once(obstruction: str) -> None:
    new, fired = update(DoorState(DoorPhase.CLOSING, deadline_tick=500), 1, seen(**{obstruction: True}), TIMING)
    assert fired is Stimulus.REOPEN and new.phase is DoorPhase.OPENING


def test_dwell_then_close() -> None:
    state, _ = update(DoorState(DoorPhase.OPENING, deadline_tick=999), 10, seen(open_limit=True), TIMING)
    assert state.phase is DoorPhase.OPEN and state.deadline_tick == 10 + TIMING.dwell
    same, fired = update(state, 10 + TIMING.dwell - 1, QUIET, TIMING)
    assert fired is None and same is state
    closing, fired = update(state, 10 + TIMING.dwell, QUIET, TIMING)
    assert fired is Stimulus.CLOSE_REQUEST and closing.phase is DoorPhase.CLOSING


def test_close_button_shortens_the_dwell() -> None:
    state = DoorState(DoorPhase.OPEN, deadline_tick=500)
    new, fired = update(state, 20, seen(close_request=True), TIMING)
    assert fired is Stimulus.CLOSE_REQUEST and new.phase is DoorPhase.CLOSING


def test_independent_service_closes_only_on_the_button() -> None:
    state = DoorState(DoorPhase.OPEN, deadline_tick=5)
    same, fired = update(state, 1000, seen(auto_close=False), TIMING)
    assert fired is None and same is state
    _, fired = update(state, 1000, seen(auto_close=False, close_request=True), TIMING)
    assert fired is Stimulus.CLOSE_REQUEST


def test_cleared_curtain_gives_a_short_dwell_not_a_full_one() -> None:
    blocked, _ = update(DoorState(DoorPhase.OPEN, deadline_tick=50), 40, seen(light_curtain=True), TIMING)
    assert blocked.blocked_since_tick == 40
    cleared, _ = update(blocked, 200, QUIET, TIMING)
    assert cleared.blocked_since_tick == -1
    assert cleared.deadline_tick == 200 + TIMING.dwell_after_curtain


def test_obstruction_held_too_long_nudges_and_curtain_is_then_ignored() -> None:
    state = DoorState(DoorPhase.OPEN, deadline_tick=10, blocked_since_tick=0)
    nudging, fired = update(state, TIMING.nudge_after, seen(light_curtain=True), TIMING)
    assert fired is Stimulus.NUDGE and nudging.nudging and nudging.phase is DoorPhase.CLOSING
    still, fired = update(nudging, TIMING.nudge_after + 1, seen(light_curtain=True), TIMING)
    assert fired is None and still.phase is DoorPhase.CLOSING
    reopened, fired = update(nudging, TIMING.nudge_after + 1, seen(safety_edge=True), TIMING)
    assert fired is Stimulus.REOPEN  # the safety edge always reverses


def test_overload_holds_the_doors_open() -> None:
    state = DoorState(DoorPhase.OPEN, deadline_tick=5)
    same, fired = update(state, 100, seen(hold_open=True), TIMING)
    assert fired is None and same is state
    _, fired = update(DoorState(DoorPhase.CLOSING, deadline_tick=900), 100, seen(hold_open=True), TIMING)
    assert fired is Stimulus.REOPEN


def test_close_protection_retries_then_fault_then_retry_later() -> None:
    """A door that will not close: reopen and retry, then a fault, then another try after the retry time."""
    state = DoorState(DoorPhase.CLOSING, deadline_tick=0)
    tick = 0
    for attempt in range(1, TIMING.door_retries):
        state, fired = update(state, tick, QUIET, TIMING)
        assert fired is Stimulus.CLOSE_TIMEOUT and state.phase is DoorPhase.OPENING
        assert state.close_failures == attempt and state.fault is None
        state, fired = update(state, tick + 1, seen(open_limit=True), TIMING)  # reopened fully
        assert state.close_failures == attempt  # reaching the other limit does not forgive the failure
        state, fired = update(state, state.deadline_tick, QUIET, TIMING)  # dwell over: close again
        assert fired is Stimulus.CLOSE_REQUEST
        tick = state.deadline_tick
    state, fired = update(state, tick, QUIET, TIMING)
    assert state.fault is Fault.DOOR_CLOSE_FAILED and state.phase is DoorPhase.OPENING
    waiting, fired = update(state, tick + 1, seen(open_limit=True), TIMING)
    assert fired is None and waiting is state  # left alone until the retry time
    reopened, _ = update(state, state.retry_tick, seen(open_limit=True), TIMING)
    assert reopened.fault is Fault.DOOR_CLOSE_FAILED  # open is not the failing direction
    closing, _ = update(reopened, reopened.deadline_tick, QUIET, TIMING)
    cleared, fired = update(closing, reopened.deadline_tick + 1, seen(closed_locked=True), TIMING)
    assert fired is Stimulus.CLOSED_LIMIT and cleared.fault is None


def test_open_protection_counts_separately() -> None:
    state = DoorState(DoorPhase.OPENING, deadline_tick=0)
    state, fired = update(state, 0, QUIET, TIMING)
    assert fired is Stimulus.OPEN_TIMEOUT and state.open_failures == 1 and state.phase is DoorPhase.CLOSING


def test_commands_follow_the_phase() -> None:
    assert door_commands(DoorState(DoorPhase.OPENING)) == (True, False)
    assert door_commands(DoorState(DoorPhase.OPEN)) == (True, False)
    assert door_commands(DoorState(DoorPhase.CLOSING)) == (False, True)
    assert door_commands(DoorState(DoorPhase.CLOSED)) == (False, True)
