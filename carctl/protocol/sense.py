"""The two pure steps on either side of the core: sense (board readings and drive status in, Inputs out) and
output (Commands in, the drive's command block and the boards' outputs out). Sans-I/O.

Rules of this module:
- The firmware's real-time loop and the lockstep simulator both call these, every cycle: a simulator test runs the
  car's own translation between the boards and the core.
- BoardReadings holds the freshest decoded reading of every source and its age in cycles; a source that did not
  answer this cycle keeps its last reading and grows older. How old each may be is core/rates.py's business (the
  supervisor's), except the inspection station's held buttons, which count as released once their reading is older
  than rates' hold_to_run.
- Presses are what the boards reported pressed since the last cycle (the boards latch them until acknowledged:
  panel_session.py); key switches are levels, and the core wants a mode request only when one changes. The
  switches take priority among themselves in the order inspection, fire service, independent, and over the
  platform: while any of them is on, a mode the platform asks for is not passed on.
- Before the drive has ever answered, its status reads as not ready, not running, brake closed and chain open; its
  age is NEVER_SEEN, so the supervisor stops the car and nothing moves on that position.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from carctl.core.rates import Freshness
from carctl.core.records import fast_constructor
from carctl.core.signals import EMPTY, Commands, Commissioning, Direction, Inputs, Mode, Recognition
from carctl.protocol import panelbus
from carctl.protocol.drive_map import DriveCommand, DriveStatus
from carctl.protocol.panelbus import CarPanelInputs, CarPanelOutputs, CarTopInputs, CarTopOutputs, LandingInputs, \
    LandingOutputs

NEVER_SEEN = 1 << 20  # the age of an input never received: stale from the start
# What the drive's status reads as before its first answer (module rules): nothing moves on it.
NEVER_ANSWERED = DriveStatus(ready=False, running=False, faulted=False, brake_open=False, zero_speed=True,
                             comm_loss_trip=False, safety_chain_closed=False, speed_m_s=0.0, position_m=0.0,
                             fault_code=0, current_a=0.0, load_kg=0.0, drive_tick=0)


@dataclass(slots=True)
class Presses:
    """What the boards reported pressed since the last cycle."""

    car: set[int] = field(default_factory=set)
    up: set[int] = field(default_factory=set)
    down: set[int] = field(default_factory=set)
    door_open: bool = False
    door_close: bool = False
    accessible: bool = False
    fault_reset: bool = False
    alarm_reset: bool = False

    def any(self) -> bool:
        return bool(self.car or self.up or self.down or self.door_open or self.door_close or self.accessible
                    or self.fault_reset or self.alarm_reset)


@dataclass(slots=True)
class BoardReadings:
    """The freshest reading of the drive and of every board, with its age in cycles."""

    landing_count: int
    # The landing whose board also reads the controller cabinet's switch and buttons (-1: none).
    cabinet_landing: int = -1
    drive: DriveStatus | None = None
    drive_age: int = NEVER_SEEN
    car_top: CarTopInputs = field(default_factory=CarTopInputs)
    car_top_age: int = NEVER_SEEN
    car_panel: CarPanelInputs = field(default_factory=CarPanelInputs)
    car_panel_age: int = NEVER_SEEN
    landing: dict[int, LandingInputs] = field(default_factory=dict)
    landing_age: list[int] = field(default_factory=list)
    # Landings whose fire detector was active in their last reading (kept as readings arrive, not searched for).
    fire_detected: frozenset[int] = EMPTY
    # The rear door's car-top board (0x03), on a car with doors on both sides: read and aged only where fitted (a car
    # with one door reads as a rear door shut, locked and fresh, which the core does not look at).
    rear_door: bool = False
    rear_car_top: CarTopInputs = field(default_factory=CarTopInputs)
    rear_car_top_age: int = 0

    def __post_init__(self) -> None:
        if not self.landing_age:
            self.landing_age = [NEVER_SEEN] * self.landing_count
        if self.rear_door:
            self.rear_car_top_age = NEVER_SEEN

    def age_all(self) -> None:
        """One cycle passed: every reading is a cycle older until a fresh one replaces it."""
        self.drive_age = min(NEVER_SEEN, self.drive_age + 1)
        self.car_top_age = min(NEVER_SEEN, self.car_top_age + 1)
        self.car_panel_age = min(NEVER_SEEN, self.car_panel_age + 1)
        if self.rear_door:
            self.rear_car_top_age = min(NEVER_SEEN, self.rear_car_top_age + 1)
        ages = self.landing_age
        for landing, age in enumerate(ages):
            if age < NEVER_SEEN:
                ages[landing] = age + 1

    def take_drive(self, status: DriveStatus) -> None:
        self.drive = status
        self.drive_age = 0

    def take_car_top(self, reading: CarTopInputs) -> None:
        self.car_top = reading
        self.car_top_age = 0

    def take_rear_car_top(self, reading: CarTopInputs) -> None:
        self.rear_car_top = reading
        self.rear_car_top_age = 0

    def take_car_panel(self, reading: CarPanelInputs) -> None:
        self.car_panel = reading
        self.car_panel_age = 0

    def take_landing(self, landing: int, reading: LandingInputs) -> None:
        before = self.landing.get(landing)
        self.landing[landing] = reading
        self.landing_age[landing] = 0
        if before is None or before.fire_detector != reading.fire_detector:
            if reading.fire_detector:
                self.fire_detected = self.fire_detected | {landing}
            elif landing in self.fire_detected:
                self.fire_detected = self.fire_detected - {landing}


@dataclass(frozen=True, slots=True)
class SwitchLevels:
    """The key switches as last seen: a mode request is made when one of them changes."""

    inspection: bool = False
    fire: bool = False
    independent: bool = False
    eeo: bool = False  # the controller cabinet's emergency electrical operation switch


# In priority order: a switch that is on selects its mode over the ones after it. Inspection on the car top comes
# first: a mechanic on the car roof is never moved from the cabinet (EN 81-20 5.12.1.6, docs/modes.md).
_SWITCH_MODES = (("inspection", Mode.INSPECTION), ("eeo", Mode.EMERGENCY_ELECTRICAL), ("fire", Mode.FIRE),
                 ("independent", Mode.INDEPENDENT))


# The sixteen possible levels, made once: the same switches give the same record, which compares by identity first.
_LEVELS = {(inspection, fire, independent, eeo): SwitchLevels(inspection, fire, independent, eeo)
           for inspection in (False, True) for fire in (False, True) for independent in (False, True)
           for eeo in (False, True)}


def switch_levels(readings: BoardReadings, main_landing: int) -> SwitchLevels:
    fire_board = readings.landing.get(main_landing)
    cabinet = readings.landing.get(readings.cabinet_landing)
    return _LEVELS[readings.car_top.inspection, fire_board is not None and fire_board.fire_switch,
                   readings.car_panel.independent_key, cabinet is not None and cabinet.eeo_switch]


def mode_request(now: SwitchLevels, before: SwitchLevels, platform_mode: Mode | None) -> Mode | None:
    """A key switch that changed makes the request (the highest-priority switch that is on, or normal when all are
    off). Otherwise the platform's request, if any — but never while a key switch is on: a mechanic on the car top,
    a fireman in the car or an attendant with the independent key has the car, not the platform."""
    if now is before or now == before:
        if now.inspection or now.fire or now.independent or now.eeo:
            return None
        return platform_mode
    for name, mode in _SWITCH_MODES:
        if getattr(now, name):
            return mode
    return Mode.NORMAL


# Inputs and DriveCommand are built every cycle: with every field given, without the dataclass
# constructor's cost (core/records.py).
_make_inputs = fast_constructor(Inputs)
_make_drive_command = fast_constructor(DriveCommand)


def sense(readings: BoardReadings, presses: Presses, fresh: Freshness, tick: int, *,
          requested_mode: Mode | None = None, recognitions: tuple[Recognition, ...] = (),
          controller_error: bool = False, latch_record_failing: bool = False,
          alarm_channel: tuple[bool, bool] = (False, False), alarm_acknowledged: bool = False,
          alarm_modem_dead: bool = False, alarm_test: tuple[str, bool] = ("", False),
          landing_table_refused: bool = False, commission: Commissioning | None = None) -> Inputs:
    """One Inputs snapshot from the readings, the cycle's presses and the side channels' requests (the mode request
    already resolved against the key switches: mode_request()). ``controller_error``: the core raised in the last
    cycle; ``latch_record_failing``: the record of latched faults cannot be written; ``alarm_channel``: what the
    alarm's channel to the rescue service reports, (transmitted, voice connected); ``alarm_acknowledged``: the
    platform's operator has seen the alarm (this cycle); ``alarm_modem_dead``: the alarm's module, or its process,
    answers nothing; ``alarm_test``: a periodic test's result just made ("" none), and whether the last failed;
    ``landing_table_refused``: the learned landing table was refused at start, or could not be written;
    ``commission``: the service tool's commissioning request, for this cycle only (None: none)."""
    drive = readings.drive or NEVER_ANSWERED
    top = readings.car_top
    rear = readings.rear_car_top
    panel = readings.car_panel
    top_fresh = readings.car_top_age <= fresh.hold_to_run
    # The cabinet's hold-to-run buttons: levels, held only while its board's reading is fresh.
    eeo_up = eeo_down = False
    cabinet_landing = readings.cabinet_landing
    cabinet_age = readings.landing_age[cabinet_landing] if 0 <= cabinet_landing < readings.landing_count else 0
    cabinet = readings.landing.get(cabinet_landing)
    if cabinet is not None and (cabinet.eeo_up or cabinet.eeo_down) and cabinet_age <= fresh.cabinet_hold_to_run:
        eeo_up, eeo_down = cabinet.eeo_up, cabinet.eeo_down
    # Every field, in the fields' order (positional: matching 44 keywords costs more than building the record);
    # tests/protocol/test_sense.py changes each source alone and checks that only its own field follows.
    return _make_inputs(
        tick,  # tick
        fresh.period_s,  # period_s
        readings.drive_age,  # drive_age_ticks
        drive.ready,  # drive_ready
        drive.running,  # drive_running
        drive.fault_code,  # drive_fault_code
        drive.brake_open,  # brake_open
        drive.safety_chain_closed,  # safety_chain_closed
        drive.speed_m_s,  # speed_m_s
        drive.position_m,  # position_m
        drive.load_kg,  # load_kg
        readings.car_top_age,  # car_top_age_ticks
        top.door_open_limit,  # door_open_limit
        top.door_closed_limit,  # door_closed_limit
        top.door_locked,  # door_locked
        top.light_curtain_blocked,  # light_curtain_blocked
        top.safety_edge,  # safety_edge
        top.in_door_zone,  # in_door_zone
        readings.car_panel_age,  # car_panel_age_ticks
        frozenset(presses.car) if presses.car else EMPTY,  # car_calls_pressed
        presses.door_open,  # door_open_button
        presses.door_close,  # door_close_button
        presses.accessible,  # accessible_button
        panel.seat_occupied,  # seat_occupied
        # A level: trusted only while the car panel's reading is fresh (a silent panel is its own fault).
        panel.alarm_button and readings.car_panel_age <= fresh.car_panel,  # alarm_button
        max(readings.landing_age, default=NEVER_SEEN),  # landing_age_ticks
        frozenset(presses.up) if presses.up else EMPTY,  # hall_up_pressed
        frozenset(presses.down) if presses.down else EMPTY,  # hall_down_pressed
        recognitions,  # recognitions
        presses.fault_reset,  # fault_reset
        controller_error,  # controller_error
        latch_record_failing,  # latch_record_failing
        requested_mode,  # mode_request
        readings.fire_detected,  # fire_detected
        top.inspection_up and top_fresh,  # inspection_up
        top.inspection_down and top_fresh,  # inspection_down
        drive.on_battery,  # on_battery
        drive.position_unreferenced,  # position_unreferenced
        drive.below_reference_mark,  # below_reference_mark
        top.slowdown_top,  # slowdown_top
        top.slowdown_bottom,  # slowdown_bottom
        eeo_up,  # eeo_up
        eeo_down,  # eeo_down
        cabinet_age,  # cabinet_age_ticks
        presses.alarm_reset,  # alarm_reset
        alarm_channel[0],  # alarm_transmitted
        alarm_channel[1],  # alarm_voice
        alarm_acknowledged,  # alarm_acknowledged
        alarm_modem_dead,  # alarm_modem_dead
        alarm_test[0],  # alarm_test
        alarm_test[1],  # alarm_test_failed
        top.alarm_battery_low,  # alarm_battery_low
        drive.brake_contacts,  # brake_contacts_lifted
        drive.brake_test_torque,  # brake_test_torque
        # A level, trusted only while the cabinet's board reading is fresh (as its hold-to-run buttons).
        cabinet is not None and cabinet.learn_button and cabinet_age <= fresh.cabinet_hold_to_run,  # learn_button
        landing_table_refused,  # landing_table_refused
        readings.rear_car_top_age,  # rear_car_top_age_ticks
        rear.door_open_limit,  # rear_door_open_limit
        rear.door_closed_limit,  # rear_door_closed_limit
        rear.door_locked,  # rear_door_locked
        rear.light_curtain_blocked,  # rear_light_curtain_blocked
        rear.safety_edge,  # rear_safety_edge
        commission,  # commission
    )


