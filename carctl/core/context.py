"""What the behaviour modules need from the configuration, worked out once when the controller is built.

Rules of this module:
- Immutable, and derived only from ControllerConfig: thresholds in metres, limits of motion, timeouts in ticks.
  Nothing that changes while the car runs is kept here (that is the state).
- A behaviour module receives the Context as its first argument; it never reads the configuration's seconds on the
  hot path.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from carctl.core import motion
from carctl.core.config import BuildingConfig, CarConfig, ControllerConfig
from carctl.core.signals import Direction
from carctl.core.supervisor import SupervisorLimits
from carctl.core.timing import Timing

# A landing button not seen pressed for this long has been released (landing boards are read every ~60 ms).
BUTTON_RELEASED_S = 1.0


@dataclass(frozen=True, slots=True)
class Context:
    config: ControllerConfig
    building: BuildingConfig
    car: CarConfig
    timing: Timing
    supervisor_limits: SupervisorLimits
    landings_m: tuple[float, ...]
    landing_count: int
    midpoints_m: tuple[float, ...]  # between neighbouring landings: where the nearest landing changes
    free_landings: frozenset[int]  # floor permissions: landings anyone may call from the car
    normal_limits: motion.Limits
    seat_limits: motion.Limits  # the gentler profile while the tip-up seat is occupied
    rescue_limits: motion.Limits
    button_released: int  # ticks
    relevel_timeout: int  # ticks
    rescue_level_m: float
    correction_timeout: int  # ticks
    # Doors on both sides (sides.py): the side serving each landing, one entry per landing, and whether the rear door
    # operator is fitted at all (False: the car has one door and sides.py is never asked).
    door_sides: tuple[str, ...] = ()
    rear_door: bool = False

    @classmethod
    def from_config(cls, config: ControllerConfig) -> Context:
        car, building = config.car, config.building
        landings = building.landings_m
        seat_limits = motion.Limits(car.rated_speed_m_s, min(car.acceleration_m_s2, car.seat_acceleration_m_s2),
                                    min(car.jerk_m_s3, car.seat_jerk_m_s3))
        # The longest a correction run may take to pass the reference mark: the whole shaft at correction speed,
        # plus the brake and a margin. Longer, and the mark (or its switch) is not there.
        shaft_m = landings[-1] - landings[0] + 2 * building.overtravel_m
        return cls(
            config=config,
            building=building,
            car=car,
            timing=Timing.from_config(car),
            supervisor_limits=SupervisorLimits.from_config(config),
            landings_m=landings,
            landing_count=len(landings),
            midpoints_m=tuple((a + b) / 2 for a, b in zip(landings, landings[1:])),
            free_landings=frozenset(car.free_landings) | {building.main_landing},
            normal_limits=motion.Limits(car.rated_speed_m_s, car.acceleration_m_s2, car.jerk_m_s3),
            seat_limits=seat_limits,
            rescue_limits=motion.Limits(car.rescue_speed_m_s, seat_limits.acceleration_m_s2,
                                        seat_limits.jerk_m_s3),
            button_released=max(1, round(BUTTON_RELEASED_S / car.control_period_s)),
            # The longest a relevel may creep: half the door zone at relevelling speed (2 s by default), so a
            # relevel that does not arrive is stopped well inside the zone.
            relevel_timeout=max(1, round(0.5 * building.door_zone_m / car.relevel_speed_m_s
                                         / car.control_period_s)),
            # A rescue lets the passengers out where the car stands if it is this close to level (the doors open at
            # a landing within it in service too); nearer than a relevel would bother with on the battery.
            rescue_level_m=2 * car.relevel_threshold_m,
            correction_timeout=round((shaft_m / car.correction_speed_m_s + car.start_timeout_s + 5.0)
                                     / car.control_period_s),
            door_sides=tuple(building.door_side(landing) for landing in range(len(landings))),
            rear_door=building.rear_door,
        )

    def nearest_landing(self, position_m: float) -> int:
        return bisect.bisect_left(self.midpoints_m, position_m)

    def first_stoppable(self, position_m: float, direction: Direction) -> int:
        """Index of the first landing at or beyond position_m in direction."""
        if direction is Direction.UP:
            return bisect.bisect_left(self.landings_m, position_m - 1e-6)
        return bisect.bisect_right(self.landings_m, position_m + 1e-6) - 1


__all__ = ["BUTTON_RELEASED_S", "Context"]
