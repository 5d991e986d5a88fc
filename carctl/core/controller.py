"""step(state, inputs) -> (state, commands, events): the whole car controller, composed of the core modules.

Rules of this module:
- Pure: the same state and inputs give the same outputs, bit for bit. Time is the tick in the inputs; every timer is
  a deadline tick kept in the state, and the tick is used only to compare against those deadlines or to sample the
  running profile. So a car that is standing and waiting returns its state unchanged (the same object), which is
  what lets the lockstep simulator skip idle ticks without changing the result (next_deadline_tick()).
- Order within a tick: mode request, fault detection, call registration, the phase logic, then the supervisor,
  which has the last word on the drive commands.
- The phase machine: STANDING (at a landing, doors cycling) -> STARTING (run bits set, waiting for the brake) ->
  RUNNING (following the profile, then levelling) -> STOPPING (waiting for the brake to close) -> STANDING.
  RELEVELLING creeps back to the landing with the doors open; HALTED waits out a stop-at-once fault and then
  recovers to the nearest landing.
- A position the controller cannot trust (the drive's count not referenced since its power-up, or, at power-up, a
  door-zone sensor that disagrees with the count) is never used to move or to level: the car first makes a
  CORRECTING run at low speed, doors closed, towards the reference mark near the bottom landing; the drive
  re-references its count as the car passes the mark, and the car then recovers to the nearest landing.
- Rescue (on the rescue device's battery): the car picks the landing the load makes easiest to reach, runs there at
  rescue speed, parks with its doors open and holds the rescue notice until the mains return.
"""

from __future__ import annotations

import bisect
import enum
from dataclasses import dataclass, field, replace

from carctl.core import calls as call_registry
from carctl.core import dispatch, door, motion
from carctl.core.calls import Calls
from carctl.core.config import ControllerConfig
from carctl.core.timing import Timing
from carctl.core.door import DoorInputs, DoorPhase, DoorState, Stimulus
from carctl.core.modes import RULES, ModeRules
from carctl.core.signals import Commands, Direction, Event, EventKind, Inputs, Mode
from carctl.core.supervisor import (TRACKING_LIMIT_M, Fault, FaultLevel, SupervisorLimits, detect, enforce,
                                    fault_detail, update_faults, worst_level)

# The levelling phase at the end of a run gives up after this long past the plan and stops where it is.
LEVELLING_TIMEOUT_S = 5.0
# The car counts as stopped for ending a run below this speed.
STOPPED_M_S = 0.01
# A landing button not seen pressed for this long has been released (landing boards are read every ~60 ms).
BUTTON_RELEASED_S = 1.0
# Within this fraction of the rated load of balance either direction is as easy for the rescue device: the nearer
# landing is taken.
RESCUE_BALANCED_FRACTION = 0.05
# At power-up the door-zone sensor must agree with the position by this much before either is believed.
ZONE_CHECK_MARGIN_M = 0.02
_DOOR_EVENTS = {
    Stimulus.OPEN_REQUEST: EventKind.DOORS_OPENING,
    Stimulus.OPEN_LIMIT: EventKind.DOORS_OPEN,
    Stimulus.CLOSE_REQUEST: EventKind.DOORS_CLOSING,
    Stimulus.NUDGE: EventKind.NUDGING,
    Stimulus.REOPEN: EventKind.DOORS_REOPENED,
    Stimulus.CLOSED_LIMIT: EventKind.DOORS_CLOSED,
    Stimulus.OPEN_TIMEOUT: EventKind.DOORS_CLOSING,
    Stimulus.CLOSE_TIMEOUT: EventKind.DOORS_REOPENED,
}


class Phase(enum.Enum):
    STANDING = "standing"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    INSPECTING = "inspecting"  # moving on the inspection station's hold-to-run buttons
    CORRECTING = "correcting"  # the correction run towards the reference mark, at low speed
    RELEVELLING = "relevelling"
    HALTED = "halted"


@dataclass(frozen=True, slots=True)
class Run:
    """A run in progress. Distances in the profile are along ``direction`` from ``origin_m``."""

    direction: Direction
    target: int
    origin_m: float = 0.0
    start_tick: int = 0
    profile: motion.Profile | None = None  # None until the brake is open
    parking: bool = False


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
    # Landings that someone recognised in the car (face or card) may go to; cleared when the car is empty again.
    authorised: frozenset[int] = frozenset()
    # Energy saving: the light and fan go off at dark_tick (-1 while the car is not idle) and dark is then True.
    dark_tick: int = -1
    dark: bool = False
    # Input watch: when the light curtain began to be blocked (-1: clear), and landing buttons seen pressed without
    # a break, as (landing, direction, first tick, last tick) in order.
    curtain_since_tick: int = -1
    button_streaks: tuple[tuple[int, int, int, int], ...] = ()
    # Fire return goes to the alternate landing: latched once the designated landing's detector was seen active,
    # until fire service ends.
    fire_alternate: bool = False
    # Rescue: the mode to return to when the mains return, the landing the rescue run goes to (-1: not chosen yet)
    # and whether the passengers have been released there.
    resume_mode: Mode = Mode.NORMAL
    rescue_landing: int = -1
    rescued: bool = False
    # Why the position is not trusted ("" when it is): a correction run is due. position_checked: the power-up
    # comparison of the count with the door-zone sensor has been made.
    correction: str = ""
    position_checked: bool = False


