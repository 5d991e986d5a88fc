"""The car's phases, as a transition table (door.TRANSITIONS is the model), and what a phase handler returns.

Rules of this module:
- Everything that moves the car between phases is in TRANSITIONS: (phase, cue) -> phase. A handler decides which
  cue applies and calls enter(), which looks the move up and stamps phase_tick; a move not in the table is a
  KeyError, never a silent jump. tests/core/test_phases.py walks every row.
- The service cycle: STANDING (at a landing, doors cycling) -DEPART-> STARTING (run bits set, waiting for the
  brake) -BRAKE_OPEN-> RUNNING (the profile, then levelling) -LEVELLED-> STOPPING (waiting for the brake to close)
  -BRAKE_CLOSED-> STANDING. RELEVELLING creeps back to the landing with the doors open; CORRECTING runs to the
  reference mark; INSPECTING moves on the hold-to-run buttons; HALTED waits out a stop-at-once fault and recovers.
- A handler returns the new state and a DriveRequest: the direction and speed it asks the drive for (HOLD: stand).
  The supervisor may still override it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from carctl.core import motion
from carctl.core.records import IdentityEnum, replace
from carctl.core.signals import Direction

if TYPE_CHECKING:
    from carctl.core.state import ControllerState


class Phase(IdentityEnum):
    STANDING = "standing"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    INSPECTING = "inspecting"  # moving on the inspection station's hold-to-run buttons
    CORRECTING = "correcting"  # the correction run towards the reference mark, at low speed
    RELEVELLING = "relevelling"
    HALTED = "halted"


class Cue(IdentityEnum):
    DEPART = "depart"  # a call, a recall, parking or a recovery run: the run bits go out
    BRAKE_OPEN = "brake_open"  # the drive opened the brake: the profile starts
    NOTHING_TO_SERVE = "nothing_to_serve"  # the brake opened but no stop is left ahead
    DRIVE_DID_NOT_START = "drive_did_not_start"  # the brake stayed closed for the start timeout
    DOORS_UNLOCKED = "doors_unlocked"  # the door lock opened before the car moved, or on the correction run
    LEVELLED = "levelled"  # at the target within the levelling tolerance and stopped (or levelling gave up)
    BRAKE_CLOSED = "brake_closed"  # stopped, the brake closed
    RELEVEL = "relevel"  # the car sank or rose off its landing with the doors open
    AT_LANDING = "at_landing"  # standing still level at a landing (or, position untrusted, in its door zone)
    AWAY_FROM_LANDING = "away_from_landing"  # standing still but not where a landing is
    CORRECTION_DUE = "correction_due"  # the position is not to be trusted: the correction run starts
    CORRECTED = "corrected"  # the drive re-referenced its count at the mark
    MARK_NOT_FOUND = "mark_not_found"  # no reference mark within a shaft's travel, or no re-reference at it
    TRACKING_LOST = "tracking_lost"  # the measured position left the plan, or a relevel never arrived
    STOP_NOW = "stop_now"  # a stop-at-once fault is active
    HOLD_TO_RUN = "hold_to_run"  # an inspection button held (a new direction from INSPECTING)
    HAND_CONTROL = "hand_control"  # the mode moves the car only on hold-to-run buttons: an automatic run ends


TRANSITIONS: dict[tuple[Phase, Cue], Phase] = {
    (Phase.STANDING, Cue.DEPART): Phase.STARTING,
    (Phase.STANDING, Cue.CORRECTION_DUE): Phase.CORRECTING,
    (Phase.STANDING, Cue.RELEVEL): Phase.RELEVELLING,
    (Phase.STANDING, Cue.AWAY_FROM_LANDING): Phase.HALTED,
    (Phase.STANDING, Cue.HOLD_TO_RUN): Phase.INSPECTING,
    (Phase.STARTING, Cue.BRAKE_OPEN): Phase.RUNNING,
    (Phase.STARTING, Cue.NOTHING_TO_SERVE): Phase.STOPPING,
    (Phase.STARTING, Cue.DOORS_UNLOCKED): Phase.STANDING,
    (Phase.STARTING, Cue.DRIVE_DID_NOT_START): Phase.STANDING,
    (Phase.STARTING, Cue.STOP_NOW): Phase.HALTED,
    (Phase.STARTING, Cue.HAND_CONTROL): Phase.HALTED,
    (Phase.RUNNING, Cue.LEVELLED): Phase.STOPPING,
    (Phase.RUNNING, Cue.TRACKING_LOST): Phase.HALTED,
    (Phase.RUNNING, Cue.STOP_NOW): Phase.HALTED,
    (Phase.RUNNING, Cue.HAND_CONTROL): Phase.HALTED,
    (Phase.STOPPING, Cue.BRAKE_CLOSED): Phase.STANDING,
    (Phase.STOPPING, Cue.STOP_NOW): Phase.HALTED,
    (Phase.RELEVELLING, Cue.BRAKE_CLOSED): Phase.STANDING,
    (Phase.RELEVELLING, Cue.TRACKING_LOST): Phase.HALTED,
    (Phase.RELEVELLING, Cue.STOP_NOW): Phase.HALTED,
    (Phase.RELEVELLING, Cue.HAND_CONTROL): Phase.HALTED,
    (Phase.CORRECTING, Cue.CORRECTED): Phase.HALTED,  # HALTED then recovers to the nearest landing
    (Phase.CORRECTING, Cue.MARK_NOT_FOUND): Phase.HALTED,
    (Phase.CORRECTING, Cue.DOORS_UNLOCKED): Phase.HALTED,
    (Phase.CORRECTING, Cue.STOP_NOW): Phase.HALTED,
    (Phase.CORRECTING, Cue.HAND_CONTROL): Phase.HALTED,
    (Phase.HALTED, Cue.AT_LANDING): Phase.STANDING,
    (Phase.HALTED, Cue.DEPART): Phase.STARTING,
    (Phase.HALTED, Cue.CORRECTION_DUE): Phase.CORRECTING,
    (Phase.HALTED, Cue.HOLD_TO_RUN): Phase.INSPECTING,
    (Phase.INSPECTING, Cue.HOLD_TO_RUN): Phase.INSPECTING,
    (Phase.INSPECTING, Cue.AT_LANDING): Phase.STANDING,  # buttons released level with a landing
    (Phase.INSPECTING, Cue.AWAY_FROM_LANDING): Phase.HALTED,  # buttons released between landings
    (Phase.INSPECTING, Cue.STOP_NOW): Phase.HALTED,
    # Left in INSPECTING when the mode stops being hold-to-run, the car is handled as HALTED (it recovers to a
    # landing), and leaves by HALTED's moves.
    (Phase.INSPECTING, Cue.DEPART): Phase.STARTING,
    (Phase.INSPECTING, Cue.CORRECTION_DUE): Phase.CORRECTING,
}


@dataclass(frozen=True, slots=True)
class Run:
    """A run in progress. Distances in the profile are along ``direction`` from ``origin_m``."""

    direction: Direction
    target: int
    origin_m: float = 0.0
    start_tick: int = 0
    profile: motion.Profile | None = None  # None until the brake is open
    parking: bool = False


class DriveRequest(NamedTuple):
    """What a phase handler asks of the drive: a direction and an unsigned speed reference."""

    direction: Direction
    speed_m_s: float


# Stand: no direction, no speed.
HOLD = DriveRequest(Direction.NONE, 0.0)


def enter(state: ControllerState, cue: Cue, tick: int, **changes: Any) -> ControllerState:
    """The state after ``cue`` in the current phase, by TRANSITIONS, with phase_tick stamped and ``changes``."""
    return replace(state, phase=TRANSITIONS[(state.phase, cue)], phase_tick=tick, **changes)


__all__ = ["HOLD", "TRANSITIONS", "Cue", "DriveRequest", "Phase", "Run", "enter"]
