"""What crosses the core's boundary: one Inputs snapshot per tick in, Commands and Events out.

Rules of this module:
- Frozen dataclasses with SI units in the names; no behaviour.
- Time is ``tick`` (a count) and ``period_s`` (fixed). The core reads no clock.
- Every input source carries its age in ticks, so staleness is a supervisor input, never a silent reuse; how old
  each may be is declared once, in rates.py.
- Button presses arrive as the set of buttons pressed since the last snapshot (the boards latch a press until it is
  read), so a press is an event and a held button does not re-register a served call.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from carctl.core.records import IdentityEnum

EMPTY: frozenset[int] = frozenset()


class Direction(enum.IntEnum):
    DOWN = -1
    NONE = 0
    UP = 1


class Mode(IdentityEnum):
    NORMAL = "normal"
    INSPECTION = "inspection"
    # Emergency electrical operation: the car moved from the controller cabinet on hold-to-run buttons.
    EMERGENCY_ELECTRICAL = "emergency_electrical"
    FIRE = "fire"
    INDEPENDENT = "independent"
    OUT_OF_SERVICE = "out_of_service"
    # Entered and left only by the drive's on-battery signal (mains lost, the rescue device feeding the drive),
    # never by a request: see modes.py.
    RESCUE = "rescue"
    # The shaft learning run (learning.py): entered from emergency electrical operation by the learn input (never
    # with the car-top inspection switch on), left back to the mode it started from.
    LEARNING = "learning"


class Commissioning(IdentityEnum):
    """A commissioning request from the service tool's page (docs/service-tool.md), for one snapshot: the core takes
    it as it takes the cabinet's learn button and the maintenance reset key, by the same rules, and answers with an
    event (LEARNING, BRAKE_TEST "started" or "refused:<why>"; FAULT_CLEARED for what a reset cleared)."""

    LEARNING_RUN = "learn"
    BRAKE_TEST = "brake_test"
    FAULT_RESET = "reset_faults"


class AlarmPhase(IdentityEnum):
    """The alarm's states (alarm.py), in order; an alarm ends only by the rescuer's reset at the car."""

    IDLE = "idle"
    REQUESTED = "requested"  # a hold of the button taken: the call to the rescue service is wanted
    TRANSMITTED = "transmitted"  # the rescue service has received it (the yellow lamp)
    VOICE_CONNECTED = "voice_connected"  # someone speaks with the car (the green lamp)


@dataclass(frozen=True, slots=True)
class Recognition:
    """A resident recognised in the car (or a card presented): where they live and where they may go."""

    resident: str
    home_landing: int
    allowed_landings: frozenset[int]
    source: str = "face"  # "face" or "card"


@dataclass(frozen=True, slots=True)
class Inputs:
    tick: int
    # The configured control period, as the sense step fills it in (a record of the snapshot): the core's arithmetic
    # takes the period from its configuration (timing.py), one source, never from here.
    period_s: float = 0.02
    # Drive (Modbus status block).
    drive_age_ticks: int = 0
    drive_ready: bool = True
    drive_running: bool = False
    drive_fault_code: int = 0
    brake_open: bool = False
    safety_chain_closed: bool = True
    speed_m_s: float = 0.0
    position_m: float = 0.0
    load_kg: float = 0.0
    # Car-top board.
    car_top_age_ticks: int = 0
    door_open_limit: bool = False
    door_closed_limit: bool = True
    door_locked: bool = True
    light_curtain_blocked: bool = False
    safety_edge: bool = False
    in_door_zone: bool = True
    # Car operating panel.
    car_panel_age_ticks: int = 0
    car_calls_pressed: frozenset[int] = EMPTY
    door_open_button: bool = False
    door_close_button: bool = False
    accessible_button: bool = False
    seat_occupied: bool = False
    # The alarm button, as a level (held, not latched like a call): the core reports each press and release
    # (EventKind.ALARM_BUTTON), and a hold of car.alarm_press_s starts an alarm (alarm.py).
    alarm_button: bool = False
    # Landing boards (the oldest of them).
    landing_age_ticks: int = 0
    hall_up_pressed: frozenset[int] = EMPTY
    hall_down_pressed: frozenset[int] = EMPTY
    # Authorisations seen at the car this tick: a resident recognised by the face worker, or a card presented to a
    # card reader. They are requests like any button (never the only way to ride).
    recognitions: tuple[Recognition, ...] = ()
    # Maintenance: a deliberate fault reset (key switch on the controller, or a signed platform command).
    fault_reset: bool = False
    # The core's previous step raised an exception (the runtime then commanded supervisor.SAFE_STOP): a fault.
    controller_error: bool = False
    # The runtime cannot write its record of latched faults (runtime/latches.py): shown as a fault.
    latch_record_failing: bool = False
    # A mode switch (key switches, the fire-service switch, the platform); None keeps the mode.
    mode_request: Mode | None = None
    # Landings whose fire (smoke) detector is active (landing boards); fire return avoids the designated landing
    # when it is among them.
    fire_detected: frozenset[int] = EMPTY
    # The car-top inspection station's hold-to-run buttons (levels: the car moves only while one is held).
    inspection_up: bool = False
    inspection_down: bool = False
    # Drive status bits added for rescue and position correction (docs/register-map.md): mains lost and the drive
    # fed by the rescue device's battery; the drive's position count not referenced since its power-up; the
    # reference switch near the bottom landing made (the car is below its mark).
    on_battery: bool = False
    position_unreferenced: bool = False
    below_reference_mark: bool = False
    # The car-top board's terminal slowdown switches actuated: bit i, the switch car.terminal_switches_m[i] from the
    # top (slowdown_top) or the bottom terminal landing (slowdown_bottom); independent of the drive's count.
    slowdown_top: int = 0
    slowdown_bottom: int = 0
    # The controller cabinet's emergency electrical operation buttons, held (levels, trusted only while the cabinet
    # landing's board reading is fresh); its switch reaches the core as a mode request.
    eeo_up: bool = False
    eeo_down: bool = False
    # How old the cabinet landing board's reading is (0 where no cabinet is configured): a button that reads released
    # because its board fell silent is not a release (inspection.py).
    cabinet_age_ticks: int = 0
    # The alarm (alarm.py): the rescuer's reset at the car (a key on the car panel: a press, latched by the board
    # like a call), which alone ends an alarm; and what the alarm's channel to the rescue service reports: the
    # alarm received there ("transmitted"), and a voice connection with the car established.
    alarm_reset: bool = False
    alarm_transmitted: bool = False
    alarm_voice: bool = False
    # The platform's duty operator has seen the alarm (a signed alarm.acknowledge): the rider is told help is coming.
    alarm_acknowledged: bool = False
    # The alarm's modem process says its module answers nothing, or has itself fallen silent (docs/alarm.md).
    alarm_modem_dead: bool = False
    # The periodic test call of the alarm (EN 81-28): a result just made ("ok" or "failed", for one snapshot; "" none)
    # and whether the last one failed (a level).
    alarm_test: str = ""
    alarm_test_failed: bool = False
    # The car-top board: the alarm unit's battery cannot carry the alarm for an hour (EN 81-28).
    alarm_battery_low: bool = False
    # Drive status bits added for brake monitoring (docs/register-map.md; EN 81-20 5.6.7.3): the brake circuits'
    # contacts that read lifted (bit i: circuit i + 1; judged only for the car.brake_contacts fitted), and the drive
    # holding its test torque against the closed brake (the periodic brake test, braketest.py).
    brake_contacts_lifted: int = 0
    brake_test_torque: bool = False
    # The controller cabinet's learn button (cabinet landing board, STATUS bit7; or the service tool), a level: its
    # press starts the shaft learning run (learning.py).
    learn_button: bool = False
    # The runtime refused the learned landing table at start (or could not write a new one): the car runs on the
    # typed table, shown as a fault (runtime/learned_table.py).
    landing_table_refused: bool = False
    # The rear door's car-top board (address 0x03, fitted when building.door_sides names a rear side): its age and
    # the rear operator's limits, lock contacts, light curtain and safety edge. A car with one door reads them as a
    # rear door shut and locked that nobody obstructs; the core looks at them only when the rear door is fitted
    # (core/sides.py).
    rear_car_top_age_ticks: int = 0
    rear_door_open_limit: bool = False
    rear_door_closed_limit: bool = True
    rear_door_locked: bool = True
    rear_light_curtain_blocked: bool = False
    rear_safety_edge: bool = False
    # A commissioning request from the service tool (None: none), for this snapshot only: start the learning run,
    # start a brake test (braketest.py), or reset the latched faults as the maintenance reset key does.
    commission: Commissioning | None = None


@dataclass(frozen=True, slots=True)
class Commands:
    # Drive (Modbus command block): run bits and an unsigned speed reference.
    run_up: bool = False
    run_down: bool = False
    speed_ref_m_s: float = 0.0
    quick_stop: bool = False
    fault_reset: bool = False
    # Door operator on the car-top board.
    door_open: bool = False
    door_close: bool = False
    door_nudge: bool = False
    door_slow: bool = False
    # Car operating panel and landing boards.
    buzzer: bool = False
    gong: bool = False
    announce_landing: int = -1
    car_call_lamps: frozenset[int] = EMPTY
    hall_up_lamps: frozenset[int] = EMPTY
    hall_down_lamps: frozenset[int] = EMPTY
    position_landing: int = 0
    direction: Direction = Direction.NONE
    overload_lamp: bool = False
    car_light: bool = True
    car_fan: bool = True
    # The car panel's spoken and shown notice after a rescue ("power failure: please leave the car"), held while
    # the car stands released at its rescue landing.
    rescue_notice: bool = False
    # The alarm (alarm.py, EN 81-28): the call to the rescue service wanted (for the alarm's channel), and the car
    # panel's signals to the rider: yellow "alarm transmitted", green "voice connection established" (EN 81-70).
    alarm_call: bool = False
    alarm_transmitted_lamp: bool = False
    alarm_voice_lamp: bool = False
    # The car panel speaks "your call has been received, help is on the way" (held for ALARM_PROMPT_S).
    alarm_prompt: bool = False
    # The drive holds its test torque against the closed brake (the periodic brake test, braketest.py).
    brake_test: bool = False
    # The rear door operator (car-top board 0x03), as door_open..door_slow are the front one's: the door machine's
    # commands go to the side(s) of the landing (core/sides.py), the other side is held closed. All False on a car
    # with one door, whose door_open..door_slow are then the door machine's own, as ever.
    rear_door_open: bool = False
    rear_door_close: bool = False
    rear_door_nudge: bool = False
    rear_door_slow: bool = False


class EventKind(IdentityEnum):
    CALL_REGISTERED = "call_registered"
    CALL_CANCELLED = "call_cancelled"
    CALL_REFUSED = "call_refused"
    RUN_STARTED = "run_started"
    ARRIVED = "arrived"
    DOORS_OPENING = "doors_opening"
    DOORS_OPEN = "doors_open"
    DOORS_CLOSING = "doors_closing"
    DOORS_REOPENED = "doors_reopened"
    DOORS_CLOSED = "doors_closed"
    NUDGING = "nudging"
    RELEVEL_STARTED = "relevel_started"
    PARKING = "parking"
    FAULT_RAISED = "fault_raised"
    FAULT_CLEARED = "fault_cleared"
    COMMAND_BLOCKED = "command_blocked"
    MODE_CHANGED = "mode_changed"
    RECOGNISED = "recognised"
    RECALL_CHANGED = "recall_changed"  # fire return: the designated landing is on fire, the alternate is used
    ENERGY_SAVING = "energy_saving"  # detail "on" (light and fan off) or "off" (back on)
    RESCUED = "rescued"  # the rescue let the passengers out at ``landing``; detail: the load then ("75 kg")
    CORRECTION_RUN = "correction_run"  # detail "started:<why>" or "done" (the position is referenced again)
    # Someone held in the car without being let out for TRAPPED_AFTER_S (watch.py): once per entrapment, detail
    # "<cause>:<seconds waited>"; and when it ends (they are out, or the car moves on), detail "<seconds waited>".
    TRAPPED_PASSENGER = "trapped_passenger"
    TRAPPED_PASSENGER_ENDED = "trapped_passenger_ended"
    ALARM_BUTTON = "alarm_button"  # the car panel's alarm button: detail "pressed" or "released"
    # The alarm's state changed (alarm.py): detail "requested", "transmitted", "voice_connected", "cancelled", or
    # "filtered" (held back, and logged, because the rider can walk out: doors open at a landing); "acknowledged"
    # (the platform's operator has seen it: the rider is told help is on the way).
    ALARM = "alarm"
    ALARM_TEST = "alarm_test"  # the periodic test call of the alarm: detail "ok" or "failed"
    # The brake test (braketest.py): detail "passed:<mm>", "slipped:<mm>", "no_answer" or "abandoned"; for a test
    # the service tool asks for, "started" or "refused:<why>" first.
    BRAKE_TEST = "brake_test"
    # The shaft learning run (learning.py): detail "started", "refused:<why>" (also "under_way", to a request from the
    # service tool while a run is under way), "interrupted:<why>", or
    # "done:<landing heights in m, comma-separated>" (the table is the state's ``learned``).
    LEARNING = "learning"


@dataclass(frozen=True, slots=True)
class Event:
    kind: EventKind
    tick: int
    landing: int = -1
    detail: str = ""
