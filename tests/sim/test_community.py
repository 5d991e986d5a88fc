"""`python -m sim fleet --lockstep`: each car gives in the fleet what it gives alone; a car that raises and a worker
that dies are reported per car and do not stop the others; Ctrl-C stops the run and its workers; bad options are
refused with exit 2 and one line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from sim.community import CarPlan, community_report, plans, run_car, run_cars, run_community
from tests.refusals import assert_refused

ROOT = Path(__file__).resolve().parent.parent.parent


def python_sim(*args: str, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sim", *args], capture_output=True, text=True, timeout=timeout_s,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})


def _without_wall(car: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in car.items() if key not in ("wall_seconds", "histograms", "period_s")}


def test_each_car_in_the_fleet_gives_what_it_gives_alone() -> None:
    report = run_community(cars=3, duration_s=600.0, jobs=2, seed=4, rate_pct_per_5min=10.0)
    assert report["cars_ok"] == 3 and report["cars_failed"] == [] and report["jobs"] == 2
    for plan, car in zip(plans(3, 600.0, 4, 10.0, 0.0), report["per_car"]):
        alone = run_car(plan)
        assert _without_wall(car) == _without_wall(alone)
        assert car["car"] == plan.name and car["seed"] == 4000 + plan.index
    cars = report["per_car"]
    assert len({car["passengers_generated"] for car in cars} | {car["trips"] for car in cars}) > 1  # own seeds
    community = report["community"]
    assert community["passengers_served"] == sum(car["passengers_served"] for car in cars) > 0
    assert community["trips"] == sum(car["trips"] for car in cars)
    assert community["wait_s"]["max"] == max(car["wait_s"]["max"] for car in cars)


def _failing(plan: CarPlan) -> dict[str, Any]:
    if plan.index == 1:
        os._exit(3)  # the worker dies mid-car, sending nothing
    if plan.index == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    if plan.index == 3:
        raise ValueError("a car that raises")
    return run_car(plan)


def test_a_dead_worker_or_a_car_that_raises_is_reported_and_the_others_run() -> None:
    car_plans = plans(5, 120.0, 1, 8.0, 0.0)
    started = time.monotonic()
    outcomes = run_cars(car_plans, jobs=2, run_one=_failing)
    assert time.monotonic() - started < 120
    assert "ok" in outcomes[0] and "ok" in outcomes[4]
    assert outcomes[1] == {"error": "the worker died without a result (exit code 3)"}
    assert outcomes[2] == {"error": "the worker died without a result (killed by signal 9)"}
    assert outcomes[3] == {"error": "ValueError: a car that raises"}
    report = community_report(car_plans, outcomes, 2, 1.0)
    assert report["cars_ok"] == 2 and [f["index"] for f in report["cars_failed"]] == [1, 2, 3]
    assert report["community"]["trips"] == outcomes[0]["ok"]["trips"] + outcomes[4]["ok"]["trips"]
    assert report["per_car"][3] == {"car": "b1u4", "index": 3, "seed": 1003, "error": "ValueError: a car that raises"}


def test_injected_faults_are_reported_per_car() -> None:
    car = run_car(CarPlan(0, 900.0, 1, 8.0, faults_per_car_h=12.0))
    assert car["faults_raised"] >= 1 and car["faults_by_kind"].get("drive_fault", 0) >= 1


def test_the_cli_writes_the_report(tmp_path: Path) -> None:
    path = tmp_path / "community.json"
    result = python_sim("fleet", "--lockstep", "--cars", "2", "--duration", "300", "--jobs", "2", "--json", str(path))
    assert result.returncode == 0, result.stderr
    report = json.loads(path.read_text())
    assert report == json.loads(result.stdout)
    assert report["cars"] == 2 and [car["car"] for car in report["per_car"]] == ["b1u1", "b1u2"]
    assert {"passengers_generated", "wait_s", "transit_s", "energy_kwh", "trips", "door_cycles",
            "faults_raised"} <= set(report["community"]) & set(report["per_car"][0])


def test_ctrl_c_stops_the_workers_and_says_so() -> None:
    process = subprocess.Popen([sys.executable, "-m", "sim", "fleet", "--lockstep", "--cars", "4", "--duration",
                                "86400", "--jobs", "2"], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(_children(process.pid)) < 2:
            time.sleep(0.1)
        workers = _children(process.pid)
        assert len(workers) == 2, "the workers did not start"
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode == 130, stderr
    assert "stopped" in stderr and "Traceback" not in stderr
    for pid in workers:  # reaped, not orphaned
        assert not Path(f"/proc/{pid}").exists()


def _children(pid: int) -> list[int]:
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


@pytest.mark.parametrize(("args", "named"), [
    (("--lockstep", "--jobs", "0"), "--jobs"),
    (("--lockstep", "--jobs", "two"), "--jobs"),
    (("--lockstep", "--jobs", "1e9"), "--jobs"),
    (("--lockstep", "--speed", "100"), "--speed"),
    (("--jobs", "2"), "--jobs"),
    (("--lockstep", "--cars", "0"), "--cars"),
    (("--lockstep", "--duration", "-5"), "--duration"),
    (("--lockstep", "--cars", "2", "--json", "/no-such-folder/fleet.json"), "--json"),
])
def test_bad_options_are_refused(args: tuple[str, ...], named: str) -> None:
    assert_refused(python_sim("fleet", *args), named)


@pytest.mark.parametrize("kind", ["device", "fifo"])
def test_a_json_that_cannot_take_a_report_is_refused_before_the_cars_run(tmp_path: Path, kind: str) -> None:
    """A device would fail and a FIFO would block only at the end, after the community's day had been run."""
    target = Path("/dev/full") if kind == "device" else tmp_path / "report.json"
    if kind == "fifo":
        os.mkfifo(target)
    result = python_sim("fleet", "--lockstep", "--cars", "2", "--duration", "600", "--jobs", "1", "--json",
                        str(target), timeout_s=60)
    assert_refused(result, "--json")
    assert "not a regular file" in result.stderr
    assert result.stdout == ""  # refused before any car ran: no report


