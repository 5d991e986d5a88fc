"""Building, car and timing configuration for the control core.

Rules of this module:
- Everything is immutable and validated on construction; an impossible value raises ConfigError naming the key in
  the scenario-file spelling (``car.rated_speed_m_s``), so a person can find it in the file.
- Units are SI and sit in the names. Durations are seconds here; the core converts them to ticks once (Timing).
- Defaults are those of the default building: six landings 2.9 m apart, one 1.0 m/s car for 8 persons (630 kg).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


class ConfigError(ValueError):
    """A configuration value is impossible. ``key`` is the dotted scenario key."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message


def _require(condition: bool, key: str, message: str) -> None:
    if not condition:
        raise ConfigError(key, message)


def _positive(value: float, key: str) -> None:
    _require(isinstance(value, (int, float)) and math.isfinite(value) and value > 0, key,
             f"must be a number greater than 0 (got {value!r})")


def _non_negative(value: float, key: str) -> None:
    _require(isinstance(value, (int, float)) and math.isfinite(value) and value >= 0, key,
             f"must be a number 0 or greater (got {value!r})")


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

    def __post_init__(self) -> None:
        landings = self.landings_m
        _require(len(landings) >= 2, "building.landings_m", f"needs at least 2 landings (got {len(landings)})")
        for index, height in enumerate(landings):
            _require(isinstance(height, (int, float)) and math.isfinite(height), "building.landings_m",
                     f"landing {index} height must be a number (got {height!r})")
        for index in range(1, len(landings)):
            _require(landings[index] > landings[index - 1] + 2 * self.door_zone_m, "building.landings_m",
                     f"must be increasing with landings more than two door zones apart "
                     f"(landing {index} at {landings[index]} m after {landings[index - 1]} m)")
        _require(0 <= self.main_landing < len(landings), "building.main_landing",
                 f"must be a landing index 0..{len(landings) - 1} (got {self.main_landing})")
        _require(len(self.population) == len(landings), "building.population",
                 f"needs one entry per landing ({len(landings)}), got {len(self.population)}")
        for count in self.population:
            _require(isinstance(count, int) and count >= 0, "building.population",
                     f"entries must be whole numbers 0 or greater (got {count!r})")
        _positive(self.door_zone_m, "building.door_zone_m")
        _positive(self.overtravel_m, "building.overtravel_m")
        for key in ("fire_landing", "fire_alternate_landing"):
            value = getattr(self, key)
            _require(isinstance(value, int) and -1 <= value < len(landings), f"building.{key}",
                     f"must be a landing index 0..{len(landings) - 1}, or -1 for the default (got {value!r})")
        _require(self.designated_fire_landing != self.alternate_fire_landing, "building.fire_alternate_landing",
                 "must differ from the designated fire landing")

    @property
    def landing_count(self) -> int:
        return len(self.landings_m)

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
    # Drive status older than this many ticks is stale: emergency stop.
    drive_stale_ticks: int = 3
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
    # Out of service, the car parks here at once (doors closed); -1: the home landing.
    out_of_service_landing: int = -1
    # Inspection (car-top hold-to-run) speed; at most 0.3 m/s.
    inspection_speed_m_s: float = 0.25
    # Automatic rescue on the rescue device's battery: the speed of the rescue run (at most 0.3 m/s) and the
    # counterweight balance (the counterweight is the car plus this fraction of the rated load), which tells the
    # direction the load makes easier.
    rescue_speed_m_s: float = 0.2
    balance_fraction: float = 0.45
    # The correction run that re-references an untrusted position, towards the reference mark; at most 0.3 m/s.
    correction_speed_m_s: float = 0.25

    def __post_init__(self) -> None:
        for key in ("rated_speed_m_s", "acceleration_m_s2", "jerk_m_s3", "rated_load_kg", "door_open_s",
                    "door_close_s", "control_period_s", "seat_acceleration_m_s2", "seat_jerk_m_s3",
                    "accessible_close_s", "door_open_protection_s", "door_close_protection_s",
                    "relevel_speed_m_s", "level_tolerance_m", "relevel_threshold_m", "start_timeout_s",
                    "door_fault_retry_s", "position_gain_per_s"):
            _positive(getattr(self, key), f"car.{key}")
        for key in ("dwell_s", "transfer_s", "park_delay_s", "accessible_dwell_s", "dwell_after_curtain_s",
                    "nudge_after_s", "anti_nuisance_load_kg", "drive_lag_s", "energy_saving_after_s"):
            _non_negative(getattr(self, key), f"car.{key}")
        for key in ("light_curtain_fault_s", "stuck_button_s"):
            _positive(getattr(self, key), f"car.{key}")
        for key in ("capacity_persons", "door_retries", "drive_stale_ticks", "anti_nuisance_car_calls"):
            value = getattr(self, key)
            _require(isinstance(value, int) and not isinstance(value, bool) and value > 0, f"car.{key}",
                     f"must be a whole number greater than 0 (got {value!r})")
        _require(0 < self.full_load_fraction <= 1.0, "car.full_load_fraction",
                 f"must be in (0, 1] (got {self.full_load_fraction!r})")
        _require(self.control_period_s <= 0.1, "car.control_period_s",
                 f"must be at most 0.1 s for safe supervision (got {self.control_period_s!r})")
        _require(0 < self.inspection_speed_m_s <= 0.3, "car.inspection_speed_m_s",
                 f"must be in (0, 0.3] m/s (got {self.inspection_speed_m_s!r})")
        for key in ("rescue_speed_m_s", "correction_speed_m_s"):
            value = getattr(self, key)
            _require(isinstance(value, (int, float)) and 0 < value <= 0.3, f"car.{key}",
                     f"must be in (0, 0.3] m/s (got {value!r})")
        _require(isinstance(self.balance_fraction, (int, float)) and 0 <= self.balance_fraction <= 1,
                 "car.balance_fraction", f"must be in [0, 1] (got {self.balance_fraction!r})")
        _require(self.relevel_speed_m_s < 0.3, "car.relevel_speed_m_s",
                 "must be below 0.3 m/s, the limit for moving with the doors open")
        _require(self.level_tolerance_m < self.relevel_threshold_m, "car.level_tolerance_m",
                 "must be smaller than car.relevel_threshold_m")

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
        _require(0 <= self.car.home_landing < count, "car.home_landing",
                 f"must be a landing index 0..{count - 1} (got {self.car.home_landing})")
        _require(-1 <= self.car.out_of_service_landing < count, "car.out_of_service_landing",
                 f"must be a landing index 0..{count - 1}, or -1 for the home landing "
                 f"(got {self.car.out_of_service_landing})")


