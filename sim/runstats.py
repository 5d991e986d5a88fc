"""Passenger and levelling statistics kept in bounded memory, for runs of a year and for a community's cars.

Rules of this module:
- The same numbers as sim/metrics.py computes from every passenger of a run, bit for bit: a test compares both on a
  seeded run. Nothing here is an estimate.
- Memory does not grow with the length of the run. Durations are counted in a histogram of whole control ticks
  (a wait is a whole number of ticks, so the histogram loses nothing); it holds one entry per distinct duration,
  which the longest wait bounds, not the number of passengers. The sliding 5-minute windows keep only the
  passengers of the windows still open.
- Histograms merge (a community's distribution is the merge of its cars').
"""

from __future__ import annotations

import math
from array import array
from collections import deque
from typing import Any

from sim.metrics import WINDOW_S

# Durations counted in a dense array up to this many ticks (10 minutes at the default 0.02 s period).
DENSE_TICKS = 30_000


class TickHistogram:
    """A distribution of durations counted in whole control ticks: mean, p95 (nearest rank) and max as
    sim.metrics.distribution gives them for the same values.

    Durations up to DENSE_TICKS are counted in an array (4 bytes a tick, grown to the longest seen: 120 kB at most),
    the rare longer ones in a dict: the memory is that of the range of durations, not of their number."""

    def __init__(self, counts: dict[int, int] | None = None) -> None:
        self.dense = array("I")
        self.sparse: dict[int, int] = {}
        self.n = 0
        for ticks, count in (counts or {}).items():
            self.add(ticks, count)

    def add(self, ticks: int, count: int = 1) -> None:
        self.n += count
        if 0 <= ticks < DENSE_TICKS:
            dense = self.dense
            if ticks >= len(dense):
                dense.extend([0] * (ticks + 1 - len(dense)))
            dense[ticks] += count
        else:
            self.sparse[ticks] = self.sparse.get(ticks, 0) + count

    def merge(self, other: TickHistogram) -> None:
        for ticks, count in other.counts.items():
            self.add(ticks, count)

    @property
    def counts(self) -> dict[int, int]:
        """Every duration seen and its count, ascending (for merging across processes, and for JSON)."""
        found = {ticks: count for ticks, count in enumerate(self.dense) if count}
        found.update(sorted(self.sparse.items()))
        return dict(sorted(found.items()))

    def distribution(self, period_s: float) -> dict[str, float]:
        n = self.n
        if n == 0:
            return {"mean": 0.0, "p95": 0.0, "max": 0.0}
        counts = self.counts
        keys = list(counts)
        # Summed value by value in ascending order, as sum(sorted(values)) does: the same float, not a near one.
        total = 0.0
        for ticks in keys:
            value = ticks * period_s
            for _ in range(counts[ticks]):
                total += value
        rank = max(0, math.ceil(0.95 * n) - 1)
        seen = 0
        p95 = keys[-1]
        for ticks in keys:
            seen += counts[ticks]
            if seen > rank:
                p95 = ticks
                break
        return {"mean": round(total / n, 3), "p95": round(p95 * period_s, 3), "max": round(keys[-1] * period_s, 3)}


class WorstWindowMean:
    """sim.metrics.worst_window_mean over (arrival time, wait) points that come in boarding order, not arrival
    order: a window is evaluated once no passenger who could still fall into it is waiting."""

    def __init__(self, window_s: float = WINDOW_S) -> None:
        self.window_s = window_s
        self.points: list[tuple[float, float]] = []  # unsettled, sorted; points[:end] are summed into total
        self.end = 0
        self.total = 0.0
        self.best = 0.0

    def add(self, time_s: float, value: float) -> None:
        points = self.points
        low, high = 0, len(points)
        while low < high:  # insort; a point always lands past `end`, whose windows it cannot join late
            middle = (low + high) // 2
            if points[middle] <= (time_s, value):
                low = middle + 1
            else:
                high = middle
        points.insert(low, (time_s, value))

    def settle(self, open_s: float) -> None:
        """Evaluate every window that no point at or after ``open_s`` can join (all of them: math.inf)."""
        points = self.points
        window_s = self.window_s
        while points and (points[0][0] + window_s <= open_s or open_s == math.inf):
            start_s = points[0][0]
            while self.end < len(points) and points[self.end][0] < start_s + window_s:
                self.total += points[self.end][1]
                self.end += 1
            self.best = max(self.best, self.total / self.end)
            self.total -= points[0][1]
            points.pop(0)
            self.end -= 1


