"""Benchmark: simulated seconds per wall-clock second, default building, 24 hours of residential traffic.

Target (issue 2): at least 10,000x real time on one core of the 2-core reference machine (a day in under 9 s).
Runs the day three times and reports the best and the median, pinned to one CPU where the OS allows.
"""

from __future__ import annotations

import json
import os
import statistics
import sys

from sim.lockstep import Lockstep
from sim.scenario import from_dict

TARGET_X = 10_000.0
RUNS = 3


def main() -> int:
    if hasattr(os, "sched_setaffinity"):
        try:
            os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
        except OSError:
            pass
    scenario = from_dict({"traffic": {"pattern": "residential", "duration_s": 86400.0, "seed": 1}})
    speeds = []
    report = {}
    for _ in range(RUNS):
        report = Lockstep(scenario).run()
        speeds.append(report["sim_seconds"] / report["wall_seconds"])
    best, median = max(speeds), statistics.median(speeds)
    result = {
        "benchmark": "lockstep_speed",
        "sim_seconds": report["sim_seconds"],
        "wall_seconds_best": round(report["sim_seconds"] / best, 3),
        "realtime_factor_best": round(best),
        "realtime_factor_median": round(median),
        "stepped_ticks": report["stepped_ticks"],
        "skipped_ticks": report["skipped_ticks"],
        "passengers_served": report["passengers_served"],
        "target_x": TARGET_X,
        "meets_target": median >= TARGET_X,
    }
    print(f"lockstep: one simulated day ({report['sim_seconds']:.0f} s, {report['passengers_served']} passengers) "
          f"in {result['wall_seconds_best']:.2f} s: {best:,.0f}x real time best, {median:,.0f}x median "
          f"(target {TARGET_X:,.0f}x) {'OK' if result['meets_target'] else 'BELOW TARGET'}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
