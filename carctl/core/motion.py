"""Jerk-limited, time-optimal speed reference; stopping distance; levelling.

Rules of this module:
- A run is a Profile: a short list of constant-jerk segments, planned once when the run starts or when a nearer stop
  is committed, and sampled by time on every tick. Sampling never changes the plan, so a steady run leaves the
  controller state untouched.
- Plans are time-optimal under the rated speed, acceleration and jerk (Peters 1995, "Ideal Lift Kinematics"): raise
  the acceleration at the jerk limit, hold, lower it, cruise, and mirror that to stop. From a moving state the same
  shape is solved for the peak speed that stops exactly at the target.
- A stop is committed only if the stopping distance from the current reference state fits (plan returns None).
- The speed reference adds a feed-forward of the planned acceleration over the drive's lag and a position correction,
  so the car ends within the levelling tolerance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

_EPS_S = 1e-9


@dataclass(frozen=True, slots=True)
class Limits:
    speed_m_s: float
    acceleration_m_s2: float
    jerk_m_s3: float


@dataclass(frozen=True, slots=True)
class Profile:
    """Constant-jerk segments along the direction of travel, from distance 0 at time 0.

    Segment i starts at ``starts_s[i]`` in state ``(distance_m[i], speed_m_s[i], accel_m_s2[i])`` with ``jerk[i]``.
    """

    starts_s: tuple[float, ...]
    distance_m: tuple[float, ...]
    speed_m_s: tuple[float, ...]
    accel_m_s2: tuple[float, ...]
    jerk_m_s3: tuple[float, ...]
    duration_s: float
    length_m: float

    def sample(self, t_s: float) -> tuple[float, float, float]:
        """(distance_m, speed_m_s, accel_m_s2) at time t_s; held at the end state after the last segment."""
        if t_s >= self.duration_s:
            return self.length_m, 0.0, 0.0
        index = len(self.starts_s) - 1
        starts = self.starts_s
        while index > 0 and starts[index] > t_s:
            index -= 1
        dt = t_s - starts[index]
        jerk = self.jerk_m_s3[index]
        accel = self.accel_m_s2[index]
        speed = self.speed_m_s[index]
        return (self.distance_m[index] + dt * (speed + dt * (accel / 2 + dt * jerk / 6)),
                speed + dt * (accel + dt * jerk / 2),
                accel + dt * jerk)


Segments = list[tuple[float, float]]  # (duration_s, jerk_m_s3)


def _speed_change(speed0: float, accel0: float, speed1: float, limits: Limits) -> Segments:
    """Fastest constant-jerk segments from (speed0, accel0) to (speed1, accel 0)."""
    jerk = limits.jerk_m_s3
    accel_max = limits.acceleration_m_s2
    # The speed reached by bringing the acceleration straight back to zero decides whether to push up or down.
    settled = speed0 + accel0 * abs(accel0) / (2 * jerk)
    sign = 1.0 if speed1 >= settled else -1.0
    # Mirror so that the change is upwards.
    accel_start = sign * accel0
    gain = sign * (speed1 - speed0)
    peak = math.sqrt(max(0.0, jerk * gain + accel_start * accel_start / 2))
    hold = 0.0
    if peak > accel_max:
        peak = accel_max
        hold = max(0.0, (gain - (2 * accel_max * accel_max - accel_start * accel_start) / (2 * jerk)) / accel_max)
    peak = max(peak, accel_start)
    segments = [((peak - accel_start) / jerk, sign * jerk), (hold, 0.0), (peak / jerk, -sign * jerk)]
    return [segment for segment in segments if segment[0] > _EPS_S]


def _advance(speed: float, accel: float, segments: Segments) -> tuple[float, float, float]:
    """Distance travelled and the final (speed, accel) after the segments."""
    distance = 0.0
    for duration, jerk in segments:
        distance += duration * (speed + duration * (accel / 2 + duration * jerk / 6))
        speed += duration * (accel + duration * jerk / 2)
        accel += duration * jerk
    return distance, speed, accel


def stopping_distance_m(speed_m_s: float, accel_m_s2: float, limits: Limits) -> float:
    """Distance to a standstill, braking as hard as the limits allow from the given reference state."""
    return _advance(speed_m_s, accel_m_s2, _speed_change(speed_m_s, accel_m_s2, 0.0, limits))[0]


def plan(speed0_m_s: float, accel0_m_s2: float, distance_m: float, limits: Limits) -> Profile | None:
    """Time-optimal profile from (speed0, accel0) to rest after exactly distance_m; None if it cannot stop there."""
    if distance_m < stopping_distance_m(speed0_m_s, accel0_m_s2, limits) - 1e-6:
        return None

    def total(peak_speed: float) -> tuple[float, Segments]:
        rise = _speed_change(speed0_m_s, accel0_m_s2, peak_speed, limits)
        fall = _speed_change(peak_speed, 0.0, 0.0, limits)
        return _advance(speed0_m_s, accel0_m_s2, rise)[0] + _advance(peak_speed, 0.0, fall)[0], rise + fall

    top = limits.speed_m_s
    length, segments = total(top)
    if length <= distance_m:
        rise = _speed_change(speed0_m_s, accel0_m_s2, top, limits)
        fall = _speed_change(top, 0.0, 0.0, limits)
        segments = rise + [((distance_m - length) / top, 0.0)] + fall
    else:
        low, high = 0.0, top
        for _ in range(60):
            middle = (low + high) / 2
            if total(middle)[0] > distance_m:
                high = middle
            else:
                low = middle
        segments = total(low)[1]
    return _profile(speed0_m_s, accel0_m_s2, segments)


def _profile(speed: float, accel: float, segments: Segments) -> Profile:
    starts, distances, speeds, accels, jerks = [], [], [], [], []
    t = distance = 0.0
    for duration, jerk in segments:
        if duration <= _EPS_S:
            continue
        starts.append(t)
        distances.append(distance)
        speeds.append(speed)
        accels.append(accel)
        jerks.append(jerk)
        distance += duration * (speed + duration * (accel / 2 + duration * jerk / 6))
        speed += duration * (accel + duration * jerk / 2)
        accel += duration * jerk
        t += duration
    if not starts:
        return Profile((0.0,), (0.0,), (0.0,), (0.0,), (0.0,), 0.0, 0.0)
    return Profile(tuple(starts), tuple(distances), tuple(speeds), tuple(accels), tuple(jerks), t, distance)


def speed_reference_m_s(planned_speed_m_s: float, planned_accel_m_s2: float, position_error_m: float,
                        drive_lag_s: float, position_gain_per_s: float) -> float:
    """Speed reference along the direction of travel: the plan, led by the drive's lag, plus a position correction.

    ``position_error_m`` is planned minus measured distance along the direction of travel.
    """
    return planned_speed_m_s + drive_lag_s * planned_accel_m_s2 + position_gain_per_s * position_error_m


def levelling_speed_m_s(error_m: float, max_speed_m_s: float, position_gain_per_s: float) -> float:
    """Creep speed towards the landing for the final approach and for relevelling (error_m > 0 means 'go on')."""
    return min(max_speed_m_s, position_gain_per_s * abs(error_m))
