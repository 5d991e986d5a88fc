"""Daily statistics (GB/T 24476 statistics category) counted from a simulated car across a local midnight, and the
running totals the outbox keeps."""

from __future__ import annotations

import datetime
from pathlib import Path

from carctl.core.signals import EventKind
from carctl.platform.outbox import Outbox
from carctl.platform.telemetry import DailyStatistics
from sim.procedures import SimulatedCar

CST = datetime.timezone(datetime.timedelta(hours=8))


def test_a_day_of_trips_is_reported_once_at_local_midnight() -> None:
    car = SimulatedCar(skip_idle=False)
    period_s = car.sim.period_s
    # Two minutes before midnight in Qingdao (UTC+8): 23:58:00 on 25 November 2026.
    start_s = datetime.datetime(2026, 11, 25, 23, 58, 0, tzinfo=CST).timestamp()
    statistics = DailyStatistics(period_s, utc_offset_h=8.0)
    reports = []
    moving_ticks = 0
    seen = len(car.events)
    first_tick = car.sim.tick
    presses = {int(10 / period_s): 4, int(40 / period_s): 0, int(80 / period_s): 2, int(150 / period_s): 5}
    for step in range(int(240 / period_s)):  # four minutes: two before midnight, two after
        if step in presses:
            car.press_car_call(presses[step])
        car.sim.advance(car.sim.tick + 1)
        events = tuple(car.events[seen:])
        seen = len(car.events)
        if abs(car.shaft.speed_m_s) > 0.0:
            moving_ticks += 1
        report = statistics.update(car.sim.state, events, start_s + (car.sim.tick - first_tick) * period_s)
        if report is not None:
            reports.append((step, report, list(car.events)))
    assert len(reports) == 1, "one report, at the first cycle after midnight"
    step, report, events_then = reports[0]
    assert abs(step * period_s - 120.0) <= period_s
    assert report["day"] == "2026-11-25" and report["category"] == "statistics"
    assert report["trips"] == sum(e.kind is EventKind.RUN_STARTED for e in events_then) == 3
    assert report["door_cycles"] == sum(e.kind is EventKind.DOORS_OPENING for e in events_then) >= 3
    assert report["faults_raised"] == 0
    assert abs(report["running_h"] * 3600 - report["running_s"]) < 0.2
    # The next day starts from zero: the fourth call's trip and any parking run after it.
    tomorrow = statistics.report(start_s + 240)
    trips_after = sum(e.kind is EventKind.RUN_STARTED for e in car.events[len(events_then):])
    assert tomorrow["day"] == "2026-11-26" and tomorrow["trips"] == trips_after >= 1
    # Running time is the time in the moving phases, which cover the time the shaft really moved (they also hold
    # the brake lift and the last creep before the stop is declared, a second or two per trip).
    running_s = report["running_s"] + tomorrow["running_s"]
    trips = report["trips"] + tomorrow["trips"]
    assert moving_ticks * period_s <= running_s <= moving_ticks * period_s + 3.0 * trips


def test_outbox_totals_count_a_report_once_even_if_it_is_sent_twice(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.db")
    try:
        day = {"id": "d1", "kind": "daily_statistics", "day": "2026-11-24", "trips": 120, "door_cycles": 250,
               "running_h": 1.5}
        outbox.add_statistics("t", day)
        outbox.add_statistics("t", day)  # the loop resent it before it heard that it was stored
        outbox.add_statistics("t", {**day, "id": "d2", "day": "2026-11-25", "trips": 80, "running_h": 1.0})
        assert outbox.totals() == {"trips": 200.0, "door_cycles": 500.0, "running_h": 2.5}
        payloads = [p for _, _, p in outbox.pending()]
        assert len(payloads) == 2 and '"total_trips":200.0' in payloads[1]
    finally:
        outbox.close()
    reopened = Outbox(tmp_path / "outbox.db")
    try:
        assert reopened.totals()["trips"] == 200.0  # the totals survive a restart
    finally:
        reopened.close()
