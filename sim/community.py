"""`python -m sim fleet --lockstep`: every car of a community on virtual time, on all cores.

    python -m sim fleet --lockstep --cars 223 --duration 86400 [--jobs N] [--seed 1] [--json FILE]

Rules of this module:
- A car is one Lockstep with bounded memory (sim/runstats.py), with its own residential traffic and seed (seed x 1000
  + its index, as the real-time fleet of sim/fleet.py seeds it): the default building, or every car the building,
  car, traffic and events of one scenario file (--scenario), with the fleet's duration, rate and the car's seed. run_car() is the whole of a car's run, so a car run
  in the fleet gives exactly what it gives alone (tests/sim/test_community.py).
- Each car runs in a process of its own (forked), at most ``jobs`` at a time. A car that raises is reported with its
  error; a worker that dies (killed, out of memory) is reported with its exit code, its pipe and its sentinel both
  watched, so that nothing waits on a dead process; either way the other cars go on.
- Ctrl-C or SIGTERM stops the run: the workers are terminated and reaped, and KeyboardInterrupt goes on to the
  caller. Workers ignore SIGINT (a terminal sends it to the whole process group: the parent decides), and a worker
  whose parent has gone stops at its next progress step instead of running on as an orphan.
- The community's distributions are the merge of the cars' tick histograms: exact, not a mean of means.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import random
import signal
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from sim.fleet import car_name
from sim.lockstep import Lockstep
from sim.runstats import TickHistogram
from sim.scenario import Scenario, ScriptedEvent
from sim.traffic import TrafficConfig

# A drive fault injected in a car (--faults-per-car-h) clears after this long and is reset by the maintenance key
# after this long, as in the real-time fleet.
FAULT_CLEARS_AFTER_S = 4.0
RESET_AFTER_S = 8.0
# Joining a worker that has sent its result, or that was terminated, takes no longer than this.
JOIN_S = 10.0
DISTRIBUTIONS = ("wait_s", "transit_s", "time_to_destination_s")
STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


@dataclass(frozen=True)
class CarPlan:
    index: int
    duration_s: float
    seed: int
    rate_pct_per_5min: float
    faults_per_car_h: float = 0.0
    scenario: Scenario | None = None  # the building, car, traffic and events of --scenario; None: the default

    @property
    def name(self) -> str:
        return car_name(self.index)

    @property
    def car_seed(self) -> int:
        return self.seed * 1000 + self.index


def plans(cars: int, duration_s: float, seed: int, rate_pct_per_5min: float,
          faults_per_car_h: float, scenario: Scenario | None = None) -> list[CarPlan]:
    return [CarPlan(index, duration_s, seed, rate_pct_per_5min, faults_per_car_h, scenario) for index in range(cars)]


def _fault_events(plan: CarPlan) -> tuple[ScriptedEvent, ...]:
    """Drive faults at Poisson times (seeded per car, as in sim/fleet.py), each cleared and then reset."""
    if plan.faults_per_car_h <= 0:
        return ()
    rng = random.Random(plan.seed * 7919 + plan.index)
    events: list[ScriptedEvent] = []
    t_s = rng.expovariate(plan.faults_per_car_h / 3600.0)
    while t_s < plan.duration_s:
        events += [ScriptedEvent(t_s, "fault", kind="drive_fault"),
                   ScriptedEvent(t_s + FAULT_CLEARS_AFTER_S, "clear_fault", kind="drive_fault"),
                   ScriptedEvent(t_s + RESET_AFTER_S, "fault_reset")]
        t_s += RESET_AFTER_S + rng.expovariate(plan.faults_per_car_h / 3600.0)
    return tuple(events)


def car_scenario(plan: CarPlan) -> Scenario:
    """The car's scenario: exactly what `carctl sim --scenario FILE --duration D --seed S` runs for that car (its
    seed S = seed x 1000 + its index), with the fleet's rate and any injected faults."""
    if plan.scenario is None:
        traffic = TrafficConfig(pattern="residential", rate_pct_per_5min=plan.rate_pct_per_5min,
                                duration_s=plan.duration_s, seed=plan.car_seed)
        return Scenario(traffic=traffic, events=_fault_events(plan), name=plan.name)
    traffic = replace(plan.scenario.traffic, rate_pct_per_5min=plan.rate_pct_per_5min, duration_s=plan.duration_s,
                      seed=plan.car_seed)
    events = tuple(sorted(plan.scenario.events + _fault_events(plan), key=lambda event: event.t_s))
    return replace(plan.scenario, traffic=traffic, events=events, name=plan.name)


