"""Reference formulas from the literature, written out independently of carctl for the tests to check against."""

import math


def peters_flight_time_s(d: float, v: float, a: float, j: float) -> float:
    """Peters 1995, 'Ideal Lift Kinematics': time-optimal flight of distance d at speed v, acceleration a, jerk j."""
    if d >= (a * a * v + v * v * j) / (a * j):
        return d / v + v / a + a / j
    if d >= 2 * a ** 3 / j ** 2:
        return a / j + math.sqrt(4 * d / a + (a / j) ** 2)
    return (32 * d / j) ** (1 / 3)


def cibse_round_trip_time_s(persons: float, floors_above: int, interfloor_m: float, speed_m_s: float,
                            performance_time_s: float, transfer_s: float) -> float:
    """CIBSE Guide D up-peak round trip time: RTT = 2·H·tv + (S+1)·ts + 2·P·tp."""
    n, p = floors_above, persons
    stops = n * (1 - (1 - 1 / n) ** p)
    highest = n - sum((i / n) ** p for i in range(1, n))
    tv = interfloor_m / speed_m_s
    ts = performance_time_s - tv
    return 2 * highest * tv + (stops + 1) * ts + 2 * p * transfer_s
