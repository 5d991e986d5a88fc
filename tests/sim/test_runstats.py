"""A bounded run (Lockstep(bounded=True), what `carctl sim` and the lockstep fleet use) reports what the whole list of
passengers gives, and what it keeps does not grow with the length of the run."""

from __future__ import annotations

import gc
import random
import sys
import types
from array import array
from typing import Any

import pytest

from sim.lockstep import Lockstep
from sim.metrics import busiest_window_count, distribution, worst_window_mean
from sim.runstats import DENSE_TICKS, BusiestWindow, TickHistogram, WorstWindowMean
from sim.scenario import Scenario, from_dict
from sim.traffic import TrafficConfig

PERIOD_S = 0.02


def test_histogram_gives_the_distribution_of_the_values() -> None:
    rng = random.Random(5)
    ticks = [rng.choice((0, 0, 1, 7, 150, 2999)) + rng.randrange(4000) for _ in range(997)] + [40_000, 31_000]
    histogram = TickHistogram()
    for value in ticks:
        histogram.add(value)
    assert histogram.distribution(PERIOD_S) == distribution([value * PERIOD_S for value in ticks])
    halves = TickHistogram(TickHistogram().counts)
    for value in ticks[:500]:
        halves.add(value)
    halves.merge(TickHistogram({value: 1 for value in []}))
    other = TickHistogram()
    for value in ticks[500:]:
        other.add(value)
    halves.merge(other)
    assert halves.counts == histogram.counts and halves.n == len(ticks)
    assert TickHistogram().distribution(PERIOD_S) == {"mean": 0.0, "p95": 0.0, "max": 0.0}


def test_windows_settled_as_passengers_board_give_the_whole_list_answer() -> None:
    rng = random.Random(9)
    arrivals = sorted(rng.randrange(200_000) for _ in range(400))
    waits = {arrival: rng.randrange(6000) for arrival in arrivals}
    # Boarding order: by boarding tick, so a long wait's point comes after later arrivals' points.
    window = WorstWindowMean()
    waiting = sorted(arrivals)
    for arrival in sorted(arrivals, key=lambda a: (a + waits[a], a)):
        waiting.remove(arrival)
        now = arrival + waits[arrival]
        window.add(arrival * PERIOD_S, waits[arrival] * PERIOD_S)
        window.settle(min([now] + waiting[:1]) * PERIOD_S)
    window.settle(float("inf"))
    expected = worst_window_mean([(a * PERIOD_S, waits[a] * PERIOD_S) for a in arrivals])
    assert round(window.best, 3) == expected
    deliveries = sorted(a + waits[a] for a in arrivals)
    busiest = BusiestWindow()
    for tick in deliveries:
        busiest.add(tick * PERIOD_S)
    assert busiest.result() == busiest_window_count([tick * PERIOD_S for tick in deliveries])


@pytest.mark.parametrize("scenario", [
    Scenario(traffic=TrafficConfig(rate_pct_per_5min=30.0, duration_s=900.0, seed=3)),
    from_dict({"traffic": {"rate_pct_per_5min": 10.0, "duration_s": 1200.0, "seed": 8},
               "events": [{"t_s": 100.0, "type": "passenger", "origin": 4, "destination": 0},
                          {"t_s": 300.0, "type": "fault", "kind": "drive_fault"},
                          {"t_s": 330.0, "type": "clear_fault", "kind": "drive_fault"},
                          {"t_s": 340.0, "type": "fault_reset"},
                          {"t_s": 900.0, "type": "passenger", "origin": 0, "destination": 5}]}),
], ids=["busy", "scripted"])
def test_bounded_run_reports_what_the_whole_list_gives(scenario: Scenario) -> None:
    whole = Lockstep(scenario).run()
    bounded_lockstep = Lockstep(scenario, bounded=True)
    bounded = bounded_lockstep.run()
    assert whole["passengers_generated"] > 5 and whole["trips"] > 10  # the run had something to count
    for report in (whole, bounded):
        report.pop("wall_seconds")
    assert bounded == whole
    assert bounded_lockstep.flow.everyone == [] and bounded_lockstep.flow.finished == []


def _kept_bytes(root: object) -> int:
    """The bytes of everything reachable from ``root`` but code, classes and modules: what a run keeps. The
    histograms' arrays are left out: they grow with the longest duration seen, up to DENSE_TICKS entries each (the
    test checks that bound), not with the passengers."""
    module_dicts = {id(vars(module)) for module in list(sys.modules.values()) if module is not None}
    skipped = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.MethodType,
               types.CodeType, array)
    seen: set[int] = set()
    stack: list[Any] = [root]
    total = 0
    while stack:
        item = stack.pop()
        if id(item) in seen or id(item) in module_dicts or isinstance(item, skipped):
            continue
        seen.add(id(item))
        total += sys.getsizeof(item)
        stack.extend(gc.get_referents(item))
    return total


def _kept_after(duration_s: float, bounded: bool) -> tuple[int, int]:
    """What a run of ``duration_s`` keeps, in bytes, and the passengers that arrived."""
    scenario = from_dict({"traffic": {"rate_pct_per_5min": 12.0, "duration_s": duration_s, "seed": 2}})
    lockstep = Lockstep(scenario, bounded=bounded)
    lockstep.run()
    flow = lockstep.flow
    if flow.stats is None:
        return _kept_bytes(lockstep), len(flow.everyone)
    for histogram in (flow.stats.wait, flow.stats.transit, flow.stats.to_destination):
        assert len(histogram.dense) <= DENSE_TICKS and histogram.dense.itemsize <= 4
        assert not histogram.sparse  # no wait of 10 minutes in this run
    return _kept_bytes(lockstep), flow.stats.arrived


def test_a_bounded_run_keeps_no_more_after_four_times_as_long() -> None:
    """Measured over 30 min and 2 h of traffic (docs/performance.md extrapolates to a year): the unbounded run grows by
    a few hundred bytes per passenger (which shows that the measure sees per-passenger memory); the bounded run by
    next to nothing (a few counters' larger integers)."""
    short_bytes, short_passengers = _kept_after(1800.0, bounded=True)
    long_bytes, long_passengers = _kept_after(4 * 1800.0, bounded=True)
    more_passengers = long_passengers - short_passengers
    assert more_passengers > 40
    whole_short, _ = _kept_after(1800.0, bounded=False)
    whole_long, _ = _kept_after(4 * 1800.0, bounded=False)
    assert whole_long - whole_short > 150 * more_passengers, (whole_short, whole_long)
    assert long_bytes - short_bytes < 1024, (short_bytes, long_bytes, more_passengers)
