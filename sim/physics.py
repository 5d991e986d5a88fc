"""The shaft: drive, brake, car and ropes, encoder, door operator and the car's sensors.

Rules of this module:
- One fixed step per control tick: update(commands) moves everything by period_s, like ArduPilot's
  SIM_Aircraft::update. It reads only the commands a real drive and car-top board would receive.
- The truth lives here (true position, true speed, door position). What the controller sees is what sensors()
  reports: the encoder is quantised, the speed is in whole mm/s, injected faults distort them.
- The door position is an integer count of units, so a door moving for n ticks is exactly n steps. A car with doors
  on both sides has a second operator (sim/door_operator.py), moved by its own commands, locked by its own contacts;
  the safety chain's door contacts are those of every car door.
- The drive behaves like an elevator inverter: it opens the brake only on a run command with the safety chain
  closed, follows the speed reference with a first-order lag inside its own acceleration limit, ramps to a stop and
  drops the brake when the run command goes, and drops the brake at once on a quick stop, a trip or a chain break.
- is_steady() and next_input_change_tick() tell the lockstep loop when, and for how long, the sensors cannot
  change under the same commands (advance_steady() then moves the door over the span in closed form: its travel is
  integers); plain_run() when update() would move only the drive, by its speed loop, which update_plain_run() then
  does by the same arithmetic (_follow, _move), for the lockstep's cruised runs; run_plain() does it for a span of
  ticks, asking a reference of the caller each tick, the same arithmetic written out once with the constants of the
  span in local variables (tests/sim/test_cruise.py compares it with update_plain_run()).
- Mains loss: the drive trips on undervoltage and the door operator stops. With a rescue device fitted, after
  rescue_switch_s its battery feeds the drive and the door operator: the drive reports ON_BATTERY, runs at no more
  than rescue_speed_limit_m_s, and trips on overcurrent if asked to lift more out-of-balance mass than
  rescue_lift_limit_kg. Without one, the drive restarts when the mains return and its position count starts again
  at zero, unreferenced.
- The drive's position count is re-referenced, exactly (the drive latches it in hardware), whenever the car passes
  the reference mark reference_mark_m above the bottom landing.
- The brake: the drive's brake-open bit is its command and, healthy, the brake itself; the contacts of
  physics.brake_contacts circuits follow it on the same tick (brake_contacts()); asked for the brake test with the
  car standing, the drive holds its test torque against the closed brake, which a healthy brake holds.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import ClassVar, NamedTuple, Union

from carctl.core.config import MAX_LANDING_INDEX, ControllerConfig, Range, check_ranges, shown
from carctl.core.signals import Commands
from carctl.protocol.drive_map import DriveCommand, DriveStatus, make_drive_status
from carctl.protocol.panelbus import CarTopOutputs
from sim.door_operator import RearDoor

GRAVITY_M_S2 = 9.81
DOOR_TRAVEL_UNITS = 1_000_000

# Every fault the simulator can inject, the one list: scenario files (sim/scenario.py), the control channel of
# `sim serve` and the procedures all take their names from it, and Shaft.inject refuses any other. The shaft acts on
# each; comm_loss, drive_frozen (the drive obeys, but its status block stops changing, TICK included) and the three
# silent boards are also what the lockstep loop (and `sim serve`, on Modbus and the panel bus) withholds from the
# controller.
FAULT_KINDS = ("drive_fault", "comm_loss", "door_jam", "light_curtain_blocked", "power_loss", "encoder_freeze",
               "overload", "brake_slip", "position_lost", "reference_fault", "drive_runaway", "door_lock_lost",
               "safety_chain_open", "car_top_silent", "car_panel_silent", "landing_silent", "drive_frozen",
               "encoder_slip", "alarm_battery", "brake_stuck_closed", "brake_stuck_open", "brake_contact_stuck",
               "weak_brake", "modem_dead", "rear_door_jam", "rear_door_lock_lost", "rear_light_curtain_blocked")
# rear_door_jam, rear_door_lock_lost, rear_light_curtain_blocked: door_jam, door_lock_lost and
# light_curtain_blocked for the rear door operator of a car with doors on both sides (sim/door_operator.py); on a car
# with one door they are listed as injected and act on nothing.
# modem_dead: the alarm's GSM module answers nothing at all (sim/modem.py). Not the shaft's: the lockstep and
# `sim serve` act on it in the module; the shaft only lists it as injected.
# encoder_slip: the drive's count advances this much less than the car moves (a slipping encoder wheel), unknown to
# the drive, which still reports it referenced; the reference mark puts it right when the car passes it. Small
# enough for the run's position loop to absorb (the reference may lead the plan by 5 %), so no tracking check sees
# it: the car simply goes farther than its count says.
ENCODER_SLIP_FRACTION = 0.04
# The brake's faults (docs/scenarios.md): brake_stuck_closed, neither circuit lifts when the drive opens the brake
# (the motor drags against it: the car does not move; the contacts read dropped); brake_stuck_open, both circuits
# hang lifted when the drive next drops the brake (the contacts read lifted and nothing holds the car: it creeps as
# with brake_slip, until the rope gripper acts); brake_contact_stuck, the last fitted circuit's contact reads lifted
# whatever the brake does (the brake itself is sound); weak_brake, the brake holds the car but not the drive's test
# torque: under it the car creeps upwards (the test torque lifts), and stops on the brake when the torque goes.

# Drive fault codes the simulated drive reports in its FAULT_CODE register (docs/register-map.md).
# The farthest a landing's true position may be from the typed one in a scenario: a storey's worth, enough to put two
# vanes too close together for a learning run to accept.
LANDING_OFFSET_MAX_MM = 3000.0

DRIVE_FAULT_CODES = {
    "drive_fault": 0x21,  # overcurrent
    "comm_loss": 0x31,  # watchdog stopped changing
    "power_loss": 0x41,  # DC-bus undervoltage
}


@dataclass(frozen=True, slots=True)
class PhysicsConfig:
    car_mass_kg: float = 550.0
    # Counterweight balance: car plus 45 % of rated load, as usual for traction lifts.
    balance_fraction: float = 0.45
    drive_lag_s: float = 0.05
    drive_max_accel_m_s2: float = 1.5
    brake_open_s: float = 0.3
    emergency_decel_m_s2: float = 2.5
    encoder_resolution_m: float = 0.001
    # Rope stretch: the car sinks this much per kilogram of load (a few centimetres at full load).
    rope_stretch_m_per_kg: float = 0.00003
    door_lock_s: float = 0.1
    nudge_close_s: float = 8.0
    drive_efficiency: float = 0.85
    standby_power_w: float = 150.0
    # The automatic rescue device (battery): fitted or not, how long after the mains fail it takes over, the drive's
    # speed limit on it, and the most out-of-balance mass the battery-fed drive can lift before it trips.
    rescue_device: bool = True
    rescue_switch_s: float = 3.0
    rescue_speed_limit_m_s: float = 0.3
    rescue_lift_limit_kg: float = 100.0
    # The reference mark the drive re-references its count at, this far above the bottom landing.
    reference_mark_m: float = 0.5
    # The drive's brake monitoring (docs/register-map.md): how many brake circuits' contacts it reports in STATUS
    # bits 10-11 (0: a drive without them, as before), and whether it answers the brake test's request (CONTROL
    # bit4) by holding its test torque against the closed brake (STATUS bit12).
    brake_contacts: int = 0
    brake_test: bool = True
    # Where each landing's door-zone vane (and sill) truly is, off the typed table (building.landings_m), in mm: the
    # scenario's [building] landing_offsets_mm. The door-zone sensor, the terminal switches and the reference mark
    # follow the true landings; a car levelled on the typed table stands off by these. () or zeros: none.
    landing_offsets_mm: tuple[float, ...] = ()
    # Landings whose door-zone vane is not there (never fitted, or fallen off): the sensor sees no zone at them.
    missing_vanes: tuple[int, ...] = ()

    RANGES: ClassVar[Mapping[str, Range]] = {
        "car_mass_kg": Range(0.0, 10_000.0, "kg", above=True),
        "balance_fraction": Range(0.0, 1.0),
        "drive_lag_s": Range(0.0, 1.0, "s", above=True),
        "drive_max_accel_m_s2": Range(0.0, 5.0, "m/s²", above=True),
        "brake_open_s": Range(0.0, 5.0, "s", above=True),
        # A brake stops a car at about 2.5 m/s²; safety gear at up to 1 g on average, more at its peak.
        "emergency_decel_m_s2": Range(0.0, 20.0, "m/s²", above=True),
        "encoder_resolution_m": Range(0.0, 0.01, "m", above=True),
        "rope_stretch_m_per_kg": Range(0.0, 0.0005, "m/kg"),
        "door_lock_s": Range(0.0, 5.0, "s", above=True),
        "nudge_close_s": Range(0.0, 60.0, "s", above=True),
        "drive_efficiency": Range(0.0, 1.0, above=True),
        "standby_power_w": Range(0.0, 10_000.0, "W"),
        "rescue_switch_s": Range(0.0, 60.0, "s", above=True),
        "rescue_speed_limit_m_s": Range(0.0, 1.0, "m/s", above=True),
        "rescue_lift_limit_kg": Range(0.0, 5000.0, "kg", above=True),
        "reference_mark_m": Range(0.0, 300.0, "m", above=True),
        "brake_contacts": Range(0, 2, "circuits"),
        "landing_offsets_mm": Range(-LANDING_OFFSET_MAX_MM, LANDING_OFFSET_MAX_MM, "mm"),
        "missing_vanes": Range(0, MAX_LANDING_INDEX),
    }

    def __post_init__(self) -> None:
        check_ranges(self, "physics")


def true_landings_m(typed_m: tuple[float, ...], offsets_mm: tuple[float, ...]) -> tuple[float, ...]:
    """The landings where the shaft has them: the typed heights moved by the offsets (none: the typed ones)."""
    if not offsets_mm:
        return typed_m
    return tuple(height + offset / 1000.0 for height, offset in zip(typed_m, offsets_mm))


class UnknownFault(ValueError):
    """A fault kind the simulator does not have: refused, so that nobody believes a fault was injected that never
    was."""

    def __init__(self, kind: object) -> None:
        super().__init__(f"unknown fault kind {shown(kind)} (known: {', '.join(FAULT_KINDS)})")


class Shaft:
    """Mutable simulation state; the lockstep loop owns one."""

    def __init__(self, config: ControllerConfig, physics: PhysicsConfig | None = None,
                 start_landing: int | None = None) -> None:
        self.config = config
        self.physics = physics or PhysicsConfig()
        car = config.car
        building = config.building
        self.period_s = car.control_period_s
        # The true landings (the vanes, the sills): the typed table moved by physics.landing_offsets_mm.
        self.landings_m = true_landings_m(building.landings_m, self.physics.landing_offsets_mm)
        self.door_zone_m = building.door_zone_m
        # The vanes the door-zone sensor sees: at the true landings, but for the missing ones.
        self.vanes_m = tuple(height for index, height in enumerate(self.landings_m)
                             if index not in self.physics.missing_vanes)
        # The terminal slowdown switches, where the configuration says the cams are: actuated from that distance of
        # a terminal landing onwards (beyond the landing too), by the car's true position.
        self.slowdown_m = car.terminal_switches_m
        self._slowdown_reach_m = max(car.terminal_switches_m, default=-math.inf)
        self.slowdown = (0, 0)  # (top, bottom): bit i, the switch at slowdown_m[i]
        landing = car.home_landing if start_landing is None else start_landing
        self.load_kg = 0.0
        self.extra_load_kg = 0.0
        self.sheave_m = self.landings_m[landing]
        self.position_m = self.sheave_m
        self.speed_m_s = 0.0
        self.speed_ref_m_s = 0.0
        self.brake_open = False
        self.brake_ticks = 0
        # Each time the brake is lifted: a count, and the car's speed at that moment (0 unless it was sliding).
        self.brake_lifts = 0
        self.lift_speed_m_s = 0.0
        self.fastest_lift_m_s = 0.0
        self.drive_running = False
        ticks = lambda seconds: max(1, round(seconds / self.period_s))  # noqa: E731
        self.brake_open_ticks = ticks(self.physics.brake_open_s)
        self.lock_ticks = ticks(self.physics.door_lock_s)
        self.door_units = 0
        self.door_rate_open = -(-DOOR_TRAVEL_UNITS // ticks(car.door_open_s))
        self.door_rate_close = -(-DOOR_TRAVEL_UNITS // ticks(car.door_close_s))
        self.door_rate_slow = -(-DOOR_TRAVEL_UNITS // ticks(car.accessible_close_s))
        self.door_rate_nudge = -(-DOOR_TRAVEL_UNITS // ticks(self.physics.nudge_close_s))
        self.door_motion = 0  # +1 opening, -1 closing, 0 still
        self.lock_count = self.lock_ticks  # ticks the door has been shut; locked at lock_ticks
        # The rear door operator, on a car with doors on both sides (building.door_sides); None: one door.
        self.rear = RearDoor(self.lock_ticks, self.door_rate_open, self.door_rate_close, self.door_rate_slow,
                             self.door_rate_nudge) if building.rear_door else None
        self.alpha = 1.0 - math.exp(-self.period_s / self.physics.drive_lag_s)
        self.max_dv = self.physics.drive_max_accel_m_s2 * self.period_s
        self.emergency_dv = self.physics.emergency_decel_m_s2 * self.period_s
        self.slip_dv = 0.2 * self.period_s  # a slipping brake lets the car accelerate at 0.2 m/s²
        self.gripped = False
        # The brake's state beyond the drive's brake-open bit: both circuits hanging lifted after the drive dropped
        # them (brake_stuck_open), and the drive holding its test torque against the closed brake.
        self.brake_hanging = False
        self.test_torque = False
        self._contacts_fitted = (1 << self.physics.brake_contacts) - 1
        # Mains and the rescue device: the tick the mains failed (-1: on mains) and whether the battery feeds the drive.
        self.power_lost_tick = -1
        self.on_battery = False
        self.rescue_switch_ticks = ticks(self.physics.rescue_switch_s)
        # The drive's position count reads position_m - count_offset_m; unreferenced until the car passes the mark.
        self.count_offset_m = 0.0
        self.position_unreferenced = False
        self.mark_m = self.landings_m[0] + self.physics.reference_mark_m
        self.below_mark = False
        self.counterweight_kg = self.physics.car_mass_kg + self.physics.balance_fraction * car.rated_load_kg
        # Constants read on every moving update, kept as plain attributes (the physics record does not change).
        self._car_mass_kg = self.physics.car_mass_kg
        self._stretch_m_per_kg = self.physics.rope_stretch_m_per_kg
        self._drive_efficiency = self.physics.drive_efficiency
        self._encoder_resolution_m = self.physics.encoder_resolution_m
        # Sensor and fault state.
        self.seat_occupied = False
        self.transferring = False  # a passenger is crossing the threshold (the light curtain sees them)
        self.obstructed_until_tick = -1
        self.injected: set[str] = set()
        # Injected contact failures, as flags: the sensors that read them are read many times a tick.
        self.lock_forced_open = False  # a landing door's lock contact open (e.g. forced with the emergency key)
        self.chain_broken = False  # a safety contact other than the doors' open (pit stop, governor switch)
        self.encoder_slipping = False  # encoder_slip injected
        self.frozen_position_m = 0.0
        self.drive_fault_code = 0
        self.tick = 0
        self.energy_j = 0.0
        self.moving_ticks = 0
        self._zone = True
        self._stretch()

    # -- faults --------------------------------------------------------------------------------------------------

    def inject(self, kind: str) -> None:
        """Inject a fault of FAULT_KINDS; UnknownFault for any other kind (nothing changes)."""
        if kind not in FAULT_KINDS:
            raise UnknownFault(kind)
        if kind == "power_loss" and kind not in self.injected:
            self.power_lost_tick = self.tick
        if kind == "encoder_freeze" and kind not in self.injected:
            self.frozen_position_m = self.encoder_m()  # read before the freeze takes effect
        self.injected.add(kind)
        if kind == "position_lost":
            self._lose_count()
        self._refresh_contacts()
        if kind in DRIVE_FAULT_CODES:
            self.drive_fault_code = DRIVE_FAULT_CODES[kind]

    def clear(self, kind: str) -> None:
        """Clear a fault of FAULT_KINDS (injected or not); UnknownFault for any other kind."""
        if kind not in FAULT_KINDS:
            raise UnknownFault(kind)
        if kind == "power_loss" and kind in self.injected:
            if not self.on_battery:
                self._lose_count()  # the drive was without power: it restarts with its count at zero
            self.power_lost_tick = -1
            self.on_battery = False
        self.injected.discard(kind)
        self._refresh_contacts()
        if kind in ("brake_slip", "brake_stuck_open"):
            self.gripped = False
        if kind == "brake_stuck_open":
            self.brake_hanging = False
        if kind in DRIVE_FAULT_CODES and not any(k in self.injected for k in DRIVE_FAULT_CODES):
            self.drive_fault_code = 0

    def _refresh_contacts(self) -> None:
        self.lock_forced_open = "door_lock_lost" in self.injected
        self.chain_broken = "safety_chain_open" in self.injected
        self.encoder_slipping = "encoder_slip" in self.injected
        rear = self.rear
        if rear is not None:
            rear.jammed = "rear_door_jam" in self.injected
            rear.lock_forced_open = "rear_door_lock_lost" in self.injected
            rear.curtain_failed = "rear_light_curtain_blocked" in self.injected

    def _lose_count(self) -> None:
        self.count_offset_m = self.position_m
        self.position_unreferenced = True

    def standing_fault_code(self) -> int:
        """The drive's fault code from the faults injected now (0: none): the code a reset cannot clear."""
        for kind, code in DRIVE_FAULT_CODES.items():
            if kind in self.injected and (kind != "power_loss" or not self.drive_powered()):
                return code
        return 0

    def drive_powered(self) -> bool:
        return "power_loss" not in self.injected or self.on_battery

    def _update_mains(self) -> None:
        """The rescue device takes over rescue_switch_s after the mains fail: the drive has power again (its
        undervoltage trip clears)."""
        if (not self.on_battery and self.physics.rescue_device
                and self.tick - self.power_lost_tick >= self.rescue_switch_ticks):
            self.on_battery = True
            if not any(k in self.injected for k in DRIVE_FAULT_CODES if k != "power_loss"):
                self.drive_fault_code = 0

    # -- dynamics ------------------------------------------------------------------------------------------------

    def _stretch(self) -> None:
        total = self.load_kg + self.extra_load_kg
        self.position_m = self.sheave_m - self._stretch_m_per_kg * total
        self._zone = self._door_zone_at(self.position_m)
        # With no terminal switches fitted (the usual car) none is ever actuated: _slowdown_at's (0, 0).
        self.slowdown = self._slowdown_at(self.position_m) if self.slowdown_m else (0, 0)
        below = self.position_m < self.mark_m
        if below is not self.below_mark:
            self.below_mark = below
            if "reference_fault" not in self.injected:
                self.count_offset_m = 0.0
                self.position_unreferenced = False

    def set_load(self, load_kg: float) -> None:
        self.load_kg = load_kg
        self._stretch()

    def safety_chain_closed(self) -> bool:
        # Door contacts (of every car door) are bridged only inside the door zone (the relevelling safety circuit).
        return not self.chain_broken and (self._zone or self.doors_locked())

    def update(self, commands: ShaftCommand) -> None:
        """Advance one control period under ``commands``."""
        self.tick += 1
        if self.power_lost_tick >= 0:
            self._update_mains()
        self._update_drive(commands)
        self._update_door(commands)
        if self.rear is not None:
            self.rear.update(commands, self._zone, self.power_lost_tick < 0 or self.on_battery)

    def _update_drive(self, commands: ShaftCommand) -> None:
        speed = self.speed_m_s
        run = (commands.run_up != commands.run_down) and not commands.quick_stop
        trip = bool(self.drive_fault_code) or not self.safety_chain_closed() or commands.quick_stop
        # The brake test: the drive holds its test torque only against the closed brake, with no run and no trip.
        self.test_torque = (commands.brake_test and self.physics.brake_test and not run and not trip
                            and not self.brake_open and self.drive_powered())
        if self.test_torque and "weak_brake" in self.injected and not self.brake_hanging:
            # The brake holds the car's own out-of-balance, not the test torque: the car creeps up.
            speed = min(0.5, speed + self.slip_dv)
        elif (("brake_slip" in self.injected or self.brake_hanging) and not self.brake_open
              and not (run and not trip)):
            # The brake no longer holds: the car creeps towards the heavier side until the unintended-movement
            # protection grips it: a rope gripper that acts on the controller's quick stop once the car has left
            # the door zone (EN 81-20 5.6.7: detect before leaving the unlocking zone, stop within 1.2 m).
            if self.gripped or (commands.quick_stop and not self._zone):
                self.gripped = True
                speed = max(0.0, speed - self.emergency_dv) if speed > 0 else min(0.0, speed + self.emergency_dv)
            else:
                heavier_car = self.physics.car_mass_kg + self.load_kg + self.extra_load_kg > self.counterweight_kg
                drift = -self.slip_dv if heavier_car else self.slip_dv
                speed = max(-0.5, min(0.5, speed + drift))
        elif trip or (commands.run_up and commands.run_down):
            # The brake drops: the car stops hard.
            self._drop_brake()
            self.brake_open = False
            self.brake_ticks = 0
            self.drive_running = False
            if speed:
                speed = max(0.0, speed - self.emergency_dv) if speed > 0 else min(0.0, speed + self.emergency_dv)
        elif run and self.on_battery and self._lifts_too_much(commands):
            # The battery-fed drive cannot hold this much out-of-balance mass against gravity: overcurrent trip.
            self.drive_fault_code = DRIVE_FAULT_CODES["drive_fault"]
            self._drop_brake()
            self.brake_open = False
            self.brake_ticks = 0
            self.drive_running = False
        elif run:
            self.drive_running = True
            if not self.brake_open:
                if speed:  # still sliding on the closed brake after a stop: the brake holds while it lifts
                    speed = max(0.0, speed - self.emergency_dv) if speed > 0 else min(0.0, speed + self.emergency_dv)
                self.brake_ticks += 1
                if self.brake_ticks >= self.brake_open_ticks:
                    self.brake_open = True
                    self.brake_hanging = False
                    self.brake_lifts += 1
                    self.lift_speed_m_s = speed  # what the car was doing when its brake let go
                    self.fastest_lift_m_s = max(self.fastest_lift_m_s, abs(speed))
            if self.brake_open and "brake_stuck_closed" in self.injected:
                # The drive has opened the brake, but it has not lifted: the motor drags against it, the car stays.
                if speed:
                    speed = max(0.0, speed - self.emergency_dv) if speed > 0 else min(0.0, speed + self.emergency_dv)
            elif self.brake_open:
                reference = commands.speed_ref_m_s
                if self.on_battery and reference > self.physics.rescue_speed_limit_m_s:
                    reference = self.physics.rescue_speed_limit_m_s
                target = reference if commands.run_up else -reference
                if "drive_runaway" in self.injected:
                    target = 10.0 if commands.run_up else -10.0  # the speed loop has failed: flat out
                speed = self._follow(target, speed)
        elif self.brake_open or speed:
            # Run removed: a controlled ramp to zero speed, then the brake closes; a car sliding on its closed brake
            # (after a stop at once) stops as the brake stops it.
            step = self.max_dv if self.brake_open else self.emergency_dv
            if speed > 0:
                speed = max(0.0, speed - step)
            elif speed < 0:
                speed = min(0.0, speed + step)
            if speed == 0.0:
                self._drop_brake()
                self.brake_open = False
                self.brake_ticks = 0
                self.drive_running = False
        else:
            self.drive_running = False
        if speed:
            self._move(speed)
        self.speed_m_s = speed

    def _follow(self, target: float, speed: float) -> float:
        """The drive's speed loop, one period: a first-order lag towards ``target`` inside its acceleration limit."""
        change = (target - speed) * self.alpha
        if change > self.max_dv:
            change = self.max_dv
        elif change < -self.max_dv:
            change = -self.max_dv
        return speed + change

    def _move(self, speed: float) -> None:
        """The car moves one period, from speed_m_s to ``speed`` (not zero), and the motor's energy is counted."""
        self.moving_ticks += 1
        old = self.speed_m_s
        moved_m = (old + speed) / 2 * self.period_s
        self.sheave_m += moved_m
        if self.encoder_slipping:
            self.count_offset_m += ENCODER_SLIP_FRACTION * moved_m
        self._stretch()
        # Energy: the motor lifts the out-of-balance mass and accelerates the whole system; braking energy
        # is dissipated in the braking resistor, not returned.
        car_kg = self._car_mass_kg + self.load_kg + self.extra_load_kg
        unbalance_kg = car_kg - self.counterweight_kg
        moving_kg = car_kg + self.counterweight_kg
        accel = (speed - old) / self.period_s
        power_w = (unbalance_kg * GRAVITY_M_S2 + moving_kg * accel) * speed
        if power_w > 0:
            self.energy_j += power_w / self._drive_efficiency * self.period_s

    def plain_run(self, commands: ShaftCommand) -> bool:
        """Under these commands update() moves only the drive, by its speed loop: a run with the brake open, nothing
        injected, on mains, and every door shut, locked and still, told nothing that moves it (is_steady()'s
        counterpart for a moving car; the lockstep's cruise checks it once, and the brake's staying open each
        tick)."""
        rear = self.rear
        return (commands.run_up != commands.run_down and not commands.quick_stop and not commands.brake_test
                and not commands.door_open and self.brake_open and self.drive_running and not self.injected
                and not self.brake_hanging and self.power_lost_tick < 0 and not self.on_battery
                and not self.drive_fault_code and self.door_units == 0 and self.door_motion == 0
                and self.lock_count >= self.lock_ticks and not self.test_torque
                # The rear door, where fitted, as the front: shut, still and locked (its contact too: the safety
                # chain, which update_plain_run() does not look at, runs through it), not told to open, so that its
                # RearDoor.update() changes nothing (nothing injected: not jammed; on mains: powered).
                and (rear is None or (not commands.rear_door_open and rear.motion == 0 and rear.locked())))

    def update_plain_run(self, run_up: bool, speed_ref_m_s: float) -> None:
        """update() where plain_run() holds of the commands (and the brake is still open): the same arithmetic, none
        of the checks that cannot apply."""
        self.tick += 1
        reference = speed_ref_m_s if run_up else -speed_ref_m_s
        speed = self._follow(reference, self.speed_m_s)
        if speed:
            self._move(speed)
        self.speed_m_s = speed

    def run_plain(self, reference: Callable[[int, float, float], float], tick: int, horizon: int, run_up: bool,
                  watch: Callable[[int, float, float], None] | None = None, watch_every: bool = False,
                  bounds: tuple[float, float, float] = (math.inf, -math.inf, math.inf)) -> tuple[int, float, float]:
        """Ticks ``tick``, ``tick + 1``, ... before ``horizon`` of a plain run (plain_run() held of its commands, the
        brake open): while the car moves and no slowdown switch is actuated, the drive's count and speed as it reports
        them (encoder_m(), reported_speed_m_s()) go to ``reference(tick, position_m, speed_m_s)``, and the shaft
        moves one update_plain_run() under the reference it answers, until it answers below zero. Before a tick's
        update ``watch(tick, position_m, reference)`` sees the shaft as it is: at every tick with ``watch_every``,
        else where the car's true speed is beyond ``bounds``' overspeed either way or its true position outside
        its lowest..highest. Returns the first tick not moved and the last position and reference answered (0.0, 0.0:
        none). The arithmetic is update_plain_run()'s (_follow, _move, _stretch), in the same order."""
        speed = self.speed_m_s
        period_s, alpha, max_dv = self.period_s, self.alpha, self.max_dv
        resolution_m = self._encoder_resolution_m
        stretch_m = self._stretch_m_per_kg * (self.load_kg + self.extra_load_kg)
        car_kg = self._car_mass_kg + self.load_kg + self.extra_load_kg
        lift_n = (car_kg - self.counterweight_kg) * GRAVITY_M_S2
        moving_kg = car_kg + self.counterweight_kg
        efficiency = self._drive_efficiency
        mark_m, switches, slowdown = self.mark_m, bool(self.slowdown_m), self.slowdown
        sheave_m, position_m, offset_m, below = self.sheave_m, self.position_m, self.count_offset_m, self.below_mark
        energy_j, moved, referenced = self.energy_j, 0, False
        overspeed_m_s, lowest_m, highest_m = bounds
        reached = tick
        count_m = answer_m_s = 0.0
        while reached < horizon:
            if not speed or (switches and slowdown != (0, 0)):
                break
            count = math.floor((position_m - offset_m) / resolution_m + 0.5) * resolution_m
            answer = reference(reached, count, round(speed * 1000.0) / 1000.0)
            if answer < 0.0:
                break
            count_m, answer_m_s = count, answer
            if watch is not None and (watch_every or speed > overspeed_m_s or -speed > overspeed_m_s
                                      or not lowest_m <= position_m <= highest_m):
                self._settle_run(reached - tick, speed, sheave_m, position_m, offset_m, below, referenced, slowdown,
                                 moved, energy_j)
                moved, referenced, tick = 0, False, reached
                watch(reached, count, answer)
            # update_plain_run(): _follow, then _move (with _stretch) if the car moves.
            change = ((answer if run_up else -answer) - speed) * alpha
            if change > max_dv:
                change = max_dv
            elif change < -max_dv:
                change = -max_dv
            new_speed = speed + change
            if new_speed:
                moved += 1
                sheave_m += (speed + new_speed) / 2 * period_s
                position_m = sheave_m - stretch_m
                if switches:
                    slowdown = self._slowdown_at(position_m)
                if (position_m < mark_m) is not below:
                    below = not below
                    offset_m, referenced = 0.0, True
                power_w = (lift_n + moving_kg * ((new_speed - speed) / period_s)) * new_speed
                if power_w > 0:
                    energy_j += power_w / efficiency * period_s
            speed = new_speed
            reached += 1
        self._settle_run(reached - tick, speed, sheave_m, position_m, offset_m, below, referenced, slowdown, moved,
                         energy_j)
        return reached, count_m, answer_m_s

    def _settle_run(self, ticks: int, speed_m_s: float, sheave_m: float, position_m: float, offset_m: float,
                    below_mark: bool, referenced: bool, slowdown: tuple[int, int], moved: int, energy_j: float) -> None:
        """run_plain()'s ticks into the shaft's state: what update_plain_run() would have left after them."""
        self.tick += ticks
        self.speed_m_s = speed_m_s
        if moved:
            self.moving_ticks += moved
            self.sheave_m, self.position_m, self.count_offset_m = sheave_m, position_m, offset_m
            self.below_mark, self.slowdown, self.energy_j = below_mark, slowdown, energy_j
            self._zone = self._door_zone_at(position_m)
            if referenced:
                self.position_unreferenced = False

    def _drop_brake(self) -> None:
        """The drive drops the brake: with brake_stuck_open, both circuits hang lifted instead."""
        if self.brake_open and "brake_stuck_open" in self.injected:
            self.brake_hanging = True

    def brake_contacts(self) -> int:
        """The fitted brake circuits' contacts that read lifted (bit i: circuit i + 1; 0 with none fitted)."""
        fitted = self._contacts_fitted
        if not fitted:
            return 0
        lifted = fitted if (self.brake_open and "brake_stuck_closed" not in self.injected) or self.brake_hanging else 0
        if "brake_contact_stuck" in self.injected:
            lifted |= 1 << (self.physics.brake_contacts - 1)
        return lifted

    def _lifts_too_much(self, commands: ShaftCommand) -> bool:
        car_heavier_kg = self.physics.car_mass_kg + self.load_kg + self.extra_load_kg - self.counterweight_kg
        lifted_kg = car_heavier_kg if commands.run_up else -car_heavier_kg
        return lifted_kg > self.physics.rescue_lift_limit_kg

    def _close_rate(self, commands: ShaftCommand) -> int:
        if commands.door_nudge:
            return self.door_rate_nudge
        return self.door_rate_slow if commands.door_slow else self.door_rate_close

    def _update_door(self, commands: ShaftCommand) -> None:
        if "door_jam" in self.injected or (self.power_lost_tick >= 0 and not self.on_battery):
            self.door_motion = 0
            return
        if commands.door_open and not commands.door_close:
            # The door operator's own interlock: the car door opens only inside the door zone.
            if self.door_units < DOOR_TRAVEL_UNITS and self.in_door_zone():
                self.door_units = min(DOOR_TRAVEL_UNITS, self.door_units + self.door_rate_open)
                self.door_motion = 1
                self.lock_count = 0
            else:
                self.door_motion = 0
        elif commands.door_close and not commands.door_open:
            if self.door_units > 0:
                self.door_units = max(0, self.door_units - self._close_rate(commands))
                self.door_motion = -1
            else:
                self.door_motion = 0
                if self.lock_count < self.lock_ticks:
                    self.lock_count += 1
        else:
            self.door_motion = 0

    # -- sensors -------------------------------------------------------------------------------------------------

    def encoder_m(self) -> float:
        """The drive's position count (what the POSITION registers carry)."""
        if "encoder_freeze" in self.injected:
            return self.frozen_position_m
        resolution = self._encoder_resolution_m
        return math.floor((self.position_m - self.count_offset_m) / resolution + 0.5) * resolution

    def reported_speed_m_s(self) -> float:
        return round(self.speed_m_s * 1000.0) / 1000.0

    def drive_status(self, comm_loss_trip: bool = False, drive_tick: int = 0) -> DriveStatus:
        """The drive's status block as the drive reports it, in the units its registers carry (speed in mm/s, load in
        whole kilograms): the simulated drive on the wire publishes it, the lockstep hands it to the controller (whose
        drive link would refuse a withheld one). Built on nearly every stepped tick, hence positional."""
        fault_code = self.drive_fault_code
        speed_m_s = round(self.speed_m_s * 1000.0) / 1000.0
        return make_drive_status(  # every field in order
            ("power_loss" not in self.injected or self.on_battery) and not fault_code,  # ready
            self.drive_running,  # running
            fault_code != 0,  # faulted
            self.brake_open,  # brake_open
            speed_m_s == 0.0,  # zero_speed
            comm_loss_trip,  # comm_loss_trip
            self.safety_chain_closed(),  # safety_chain_closed
            speed_m_s,  # speed_m_s
            self.encoder_m(),  # position_m
            fault_code,  # fault_code
            min(6553.5, abs(speed_m_s) * 12.0 + (4.0 if self.brake_open else 0.0)),  # current_a: a rough motor model
            float(round(self.total_load_kg())),  # load_kg
            drive_tick,  # drive_tick
            self.on_battery,  # on_battery
            self.position_unreferenced,  # position_unreferenced
            self.below_mark,  # below_reference_mark
            self.brake_contacts(),  # brake_contacts
            self.test_torque,  # brake_test_torque
        )

    def door_open_fraction(self) -> float:
        return self.door_units / DOOR_TRAVEL_UNITS

    def door_locked(self) -> bool:
        """The front (or only) door's lock contacts."""
        return self.door_units == 0 and self.lock_count >= self.lock_ticks and not self.lock_forced_open

    def doors_locked(self) -> bool:
        """Every car door shut and locked: the front one and, where fitted, the rear one."""
        return self.door_locked() and (self.rear is None or self.rear.locked())

    def doorway_units(self) -> int:
        """How far open the most open car door is (what a passenger walks through)."""
        rear = self.rear
        return self.door_units if rear is None or rear.units <= self.door_units else rear.units

    def door_state(self) -> str:
        if self.door_units == 0:
            return "closed"
        if self.door_units == DOOR_TRAVEL_UNITS:
            return "open"
        return "opening" if self.door_motion > 0 else "closing"

    def _door_zone_at(self, position: float) -> bool:
        landings = self.vanes_m
        index = bisect.bisect_left(landings, position)
        zone = self.door_zone_m
        if index < len(landings) and landings[index] - position <= zone:
            return True
        return index > 0 and position - landings[index - 1] <= zone

    def _slowdown_at(self, position_m: float) -> tuple[int, int]:
        to_top_m = self.landings_m[-1] - position_m
        to_bottom_m = position_m - self.landings_m[0]
        if to_top_m > self._slowdown_reach_m and to_bottom_m > self._slowdown_reach_m:
            return (0, 0)  # most of the time: far from both terminals
        top = bottom = 0
        for index, distance in enumerate(self.slowdown_m):
            if to_top_m <= distance:
                top |= 1 << index
            if to_bottom_m <= distance:
                bottom |= 1 << index
        return (top, bottom)

    def in_door_zone(self) -> bool:
        """The door-zone sensor (vanes on the car, magnets at each landing)."""
        return self._zone

    def light_curtain_blocked(self) -> bool:
        """The front (or only) door's light curtain; on a car with a rear door a passenger crossing blocks the curtain
        of the door they cross, an open one."""
        return (self.transferring and (self.rear is None or self.door_units > 0)) or (
            self.tick < self.obstructed_until_tick) or "light_curtain_blocked" in self.injected

    def rear_light_curtain_blocked(self) -> bool:
        return self.rear is not None and self.rear.curtain_blocked(self.tick, self.transferring)

    def total_load_kg(self) -> float:
        return self.load_kg + self.extra_load_kg + (800.0 if "overload" in self.injected else 0.0)

    def is_steady(self, commands: ShaftCommand) -> bool:
        """The car stands with its brake closed: under the same commands only the door moves, predictably, until
        next_input_change_tick(). A passenger crossing the threshold blocks the light curtain until their transfer
        ends, which the passenger flow schedules (PassengerFlow.next_event_tick): the shaft is steady meanwhile."""
        if self.speed_m_s or self.brake_open or commands.quick_stop or commands.brake_test or self.test_torque or (
                ("brake_slip" in self.injected or self.brake_hanging) and not self.gripped):
            return False
        return self.lifting_brake(commands) or not (self.drive_running or commands.run_up or commands.run_down)

    def lifting_brake(self, commands: ShaftCommand) -> bool:
        """The drive runs and the brake is lifting, the car still at rest: under the same commands only the brake's
        timer moves (update()'s run branch) until the brake opens, and nothing the boards or the drive report
        changes before then (next_input_change_tick)."""
        return (self.drive_running and not self.brake_open and not self.speed_m_s
                and commands.run_up != commands.run_down and not commands.quick_stop and not self.drive_fault_code
                and self.safety_chain_closed() and not (self.on_battery and self._lifts_too_much(commands))
                and "brake_slip" not in self.injected)

    def next_input_change_tick(self, commands: ShaftCommand) -> int:
        """For a steady shaft: the first tick at which a sensor reading differs from now (a door limit or the lock
        is reached, an obstruction ends); a large number if none will."""
        tick = self.tick
        candidates = [self.obstructed_until_tick if self.obstructed_until_tick > tick else 1 << 62]
        if self.lifting_brake(commands):  # the brake opens, and the car moves, in this many updates
            candidates.append(tick + max(1, self.brake_open_ticks - self.brake_ticks))
        unpowered = self.power_lost_tick >= 0 and not self.on_battery
        if unpowered and self.physics.rescue_device:
            candidates.append(self.power_lost_tick + self.rescue_switch_ticks)
        if "door_jam" not in self.injected and not unpowered:
            # A door leaving a limit changes that limit's reading (and the lock's) at once; a moving one, when it
            # reaches the other limit.
            if commands.door_open and not commands.door_close:
                if self.door_units == 0 and self._zone:
                    candidates.append(tick + 1)
                elif self.door_units < DOOR_TRAVEL_UNITS and self._zone:
                    candidates.append(tick + -(-(DOOR_TRAVEL_UNITS - self.door_units) // self.door_rate_open))
            elif commands.door_close and not commands.door_open:
                if self.door_units == DOOR_TRAVEL_UNITS:
                    candidates.append(tick + 1)
                elif self.door_units > 0:
                    candidates.append(tick + -(-self.door_units // self._close_rate(commands)))
                elif self.lock_count < self.lock_ticks:
                    candidates.append(tick + self.lock_ticks - self.lock_count)
        if self.rear is not None:
            candidates.append(self.rear.next_change_tick(commands, tick, self._zone, not unpowered))
        return min(candidates)

    def advance_steady(self, commands: ShaftCommand, ticks: int = 1) -> None:
        """``ticks`` ticks of a steady shaft: only the door, the brake's timer and the clock move, by the same
        arithmetic as update()."""
        if self.lifting_brake(commands):
            for _ in range(ticks):
                self.update(commands)
            return
        if self.next_input_change_tick(commands) >= 1 << 62 and self.door_motion == 0 and (
                self.rear is None or self.rear.motion == 0):
            self.tick += ticks  # the door is at rest at its limit (or jammed): nothing moves at all
            return
        if self.power_lost_tick < 0 and self.rear is None:
            self.tick += ticks
            self._advance_door(commands, ticks)
            return
        for _ in range(ticks):
            self.tick += 1
            if self.power_lost_tick >= 0:
                self._update_mains()
            self._update_door(commands)
            if self.rear is not None:
                self.rear.update(commands, self._zone, self.power_lost_tick < 0 or self.on_battery)

    def _advance_door(self, commands: ShaftCommand, ticks: int) -> None:
        """``ticks`` calls of _update_door() under the same commands on mains, the car at rest (its door zone
        unchanged), in closed form: the door's travel and the lock's count are integers, so n steps of a rate are
        exactly n times the rate, up to the limit the door stops at. tests/sim/test_lockstep.py compares it with
        the calls one by one."""
        if ticks <= 0:
            return
        if "door_jam" in self.injected:
            self.door_motion = 0
            return
        units = self.door_units
        if commands.door_open and not commands.door_close:
            if units < DOOR_TRAVEL_UNITS and self._zone:
                rate = self.door_rate_open
                to_limit = -(-(DOOR_TRAVEL_UNITS - units) // rate)  # steps that move it; then it stands open
                self.door_units = min(DOOR_TRAVEL_UNITS, units + min(ticks, to_limit) * rate)
                self.lock_count = 0
                self.door_motion = 1 if ticks <= to_limit else 0
            else:
                self.door_motion = 0
        elif commands.door_close and not commands.door_open:
            rate = self._close_rate(commands)
            to_limit = -(-units // rate)  # steps that move it; then it stands shut and the lock counts
            self.door_units = max(0, units - min(ticks, to_limit) * rate)
            shut_ticks = ticks - to_limit
            if shut_ticks > 0:
                self.door_motion = 0
                if self.lock_count < self.lock_ticks:
                    self.lock_count = min(self.lock_ticks, self.lock_count + shut_ticks)
            else:
                self.door_motion = -1
        else:
            self.door_motion = 0


class Actuators(NamedTuple):
    """What moves the shaft, and nothing else: the drive's run bits and speed reference, the car-top board's door
    operator outputs. (A Commands record has these fields too, so either may be given to the shaft.)"""

    run_up: bool
    run_down: bool
    speed_ref_m_s: float
    quick_stop: bool
    door_open: bool
    door_close: bool
    door_nudge: bool
    door_slow: bool
    brake_test: bool = False  # the drive's test torque against the closed brake (CONTROL bit4)
    # The rear door's car-top board's door-operator outputs (a car with doors on both sides).
    rear_door_open: bool = False
    rear_door_close: bool = False
    rear_door_nudge: bool = False
    rear_door_slow: bool = False


ShaftCommand = Union[Commands, Actuators]


def actuators(command: DriveCommand, door: CarTopOutputs, obey: bool = True,
              rear: CarTopOutputs | None = None) -> Actuators:
    """What moves the shaft: the drive's command block (obeyed unless the drive is tripped or its watchdog ran out)
    and the car-top boards' door-operator outputs (``rear``: the rear door's board, None on a car with one door).
    The simulated drive on the wire and the lockstep loop both move the shaft through this, from what the firmware's
    output step produced."""
    if rear is None:
        return Actuators(command.run_up and obey, command.run_down and obey, command.speed_ref_m_s if obey else 0.0,
                         command.quick_stop, door.door_open, door.door_close, door.door_nudge, door.door_slow,
                         command.brake_test and obey)
    return Actuators(command.run_up and obey, command.run_down and obey, command.speed_ref_m_s if obey else 0.0,
                     command.quick_stop, door.door_open, door.door_close, door.door_nudge, door.door_slow,
                     command.brake_test and obey, rear.door_open, rear.door_close, rear.door_nudge, rear.door_slow)