SEVEN_LANDINGS = """
[building]
landings_m = [0.0, 1.45, 4.35, 7.25, 10.15, 13.05, 15.95]
population = [0, 6, 6, 6, 6, 6, 6]

[car]
capacity_persons = 6
rated_load_kg = 450

[traffic]
rate_pct_per_5min = 12.0
"""


def test_every_car_runs_the_scenario_given_as_carctl_sim_runs_it_with_the_cars_seed(tmp_path: Path) -> None:
    """A community is not 223 copies of the default building: --scenario gives the planner's own, and each car in
    the fleet is `carctl sim --scenario FILE --duration D --seed seed x 1000 + index`."""
    building = tmp_path / "seven.toml"
    building.write_text(SEVEN_LANDINGS)
    fleet = python_sim("fleet", "--lockstep", "--cars", "2", "--duration", "900", "--jobs", "1", "--seed", "2",
                       "--scenario", str(building))
    assert fleet.returncode == 0, fleet.stderr
    report = json.loads(fleet.stdout)
    assert report["scenario"] == "seven" and report["rate_pct_per_5min"] == 12.0
    for car in report["per_car"]:
        alone_path = tmp_path / f"{car['car']}.json"
        alone = subprocess.run([sys.executable, "-m", "carctl.cli", "sim", "--scenario", str(building), "--duration",
                                "900", "--seed", str(car["seed"]), "--json", str(alone_path)], capture_output=True,
                               text=True, timeout=120, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert alone.returncode == 0, alone.stderr
        single = json.loads(alone_path.read_text())
        for key in ("passengers_generated", "trips", "door_cycles", "running_s", "wait_s"):
            assert car[key] == single[key], key
    default = run_car(plans(1, 900.0, 2, 12.0, 0.0)[0])
    assert (default["trips"], default["running_s"]) != (report["per_car"][0]["trips"], report["per_car"][0]["running_s"])


@pytest.mark.parametrize(("args", "named"), [
    (("--lockstep", "--scenario", "/no-such-folder/building.toml"), "building.toml"),
    (("--scenario", "/no-such-folder/building.toml"), "--scenario"),  # the real-time fleet has no scenario
    (("--lockstep", "--scenario", str(ROOT / "sim" / "scenarios" / "walk_up_day.toml"), "--rate-pct-per-5min", "3"),
     "--rate-pct-per-5min"),
])
def test_a_bad_scenario_is_refused_before_the_cars_run(args: tuple[str, ...], named: str) -> None:
    assert_refused(python_sim("fleet", "--cars", "2", "--duration", "60", *args), named)


def test_a_scenario_with_a_typo_is_refused_naming_the_key(tmp_path: Path) -> None:
    building = tmp_path / "typo.toml"
    building.write_text("[car]\nrated_sped_m_s = 1.0\n")
    assert_refused(python_sim("fleet", "--lockstep", "--cars", "2", "--duration", "60", "--scenario", str(building)),
                   "car.rated_sped_m_s")
