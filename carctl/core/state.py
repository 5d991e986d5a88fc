"""The controller's whole state between two ticks: one immutable record.

Rules of this module:
- Everything the controller remembers is a field here; nothing is kept anywhere else, so a state and the next
  inputs give the next state, bit for bit.
- Timers are deadline or start ticks (-1 when not running); a waiting car's state does not change, so it is
  returned as the same object (the lockstep simulator relies on that to skip idle ticks).
- Each behaviour module owns its fields (named in the comments); the others only read them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from carctl.core.calls import Calls
from carctl.core.door import DoorState
from carctl.core.faults import Fault, latched
from carctl.core.learned import LearnedTable, LearningRun
from carctl.core.phases import Phase, Run
from carctl.core.signals import AlarmPhase, Direction, Mode


@dataclass(frozen=True, slots=True)
class ControllerState:
    mode: Mode = Mode.NORMAL
    phase: Phase = Phase.HALTED
    phase_tick: int = 0
    landing: int = 0
    direction: Direction = Direction.NONE  # travel direction; while the doors are open, the lantern
    calls: Calls = field(default_factory=Calls)
    door: DoorState = field(default_factory=DoorState)
    run: Run | None = None
    faults: frozenset[Fault] = frozenset()
    park_tick: int = -1  # an idle car leaves for its parking landing at this tick; -1 while not idle
    # access.py: landings that someone recognised in the car (face or card) may go to; cleared when the car is
    # empty again.
    authorised: frozenset[int] = frozenset()
    # energy.py: the light and fan go off at dark_tick (-1 while the car is not idle) and dark is then True.
    dark_tick: int = -1
    dark: bool = False
    # watch.py: when the light curtain began to be blocked (-1: clear), and landing buttons seen pressed without a
    # break, as (landing, direction, first tick, last tick) in order.
    curtain_since_tick: int = -1
    button_streaks: tuple[tuple[int, int, int, int], ...] = ()
    # ... and since when someone has been held in the car without being let out (-1: no one), whether the
    # trapped-passenger event has been given for it, and the alarm button as last seen.
    trapped_since_tick: int = -1
    trapped: bool = False
    alarm_pressed: bool = False
    # modes.py: fire return goes to the alternate landing: latched once the designated landing's detector was seen
    # active, until fire service ends.
    fire_alternate: bool = False
    # rescue.py: the mode to return to when the mains return, the landing the rescue run goes to (-1: not chosen
    # yet) and whether the passengers have been released there.
    resume_mode: Mode = Mode.NORMAL
    rescue_landing: int = -1
    rescued: bool = False
    # correction.py: why the position is not trusted ("" when it is): a correction run is due. position_checked:
    # the power-up comparison of the count with the door-zone sensor has been made.
    correction: str = ""
    position_checked: bool = False
    # controller.py: latched faults restored at start from the record kept on disk (Controller.initial_state); the
    # first step raises them through the supervisor like any fault, so they are active in its commands.
    restored: frozenset[Fault] = frozenset()
    # travel.py: since when the measured speed has been off the plan by more than car.speed_deviation_m_s (-1: not).
    deviating_since_tick: int = -1
    # standstill.py: after a stop at once (and from power-up: Controller.initial_state) the car is settling until
    # fresh statuses have shown it at rest for the settling time: since when (-1: not at rest) and where it stood.
    settling: bool = False
    settling_since_tick: int = -1  # when this settling began (-1: not yet seen by the standstill watch)
    still_since_tick: int = -1
    still_at_m: float = 0.0
    # inspection.py: the hold-to-run buttons have been seen released since the mode began (a button held, or stuck,
    # when the switch is turned moves nothing until it has been let go).
    hold_to_run_armed: bool = False
    # alarm.py: the alarm's phase; since when the alarm button has been held (-1: not held) and whether this hold
    # has been logged as held back (filtered); since when the alarm has been active (-1: idle).
    alarm: AlarmPhase = AlarmPhase.IDLE
    alarm_held_since_tick: int = -1
    alarm_hold_taken: bool = False
    alarm_since_tick: int = -1
    alarm_prompt_until_tick: int = -1  # the "help is on the way" prompt is spoken until this tick
    alarm_hold_spent: bool = False  # the button held through a reset: no new alarm until it is let go
    # brake.py: since when the brake contacts have not been seen steadily as the drive's brake-open bit wants them
    # (-1: they have), for which state of the bit (its change starts the time again) and how they read when they last
    # disagreed; since when they have agreed without a break (-1: they disagree, or are steady); since when at least
    # one fitted contact has read dropped without a break (-1: none does).
    brake_mismatch_since_tick: int = -1
    brake_mismatch_open: bool = False
    brake_mismatch_lifted: int = 0
    brake_agree_since_tick: int = -1
    brake_dropped_since_tick: int = -1
    # braketest.py: when the next periodic brake test is due (-1: none configured); since when one is under way
    # (-1: none) and where the car stood when it asked for the test torque; since when the drive has held that torque
    # (-1: not yet); whether the drive left the last request unanswered; when the test is overdue (-1: none
    # configured); since when the drive has reported its test torque with no test asked for (-1: it does not).
    brake_test_due_tick: int = -1
    brake_test_since_tick: int = -1
    brake_test_held_since_tick: int = -1
    brake_test_at_m: float = 0.0
    brake_test_unanswered: bool = False
    # ... and whether the test under way was asked for by the service tool (its own rules: braketest.requested()).
    brake_test_requested: bool = False
    brake_test_overdue_tick: int = -1
    brake_test_torque_since_tick: int = -1
    # alarm.py: the last tick the rescuer's reset key was seen (-1: never). A key held, or stuck, is reported again
    # after every acknowledgement: only a turn after a pause of alarm_press ends an alarm.
    alarm_reset_tick: int = -1
    # learning.py: the learn input as last seen (a press starts a run), the run under way (None: none), and the table
    # the last complete run learned (None: none since start), for the runtime to write.
    learn_button_held: bool = False
    learning: LearningRun | None = None
    learned: LearnedTable | None = None
    # countwatch.py: in a learning run or a hold-to-run move, the count where the car began to move and the distance
    # the drive's speed reading has covered since; the count as last seen moving and when (-1: the car stands).
    count_from_m: float = 0.0
    reckoned_m: float = 0.0
    count_seen_m: float = 0.0
    count_moved_tick: int = -1


def kept_alarm(state: ControllerState) -> AlarmPhase:
    """The alarm the runtime must keep on disk so that a restart does not end it (only the rescuer's reset may): an
    alarm requested stays requested (the call is made again), one the rescue service received stays transmitted (a
    voice connection does not outlive the restart)."""
    if state.alarm is AlarmPhase.VOICE_CONNECTED:
        return AlarmPhase.TRANSMITTED
    return state.alarm


def latched_faults(state: ControllerState) -> frozenset[Fault]:
    """The latched faults of ``state``, restored ones not yet raised included: what the runtime must keep on disk so
    that a restart does not clear them."""
    return latched(state.faults) | state.restored


__all__ = ["ControllerState", "latched_faults"]
