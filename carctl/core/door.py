"""The door state machine, as a transition table.

Rules of this module:
- Everything that moves the door between phases is in TRANSITIONS; update() only decides which stimulus applies
  this tick (in a fixed priority order) and looks the move up.
- Timers are deadlines in ticks stored in the state; the state changes only when a stimulus fires, so a door that is
  simply waiting leaves the state untouched.
- A reopen beats a close: the light curtain, the safety edge and the door-open button reopen a closing door at once
  (the curtain is ignored while nudging, the edge never is).
- Protection: a door that does not reach its limit within the protection time is retried; after ``door_retries``
  failures it reports a fault (DoorState.fault, a member of Fault that the supervisor raises) and waits
  ``door_fault_retry_s`` before trying again. The fault clears at the limit.
"""

from __future__ import annotations

from dataclasses import dataclass

from carctl.core.faults import Fault
from carctl.core.records import IdentityEnum, replace
from carctl.core.timing import Timing


class DoorPhase(IdentityEnum):
    CLOSED = "closed"
    OPENING = "opening"
    OPEN = "open"
    CLOSING = "closing"


class Stimulus(IdentityEnum):
    OPEN_REQUEST = "open_request"
    OPEN_LIMIT = "open_limit"
    OPEN_TIMEOUT = "open_timeout"
    CLOSE_REQUEST = "close_request"  # dwell over, or the door-close button
    NUDGE = "nudge"  # obstructed too long: close slowly with the buzzer on
    REOPEN = "reopen"  # light curtain, safety edge, door-open button, or a call for this landing
    CLOSED_LIMIT = "closed_limit"  # closed and locked
    CLOSE_TIMEOUT = "close_timeout"


TRANSITIONS: dict[tuple[DoorPhase, Stimulus], DoorPhase] = {
    (DoorPhase.CLOSED, Stimulus.OPEN_REQUEST): DoorPhase.OPENING,
    (DoorPhase.OPENING, Stimulus.OPEN_LIMIT): DoorPhase.OPEN,
    (DoorPhase.OPENING, Stimulus.OPEN_TIMEOUT): DoorPhase.CLOSING,
    (DoorPhase.OPEN, Stimulus.CLOSE_REQUEST): DoorPhase.CLOSING,
    (DoorPhase.OPEN, Stimulus.NUDGE): DoorPhase.CLOSING,
    (DoorPhase.CLOSING, Stimulus.REOPEN): DoorPhase.OPENING,
    (DoorPhase.CLOSING, Stimulus.CLOSED_LIMIT): DoorPhase.CLOSED,
    (DoorPhase.CLOSING, Stimulus.CLOSE_TIMEOUT): DoorPhase.OPENING,
}


@dataclass(frozen=True, slots=True)
class DoorState:
    phase: DoorPhase = DoorPhase.CLOSED
    # OPENING/CLOSING: protection deadline; OPEN: end of dwell.
    deadline_tick: int = 0
    # Protection timeouts so far, counted per direction and reset when that direction reaches its limit.
    open_failures: int = 0
    close_failures: int = 0
    # OPEN: the tick the current obstruction began, or -1.
    blocked_since_tick: int = -1
    nudging: bool = False
    # The stop was flagged by the accessible-call button: longer dwell, slower close.
    accessible: bool = False
    # Set when the retries ran out (DOOR_OPEN_FAILED or DOOR_CLOSE_FAILED); the door is left alone until retry_tick.
    fault: Fault | None = None
    retry_tick: int = 0


@dataclass(frozen=True, slots=True)
class DoorInputs:
    """What the door machine sees on one tick, already reduced by the controller."""

    open_request: bool  # a call is served here, the door-open button, or an arrival
    close_request: bool  # the door-close button (shortens the dwell)
    reopen_request: bool  # a call for this landing arrived while the doors close
    hold_open: bool  # overload, parked open (fire return), relevelling: stay open, reopen if closing
    auto_close: bool  # False: the doors close only on the door-close button (independent service)
    open_limit: bool
    closed_locked: bool
    light_curtain: bool
    safety_edge: bool
    open_button: bool


def door_commands(door: DoorState) -> tuple[bool, bool]:
    """(open, close) for the door operator: it drives towards the phase's end position and holds it there."""
    phase = door.phase
    if door.fault is not None and phase is not DoorPhase.CLOSING and phase is not DoorPhase.OPENING:
        return False, False
    return phase is DoorPhase.OPENING or phase is DoorPhase.OPEN, phase is DoorPhase.CLOSING or (
        phase is DoorPhase.CLOSED)


