"""`python -m sim fleet`: a whole community's cars on one broker, each with its own platform link.

    python -m sim fleet --cars 223 --duration 3600 [--speed 1] [--faults-per-car-h 2] [--seed 1] [--json FILE]

Every car is a lockstep simulation (the pure controller on the simulated shaft, with residential traffic of its own
seed) reporting through the real link: a paho-mqtt client with its own username, password and ACL entry, and its
own SQLite outbox. The cars report exactly what a car reports (carctl/platform/telemetry.Reporter: state on change
and every 5 s, faults, mode changes, trapped-passenger alarms). A drive fault is injected now and then (Poisson,
--faults-per-car-h), cleared after a few seconds and reset by the maintenance key, so there are events to time.

Simulated time runs at --speed times wall time (1: real time, as a community's broker would see it). A subscriber
on the platform's account receives everything; the report gives messages per second (per wall second, which is what
the broker carries) and the latency from an event's creation on a car to its arrival at the subscriber, and checks
that every event sent arrived.

Mosquitto is started locally (sim/mosquitto.py) unless --broker HOST:PORT names one that already has the accounts.
"""

from __future__ import annotations

import json
import multiprocessing
import multiprocessing.queues
import os
import queue
import random
import resource
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from carctl.platform.link import BrokerSettings, PlatformLink
from carctl.platform.outbox import Outbox
from carctl.platform.telemetry import Reporter
from sim.mosquitto import start_broker
from sim.procedures import SimulatedCar

COMMUNITY = "xihan"
OPERATOR = "platform"
STEP_WALL_S = 0.1  # the fleet advances every car this often
CARS_PER_PROCESS = 60
FAULT_CLEARS_AFTER_S = 4.0
RESET_AFTER_S = 8.0
KEY = b"fleet-community-key-not-secret-0"


def car_name(index: int) -> str:
    return f"b{index // 4 + 1}u{index % 4 + 1}"  # building and stairwell unit, as the community numbers them


def _password(car: str) -> str:
    return f"pw-{car}"


@dataclass
class FleetCar:
    name: str
    car: SimulatedCar
    link: PlatformLink
    reporter: Reporter
    rng: random.Random
    faults_per_s: float
    events_seen: int = 0
    next_fault_s: float = 0.0
    fault_injected_s: float = -1.0
    events_sent: int = 0
    states_sent: int = 0

    def __post_init__(self) -> None:
        self.next_fault_s = self._next_fault(0.0)

    def _next_fault(self, now_s: float) -> float:
        return now_s + self.rng.expovariate(self.faults_per_s) if self.faults_per_s > 0 else float("inf")

    def advance(self, until_s: float, epoch_s: float) -> None:
        """Run the car to until_s of simulated time and send what it reports. The reporter's clock is simulated
        time from epoch_s (so the state cadence is per simulated second at any speed); each message's "t" is the
        wall time it was created, from which the subscriber measures its latency."""
        car = self.car
        sim = car.sim
        self._faults(car.t_s)
        sim.advance(round(until_s / sim.period_s))
        log = car.events
        events = tuple(log[self.events_seen:])
        self.events_seen = len(log)
        inputs = sim._previous_inputs
        if inputs is None:
            return
        messages, status = self.reporter.update(sim.state, replace(inputs, tick=sim.tick), events, 0.0,
                                                epoch_s + car.t_s)
        for message in messages:
            self.link.send_event({**message, "t": round(time.time(), 4)})
            self.events_sent += 1
        if status is not None:
            self.link.publish_state({**status, "t": round(time.time(), 4)})
            self.states_sent += 1

    def _faults(self, now_s: float) -> None:
        car = self.car
        if self.fault_injected_s < 0 and now_s >= self.next_fault_s:
            car.inject("drive_fault")
            self.fault_injected_s = now_s
        elif self.fault_injected_s >= 0:
            if now_s - self.fault_injected_s >= FAULT_CLEARS_AFTER_S and "drive_fault" in car.shaft.injected:
                car.clear("drive_fault")
            if now_s - self.fault_injected_s >= RESET_AFTER_S:
                car.reset_faults()
                self.fault_injected_s = -1.0
                self.next_fault_s = self._next_fault(now_s)