@dataclass(frozen=True, slots=True)
class Timing:
    """Durations converted once to whole control ticks, the core's only unit of time."""

    period_s: float
    dwell: int
    accessible_dwell: int
    dwell_after_curtain: int
    nudge_after: int
    door_open_protection: int
    door_close_protection: int
    door_fault_retry: int
    park_delay: int
    start_timeout: int
    door_retries: int
    energy_saving: int  # 0: never
    curtain_fault: int
    stuck_button: int

    @classmethod
    def from_config(cls, car: CarConfig) -> Timing:
        period = car.control_period_s

        def ticks(seconds: float) -> int:
            return max(0, round(seconds / period))

        return cls(
            period_s=period,
            dwell=ticks(car.dwell_s),
            accessible_dwell=ticks(car.accessible_dwell_s),
            dwell_after_curtain=ticks(car.dwell_after_curtain_s),
            nudge_after=max(1, ticks(car.nudge_after_s)),
            door_open_protection=max(1, ticks(car.door_open_protection_s)),
            door_close_protection=max(1, ticks(car.door_close_protection_s)),
            door_fault_retry=max(1, ticks(car.door_fault_retry_s)),
            park_delay=ticks(car.park_delay_s),
            start_timeout=max(1, ticks(car.start_timeout_s)),
            door_retries=car.door_retries,
            energy_saving=ticks(car.energy_saving_after_s),
            curtain_fault=max(1, ticks(car.light_curtain_fault_s)),
            stuck_button=max(1, ticks(car.stuck_button_s)),
        )