class Controller:
    """Holds the configuration; step() is a pure function of (state, inputs)."""

    def __init__(self, config: ControllerConfig) -> None:
        self.config = config
        self.timing = Timing.from_config(config.car)
        self.supervisor_limits = SupervisorLimits.from_config(config)
        self._free_landings = frozenset(config.car.free_landings) | {config.building.main_landing}
        car = config.car
        self.landings_m = config.building.landings_m
        self.landing_count = len(self.landings_m)
        self._midpoints = [(a + b) / 2 for a, b in zip(self.landings_m, self.landings_m[1:])]
        self.normal_limits = motion.Limits(car.rated_speed_m_s, car.acceleration_m_s2, car.jerk_m_s3)
        self._button_released = max(1, round(BUTTON_RELEASED_S / config.car.control_period_s))
        # The longest a relevel may creep: half the door zone at relevelling speed (2 s by default), so a relevel
        # that does not arrive is stopped well inside the zone.
        self._relevel_timeout = max(1, round(0.5 * config.building.door_zone_m / car.relevel_speed_m_s
                                             / car.control_period_s))
        self.seat_limits = motion.Limits(car.rated_speed_m_s, min(car.acceleration_m_s2, car.seat_acceleration_m_s2),
                                         min(car.jerk_m_s3, car.seat_jerk_m_s3))
        # A rescue lets the passengers out where the car stands if it is this close to level (the doors open at a
        # landing within it in service too); nearer than a relevel would bother with on the battery.
        self._rescue_level_m = 2 * car.relevel_threshold_m
        self.rescue_limits = motion.Limits(car.rescue_speed_m_s, self.seat_limits.acceleration_m_s2,
                                           self.seat_limits.jerk_m_s3)
        # The longest a correction run may take to pass the reference mark: the whole shaft at correction speed,
        # plus the brake and a margin. Longer, and the mark (or its switch) is not there.
        shaft_m = self.landings_m[-1] - self.landings_m[0] + 2 * config.building.overtravel_m
        self._correction_timeout = round((shaft_m / car.correction_speed_m_s + car.start_timeout_s + 5.0)
                                         / car.control_period_s)

    # -- helpers -------------------------------------------------------------------------------------------------

    def initial_state(self, position_m: float = 0.0) -> ControllerState:
        """After power-up the car is HALTED until the inputs show it safe; then it recovers to the nearest landing."""
        return ControllerState(landing=self.nearest_landing(position_m))

    def nearest_landing(self, position_m: float) -> int:
        return bisect.bisect_left(self._midpoints, position_m)

    def next_deadline_tick(self, state: ControllerState, after: int) -> int:
        """The earliest tick later than ``after`` at which an unchanged state may act on its own timers.

        A safe lower bound: the lockstep loop may skip ticks before it only when the state did not change."""
        candidates = [state.door.deadline_tick, state.door.retry_tick, state.park_tick]
        if state.door.blocked_since_tick >= 0:
            candidates.append(state.door.blocked_since_tick + self.timing.nudge_after)
        if state.phase is Phase.STARTING:
            candidates.append(state.phase_tick + self.timing.start_timeout)
        if not state.dark:
            candidates.append(state.dark_tick)
        if state.curtain_since_tick >= 0:
            candidates.append(state.curtain_since_tick + self.timing.curtain_fault)
        for _, _, first, last in state.button_streaks:
            candidates += [last + self._button_released + 1, first + self.timing.stuck_button]
        return min((tick for tick in candidates if tick > after), default=1 << 62)

    def _first_stoppable(self, position_m: float, direction: Direction) -> int:
        """Index of the first landing at or beyond position_m in direction."""
        if direction is Direction.UP:
            return bisect.bisect_left(self.landings_m, position_m - 1e-6)
        return bisect.bisect_right(self.landings_m, position_m + 1e-6) - 1

    # -- the step ------------------------------------------------------------------------------------------------

    def step(self, state: ControllerState, inputs: Inputs) -> tuple[ControllerState, Commands, tuple[Event, ...]]:
        events: list[Event] = []
        tick = inputs.tick
        before = state
        if inputs.mode_request is not None and inputs.mode_request is not state.mode:
            if state.mode is Mode.RESCUE and inputs.mode_request is not Mode.INSPECTION:
                state = replace(state, resume_mode=inputs.mode_request)  # taken up when the mains return
            else:
                state = self._change_mode(state, inputs.mode_request, tick, events)
        if inputs.on_battery:
            if state.mode is not Mode.RESCUE and state.mode is not Mode.INSPECTION:
                state = self._change_mode(state, Mode.RESCUE, tick, events)
        elif state.mode is Mode.RESCUE:
            state = self._change_mode(state, state.resume_mode, tick, events)
        if inputs.position_unreferenced and not state.correction:
            state = replace(state, correction="unreferenced")
        rules = RULES[state.mode]
        if (rules.recall_main_landing and not state.fire_alternate
                and self.config.building.designated_fire_landing in inputs.fire_detected):
            alternate = self.config.building.alternate_fire_landing
            events.append(Event(EventKind.RECALL_CHANGED, tick, alternate, "designated landing on fire"))
            state = replace(state, fire_alternate=True)

        present = detect(inputs, self.supervisor_limits, state.phase is Phase.RELEVELLING, not state.correction)
        if state.door.fault is not None:
            present.add(state.door.fault)
        hall_up, hall_down = inputs.hall_up_pressed, inputs.hall_down_pressed
        if (inputs.light_curtain_blocked or state.curtain_since_tick >= 0 or hall_up or hall_down
                or state.button_streaks):
            state, hall_up, hall_down = self._watch_inputs(state, inputs, present, events)
        faults = state.faults
        if present or faults:
            faults = update_faults(faults, present, inputs.fault_reset, tick, events)

        calls = state.calls
        car_pressed = inputs.car_calls_pressed
        if inputs.recognitions or state.authorised:
            state, car_pressed = self._authorisations(state, inputs, rules, events)
        if self.config.car.permissions_enabled and car_pressed:
            car_pressed = self._permitted(car_pressed, state.authorised, tick, events)
        if car_pressed or hall_up or hall_down:
            calls = call_registry.register(calls, tick, self.landing_count, car_pressed,
                                           hall_up, hall_down, inputs.accessible_button,
                                           rules.car_calls, rules.landing_calls, events)
            car = self.config.car
            calls = call_registry.apply_anti_nuisance(calls, tick, inputs.load_kg, car.anti_nuisance_car_calls,
                                                      car.anti_nuisance_load_kg, events)
        if faults is not state.faults or calls is not state.calls:
            state = replace(state, faults=faults, calls=calls)

        phase = state.phase
        if phase is Phase.RUNNING and (calls is not before.calls or faults is not before.faults
                                       or state.mode is not before.mode
                                       or state.fire_alternate != before.fire_alternate):
            state = self.retarget(state, inputs)
        if (faults and worst_level(faults) >= FaultLevel.STOP_NOW and phase is not Phase.STANDING
                and phase is not Phase.HALTED):
            state = replace(state, phase=Phase.HALTED, phase_tick=tick, run=None)
            phase = Phase.HALTED
        if state.mode is Mode.RESCUE:
            state = self._rescue(state, inputs, events)
        if state.mode is Mode.INSPECTION and phase in (Phase.RUNNING, Phase.STARTING, Phase.RELEVELLING,
                                                       Phase.CORRECTING):
            # The inspection switch ends any automatic run: the drive ramps down and the car waits for the buttons.
            state = replace(state, phase=Phase.HALTED, phase_tick=tick, run=None)
            phase = Phase.HALTED
        if (state.mode is Mode.INSPECTION and phase in (Phase.STANDING, Phase.HALTED, Phase.INSPECTING)
                and state.door.phase is DoorPhase.CLOSED):
            state, drive = self._inspecting(state, inputs)
        elif phase is Phase.RUNNING:
            state, drive = self._running(state, inputs, events)
        elif phase is Phase.STANDING:
            state, drive = self._standing(state, inputs, rules, events)
        elif phase is Phase.STARTING:
            state, drive = self._starting(state, inputs, events)
        elif phase is Phase.STOPPING:
            state, drive = self._stopping(state, inputs, rules, events)
        elif phase is Phase.RELEVELLING:
            state, drive = self._relevelling(state, inputs, rules, events)
        elif phase is Phase.CORRECTING:
            state, drive = self._correcting(state, inputs, events)
        else:
            state, drive = self._halted(state, inputs, rules, events)

        if state.dark_tick >= 0 or state.dark or (state.phase is Phase.STANDING
                                                  and state.door.phase is DoorPhase.CLOSED):
            state = self._energy_saving(state, inputs, rules, events)
        commands = self._commands(state, inputs, drive, events)
        commands = enforce(commands, state.faults, inputs, state.phase is Phase.RELEVELLING, tick, events)
        return state, commands, tuple(events)

    # -- phases --------------------------------------------------------------------------------------------------

    def _standing(self, state: ControllerState, inputs: Inputs, rules: ModeRules,
                  events: list[Event]) -> tuple[ControllerState, tuple[Direction, float]]:
        tick = inputs.tick
        at = state.landing
        calls = state.calls
        current_door = state.door
        error_m = self.landings_m[at] - inputs.position_m
        overload = Fault.OVERLOAD in state.faults
        # A full car does not stop for landing calls, and does not reopen for one at its own landing either.
        full_load = inputs.load_kg >= self.config.car.full_load_kg
        if current_door.phase is DoorPhase.CLOSED and (current_door.fault is None or tick >= current_door.retry_tick):
            recall = self._recall_landing(state, rules)
            lantern = dispatch.lantern_on_arrival(calls, at, state.direction, self.landing_count)
            if state.correction:
                # The count is not to be trusted: no landing is known to be level here. The doors open only on the
                # door-open button inside the door zone (the sensor is), and calls wait for the correction run.
                want_open = inputs.door_open_button
                level = inputs.in_door_zone
            else:
                # A door that failed to open is retried at once (its open_failures count), up to door_retries.
                want_open = (inputs.door_open_button or overload or (recall == at and rules.park_open)
                             or current_door.open_failures > 0 or current_door.fault is Fault.DOOR_OPEN_FAILED
                             or self._letting_out(state, inputs)
                             or (at in calls.car if full_load else dispatch.wants_doors_open(calls, at, lantern)))
                level = inputs.in_door_zone and abs(error_m) <= self.config.car.relevel_threshold_m * 2
            if want_open and level:
                return self._open_doors(replace(state, direction=lantern, park_tick=-1), inputs, events)
            if not inputs.door_locked or not inputs.door_closed_limit:
                return state, (Direction.NONE, 0.0)
            if abs(error_m) > self.config.building.door_zone_m and not state.correction:
                # Not where this landing is (the count jumped, or the car was moved): recover from HALTED to the
                # nearest landing rather than dispatch from a landing the car is not at.
                return replace(state, phase=Phase.HALTED, phase_tick=tick), (Direction.NONE, 0.0)
            if worst_level(state.faults) >= FaultLevel.NO_NEW_TRIPS or not rules.automatic_runs:
                return state, (Direction.NONE, 0.0)
            if state.correction:
                if state.mode is Mode.RESCUE:
                    return state, (Direction.NONE, 0.0)  # no correction run on the battery
                return self._start_correction(state, inputs, events)
            if recall is not None:
                if recall != at:
                    direction = Direction.UP if recall > at else Direction.DOWN
                    return self._start(state, direction, recall, False, tick, events)
                return state, (Direction.NONE, 0.0)
            direction = dispatch.departure_direction(calls, at, state.direction, self.landing_count)
            if direction is not Direction.NONE:
                return self._start(state, direction, -1, False, tick, events)
            return self._idle(state, rules, tick, events), (Direction.NONE, 0.0)

        # A door cycle is under way: the lantern is fixed; calls for this landing in its direction are served now.
        lantern = state.direction
        reopen = False
        if not state.correction and (at in calls.car if full_load else dispatch.wants_doors_open(calls, at, lantern)):
            calls = call_registry.serve(calls, tick, at, lantern, events)
            reopen = True
        new_door = current_door
        if inputs.accessible_button and not current_door.accessible:
            new_door = replace(current_door, accessible=True)
        # No relevelling on an untrusted count, nor on the battery (the rope stretch as passengers leave is within
        # the levelling accuracy, and the battery-fed drive may not be able to lift that side).
        if (abs(error_m) > self.config.car.relevel_threshold_m and inputs.in_door_zone
                and current_door.phase is not DoorPhase.CLOSED and not state.correction
                and state.mode is not Mode.RESCUE):
            events.append(Event(EventKind.RELEVEL_STARTED, tick, at, f"{error_m * 1000:.1f} mm"))
            return replace(state, phase=Phase.RELEVELLING, phase_tick=tick, calls=calls, door=new_door,
                           run=Run(Direction.UP if error_m > 0 else Direction.DOWN, at)), (Direction.NONE, 0.0)
        new_door = self._door_step(state, new_door, inputs, reopen, events)
        if new_door is not current_door or calls is not state.calls:
            state = replace(state, door=new_door, calls=calls)
        return state, (Direction.NONE, 0.0)

    def _idle(self, state: ControllerState, rules: ModeRules, tick: int, events: list[Event]) -> ControllerState:
        """No calls: show no direction; after the park delay, return to the parking landing with doors closed."""
        if state.direction is not Direction.NONE:
            state = replace(state, direction=Direction.NONE)
        out_of_service = state.mode is Mode.OUT_OF_SERVICE
        if state.park_tick < 0:
            # Out of service the car parks at once; in service only after the park delay.
            return replace(state, park_tick=tick + (0 if out_of_service else self.timing.park_delay))
        car = self.config.car
        home = car.out_of_service_landing if out_of_service and car.out_of_service_landing >= 0 else car.home_landing
        if tick >= state.park_tick and rules.park_at_home and state.landing != home:
            events.append(Event(EventKind.PARKING, tick, home))
            direction = Direction.UP if home > state.landing else Direction.DOWN
            return self._start(state, direction, home, True, tick, events)[0]
        return state

    def _recall_landing(self, state: ControllerState, rules: ModeRules) -> int | None:
        """Where the mode sends the car non-stop: the fire landing, or the rescue landing once chosen."""
        if not rules.recall_main_landing:
            return state.rescue_landing if state.mode is Mode.RESCUE and state.rescue_landing >= 0 else None
        building = self.config.building
        return building.alternate_fire_landing if state.fire_alternate else building.designated_fire_landing

    def _start(self, state: ControllerState, direction: Direction, target: int, parking: bool, tick: int,
               events: list[Event]) -> tuple[ControllerState, tuple[Direction, float]]:
        run = Run(direction, target, parking=parking)
        return replace(state, phase=Phase.STARTING, phase_tick=tick, direction=direction, run=run,
                       park_tick=-1), (direction, 0.0)

    def _starting(self, state: ControllerState, inputs: Inputs,
                  events: list[Event]) -> tuple[ControllerState, tuple[Direction, float]]:
        run = state.run
        assert run is not None
        tick = inputs.tick
        if not inputs.door_locked:
            return replace(state, phase=Phase.STANDING, phase_tick=tick, run=None), (Direction.NONE, 0.0)
        if not inputs.brake_open:
            if tick - state.phase_tick >= self.timing.start_timeout:
                events.append(Event(EventKind.COMMAND_BLOCKED, tick, state.landing, "drive did not start"))
                return replace(state, phase=Phase.STANDING, phase_tick=tick, run=None), (Direction.NONE, 0.0)
            return state, (run.direction, 0.0)
        target = run.target
        if target < 0 or self._recall_landing(state, RULES[state.mode]) is None:
            first = self._first_stoppable(inputs.position_m + run.direction * 0.05, run.direction)
            found = dispatch.next_stop(state.calls, first, run.direction, self.landing_count,
                                       inputs.load_kg >= self.config.car.full_load_kg)
            if found is not None and (target < 0 or (found - target) * run.direction < 0):
                target = found
        if target < 0:
            return replace(state, phase=Phase.STOPPING, phase_tick=tick, run=None), (Direction.NONE, 0.0)
        distance = (self.landings_m[target] - inputs.position_m) * run.direction
        profile = motion.plan(0.0, 0.0, max(0.0, distance), self._limits(state, inputs))
        events.append(Event(EventKind.RUN_STARTED, tick, target, "up" if run.direction > 0 else "down"))
        run = Run(run.direction, target, inputs.position_m, tick, profile, run.parking)
        state = replace(state, phase=Phase.RUNNING, phase_tick=tick, run=run)
        return self._running(state, inputs, events)

    def _limits(self, state: ControllerState, inputs: Inputs) -> motion.Limits:
        if state.mode is Mode.RESCUE:
            return self.rescue_limits
        return self.seat_limits if inputs.seat_occupied else self.normal_limits

    def _running(self, state: ControllerState, inputs: Inputs,
                 events: list[Event]) -> tuple[ControllerState, tuple[Direction, float]]:
        run = state.run
        assert run is not None and run.profile is not None
        tick = inputs.tick
        car = self.config.car
        t_s = (tick - run.start_tick) * inputs.period_s
        planned_m, planned_speed, planned_accel = run.profile.sample(t_s)
        travelled_m = (inputs.position_m - run.origin_m) * run.direction
        if abs(planned_m - travelled_m) > TRACKING_LIMIT_M:
            events.append(Event(EventKind.FAULT_RAISED, tick, -1, fault_detail(Fault.POSITION_TRACKING)))
            return replace(state, faults=state.faults | {Fault.POSITION_TRACKING}, phase=Phase.HALTED,
                           phase_tick=tick, run=None), (Direction.NONE, 0.0)
        if t_s < run.profile.duration_s:
            speed = motion.speed_reference_m_s(planned_speed, planned_accel, planned_m - travelled_m,
                                               car.drive_lag_s, car.position_gain_per_s)
            top_m_s = self.rescue_limits.speed_m_s if state.mode is Mode.RESCUE else car.rated_speed_m_s
            return state, (run.direction, min(max(speed, 0.0), top_m_s * 1.05))
        error_m = (self.landings_m[run.target] - inputs.position_m) * run.direction
        if abs(error_m) <= car.level_tolerance_m and abs(inputs.speed_m_s) < STOPPED_M_S or (
                t_s > run.profile.duration_s + LEVELLING_TIMEOUT_S):
            return replace(state, phase=Phase.STOPPING, phase_tick=tick), (Direction.NONE, 0.0)
        creep = motion.levelling_speed_m_s(error_m, car.relevel_speed_m_s, car.position_gain_per_s)
        return state, (run.direction if error_m > 0 else Direction(-run.direction), creep)

    def retarget(self, state: ControllerState, inputs: Inputs) -> ControllerState:
        """A new call, a mode change or a stop-at-next-landing fault while running: commit to a nearer stop if
        the car can still stop there."""
        run = state.run
        assert run is not None and run.profile is not None
        t_s = (inputs.tick - run.start_tick) * inputs.period_s
        if t_s >= run.profile.duration_s:
            return state
        planned_m, planned_speed, planned_accel = run.profile.sample(t_s)
        limits = self._limits(state, inputs)
        stop_m = run.origin_m + run.direction * (
            planned_m + motion.stopping_distance_m(planned_speed, planned_accel, limits))
        first = self._first_stoppable(stop_m, run.direction)
        if not 0 <= first < self.landing_count:
            return state
        rules = RULES[state.mode]
        recall = self._recall_landing(state, rules)
        if worst_level(state.faults) >= FaultLevel.STOP_AT_NEXT_LANDING:
            candidate: int | None = first
        elif recall is not None:
            candidate = recall if (recall - first) * run.direction >= 0 else first
        else:
            candidate = dispatch.next_stop(state.calls, first, run.direction, self.landing_count,
                                           inputs.load_kg >= self.config.car.full_load_kg)
        if candidate is None or candidate == run.target:
            return state
        if (candidate - run.target) * run.direction > 0 and recall is None:
            return state  # farther than the committed stop: it is served after this one
        remaining = (self.landings_m[candidate] - run.origin_m) * run.direction - planned_m
        profile = motion.plan(planned_speed, planned_accel, remaining, limits)
        if profile is None:
            return state
        origin = run.origin_m + run.direction * planned_m
        return replace(state, run=Run(run.direction, candidate, origin, inputs.tick, profile, run.parking))

    def _stopping(self, state: ControllerState, inputs: Inputs, rules: ModeRules,
                  events: list[Event]) -> tuple[ControllerState, tuple[Direction, float]]:
        if inputs.brake_open or inputs.drive_running:
            return state, (Direction.NONE, 0.0)
        tick = inputs.tick
        run = state.run
        at = self.nearest_landing(inputs.position_m)
        travel = run.direction if run is not None else state.direction
        state = replace(state, phase=Phase.STANDING, phase_tick=tick, landing=at, run=None)
        if run is None:
            return state, (Direction.NONE, 0.0)
        lantern = dispatch.lantern_on_arrival(state.calls, at, travel, self.landing_count)
        parked_open = rules.park_open and at == self._recall_landing(state, rules)
        if not (dispatch.wants_doors_open(state.calls, at, lantern) or parked_open
                or self._letting_out(state, inputs)):
            return replace(state, direction=lantern), (Direction.NONE, 0.0)
        events.append(Event(EventKind.ARRIVED, tick, at, "up" if lantern > 0 else "down" if lantern < 0 else ""))
        return self._open_doors(replace(state, direction=lantern), inputs, events)

    def _open_doors(self, state: ControllerState, inputs: Inputs,
                    events: list[Event]) -> tuple[ControllerState, tuple[Direction, float]]:
        at = state.landing
        accessible = at in state.calls.accessible
        calls = call_registry.serve(state.calls, inputs.tick, at, state.direction, events)
        current = state.door
        opened = current
        if current.phase is DoorPhase.CLOSED:
            opened = DoorState(open_failures=current.open_failures, accessible=accessible, fault=current.fault)
        new_door = self._door_step(state, opened, inputs, False, events, open_request=True)
        return replace(state, calls=calls, door=new_door, park_tick=-1), (Direction.NONE, 0.0)

    def _relevelling(self, state: ControllerState, inputs: Inputs, rules: ModeRules,
                     events: list[Event]) -> tuple[ControllerState, tuple[Direction, float]]:
        car = self.config.car
        run = state.run
        error_m = self.landings_m[state.landing] - inputs.position_m
        # The doors keep their cycle, but may not close while the car creeps.
        new_door = self._door_step(state, state.door, inputs, False, events, creeping=True)
        if new_door is not state.door:
            state = replace(state, door=new_door)
        if run is not None and inputs.tick - state.phase_tick > self._relevel_timeout:
            # A relevel covers millimetres; one still creeping after this long is not getting there (a frozen
            # encoder would creep the car, doors open, out of the door zone): stop at once, latched.
            events.append(Event(EventKind.FAULT_RAISED, inputs.tick, -1, fault_detail(Fault.POSITION_TRACKING)))
            return replace(state, faults=state.faults | {Fault.POSITION_TRACKING}, phase=Phase.HALTED,
                           phase_tick=inputs.tick, run=None), (Direction.NONE, 0.0)
        if run is not None and (abs(error_m) > car.level_tolerance_m or abs(inputs.speed_m_s) >= STOPPED_M_S):
            direction = Direction.UP if error_m > 0 else Direction.DOWN
            return state, (direction, motion.levelling_speed_m_s(error_m, car.relevel_speed_m_s,
                                                                 car.position_gain_per_s))
        if run is not None:
            return replace(state, run=None), (Direction.NONE, 0.0)
        if inputs.brake_open or inputs.drive_running:
            return state, (Direction.NONE, 0.0)
        return replace(state, phase=Phase.STANDING, phase_tick=inputs.tick), (Direction.NONE, 0.0)

    def _halted(self, state: ControllerState, inputs: Inputs, rules: ModeRules,
                events: list[Event]) -> tuple[ControllerState, tuple[Direction, float]]:
        """Wait out a stop-at-once fault; then, standing still, recover to the nearest landing (in rescue, to the
        rescue landing), unless the position is not to be trusted: then a correction run comes first."""
        if worst_level(state.faults) >= FaultLevel.STOP_NOW or inputs.brake_open or inputs.drive_running:
            return state, (Direction.NONE, 0.0)
        tick = inputs.tick
        if not state.position_checked:
            state = replace(state, position_checked=True, correction=state.correction or self._position_doubt(inputs))
        if state.correction:
            return self._halted_untrusted(state, inputs, rules, events)
        at = self.nearest_landing(inputs.position_m)
        if state.mode is Mode.RESCUE and state.rescue_landing >= 0:
            at = state.rescue_landing
        error_m = self.landings_m[at] - inputs.position_m
        level_m = self._rescue_level_m if state.mode is Mode.RESCUE else self.config.car.relevel_threshold_m
        if abs(error_m) <= level_m and inputs.in_door_zone:
            lantern = dispatch.lantern_on_arrival(state.calls, at, Direction.NONE, self.landing_count)
            state = replace(state, phase=Phase.STANDING, phase_tick=tick, landing=at, direction=lantern)
            if state.door.phase is DoorPhase.CLOSED and inputs.load_kg > self.config.car.anti_nuisance_load_kg:
                return self._open_doors(state, inputs, events)  # let anyone inside out
            return state, (Direction.NONE, 0.0)
        if state.door.phase is not DoorPhase.CLOSED:
            # Stopped away from a landing with the doors open (after unintended movement): close them first.
            return self._close_doors_now(state, inputs, events)
        if not inputs.door_locked or not rules.automatic_runs or (state.mode is Mode.RESCUE
                                                                   and state.rescue_landing < 0):
            return state, (Direction.NONE, 0.0)
        direction = Direction.UP if error_m > 0 else Direction.DOWN
        state = replace(state, landing=at)
        return self._start(state, direction, at, False, tick, events)

    def _close_doors_now(self, state: ControllerState, inputs: Inputs,
                         events: list[Event]) -> tuple[ControllerState, tuple[Direction, float]]:
        """Standing still away from a landing with the doors not closed: close them, without waiting for a dwell."""
        new_door = self._door_step(state, state.door, inputs, False, events, close_now=True)
        return (replace(state, door=new_door) if new_door is not state.door else state), (Direction.NONE, 0.0)

    # -- position correction -------------------------------------------------------------------------------------

    def _position_doubt(self, inputs: Inputs) -> str:
        """At power-up, standing still: why the count is not to be trusted, or "" if it is. The door-zone sensor
        (vanes at each landing) must agree with what the count says about being in a zone."""
        if inputs.position_unreferenced:
            return "unreferenced"
        off_m = abs(self.landings_m[self.nearest_landing(inputs.position_m)] - inputs.position_m)
        zone_m = self.config.building.door_zone_m
        if inputs.in_door_zone and off_m > zone_m + ZONE_CHECK_MARGIN_M:
            return "zone_mismatch"
        if not inputs.in_door_zone and off_m < zone_m - ZONE_CHECK_MARGIN_M:
            return "zone_mismatch"
        return ""

    def _halted_untrusted(self, state: ControllerState, inputs: Inputs, rules: ModeRules,
                          events: list[Event]) -> tuple[ControllerState, tuple[Direction, float]]:
        """Standing still with a position not to be trusted: finish a door cycle under way inside the door zone,
        close the doors outside it, then make the correction run (not on the battery, not in inspection)."""
        if state.door.phase is not DoorPhase.CLOSED:
            if inputs.in_door_zone:
                return replace(state, phase=Phase.STANDING, phase_tick=inputs.tick), (Direction.NONE, 0.0)
            return self._close_doors_now(state, inputs, events)
        if not inputs.door_locked or not rules.automatic_runs or state.mode is Mode.RESCUE:
            return state, (Direction.NONE, 0.0)
        return self._start_correction(state, inputs, events)

    def _start_correction(self, state: ControllerState, inputs: Inputs,
                          events: list[Event]) -> tuple[ControllerState, tuple[Direction, float]]:
        """Towards the reference mark: down from above it, up from below it (the switch is made below it)."""
        direction = Direction.UP if inputs.below_reference_mark else Direction.DOWN
        events.append(Event(EventKind.CORRECTION_RUN, inputs.tick, -1, f"started:{state.correction}"))
        state = replace(state, phase=Phase.CORRECTING, phase_tick=inputs.tick, direction=direction, run=None,
                        park_tick=-1)
        return state, (direction, self.config.car.correction_speed_m_s)

    def _correcting(self, state: ControllerState, inputs: Inputs,
                    events: list[Event]) -> tuple[ControllerState, tuple[Direction, float]]:
        """Run at correction speed until the reference switch changes: the drive re-references its count at that
        edge. Then stop; the HALTED recovery takes the car to the nearest landing on the corrected position."""
        tick = inputs.tick
        passed = inputs.below_reference_mark is (state.direction is Direction.DOWN)
        if passed and not inputs.position_unreferenced:
            events.append(Event(EventKind.CORRECTION_RUN, tick, -1, "done"))
            return replace(state, phase=Phase.HALTED, phase_tick=tick, correction="",
                           position_checked=True), (Direction.NONE, 0.0)
        if passed or tick - state.phase_tick > self._correction_timeout:
            # Past the mark with the drive still unreferenced, or no mark found in a whole shaft's travel.
            events.append(Event(EventKind.FAULT_RAISED, tick, -1, fault_detail(Fault.REFERENCE_NOT_FOUND)))
            return replace(state, faults=state.faults | {Fault.REFERENCE_NOT_FOUND}, phase=Phase.HALTED,
                           phase_tick=tick), (Direction.NONE, 0.0)
        if not inputs.door_locked or not inputs.door_closed_limit:
            return replace(state, phase=Phase.HALTED, phase_tick=tick), (Direction.NONE, 0.0)
        return state, (state.direction, self.config.car.correction_speed_m_s)

    # -- rescue --------------------------------------------------------------------------------------------------

    def _rescue(self, state: ControllerState, inputs: Inputs, events: list[Event]) -> ControllerState:
        """Choose the rescue landing once the car stands still on the battery; report the release of the
        passengers once the doors open there."""
        if state.rescue_landing < 0:
            if (state.correction or (state.phase is not Phase.HALTED and state.phase is not Phase.STANDING)
                    or inputs.brake_open or inputs.drive_running or abs(inputs.speed_m_s) >= STOPPED_M_S
                    or Fault.DRIVE_STALE in state.faults):
                return state
            return replace(state, rescue_landing=self._rescue_target(inputs))
        if (not state.rescued and state.phase is Phase.STANDING and state.landing == state.rescue_landing
                and state.door.phase is not DoorPhase.CLOSED):
            events.append(Event(EventKind.RESCUED, inputs.tick, state.landing,
                                f"{inputs.load_kg:.0f} kg"))
            return replace(state, rescued=True)
        return state

    def _rescue_target(self, inputs: Inputs) -> int:
        """The landing the car is level at (within the levelling accuracy); else the first landing in the direction
        the load makes easier (down for a car heavier than its counterweight, up for a lighter one); near balance,
        the nearer landing."""
        car = self.config.car
        position = inputs.position_m
        nearest = self.nearest_landing(position)
        level_m = self._rescue_level_m
        if inputs.in_door_zone and abs(self.landings_m[nearest] - position) <= level_m:
            return nearest
        balance_kg = car.balance_fraction * car.rated_load_kg
        if abs(inputs.load_kg - balance_kg) <= RESCUE_BALANCED_FRACTION * car.rated_load_kg:
            return nearest
        lighter = Direction.DOWN if inputs.load_kg > balance_kg else Direction.UP
        landing = self._first_stoppable(position + lighter * level_m, lighter)
        if 0 <= landing < self.landing_count:
            return landing
        return nearest  # beyond the terminal landing in that direction: the only way is back

    def _inspecting(self, state: ControllerState,
                    inputs: Inputs) -> tuple[ControllerState, tuple[Direction, float]]:
        """Hold-to-run from the car-top station: at most the inspection speed, only while one button is held, with
        the doors closed and locked, and never past a terminal landing; a reversal waits for the car to stop."""
        car = self.config.car
        up, down = inputs.inspection_up, inputs.inspection_down
        direction = Direction.UP if up and not down else Direction.DOWN if down and not up else Direction.NONE
        if direction is not Direction.NONE and (worst_level(state.faults) >= FaultLevel.STOP_NOW
                                                or not inputs.door_locked or not inputs.door_closed_limit):
            direction = Direction.NONE
        remaining_m = 0.0
        if direction is not Direction.NONE:
            limit_m = self.landings_m[-1] if direction is Direction.UP else self.landings_m[0]
            remaining_m = (limit_m - inputs.position_m) * direction
            if remaining_m <= car.level_tolerance_m:
                direction = Direction.NONE  # at the terminal landing: no further
        moving = inputs.brake_open or inputs.drive_running
        if direction is not Direction.NONE and state.phase is Phase.INSPECTING and direction is not state.direction \
                and moving:
            return state, (Direction.NONE, 0.0)  # reversing: stop first
        if direction is Direction.NONE:
            if state.phase is not Phase.INSPECTING or moving:
                return state, (Direction.NONE, 0.0)
            at = self.nearest_landing(inputs.position_m)
            level = abs(self.landings_m[at] - inputs.position_m) <= car.relevel_threshold_m and inputs.in_door_zone
            return replace(state, phase=Phase.STANDING if level else Phase.HALTED, phase_tick=inputs.tick,
                           landing=at, direction=Direction.NONE), (Direction.NONE, 0.0)
        if state.phase is not Phase.INSPECTING or state.direction is not direction:
            state = replace(state, phase=Phase.INSPECTING, phase_tick=inputs.tick, direction=direction, run=None)
        return state, (direction, motion.levelling_speed_m_s(remaining_m, car.inspection_speed_m_s,
                                                             car.position_gain_per_s))

    def _watch_inputs(self, state: ControllerState, inputs: Inputs, present: set[Fault],
                      events: list[Event]) -> tuple[ControllerState, frozenset[int], frozenset[int]]:
        """A light curtain blocked too long, and stuck landing buttons (whose presses are then dropped)."""
        tick = inputs.tick
        curtain = state.curtain_since_tick
        if not inputs.light_curtain_blocked:
            curtain = -1
        elif curtain < 0:
            curtain = tick
        elif tick - curtain >= self.timing.curtain_fault:
            present.add(Fault.LIGHT_CURTAIN_BLOCKED)
        streaks = {(landing, direction): (first, last) for landing, direction, first, last in state.button_streaks}
        pressed = [(landing, 1) for landing in inputs.hall_up_pressed]
        pressed += [(landing, -1) for landing in inputs.hall_down_pressed]
        for key in pressed:
            first, last = streaks.get(key, (tick, tick))
            streaks[key] = (first if tick - last <= self._button_released else tick, tick)
        stuck = set()
        for key, (first, last) in list(streaks.items()):
            if tick - last > self._button_released:
                del streaks[key]  # released
            elif tick - first >= self.timing.stuck_button:
                stuck.add(key)
                if first + self.timing.stuck_button == tick:
                    events.append(Event(EventKind.CALL_REFUSED, tick, key[0],
                                        f"{'up' if key[1] > 0 else 'down'}:button stuck"))
        hall_up, hall_down = inputs.hall_up_pressed, inputs.hall_down_pressed
        if stuck:
            present.add(Fault.LANDING_BUTTON_STUCK)
            hall_up = frozenset(landing for landing in hall_up if (landing, 1) not in stuck)
            hall_down = frozenset(landing for landing in hall_down if (landing, -1) not in stuck)
        ordered = tuple(sorted((landing, direction, first, last) for (landing, direction), (first, last)
                               in streaks.items()))
        if curtain != state.curtain_since_tick or ordered != state.button_streaks:
            state = replace(state, curtain_since_tick=curtain, button_streaks=ordered)
        return state, hall_up, hall_down

    def _energy_saving(self, state: ControllerState, inputs: Inputs, rules: ModeRules,
                       events: list[Event]) -> ControllerState:
        """Light and fan off after the car has stood idle with its doors closed; on with the first call or button
        (the call registers on the same tick, so the car is lit before its doors open)."""
        idle = (rules.energy_saving and self.timing.energy_saving > 0 and state.phase is Phase.STANDING
                and state.door.phase is DoorPhase.CLOSED and not state.calls.any() and not inputs.door_open_button
                and not inputs.door_close_button and not inputs.recognitions)
        tick = inputs.tick
        if not idle:
            if state.dark:
                events.append(Event(EventKind.ENERGY_SAVING, tick, -1, "off"))
                return replace(state, dark=False, dark_tick=-1)
            return replace(state, dark_tick=-1) if state.dark_tick >= 0 else state
        if state.dark:
            return state
        if state.dark_tick < 0:
            return replace(state, dark_tick=tick + self.timing.energy_saving)
        if tick >= state.dark_tick:
            events.append(Event(EventKind.ENERGY_SAVING, tick, -1, "on"))
            return replace(state, dark=True)
        return state

    def _letting_out(self, state: ControllerState, inputs: Inputs) -> bool:
        """A stop-at-the-next-landing fault with someone in the car: the doors open there and stay open until the
        car is empty."""
        return (bool(state.faults) and worst_level(state.faults) >= FaultLevel.STOP_AT_NEXT_LANDING
                and inputs.load_kg > self.config.car.anti_nuisance_load_kg)

    # -- doors and outputs ---------------------------------------------------------------------------------------

    def _door_step(self, state: ControllerState, current: DoorState, inputs: Inputs, reopen: bool,
                   events: list[Event], open_request: bool = False, creeping: bool = False,
                   close_now: bool = False) -> DoorState:
        rules = RULES[state.mode]
        parked_open = rules.park_open and state.landing == self._recall_landing(state, rules)
        seen = DoorInputs(
            open_request=open_request,
            close_request=inputs.door_close_button or close_now,
            reopen_request=reopen,
            hold_open=creeping or parked_open or Fault.OVERLOAD in state.faults or self._letting_out(state, inputs),
            auto_close=rules.auto_close,
            open_limit=inputs.door_open_limit,
            closed_locked=inputs.door_closed_limit and inputs.door_locked,
            light_curtain=inputs.light_curtain_blocked,
            safety_edge=inputs.safety_edge,
            open_button=inputs.door_open_button,
        )
        new_door, stimulus = door.update(current, inputs.tick, seen, self.timing)
        if stimulus is not None:
            fault = new_door.fault
            events.append(Event(_DOOR_EVENTS[stimulus], inputs.tick, -1, fault.value if fault is not None else ""))
        return new_door

    def _commands(self, state: ControllerState, inputs: Inputs, drive: tuple[Direction, float],
                  events: list[Event]) -> Commands:
        direction, speed = drive
        phase = state.phase
        running = (phase is Phase.RUNNING or phase is Phase.STARTING or phase is Phase.INSPECTING
                   or phase is Phase.CORRECTING or (phase is Phase.RELEVELLING and state.run is not None))
        door_state = state.door
        door_open, door_close = door.door_commands(door_state)
        calls = state.calls
        arrived = -1
        announce = -1
        if events:
            for event in events:
                if event.kind is EventKind.ARRIVED:
                    arrived = announce = event.landing
                elif event.kind is EventKind.RECOGNISED and announce < 0 and event.landing in state.calls.car:
                    announce = event.landing  # "going to floor N" for a resident the car recognised
        overload = bool(state.faults) and Fault.OVERLOAD in state.faults
        return Commands(
            running and direction is Direction.UP,
            running and direction is Direction.DOWN,
            speed if running else 0.0,
            False,
            inputs.fault_reset,
            door_open,
            door_close,
            door_state.nudging,
            door_state.accessible,
            door_state.nudging or overload,
            arrived >= 0,
            announce,
            calls.car,
            calls.up,
            calls.down,
            bisect.bisect_left(self._midpoints, inputs.position_m),
            state.direction,
            overload,
            not state.dark,  # car light
            not state.dark,  # car fan
            state.rescued,
        )

    def _authorisations(self, state: ControllerState, inputs: Inputs, rules: ModeRules,
                        events: list[Event]) -> tuple[ControllerState, frozenset[int]]:
        """Recognitions add to the ride's authorised landings and, with the car at a landing, call the resident's
        home landing as if they had pressed its button. An empty car forgets who was in it."""
        car_pressed = inputs.car_calls_pressed
        authorised = state.authorised
        if (authorised and not inputs.recognitions and state.phase is Phase.STANDING
                and state.door.phase is DoorPhase.CLOSED and inputs.load_kg <= self.config.car.anti_nuisance_load_kg):
            return replace(state, authorised=frozenset()), car_pressed
        for seen in inputs.recognitions:
            authorised = authorised | seen.allowed_landings | {seen.home_landing}
            events.append(Event(EventKind.RECOGNISED, inputs.tick, seen.home_landing,
                                f"{seen.source}:{seen.resident}"))
            at_landing = state.phase is Phase.STANDING or state.phase is Phase.RELEVELLING
            if at_landing and rules.car_calls and seen.home_landing != state.landing and (
                    0 <= seen.home_landing < self.landing_count):
                car_pressed = car_pressed | {seen.home_landing}
        if authorised is not state.authorised:
            state = replace(state, authorised=authorised)
        return state, car_pressed

    def _permitted(self, pressed: frozenset[int], authorised: frozenset[int], tick: int,
                   events: list[Event]) -> frozenset[int]:
        """With floor permissions on, a car call outside the free landings needs someone in the car who may go
        there; a refused button stays dark."""
        allowed = self._free_landings | authorised
        refused = pressed - allowed
        for landing in sorted(refused):
            events.append(Event(EventKind.CALL_REFUSED, tick, landing, "car:not permitted"))
        return pressed - refused if refused else pressed

    def _change_mode(self, state: ControllerState, mode: Mode, tick: int, events: list[Event]) -> ControllerState:
        rules = RULES[mode]
        events.append(Event(EventKind.MODE_CHANGED, tick, -1, f"{state.mode.value}->{mode.value}"))
        calls = call_registry.withdraw(state.calls, tick, not rules.cancel_car_calls, rules.landing_calls,
                                       mode.value, events)
        resume = state.mode if mode is Mode.RESCUE else state.resume_mode
        return replace(state, mode=mode, calls=calls, park_tick=-1, fire_alternate=False, resume_mode=resume,
                       rescue_landing=-1, rescued=False)


__all__ = ["Controller", "ControllerState", "Phase", "Run"]