@dataclass(frozen=True, slots=True)
class Outputs:
    """One cycle's commands as the drive and the car's boards take them (acknowledgements are the session's)."""

    drive: DriveCommand
    car_top: CarTopOutputs
    car_panel: CarPanelOutputs
    commands: Commands  # for the landing boards' outputs, made only for the boards polled (landing_outputs)
    # The rear door's car-top board (0x03): polled only on a car with doors on both sides.
    rear_car_top: CarTopOutputs = CarTopOutputs()


def output(commands: Commands, drive_fault_reset: bool = False) -> Outputs:
    """The drive's command block and the car's boards' outputs. ``drive_fault_reset``: the loop's own reset of a
    comm-loss trip, in addition to a deliberate reset."""
    return Outputs(drive=drive_command(commands, drive_fault_reset), car_top=car_top_outputs(commands),
                   car_panel=car_panel_outputs(commands), commands=commands,
                   rear_car_top=rear_car_top_outputs(commands))


def drive_command(commands: Commands, drive_fault_reset: bool = False) -> DriveCommand:
    # In the fields' order: run_up, run_down, speed_ref_m_s, fault_reset, quick_stop, brake_test
    # (tests/protocol/test_sense.py).
    return _make_drive_command(commands.run_up, commands.run_down, commands.speed_ref_m_s,
                               commands.fault_reset or drive_fault_reset, commands.quick_stop, commands.brake_test)


