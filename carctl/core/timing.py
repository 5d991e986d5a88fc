"""Durations in whole control ticks, the core's only unit of time.

Rules of this module:
- Every duration the core waits out is converted here, once, from the configuration's seconds: round to the nearest
  tick, and at least one tick where a zero would make a timer fire at once or never.
- The core compares ticks with deadlines kept in its state; it never reads a clock and never divides by the period
  on the hot path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # config.py re-exports Timing, so it is not imported here at run time
    from carctl.core.config import CarConfig

# A car that has held someone this long without letting them out has trapped them (watch.py): a Hangzhou pilot
# flagged entrapments about 30 s after the fault.
TRAPPED_AFTER_S = 30.0
# A car still settling after a stop this long, with no stop-at-once fault to explain it, says so (standstill.py).
STANDSTILL_UNCONFIRMED_S = 10.0
# The alarm's "help is on the way" prompt is held this long (alarm.py), so a car panel that misses a poll speaks it.
ALARM_PROMPT_S = 1.0
# A brake contact counts as following the drive (brake.py) only once it has read so this long without a break: a
# contact that chatters agrees now and then, and one agreeing reading must not end a disagreement or open the doors.
BRAKE_CONTACTS_STEADY_S = 0.1
# The drive must answer the brake test's request (hold its torque) within this (braketest.py): a drive that can
# ramp its torque up takes a few hundred milliseconds.
BRAKE_TEST_ANSWER_S = 1.0
# A brake test that could not be made (a call came, the drive did not answer) is tried again this much later.
BRAKE_TEST_RETRY_S = 600.0
# ... and one the drive did not answer, an hour later (a drive without the test is asked once an hour, not flooded).
BRAKE_TEST_UNANSWERED_RETRY_S = 3600.0

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
    trapped_after: int
    standstill_settle: int
    standstill_unconfirmed: int
    speed_deviation: int
    alarm_press: int
    alarm_prompt: int
    brake_lift_limit: int
    brake_drop_limit: int
    brake_contacts_steady: int
    brake_test_every: int  # 0: never
    brake_test_hold: int
    brake_test_answer: int
    brake_test_retry: int
    brake_test_unanswered_retry: int

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
            trapped_after=max(1, ticks(TRAPPED_AFTER_S)),
            standstill_settle=max(1, ticks(car.standstill_settle_s)),
            standstill_unconfirmed=max(1, ticks(STANDSTILL_UNCONFIRMED_S)),
            speed_deviation=max(1, ticks(car.speed_deviation_s)),
            alarm_press=max(1, ticks(car.alarm_press_s)),
            alarm_prompt=max(1, ticks(ALARM_PROMPT_S)),
            brake_lift_limit=max(1, ticks(car.brake_lift_limit_s)),
            brake_drop_limit=max(1, ticks(car.brake_drop_limit_s)),
            brake_contacts_steady=max(1, ticks(BRAKE_CONTACTS_STEADY_S)),
            brake_test_every=ticks(car.brake_test_every_h * 3600.0),
            brake_test_hold=max(1, ticks(car.brake_test_hold_s)),
            brake_test_answer=max(1, ticks(BRAKE_TEST_ANSWER_S)),
            brake_test_retry=max(1, ticks(BRAKE_TEST_RETRY_S)),
            brake_test_unanswered_retry=max(1, ticks(BRAKE_TEST_UNANSWERED_RETRY_S)),
        )