@dataclass
class Subscriber:
    """The platform's side: everything the community's cars send, with the delay of each message."""

    port: int
    password: str
    arrivals: queue.Queue[tuple[str, bytes, float]] = field(default_factory=queue.Queue)

    def __post_init__(self) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"platform-{uuid.uuid4().hex[:8]}")
        self.client.username_pw_set(OPERATOR, self.password)
        self.client.on_message = lambda c, u, m: self.arrivals.put((m.topic, m.payload, time.time()))
        self.client.on_connect = lambda c, u, f, r, p: c.subscribe(
            [(f"carctl/{COMMUNITY}/+/events", 1), (f"carctl/{COMMUNITY}/+/state", 1)])
        self.client.connect("127.0.0.1", self.port)
        self.client.loop_start()

    def drain(self) -> list[tuple[str, bytes, float]]:
        found = []
        while True:
            try:
                found.append(self.arrivals.get_nowait())
            except queue.Empty:
                return found

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)

    return {"n": len(ordered), "p50": at(0.5), "p90": at(0.9), "p99": at(0.99), "max": round(ordered[-1], 2)}


def _process_cpu_s(pid: int) -> float:
    """User plus system CPU time of a process, from /proc (0 where there is no /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _raise_file_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, needed), hard))


def run_fleet(cars: int, duration_s: float, speed: float = 1.0, faults_per_car_h: float = 2.0, seed: int = 1,
              rate_pct_per_5min: float = 8.0) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="carctl-fleet-") as scratch:
        directory = Path(scratch)
        names = [car_name(i) for i in range(cars)]
        users = {OPERATOR: "op-secret", **{f"{COMMUNITY}-{n}": _password(n) for n in names}}
        broker = start_broker(directory / "broker", users, COMMUNITY, names, OPERATOR)
        try:
            assert broker.process is not None
            cpu_before_s = _process_cpu_s(broker.process.pid)
            report = _run(broker.port, names, directory, duration_s, speed, faults_per_car_h, seed,
                          rate_pct_per_5min)
            broker_cpu_s = _process_cpu_s(broker.process.pid) - cpu_before_s
            report["broker_cpu_s"] = round(broker_cpu_s, 2)
            report["broker_cpu_pct_of_a_core"] = round(100.0 * broker_cpu_s / max(report["wall_s"], 1e-9), 2)
            return report
        finally:
            broker.stop()


@dataclass(frozen=True)
class ShardPlan:
    port: int
    indices: list[int]
    directory: Path
    duration_s: float
    speed: float
    faults_per_car_h: float
    seed: int
    rate_pct_per_5min: float


def _run(port: int, names: list[str], directory: Path, duration_s: float, speed: float, faults_per_car_h: float,
         seed: int, rate_pct_per_5min: float) -> dict[str, Any]:
    """The cars run in shards of CARS_PER_PROCESS, one process each: paho-mqtt waits on its sockets with select(),
    which cannot watch descriptors numbered 1024 or above, and each car holds about six (its socket, paho's wake-up
    pair, its SQLite outbox in WAL mode). Shards also spread the cars over the cores, as separate cars would be."""
    context = multiprocessing.get_context("spawn")
    results: multiprocessing.queues.Queue[dict[str, Any]] = context.Queue()
    go = context.Event()
    subscriber = Subscriber(port, "op-secret")
    shards = [list(range(first, min(len(names), first + CARS_PER_PROCESS)))
              for first in range(0, len(names), CARS_PER_PROCESS)]
    processes = [context.Process(target=_shard, args=(ShardPlan(port, indices, directory, duration_s, speed,
                                                                faults_per_car_h, seed, rate_pct_per_5min),
                                                      results, go)) for indices in shards]
    latencies: dict[str, list[float]] = {"events": [], "state": []}
    received_events: set[str] = set()
    messages = 0
    try:
        for process in processes:
            process.start()
        ready = [results.get(timeout=120) for _ in processes]  # every shard has built its cars and connected
        subscriber.drain()
        started = time.monotonic()
        go.set()
        reports: list[dict[str, Any]] = []
        while len(reports) < len(processes):
            try:
                reports.append(results.get(timeout=0.2))
            except queue.Empty:
                pass
            messages += _collect(subscriber, latencies, received_events)
            if time.monotonic() - started > duration_s / speed + 300:
                raise RuntimeError("the fleet's shards did not finish")
        wall_s = max(r["wall_s"] for r in reports)
        time.sleep(0.5)
        messages += _collect(subscriber, latencies, received_events)
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
                process.join()
        subscriber.close()
    events_sent = sum(r["events_sent"] for r in reports)
    step_ms = sorted(v for r in reports for v in r["step_ms"])
    return {
        "cars": len(names), "processes": len(processes), "connected": sum(r["connected"] for r in ready),
        "simulated_s": duration_s, "speed": speed, "wall_s": round(wall_s, 1),
        "fell_behind_s": round(max(r["behind_s"] for r in reports), 3),
        "step_ms": _percentiles(step_ms),
        "messages_received": messages, "messages_per_wall_s": round(messages / wall_s, 1),
        "messages_per_simulated_s": round(messages / duration_s, 2),
        "states_sent": sum(r["states_sent"] for r in reports), "events_sent": events_sent,
        "events_received": len(received_events), "events_missing": events_sent - len(received_events),
        "event_latency_ms": _percentiles(latencies["events"]),
        "state_latency_ms": _percentiles(latencies["state"]),
        "passengers_delivered": sum(r["passengers"] for r in reports), "trips": sum(r["trips"] for r in reports),
    }


def _shard(plan: ShardPlan, results: Any, go: Any) -> None:
    """One process's cars: build and connect them, report ready, run in step with wall time, drain, report."""
    _raise_file_limit(8 * len(plan.indices) + 256)
    parent = os.getppid()
    fleet: list[FleetCar] = []
    try:
        for index in plan.indices:
            name = car_name(index)
            car = SimulatedCar({"traffic": {"pattern": "residential", "rate_pct_per_5min": plan.rate_pct_per_5min,
                                            "duration_s": plan.duration_s + 60.0, "seed": plan.seed * 1000 + index}})
            link = PlatformLink(BrokerSettings("127.0.0.1", plan.port, f"{COMMUNITY}-{name}", _password(name)),
                                COMMUNITY, name, KEY, Outbox(plan.directory / "outbox" / f"{name}.db"),
                                lambda c: None)
            link.start()
            config = car.sim.controller.config.car
            fleet.append(FleetCar(name, car, link, Reporter(config.control_period_s, config.rated_load_kg, 5.0),
                                  random.Random(plan.seed * 7919 + index), plan.faults_per_car_h / 3600.0))
        deadline = time.monotonic() + 60
        while not all(c.link.connected.is_set() for c in fleet) and time.monotonic() < deadline:
            time.sleep(0.05)
        results.put({"connected": sum(c.link.connected.is_set() for c in fleet)})
        while not go.wait(timeout=1.0):
            if os.getppid() != parent:
                return
        started = time.monotonic()
        epoch_s = time.time()
        simulated_s = 0.0
        behind_s = 0.0
        step_ms: list[float] = []
        while simulated_s < plan.duration_s:
            if os.getppid() != parent:
                return  # the fleet's main process has gone: stop, do not run on as an orphan
            simulated_s = min(plan.duration_s, simulated_s + STEP_WALL_S * plan.speed)
            pause = started + simulated_s / plan.speed - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            else:
                behind_s = max(behind_s, -pause)
            step_started = time.perf_counter()
            for car in fleet:
                car.advance(simulated_s, epoch_s)
            step_ms.append((time.perf_counter() - step_started) * 1000.0)
        wall_s = time.monotonic() - started
        deadline = time.monotonic() + 30  # every event must leave its outbox
        while any(c.link.outbox.count() for c in fleet) and time.monotonic() < deadline:
            time.sleep(0.1)
        results.put({"wall_s": wall_s, "behind_s": behind_s, "step_ms": step_ms,
                     "events_sent": sum(c.events_sent for c in fleet),
                     "states_sent": sum(c.states_sent for c in fleet),
                     "passengers": sum(len(c.car.sim.flow.finished) for c in fleet),
                     "trips": sum(c.car.sim.trips for c in fleet)})
    finally:
        for car in fleet:
            car.link.stop()
            car.link.outbox.close()


def _collect(subscriber: Subscriber, latencies: dict[str, list[float]], received_events: set[str]) -> int:
    arrivals = subscriber.drain()
    for topic, payload, arrived_s in arrivals:
        try:
            message = json.loads(payload)
        except ValueError:
            continue
        kind = "events" if topic.endswith("/events") else "state"
        if kind == "events":
            if message.get("id") in received_events:
                continue  # a duplicate (QoS 1 may deliver twice); the platform dedupes by id
            received_events.add(message["id"])
        latencies[kind].append((arrived_s - float(message["t"])) * 1000.0)
    return len(arrivals)