def car_top_outputs(commands: Commands) -> CarTopOutputs:
    levels = (commands.door_open, commands.door_close, commands.door_nudge, commands.door_slow, commands.car_light,
              commands.car_fan)
    made = _CAR_TOP_OUTPUTS.get(levels)
    if made is None:  # at most 64 of them, made once each (the acknowledgement is the session's, added later)
        made = _CAR_TOP_OUTPUTS[levels] = CarTopOutputs(0, *levels)
    return made


def rear_car_top_outputs(commands: Commands) -> CarTopOutputs:
    """The rear door's car-top board: its door operator's commands; the car's light and fan are the front board's to
    switch, so the rear board is told the same levels and leaves them alone (docs/panelbus.md)."""
    levels = (commands.rear_door_open, commands.rear_door_close, commands.rear_door_nudge, commands.rear_door_slow,
              commands.car_light, commands.car_fan)
    made = _CAR_TOP_OUTPUTS.get(levels)
    if made is None:
        made = _CAR_TOP_OUTPUTS[levels] = CarTopOutputs(0, *levels)
    return made


# The car-top board's outputs by their six levels (car_top_outputs): the same levels give the same record.
_CAR_TOP_OUTPUTS: dict[tuple[bool, bool, bool, bool, bool, bool], CarTopOutputs] = {}


