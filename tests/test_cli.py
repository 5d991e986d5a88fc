"""The carctl command, run as a person runs it."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

TRACE_KEYS = {"t_s", "position_m", "speed_m_s", "door", "door_open_fraction", "drive_run", "load_kg", "passengers",
              "mode", "faults"}


def carctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "carctl.cli", *args], capture_output=True, text=True, timeout=300)


def test_sim_writes_report_and_trace(tmp_path: Path) -> None:
    report_path = tmp_path / "report.json"
    trace_path = tmp_path / "trace.jsonl"
    result = carctl("sim", "--duration", "600", "--seed", "4", "--json", str(report_path), "--trace",
                    str(trace_path), "--trace-every", "10")
    assert result.returncode == 0, result.stderr
    assert "waiting time" in result.stdout and "safety violations" in result.stdout
    report = json.loads(report_path.read_text())
    assert report["seed"] == 4 and report["safety_violations"] == 0
    records = [json.loads(line) for line in trace_path.read_text().splitlines()]
    assert TRACE_KEYS <= set(records[0])
    assert records[1]["t_s"] == pytest.approx(0.2)
    assert {record["door"] for record in records} <= {"closed", "opening", "open", "closing"}
    assert records[-1]["t_s"] >= 599.0


def test_sim_plot_is_a_png(tmp_path: Path) -> None:
    plot = tmp_path / "run.png"
    result = carctl("sim", "--duration", "300", "--plot", str(plot), "--quiet")
    assert result.returncode == 0, result.stderr
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_shipped_scenario_runs(tmp_path: Path) -> None:
    scenario = Path(__file__).parent.parent / "sim" / "scenarios" / "faults_and_obstructions.toml"
    report_path = tmp_path / "report.json"
    result = carctl("sim", "--scenario", str(scenario), "--json", str(report_path), "--quiet")
    assert result.returncode == 0, result.stderr
    report = json.loads(report_path.read_text())
    kinds = {fault["kind"] for fault in report["faults"]}
    assert {"drive_fault", "overload"} <= kinds
    assert report["passengers_served"] == report["passengers_generated"]


@pytest.mark.parametrize(("content", "key"), [
    ("[car]\nrated_speed_m_s = -1.0\n", "car.rated_speed_m_s"),
    ("[building]\nlandings_m = [0.0, 3.0, 2.5]\n", "building.landings_m"),
    ("[car]\njerk_m_s3 = 0\n", "car.jerk_m_s3"),
    ("[car]\ncapacity_persons = 0\n", "car.capacity_persons"),
    ("[[events]]\nt_s = 1.0\ntype = \"car_call\"\nlanding = 12\n", "events[0].landing"),
    ("[car\n", "not valid TOML"),
])
def test_bad_scenario_exits_2_naming_the_key(tmp_path: Path, content: str, key: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(content)
    result = carctl("sim", "--scenario", str(path))
    assert result.returncode == 2
    assert key in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_option_exits_2() -> None:
    result = carctl("sim", "--trace-every", "0")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    result = carctl("sim", "--duration", "abc")
    assert result.returncode == 2 and "Traceback" not in result.stderr
