"""`python -m sim fleet` on a real Mosquitto: cars in several processes, each with its own link, every event
delivered, latencies measured."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sim import fleet
from tests.platform.conftest import MOSQUITTO, PASSWD

ROOT = Path(__file__).resolve().parent.parent.parent

pytestmark = pytest.mark.skipif(MOSQUITTO is None or PASSWD is None,
                                reason="mosquitto is not installed (Debian package mosquitto; .ci/run installs it)")


def test_a_small_fleet_delivers_every_event_and_times_it(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(fleet, "CARS_PER_PROCESS", 3)  # two shard processes for six cars
    report = fleet.run_fleet(cars=6, duration_s=24.0, speed=4.0, faults_per_car_h=900.0, seed=2)
    assert report["processes"] == 2 and report["connected"] == 6
    assert report["events_sent"] >= 6, "faults were injected, so faults were raised and cleared"
    assert report["events_missing"] == 0
    assert report["event_latency_ms"]["n"] == report["events_received"]
    assert report["state_latency_ms"]["n"] == report["states_sent"]
    assert report["messages_received"] >= report["states_sent"] + report["events_sent"]
    assert 0 <= report["event_latency_ms"]["p50"] <= report["event_latency_ms"]["max"]


def test_the_command_line_refuses_nonsense_and_writes_its_report(tmp_path: Path) -> None:
    bad = subprocess.run([sys.executable, "-m", "sim", "fleet", "--cars", "0"], cwd=ROOT, capture_output=True,
                         text=True, check=False)
    assert bad.returncode == 2 and "--cars 1..5000" in bad.stderr
    out = tmp_path / "fleet.json"
    good = subprocess.run([sys.executable, "-m", "sim", "fleet", "--cars", "2", "--duration", "10", "--speed", "5",
                           "--json", str(out)], cwd=ROOT, capture_output=True, text=True, check=False, timeout=120)
    assert good.returncode == 0, good.stderr
    assert json.loads(out.read_text())["cars"] == 2