def car_panel_outputs(commands: Commands) -> CarPanelOutputs:
    direction = commands.direction
    return CarPanelOutputs(
        call_lamps=commands.car_call_lamps, position_landing=commands.position_landing,
        arrow_up=direction is Direction.UP, arrow_down=direction is Direction.DOWN, gong=commands.gong,
        buzzer=commands.buzzer, overload_lamp=commands.overload_lamp,
        announce_landing=(panelbus.PROMPT_HELP_ON_THE_WAY if commands.alarm_prompt else commands.announce_landing
                          if commands.announce_landing >= 0 else panelbus.NO_LANDING),
        rescue_notice=commands.rescue_notice, alarm_transmitted_lamp=commands.alarm_transmitted_lamp,
        alarm_voice_lamp=commands.alarm_voice_lamp)


def landing_outputs(commands: Commands, landing: int) -> LandingOutputs:
    direction = commands.direction
    return LandingOutputs(up_lamp=landing in commands.hall_up_lamps, down_lamp=landing in commands.hall_down_lamps,
                          arrow_up=direction is Direction.UP, arrow_down=direction is Direction.DOWN,
                          gong=commands.gong and commands.announce_landing == landing,
                          position_landing=commands.position_landing)


__all__ = ["NEVER_ANSWERED", "NEVER_SEEN", "BoardReadings", "Outputs", "Presses", "SwitchLevels", "car_panel_outputs", "car_top_outputs",
           "drive_command", "landing_outputs", "mode_request", "output", "rear_car_top_outputs", "sense",
           "switch_levels"]
