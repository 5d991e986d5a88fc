"""What a maintenance planner reads from a run: use counts, per year, against typical service intervals.

Rules of this module:
- Counts come from the run's report (trips, door cycles, running time); nothing here simulates.
- A rope bend is one bending cycle of the most-travelled rope zone over one sheave: a trip bends that zone once over
  each sheave it passes (Verreet, "Calculating the service life of running steel wire ropes", CASAR 1998), so rope
  bends = trips x sheaves. An upper bound: a short trip may not carry that zone over every sheave.
- The intervals are typical figures from the sources named in TYPICAL_INTERVALS and docs/maintenance-planning.md,
  not the standard for any one lift: the maker's manual and the inspector's findings come first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

YEAR_S = 365 * 86400.0
HOUR_S = 3600.0
# A machine-room-less car with 2:1 roping, as most retrofit lifts are: traction sheave, two car sheaves under the car
# and the counterweight's sheave.
ROPE_SHEAVES = 4


@dataclass(frozen=True)
class Interval:
    item: str
    counts: str  # the report key it is read against: door_cycles, rope_bends or trips
    low_years: float
    high_years: float
    source: str


TYPICAL_INTERVALS: tuple[Interval, ...] = (
    Interval("maintenance visit (every 15 days)", "door_cycles", 15 / 365, 15 / 365,
             "TSG T5002-2017 (China): maintenance every 15 days, with quarterly, half-yearly and yearly items"),
    Interval("door hanger and operator rollers", "door_cycles", 1.5, 3.0,
             "typical 1.5-3 years in residential use (A-FLY Elevator, door operator roller replacement guide)"),
    Interval("hoist ropes (replaced)", "rope_bends", 7.0, 10.0,
             "typical 7-10 years between rope replacements (Heling and Thompson, Elevator World, 'Inspection of "
             "Elevator Ropes, Part Two'); rope life is counted in trips and bends (lift-report.de, 'Calculating "
             "the service life of steel wire ropes in elevators')"),
)
# For comparison: an average lift opens and closes its doors about 200,000 times a year (Pouyon, "Elevator door
# system parts"); a walk-up's car does far fewer.
AVERAGE_LIFT_DOOR_CYCLES_PER_YEAR = 200_000


def maintenance_report(report: dict[str, Any], rope_sheaves: int = ROPE_SHEAVES) -> dict[str, Any]:
    """The keys added to a run's report for the planner: running_hours, starts_per_hour, rope_bends and
    maintenance (the counts per year and what accumulates over each typical interval)."""
    sim_s = float(report["sim_seconds"])
    trips = int(report["trips"])
    door_cycles = int(report["door_cycles"])
    rope_bends = trips * rope_sheaves
    running_hours = float(report["running_s"]) / HOUR_S
    per_year = YEAR_S / sim_s if sim_s > 0 else 0.0
    yearly = {"trips": round(trips * per_year), "door_cycles": round(door_cycles * per_year),
              "rope_bends": round(rope_bends * per_year), "running_hours": round(running_hours * per_year, 1)}
    intervals = []
    for interval in TYPICAL_INTERVALS:
        per_year_count = yearly[interval.counts]
        intervals.append({
            "item": interval.item, "counts": interval.counts,
            "typical_years": [round(interval.low_years, 4), round(interval.high_years, 4)],
            "count_in_interval": [round(per_year_count * interval.low_years),
                                  round(per_year_count * interval.high_years)],
            "source": interval.source,
        })
    return {
        "running_hours": round(running_hours, 3),
        "starts_per_hour": round(trips / (sim_s / HOUR_S), 2) if sim_s > 0 else 0.0,
        "rope_bends": rope_bends,
        "maintenance": {
            "simulated_days": round(sim_s / 86400.0, 3),
            "rope_sheaves": rope_sheaves,
            "per_year": yearly,
            "door_cycles_vs_average_lift_pct": round(100.0 * yearly["door_cycles"] / AVERAGE_LIFT_DOOR_CYCLES_PER_YEAR,
                                                     1),
            "intervals": intervals,
        },
    }


__all__ = ["ROPE_SHEAVES", "TYPICAL_INTERVALS", "maintenance_report"]