def run_car(plan: CarPlan, stop: Callable[[], bool] = lambda: False) -> dict[str, Any]:
    """One car's day (or year): its report for the community, with its histograms (in ticks) for merging.
    ``stop()`` is asked at every 1 % of the run; True ends it with SystemExit."""

    def progress(_fraction: float) -> None:
        if stop():
            raise SystemExit("stopped")

    lockstep = Lockstep(car_scenario(plan), bounded=True)
    report = lockstep.run(progress)
    stats = lockstep.flow.stats
    assert stats is not None  # bounded
    kinds = Counter(str(fault["kind"]) for fault in report["faults"])
    return {
        "car": plan.name, "index": plan.index, "seed": plan.car_seed,
        "passengers_generated": report["passengers_generated"], "passengers_served": report["passengers_served"],
        **{key: report[key] for key in DISTRIBUTIONS},
        "worst_5min_mean_wait_s": report["worst_5min_mean_wait_s"],
        "trips": report["trips"], "door_cycles": report["door_cycles"], "energy_kwh": report["energy_kwh"],
        "running_s": report["running_s"], "faults_raised": len(report["faults"]), "faults_by_kind": dict(kinds),
        "active_faults": report["active_faults"], "safety_violations": report["safety_violations"],
        "sim_seconds": report["sim_seconds"], "wall_seconds": report["wall_seconds"],
        "period_s": lockstep.period_s,
        "histograms": {"wait_s": stats.wait.counts, "transit_s": stats.transit.counts,
                       "time_to_destination_s": stats.to_destination.counts},
    }


@dataclass
class _Worker:
    plan: CarPlan
    process: Any  # multiprocessing's process of the context
    receive: multiprocessing.connection.Connection


def _work(plan: CarPlan, send: multiprocessing.connection.Connection,
          run_one: Callable[[CarPlan], dict[str, Any]]) -> None:
    """A worker process: one car, its result or its error down the pipe."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # blocked by the parent around the fork
    outcome: dict[str, Any]
    try:
        outcome = {"ok": run_one(plan)}
    except Exception as error:  # the car's failure is its report; the other cars go on
        outcome = {"error": f"{type(error).__name__}: {error}"[:300]}
    try:
        send.send(outcome)
    except Exception as error:  # a result that cannot be pickled
        send.send({"error": f"the car's result could not be sent ({type(error).__name__}: {error})"[:300]})
    send.close()


def _orphaned(parent: int) -> Callable[[], bool]:
    return lambda: os.getppid() != parent


def run_cars(car_plans: list[CarPlan], jobs: int, run_one: Callable[[CarPlan], dict[str, Any]] | None = None,
             on_done: Callable[[int, int], None] | None = None) -> list[dict[str, Any]]:
    """Each car's result (``{"ok": report}`` or ``{"error": why}``), in the plans' order. KeyboardInterrupt stops
    the workers and is raised on."""
    if run_one is None:
        parent = os.getpid()
        run_one = _default_runner(parent)
    context = multiprocessing.get_context("fork")  # a worker inherits the imported simulator instead of re-importing
    waiting = deque(car_plans)
    running: dict[int, _Worker] = {}  # by the process's sentinel
    outcomes: dict[int, dict[str, Any]] = {}
    try:
        while waiting or running:
            while waiting and len(running) < jobs:
                plan = waiting.popleft()
                receive, send = context.Pipe(duplex=False)
                process = context.Process(target=_work, args=(plan, send, run_one), daemon=True,
                                          name=f"car-{plan.name}")
                # Ctrl-C between the fork and the worker's registration would leave a worker nobody stops (and
                # that holds the output's pipes): the signal waits until the worker is known.
                signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
                try:
                    process.start()
                    running[process.sentinel] = _Worker(plan, process, receive)
                finally:
                    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
                send.close()  # the worker holds the only writing end: its death is an end of file here
            ready = multiprocessing.connection.wait([w.receive for w in running.values()] + list(running))
            for sentinel, worker in list(running.items()):
                if worker.receive not in ready and sentinel not in ready:
                    continue
                outcome = _collect(worker)
                if outcome is None:
                    continue  # its pipe spoke but the message is not whole yet
                del running[sentinel]
                outcomes[worker.plan.index] = outcome
                if on_done is not None:
                    on_done(len(outcomes), len(car_plans))
    finally:
        for worker in running.values():  # only after Ctrl-C or an error in this loop
            worker.process.terminate()
        for worker in running.values():
            worker.process.join(JOIN_S)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            worker.receive.close()
    return [outcomes[plan.index] for plan in car_plans]


def _default_runner(parent: int) -> Callable[[CarPlan], dict[str, Any]]:
    def run(plan: CarPlan) -> dict[str, Any]:
        return run_car(plan, _orphaned(parent))

    return run


def _collect(worker: _Worker) -> dict[str, Any] | None:
    """The worker's outcome once its pipe has it or it has died; None while neither."""
    outcome: dict[str, Any] | None = None
    ended = False
    try:
        if worker.receive.poll():
            outcome = worker.receive.recv()
    except (EOFError, OSError):
        ended = True  # it died before (or while) sending: its pipe's end of file
    if outcome is None and not ended and worker.process.is_alive():
        return None
    worker.process.join(JOIN_S)
    if worker.process.is_alive():
        worker.process.kill()
        worker.process.join()
    worker.receive.close()
    if outcome is None:
        code = worker.process.exitcode
        why = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        outcome = {"error": f"the worker died without a result ({why})"}
    return outcome


