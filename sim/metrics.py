"""Traffic and ride metrics for the report (keys as in docs/scenarios.md, "The report")."""

from __future__ import annotations

import math
from typing import Any

from sim.traffic import Passenger

WINDOW_S = 300.0


def distribution(values: list[float]) -> dict[str, float]:
    """mean, p95 (nearest rank) and max; zeros for an empty list."""
    if not values:
        return {"mean": 0.0, "p95": 0.0, "max": 0.0}
    ordered = sorted(values)
    rank = max(0, math.ceil(0.95 * len(ordered)) - 1)
    return {"mean": round(sum(ordered) / len(ordered), 3), "p95": round(ordered[rank], 3),
            "max": round(ordered[-1], 3)}


def worst_window_mean(points: list[tuple[float, float]], window_s: float = WINDOW_S) -> float:
    """The largest mean of the values whose time falls in any window of window_s (windows start at a point)."""
    points = sorted(points)
    best = 0.0
    end = 0
    total = 0.0
    for start in range(len(points)):
        while end < len(points) and points[end][0] < points[start][0] + window_s:
            total += points[end][1]
            end += 1
        best = max(best, total / (end - start))
        total -= points[start][1]
    return round(best, 3)


def busiest_window_count(times: list[float], window_s: float = WINDOW_S) -> int:
    times = sorted(times)
    best = 0
    end = 0
    for start in range(len(times)):
        while end < len(times) and times[end] < times[start] + window_s:
            end += 1
        best = max(best, end - start)
    return best


def passenger_metrics(passengers: list[Passenger], period_s: float, population: int) -> dict[str, Any]:
    served = [p for p in passengers if p.delivered_tick >= 0]
    boarded = [p for p in passengers if p.boarded_tick >= 0]
    waits = [(p.boarded_tick - p.arrival_tick) * period_s for p in boarded]
    transits = [(p.delivered_tick - p.boarded_tick) * period_s for p in served]
    to_destination = [(p.delivered_tick - p.arrival_tick) * period_s for p in served]
    arrivals_with_wait = [(p.arrival_tick * period_s, (p.boarded_tick - p.arrival_tick) * period_s)
                          for p in boarded]
    handled = busiest_window_count([p.delivered_tick * period_s for p in served])
    return {
        "passengers_generated": len(passengers),
        "passengers_served": len(served),
        "passengers_waiting_at_end": len(passengers) - len(boarded),
        "passengers_in_car_at_end": len(boarded) - len(served),
        "wait_s": distribution(waits),
        "transit_s": distribution(transits),
        "time_to_destination_s": distribution(to_destination),
        "worst_5min_mean_wait_s": worst_window_mean(arrivals_with_wait),
        "handling_capacity_5min": handled,
        "handling_capacity_pct_5min": round(100.0 * handled / population, 2) if population else 0.0,
    }
