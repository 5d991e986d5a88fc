"""Building, car and timing configuration for the control core.

Rules of this module:
- Everything is immutable and validated on construction; an impossible value raises ConfigError naming the key in
  the scenario-file spelling (``car.rated_speed_m_s``), so a person can find it in the file.
- Every numeric key has a plausible range, declared once in its class's RANGES table and checked by check_ranges():
  NaN, infinities and absurd magnitudes (``park_delay_s = 1e308``, ``door_retries = 2**63``) are refused, because
  values like those overflow tick counts or stall a run long before they could mean anything in a lift.
- Units are SI and sit in the names. Durations are seconds here; the core converts them to ticks once (timing.py).
- Defaults are those of the default building: six landings 2.9 m apart, one 1.0 m/s car for 8 persons (630 kg).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar

# Re-exported: the range checks were defined here, and the simulator's and the runtime's configurations use them.
from carctl.core.ranges import ConfigError, Range, check_number, check_ranges, shown

# Re-exported: Timing was defined here (timing.py needs this module only for type checking).
from carctl.core.timing import Timing

DAY_S = 86_400.0
# A simulated or scripted time may reach a leap year, so that "a car's year" can be run.
YEAR_S = 366 * DAY_S
# A building of at most 100 landings, 300 m tall: far beyond a walk-up block, still a building.
MAX_LANDINGS = 100
MAX_TERMINAL_SWITCHES = 3  # per terminal: the car-top board's STATUS has three bits for each (docs/panelbus.md)
MAX_LANDING_INDEX = MAX_LANDINGS - 1
MAX_HEIGHT_M = 300.0
# Which car door serves a landing (building.door_sides): the front one, the rear one, or both (a through car).
DOOR_SIDES = ("front", "rear", "both")


def _require(condition: bool, key: str, message: str) -> None:
    if not condition:
        raise ConfigError(key, message)


@dataclass(frozen=True, slots=True)
class BuildingConfig:
    landings_m: tuple[float, ...] = (0.0, 2.9, 5.8, 8.7, 11.6, 14.5)
    main_landing: int = 0
    population: tuple[int, ...] = (0, 5, 5, 5, 5, 5)
    # The door-zone (unlocking-zone) half width around each landing: doors may open and the car may relevel with
    # the doors open only inside it. EN 81-20 allows up to 0.20 m.
    door_zone_m: float = 0.20
    # How far past a terminal landing the car may be before the final-limit fault trips.
    overtravel_m: float = 0.05
    # Fire emergency return: the designated landing (-1: the main landing) and the alternate one used when the
    # designated landing's fire detector is active (-1: the landing above the designated one, or below it at the top).
    fire_landing: int = -1
    fire_alternate_landing: int = -1
    # The landing beside the controller cabinet (-1: the top landing): its landing board reads the cabinet's
    # emergency electrical operation switch and buttons (docs/modes.md).
    cabinet_landing: int = -1
    # The car door(s) each landing is served by, one entry per landing: "front", "rear" or "both" (core/sides.py).
    # Empty (the default): every landing "front", the car has one door. Any "rear" or "both" fits the car's rear door
    # operator, with its own limits, lock contacts and light curtain (docs/panelbus.md: car-top board 0x03).
    door_sides: tuple[str, ...] = ()
    # The farthest a learned landing may lie from its typed height (core/learning.py, runtime/learned_table.py). A
    # retrofit shaft's sills differ from the drawings by centimetres (each storey built a centimetre or two off,
    # added up over six or seven); a learned landing farther off is a vane fitted at the wrong place, or a table
    # from another shaft. Below the door zone, so that a learned landing stays inside its typed one's unlocking zone.
    learned_tolerance_m: float = 0.15

    RANGES: ClassVar[Mapping[str, Range]] = {
        "landings_m": Range(0.0, MAX_HEIGHT_M, "m"),
        "main_landing": Range(0, MAX_LANDING_INDEX),
        "population": Range(0, 1000, "residents"),
        # EN 81-20 allows 0.20 m, and 0.35 m where car and landing doors are driven together.
        "door_zone_m": Range(0.0, 0.35, "m", above=True),
        "overtravel_m": Range(0.0, 2.0, "m", above=True),
        "fire_landing": Range(-1, MAX_LANDING_INDEX),
        "fire_alternate_landing": Range(-1, MAX_LANDING_INDEX),
        "cabinet_landing": Range(-1, MAX_LANDING_INDEX),
        "learned_tolerance_m": Range(0.01, 0.30, "m"),
    }

    def __post_init__(self) -> None:
        landings = self.landings_m
        _require(2 <= len(landings) <= MAX_LANDINGS, "building.landings_m",
                 f"needs at least 2 landings and at most {MAX_LANDINGS} (got {len(landings)})")
        check_ranges(self, "building")
        for index in range(1, len(landings)):
            _require(landings[index] > landings[index - 1] + 2 * self.door_zone_m, "building.landings_m",
                     f"must be increasing with landings more than two door zones apart "
                     f"(landing {index} at {landings[index]} m after {landings[index - 1]} m)")
        _require(0 <= self.main_landing < len(landings), "building.main_landing",
                 f"must be a landing index 0..{len(landings) - 1} (got {self.main_landing})")
        _require(len(self.population) == len(landings), "building.population",
                 f"needs one entry per landing ({len(landings)}), got {len(self.population)}")
        for key in ("fire_landing", "fire_alternate_landing", "cabinet_landing"):
            value = getattr(self, key)
            _require(-1 <= value < len(landings), f"building.{key}",
                     f"must be a landing index 0..{len(landings) - 1}, or -1 for the default (got {value!r})")
        _require(not self.door_sides or len(self.door_sides) == len(landings), "building.door_sides",
                 f"needs one entry per landing ({len(landings)}), got {len(self.door_sides)}")
        for index, side in enumerate(self.door_sides):
            _require(side in DOOR_SIDES, "building.door_sides",
                     f"entry {index} must be one of {', '.join(DOOR_SIDES)} (got {shown(side)})")
        _require(self.designated_fire_landing != self.alternate_fire_landing, "building.fire_alternate_landing",
                 "must differ from the designated fire landing")

    @property
    def landing_count(self) -> int:
        return len(self.landings_m)

    @property
    def rear_door(self) -> bool:
        """The car has a rear door operator: some landing is served by the rear door."""
        return any(side != "front" for side in self.door_sides)

    def door_side(self, landing: int) -> str:
        """The door side that serves ``landing``: "front", "rear" or "both"."""
        return self.door_sides[landing] if self.door_sides else "front"

    @property
    def cabinet_landing_index(self) -> int:
        return len(self.landings_m) - 1 if self.cabinet_landing < 0 else self.cabinet_landing

    @property
    def designated_fire_landing(self) -> int:
        return self.main_landing if self.fire_landing < 0 else self.fire_landing

    @property
    def alternate_fire_landing(self) -> int:
        if self.fire_alternate_landing >= 0:
            return self.fire_alternate_landing
        designated = self.designated_fire_landing
        return designated + 1 if designated + 1 < len(self.landings_m) else designated - 1


@dataclass(frozen=True, slots=True)
class CarConfig:
    rated_speed_m_s: float = 1.0
    acceleration_m_s2: float = 0.6
    jerk_m_s3: float = 1.0
    capacity_persons: int = 8
    rated_load_kg: float = 630.0
    door_open_s: float = 2.5
    door_close_s: float = 3.0
    dwell_s: float = 3.0
    transfer_s: float = 1.2
    home_landing: int = 0
    control_period_s: float = 0.02
    # An idle car with doors closed parks at home_landing after this long.
    park_delay_s: float = 30.0
    # While the tip-up seat is occupied the car rides on this gentler profile.
    seat_acceleration_m_s2: float = 0.35
    seat_jerk_m_s3: float = 0.5
    # A stop flagged by the accessible-call button: longer dwell and a slower door close.
    accessible_dwell_s: float = 8.0
    accessible_close_s: float = 5.0
    # After the light curtain clears, the doors wait this long before closing (the dwell is not restarted in full).
    dwell_after_curtain_s: float = 1.0
    # An obstruction that holds the doors open this long makes them close at reduced speed with the buzzer on.
    nudge_after_s: float = 20.0
    # Door-open and door-close protection (NICE3000new defaults 10 s and 15 s) and the retries before a fault.
    door_open_protection_s: float = 10.0
    door_close_protection_s: float = 15.0
    door_retries: int = 3
    # After a door fault the controller tries the doors again this often.
    door_fault_retry_s: float = 30.0
    # Full load bypasses landing calls.
    full_load_fraction: float = 0.8
    # Relevel with the doors open when the car has moved more than this from the landing (load change, rope stretch).
    relevel_threshold_m: float = 0.010
    relevel_speed_m_s: float = 0.05
    # The run ends when the car is this close to the landing and nearly stopped.
    level_tolerance_m: float = 0.002
    # Kept for scenario files that set it: a positive value replaces the drive's maximum age from the table of rates
    # (core/rates.py: 0.06 s, 3 ticks at 20 ms). 0, the default, takes the table's.
    drive_stale_ticks: int = 0
    # The drive needs this long to open the brake before it follows the speed reference (used for planning only;
    # the controller waits for the brake-open status bit).
    start_timeout_s: float = 2.0
    # More car calls than this with a nearly empty car are a prank: all car calls are cancelled.
    anti_nuisance_car_calls: int = 3
    anti_nuisance_load_kg: float = 20.0
    # Floor permissions (switched on per community by the platform): a car-call button for a landing outside
    # free_landings works only when someone recognised in the car (face or card) may go there.
    permissions_enabled: bool = False
    free_landings: tuple[int, ...] = (0,)
    # Commissioning values of the speed loop: the drive's response time (the reference leads the plan by it) and
    # the position gain that pulls the car onto the planned position and, at the end, onto the landing.
    drive_lag_s: float = 0.05
    position_gain_per_s: float = 4.0
    # Energy saving: the car light and fan go off when the car has stood idle with its doors closed this long, and
    # come on again with the first call or button (NICE3000new offers the same, 2 min by default); 0 keeps them on.
    energy_saving_after_s: float = 120.0
    # A light curtain blocked this long (well past nudging) has probably failed: a display-level fault is raised.
    light_curtain_fault_s: float = 60.0
    # A landing button seen pressed without a break this long is stuck: its presses are ignored, and reported, until
    # it has been seen released for a second.
    stuck_button_s: float = 60.0
    # The alarm button must be held this long to start an alarm (EN 81-28: a brush of the button is not a call for
    # help; the rider is told to hold it).
    alarm_press_s: float = 1.0
    # Out of service, the car parks here at once (doors closed); -1: the home landing.
    out_of_service_landing: int = -1
    # Inspection (car-top hold-to-run) speed; at most 0.3 m/s.
    inspection_speed_m_s: float = 0.25
    # Emergency electrical operation from the cabinet: hold-to-run at most this fast (EN 81-20 5.12.1.6: 0.3 m/s).
    eeo_speed_m_s: float = 0.25
    # Automatic rescue on the rescue device's battery: the speed of the rescue run (at most 0.3 m/s) and the
    # counterweight balance (the counterweight is the car plus this fraction of the rated load), which tells the
    # direction the load makes easier.
    rescue_speed_m_s: float = 0.2
    balance_fraction: float = 0.45
    # The correction run that re-references an untrusted position, towards the reference mark; at most 0.3 m/s.
    correction_speed_m_s: float = 0.25
    # After a stop at once, seen standing still this long before the brake is lifted again (core/standstill.py).
    standstill_settle_s: float = 1.0
    # During a run, the measured speed may be off its reference this much for at most this long (core/travel.py).
    speed_deviation_m_s: float = 0.3
    speed_deviation_s: float = 0.5
    # Terminal speed limiting: this near a terminal landing, moving towards it, no faster than 1.25 x the normal
    # deceleration stops it from at the landing, plus the margin; faster: terminal_speed (core/supervisor.py).
    terminal_zone_m: float = 1.5
    terminal_speed_margin_m_s: float = 0.1
    # The terminal slowdown switches, this far from each terminal landing (at most three, distinct; none: only the
    # count is judged): passing one, the car must be below that profile's speed there (docs/commissioning.md).
    terminal_switches_m: tuple[float, ...] = ()
    # Brake monitoring (EN 81-20 5.6.7.3, core/brake.py): the brake circuits whose contacts the drive reports (STATUS
    # bits 10-11; 0: none fitted, the bits are not judged), and how long after the drive opens, or closes, the brake
    # every contact must read lifted, or dropped.
    brake_contacts: int = 0
    brake_lift_limit_s: float = 0.5
    brake_drop_limit_s: float = 0.5
    # The periodic brake test (core/braketest.py): every this many hours (0: never), at an idle moment, the drive
    # holds its test torque against the closed brake for brake_test_hold_s; the car may move at most brake_test_slip_m.
    brake_test_every_h: float = 0.0
    brake_test_hold_s: float = 3.0
    brake_test_slip_m: float = 0.005

    # Plausible for small passenger lifts, with room on both sides; a range never admits a value the core cannot
    # turn into ticks and metres. Speeds for moving with the doors open or on inspection stay below 0.3 m/s
    # (EN 81-20 5.12.1.4 and 5.12.1.5).
    RANGES: ClassVar[Mapping[str, Range]] = {
        "rated_speed_m_s": Range(0.1, 4.0, "m/s"),
        "acceleration_m_s2": Range(0.05, 2.0, "m/s²"),
        "jerk_m_s3": Range(0.1, 5.0, "m/s³"),
        "capacity_persons": Range(1, 50, "persons"),
        "rated_load_kg": Range(100.0, 5000.0, "kg"),
        "door_open_s": Range(0.0, 20.0, "s", above=True),
        "door_close_s": Range(0.0, 20.0, "s", above=True),
        "dwell_s": Range(0.0, 120.0, "s"),
        "transfer_s": Range(0.0, 60.0, "s"),
        "home_landing": Range(0, MAX_LANDING_INDEX),
        # Supervision needs a tick of at most 0.1 s; below 5 ms no board or drive link keeps up.
        "control_period_s": Range(0.005, 0.1, "s"),
        "park_delay_s": Range(0.0, DAY_S, "s"),
        "seat_acceleration_m_s2": Range(0.05, 2.0, "m/s²"),
        "seat_jerk_m_s3": Range(0.1, 5.0, "m/s³"),
        "accessible_dwell_s": Range(0.0, 120.0, "s"),
        "accessible_close_s": Range(0.0, 30.0, "s", above=True),
        "dwell_after_curtain_s": Range(0.0, 60.0, "s"),
        "nudge_after_s": Range(0.0, 600.0, "s"),
        "door_open_protection_s": Range(0.0, 120.0, "s", above=True),
        "door_close_protection_s": Range(0.0, 120.0, "s", above=True),
        "door_retries": Range(1, 10),
        "door_fault_retry_s": Range(0.0, 3600.0, "s", above=True),
        "full_load_fraction": Range(0.0, 1.0, above=True),
        "relevel_threshold_m": Range(0.0, 0.1, "m", above=True),
        "relevel_speed_m_s": Range(0.0, 0.3, "m/s", above=True, below=True),
        "level_tolerance_m": Range(0.0, 0.05, "m", above=True),
        "drive_stale_ticks": Range(0, 50, "ticks"),
        "start_timeout_s": Range(0.0, 30.0, "s", above=True),
        "anti_nuisance_car_calls": Range(1, MAX_LANDINGS),
        "anti_nuisance_load_kg": Range(0.0, 500.0, "kg"),
        "free_landings": Range(0, MAX_LANDING_INDEX),
        "drive_lag_s": Range(0.0, 1.0, "s"),
        "position_gain_per_s": Range(0.0, 50.0, "1/s", above=True),
        "energy_saving_after_s": Range(0.0, DAY_S, "s"),
        "light_curtain_fault_s": Range(0.0, 3600.0, "s", above=True),
        "stuck_button_s": Range(0.0, 3600.0, "s", above=True),
        "alarm_press_s": Range(0.2, 5.0, "s"),
        "out_of_service_landing": Range(-1, MAX_LANDING_INDEX),
        "inspection_speed_m_s": Range(0.0, 0.3, "m/s", above=True),
        "eeo_speed_m_s": Range(0.0, 0.3, "m/s", above=True),
        "rescue_speed_m_s": Range(0.0, 0.3, "m/s", above=True),
        "balance_fraction": Range(0.0, 1.0),
        "correction_speed_m_s": Range(0.0, 0.3, "m/s", above=True),
        "standstill_settle_s": Range(0.1, 10.0, "s"),
        "speed_deviation_m_s": Range(0.05, 1.0, "m/s"),
        "speed_deviation_s": Range(0.02, 2.0, "s"),
        "terminal_zone_m": Range(0.0, 10.0, "m"),
        "terminal_speed_margin_m_s": Range(0.05, 0.5, "m/s"),
        # Not nearer than 0.15 m: a switch is checked against the count beyond 0.1 m of where it acts.
        "terminal_switches_m": Range(0.15, 5.0, "m"),
        "brake_contacts": Range(0, 2, "circuits"),
        # A brake lifts or drops in a tenth of a second or two; the limit must not be shorter than a few statuses.
        "brake_lift_limit_s": Range(0.1, 3.0, "s"),
        "brake_drop_limit_s": Range(0.1, 3.0, "s"),
        "brake_test_every_h": Range(0.0, 720.0, "h"),
        "brake_test_hold_s": Range(1.0, 10.0, "s"),
        # Above the count's step (1 mm) and rope stretch, below a slip worth the name.
        "brake_test_slip_m": Range(0.002, 0.05, "m"),
    }

    def __post_init__(self) -> None:
        check_ranges(self, "car")
        _require(self.level_tolerance_m < self.relevel_threshold_m, "car.level_tolerance_m",
                 "must be smaller than car.relevel_threshold_m")
        switches = self.terminal_switches_m
        _require(len(switches) <= MAX_TERMINAL_SWITCHES and len(set(switches)) == len(switches),
                 "car.terminal_switches_m", f"must name at most {MAX_TERMINAL_SWITCHES} distinct distances")

    @property
    def overload_kg(self) -> float:
        """EN 81-20 5.12.1.2: overload is detected at rated load plus 10 %, and at least 75 kg over it."""
        return self.rated_load_kg + max(0.1 * self.rated_load_kg, 75.0)

    @property
    def full_load_kg(self) -> float:
        return self.rated_load_kg * self.full_load_fraction

    @property
    def overspeed_m_s(self) -> float:
        """The supervisor's electrical overspeed check, at 110 % of rated speed: a runaway drive is stopped before
        the overspeed governor trips (governor_trip_m_s)."""
        return 1.10 * self.rated_speed_m_s

    @property
    def governor_trip_m_s(self) -> float:
        """The overspeed governor trips at 115 % of rated speed (EN 81-20): the car must never reach it."""
        return 1.15 * self.rated_speed_m_s


@dataclass(frozen=True, slots=True)
class ControllerConfig:
    building: BuildingConfig = field(default_factory=BuildingConfig)
    car: CarConfig = field(default_factory=CarConfig)

    def __post_init__(self) -> None:
        count = self.building.landing_count
        half_m = (self.building.landings_m[-1] - self.building.landings_m[0]) / 2
        _require(all(distance < half_m for distance in self.car.terminal_switches_m), "car.terminal_switches_m",
                 f"must each be less than half the travel ({half_m:g} m)")
        _require(0 <= self.car.home_landing < count, "car.home_landing",
                 f"must be a landing index 0..{count - 1} (got {self.car.home_landing})")
        _require(-1 <= self.car.out_of_service_landing < count, "car.out_of_service_landing",
                 f"must be a landing index 0..{count - 1}, or -1 for the home landing "
                 f"(got {self.car.out_of_service_landing})")
        _require(all(landing < count for landing in self.car.free_landings), "car.free_landings",
                 f"landings must exist (0..{count - 1}) (got {shown(self.car.free_landings)})")

__all__ = ["DAY_S", "DOOR_SIDES", "MAX_HEIGHT_M", "MAX_LANDINGS", "MAX_LANDING_INDEX", "YEAR_S", "BuildingConfig",
           "CarConfig", "ConfigError", "ControllerConfig", "Range", "Timing", "check_number", "check_ranges", "shown"]