def _stimulus(door: DoorState, tick: int, seen: DoorInputs) -> Stimulus | None:
    phase = door.phase
    if phase is DoorPhase.CLOSED:
        return Stimulus.OPEN_REQUEST if seen.open_request or seen.open_button else None
    if phase is DoorPhase.OPENING:
        if seen.open_limit:
            return Stimulus.OPEN_LIMIT
        return Stimulus.OPEN_TIMEOUT if tick >= door.deadline_tick else None
    if phase is DoorPhase.OPEN:
        if seen.hold_open:
            return None
        obstructed = seen.light_curtain or seen.safety_edge or seen.open_button
        if obstructed:
            return None
        if door.blocked_since_tick >= 0:
            return None  # the obstruction has just cleared; update() restarts the short dwell
        if seen.close_request or (seen.auto_close and tick >= door.deadline_tick):
            return Stimulus.CLOSE_REQUEST
        return None
    # CLOSING
    if seen.closed_locked:
        return Stimulus.CLOSED_LIMIT
    if seen.safety_edge or seen.open_button or seen.reopen_request or seen.hold_open or (
            seen.light_curtain and not door.nudging):
        return Stimulus.REOPEN
    return Stimulus.CLOSE_TIMEOUT if tick >= door.deadline_tick else None


def update(door: DoorState, tick: int, seen: DoorInputs, timing: Timing) -> tuple[DoorState, Stimulus | None]:
    """One tick of the door machine: the new state and the stimulus that moved it (None if none did)."""
    if door.fault is not None and tick < door.retry_tick:
        return door, None
    if door.phase is DoorPhase.OPEN:
        obstructed = seen.light_curtain or seen.safety_edge or seen.open_button
        if obstructed and not seen.hold_open:
            if door.blocked_since_tick < 0:
                return replace(door, blocked_since_tick=tick), None
            if tick - door.blocked_since_tick >= timing.nudge_after and not seen.safety_edge:
                return _enter(door, Stimulus.NUDGE, tick, timing), Stimulus.NUDGE
            return door, None
        if door.blocked_since_tick >= 0 and not obstructed:
            restart = tick + timing.dwell_after_curtain
            return replace(door, blocked_since_tick=-1, deadline_tick=max(door.deadline_tick, restart)), None
        if seen.reopen_request:
            dwell = timing.accessible_dwell if door.accessible else timing.dwell
            if door.deadline_tick < tick + dwell:
                return replace(door, deadline_tick=tick + dwell), None
    stimulus = _stimulus(door, tick, seen)
    if stimulus is None:
        return door, None
    return _enter(door, stimulus, tick, timing), stimulus


def _enter(door: DoorState, stimulus: Stimulus, tick: int, timing: Timing) -> DoorState:
    phase = TRANSITIONS[(door.phase, stimulus)]
    if stimulus is Stimulus.OPEN_LIMIT:
        dwell = timing.accessible_dwell if door.accessible else timing.dwell
        fault = None if door.fault is Fault.DOOR_OPEN_FAILED else door.fault
        return DoorState(phase=DoorPhase.OPEN, deadline_tick=tick + dwell, open_failures=0,
                         close_failures=door.close_failures, accessible=door.accessible, fault=fault)
    if stimulus is Stimulus.CLOSED_LIMIT:
        fault = None if door.fault is Fault.DOOR_CLOSE_FAILED else door.fault
        return DoorState(phase=DoorPhase.CLOSED, open_failures=door.open_failures, close_failures=0, fault=fault)
    open_failures, close_failures, fault, retry_tick = door.open_failures, door.close_failures, door.fault, 0
    if stimulus is Stimulus.OPEN_TIMEOUT:
        open_failures += 1
    elif stimulus is Stimulus.CLOSE_TIMEOUT:
        close_failures += 1
    protection = timing.door_open_protection if phase is DoorPhase.OPENING else timing.door_close_protection
    deadline = tick + protection
    if max(open_failures, close_failures) >= timing.door_retries:
        # Out of retries: raise the fault, leave the door alone for a while, then try again from scratch.
        fault = Fault.DOOR_OPEN_FAILED if open_failures >= timing.door_retries else Fault.DOOR_CLOSE_FAILED
        retry_tick = tick + timing.door_fault_retry
        deadline = retry_tick + protection
        open_failures = close_failures = 0
    return DoorState(phase=phase, deadline_tick=deadline, open_failures=open_failures, close_failures=close_failures,
                     nudging=stimulus is Stimulus.NUDGE, accessible=door.accessible, fault=fault,
                     retry_tick=retry_tick)