def community_report(car_plans: list[CarPlan], outcomes: list[dict[str, Any]], jobs: int,
                     wall_s: float) -> dict[str, Any]:
    """Per-car reports and the community's: totals, and distributions from the merged histograms."""
    per_car: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    merged = {key: TickHistogram() for key in DISTRIBUTIONS}
    period_s = 0.0
    for plan, outcome in zip(car_plans, outcomes):
        if "ok" not in outcome:
            entry = {"car": plan.name, "index": plan.index, "seed": plan.car_seed, "error": outcome["error"]}
            failed.append(entry)
            per_car.append(entry)
            continue
        car = dict(outcome["ok"])
        for key, counts in car.pop("histograms").items():
            merged[key].merge(TickHistogram(counts))
        period_s = car.pop("period_s")
        per_car.append(car)
    ok = [car for car in per_car if "error" not in car]
    car_wall_s = sum(car["wall_seconds"] for car in ok)
    simulated_s = sum(car["sim_seconds"] for car in ok)
    plan = car_plans[0] if car_plans else None
    return {
        "mode": "lockstep",
        "cars": len(car_plans), "jobs": jobs,
        "duration_s": plan.duration_s if plan else 0.0, "seed": plan.seed if plan else 0,
        "rate_pct_per_5min": plan.rate_pct_per_5min if plan else 0.0,
        "faults_per_car_h": plan.faults_per_car_h if plan else 0.0,
        "scenario": plan.scenario.name if plan and plan.scenario else "default",
        "wall_s": round(wall_s, 2),
        "car_wall_s": round(car_wall_s, 2),
        "speedup": round(car_wall_s / wall_s, 2) if wall_s > 0 else 0.0,
        "simulated_car_s": round(simulated_s, 1),
        "x_real_time": round(simulated_s / wall_s, 1) if wall_s > 0 else 0.0,
        "cars_ok": len(ok), "cars_failed": failed,
        "community": {
            "passengers_generated": sum(car["passengers_generated"] for car in ok),
            "passengers_served": sum(car["passengers_served"] for car in ok),
            **{key: merged[key].distribution(period_s) for key in DISTRIBUTIONS},
            "trips": sum(car["trips"] for car in ok),
            "door_cycles": sum(car["door_cycles"] for car in ok),
            "energy_kwh": round(sum(car["energy_kwh"] for car in ok), 3),
            "running_hours": round(sum(car["running_s"] for car in ok) / 3600.0, 2),
            "faults_raised": sum(car["faults_raised"] for car in ok),
            "safety_violations": sum(car["safety_violations"] for car in ok),
        },
        "per_car": per_car,
    }


def run_community(cars: int, duration_s: float, jobs: int, seed: int = 1, rate_pct_per_5min: float = 8.0,
                  faults_per_car_h: float = 0.0, run_one: Callable[[CarPlan], dict[str, Any]] | None = None,
                  on_done: Callable[[int, int], None] | None = None,
                  scenario: Scenario | None = None) -> dict[str, Any]:
    car_plans = plans(cars, duration_s, seed, rate_pct_per_5min, faults_per_car_h, scenario)
    started = time.monotonic()
    outcomes = run_cars(car_plans, jobs, run_one, on_done)
    return community_report(car_plans, outcomes, jobs, time.monotonic() - started)


def default_jobs() -> int:
    """The cores this process may run on (its affinity, where the platform tells it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


__all__ = ["CarPlan", "car_scenario", "community_report", "default_jobs", "plans", "run_car", "run_cars",
           "run_community"]