class BusiestWindow:
    """sim.metrics.busiest_window_count over times that come in order (deliveries happen as time goes on)."""

    def __init__(self, window_s: float = WINDOW_S) -> None:
        self.window_s = window_s
        self.times: deque[float] = deque()
        self.best = 0

    def add(self, time_s: float) -> None:
        times = self.times
        while times and not time_s < times[0] + self.window_s:  # the window from times[0] is complete
            self.best = max(self.best, len(times))
            times.popleft()
        times.append(time_s)

    def result(self) -> int:
        return max(self.best, len(self.times))


class PassengerStats:
    """What sim.metrics.passenger_metrics reports, fed passenger by passenger as they arrive, board and arrive at
    their destination (sim.traffic.PassengerFlow calls these); nobody is kept once delivered."""

    def __init__(self, period_s: float) -> None:
        self.period_s = period_s
        self.arrived = 0
        self.boarded = 0
        self.served = 0
        self.wait = TickHistogram()
        self.transit = TickHistogram()
        self.to_destination = TickHistogram()
        self.worst_window = WorstWindowMean()
        self.busiest = BusiestWindow()

    def on_board(self, arrival_tick: int, boarded_tick: int, open_tick: int) -> None:
        """A passenger boarded; nobody still waiting arrived before ``open_tick``."""
        period_s = self.period_s
        self.boarded += 1
        self.wait.add(boarded_tick - arrival_tick)
        self.worst_window.add(arrival_tick * period_s, (boarded_tick - arrival_tick) * period_s)
        self.worst_window.settle(open_tick * period_s)

    def on_delivered(self, arrival_tick: int, boarded_tick: int, delivered_tick: int) -> None:
        self.served += 1
        self.transit.add(delivered_tick - boarded_tick)
        self.to_destination.add(delivered_tick - arrival_tick)
        self.busiest.add(delivered_tick * self.period_s)

    def report(self, not_arrived: int, population: int) -> dict[str, Any]:
        """The keys of sim.metrics.passenger_metrics; ``not_arrived``: generated passengers yet to arrive."""
        self.worst_window.settle(math.inf)
        generated = self.arrived + not_arrived
        handled = self.busiest.result()
        return {
            "passengers_generated": generated,
            "passengers_served": self.served,
            "passengers_waiting_at_end": generated - self.boarded,
            "passengers_in_car_at_end": self.boarded - self.served,
            "wait_s": self.wait.distribution(self.period_s),
            "transit_s": self.transit.distribution(self.period_s),
            "time_to_destination_s": self.to_destination.distribution(self.period_s),
            "worst_5min_mean_wait_s": round(self.worst_window.best, 3),
            "handling_capacity_5min": handled,
            "handling_capacity_pct_5min": round(100.0 * handled / population, 2) if population else 0.0,
        }


class LevellingStats:
    """The levelling errors' max and mean (mm) without the list: appended to as Lockstep appends to its list."""

    def __init__(self) -> None:
        self.count = 0
        self.sum_mm = 0.0
        self.max_mm = 0.0

    def append(self, error_m: float) -> None:
        error_mm = error_m * 1000.0
        self.count += 1
        self.sum_mm += error_mm  # in arrival order, as sum() over the list adds them
        self.max_mm = max(self.max_mm, error_mm)


def levelling_summary_mm(errors: list[float] | LevellingStats) -> dict[str, float]:
    """``levelling_error_mm`` of the report, from the list of errors (m) or from LevellingStats."""
    if isinstance(errors, LevellingStats):
        count, total, largest = errors.count, errors.sum_mm, errors.max_mm
    else:
        levelling_mm = [error * 1000.0 for error in errors]
        count, total, largest = len(levelling_mm), sum(levelling_mm), max(levelling_mm, default=0.0)
    return {"max": round(largest, 2), "mean": round(total / count, 2) if count else 0.0}


__all__ = ["BusiestWindow", "LevellingStats", "PassengerStats", "TickHistogram", "WorstWindowMean",
           "levelling_summary_mm"]
