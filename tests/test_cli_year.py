"""`carctl sim` for a maintenance planner (a year of one car, here a short run): the report's use counts and their
arithmetic, and a progress bar that only a terminal, or --progress, gets, on stderr."""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.refusals import assert_refused

YEAR_S = 365 * 86400
CONTRACT_KEYS = {"passengers_generated", "passengers_served", "wait_s", "transit_s", "time_to_destination_s",
                 "worst_5min_mean_wait_s", "trips", "door_cycles", "levelling_error_mm", "safety_violations", "faults",
                 "sim_seconds", "wall_seconds"}


def carctl(*args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "carctl.cli", *args], capture_output=True, text=True, timeout=300,
                          **kwargs)  # type: ignore[call-overload]


def test_the_report_counts_use_for_the_planner(tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    result = carctl("sim", "--duration", "900", "--seed", "3", "--json", str(path), "--progress")
    assert result.returncode == 0, result.stderr
    report = json.loads(path.read_text())
    assert CONTRACT_KEYS <= set(report)
    trips, sim_s = report["trips"], report["sim_seconds"]
    assert trips > 5 and report["door_cycles"] > 5
    assert report["running_hours"] == round(report["running_s"] / 3600, 3)
    assert report["starts_per_hour"] == round(trips / (sim_s / 3600), 2)
    assert report["rope_bends"] == 4 * trips
    plan = report["maintenance"]
    assert plan["rope_sheaves"] == 4
    per_year = plan["per_year"]
    assert per_year["trips"] == round(trips * YEAR_S / sim_s)
    assert per_year["door_cycles"] == round(report["door_cycles"] * YEAR_S / sim_s)
    assert per_year["rope_bends"] == round(4 * trips * YEAR_S / sim_s)
    intervals = {interval["item"]: interval for interval in plan["intervals"]}
    ropes = intervals["hoist ropes (replaced)"]
    assert ropes["counts"] == "rope_bends" and ropes["typical_years"] == [7.0, 10.0]
    assert ropes["count_in_interval"] == [round(per_year["rope_bends"] * 7), round(per_year["rope_bends"] * 10)]
    visit = intervals["maintenance visit (every 15 days)"]
    assert visit["count_in_interval"][0] == round(per_year["door_cycles"] * 15 / 365)
    assert all(interval["source"] for interval in plan["intervals"])
    # The progress went to stderr, a line every 10 %; stdout is the summary, with the planner's lines.
    assert "simulating: 100 %" in result.stderr and "simulating" not in result.stdout
    assert "rope bends" in result.stdout and "per year" in result.stdout


def test_the_rope_sheaves_are_the_roping_given(tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    result = carctl("sim", "--duration", "300", "--rope-sheaves", "2", "--json", str(path))
    assert result.returncode == 0, result.stderr
    report = json.loads(path.read_text())
    assert report["rope_bends"] == 2 * report["trips"] and report["maintenance"]["rope_sheaves"] == 2
    assert "simulating" not in result.stderr  # stderr is not a terminal and --progress was not given


@pytest.mark.parametrize("value", ["0", "13", "four", "-1"])
def test_bad_rope_sheaves_are_refused(value: str) -> None:
    assert_refused(carctl("sim", "--rope-sheaves", value), "--rope-sheaves")


def test_a_terminal_gets_the_bar_and_the_report_stays_clean(tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    controller, terminal = pty.openpty()
    try:
        result = subprocess.run([sys.executable, "-m", "carctl.cli", "sim", "--duration", "600", "--json", str(path)],
                                stdout=subprocess.PIPE, stderr=terminal, text=True, timeout=300)
        os.close(terminal)
        terminal = -1
        shown = b""
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the writer has gone
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(controller)
        if terminal >= 0:
            os.close(terminal)
    assert result.returncode == 0
    assert b"\rsimulating" in shown and b"[##############################]" in shown
    assert "simulating" not in result.stdout
    assert json.loads(path.read_text())["trips"] > 0


def test_ctrl_c_stops_a_long_run_in_one_line_with_130(tmp_path: Path) -> None:
    """A planner who started a year and thinks better of it presses Ctrl-C: one line saying how far it got, exit
    130, no traceback, and no report pretending to be the year's."""
    path = tmp_path / "year.json"
    process = subprocess.Popen([sys.executable, "-m", "carctl.cli", "sim", "--duration", "31536000", "--progress",
                                "--json", str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr is not None
        first = process.stderr.readline()  # the run has started: its first progress line
        assert first.startswith("simulating"), first
        process.send_signal(signal.SIGINT)
        stdout, rest = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, rest
    assert "Traceback" not in rest
    lines = rest.strip().splitlines()
    assert len(lines) == 1 and "stopped (Ctrl-C)" in lines[0] and "no report" in lines[0], rest
    assert stdout == "" and not path.exists()
