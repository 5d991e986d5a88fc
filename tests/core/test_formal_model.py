"""The Promela model of the door and motion interlock and the collective dispatch (models/interlock.pml), checked
with spin on every run: safety and liveness hold; the checker does find the faults it exists to find; and the
model's door table is the Python core's, line for line."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from carctl.core import door

ROOT = Path(__file__).resolve().parent.parent.parent
MODEL = ROOT / "models" / "interlock.pml"
SPIN = shutil.which("spin")
CC = shutil.which("gcc") or shutil.which("cc")

needs_spin = pytest.mark.skipif(SPIN is None or CC is None,
                                reason="spin and gcc are needed (Debian packages spin, gcc; .ci/run installs them)")


def verifier(model_text: str, directory: Path) -> Path:
    """spin's verifier for the model, built in directory."""
    (directory / "model.pml").write_text(model_text)
    subprocess.run([str(SPIN), "-a", "model.pml"], cwd=directory, check=True, capture_output=True, timeout=60)
    # NFAIR sizes the weak-fairness construction for the model's four processes.
    subprocess.run([str(CC), "-O2", "-DNFAIR=5", "-o", "pan", "pan.c"], cwd=directory, check=True,
                   capture_output=True, timeout=120)
    return directory / "pan"


def check(pan: Path, prop: str) -> tuple[int, str]:
    """(errors found, output) for one LTL property, under weak fairness (-f), acceptance cycles searched (-a)."""
    result = subprocess.run([str(pan), "-a", "-f", "-m1000000", "-N", prop], cwd=pan.parent, capture_output=True,
                            text=True, timeout=300, check=False)
    found = re.search(r"errors: (\d+)", result.stdout)
    assert found, result.stdout + result.stderr
    assert "too small" not in result.stdout, "the search was cut short; raise -m"
    return int(found.group(1)), result.stdout


@needs_spin
def test_the_car_never_moves_with_a_door_open_never_lifts_its_brake_sliding_and_serves_every_call(tmp_path: Path) -> None:
    pan = verifier(MODEL.read_text(), tmp_path)
    for prop in ("safe", "lift_at_rest", "serve_top", "serve_bottom"):
        errors, output = check(pan, prop)
        assert errors == 0, f"{prop} does not hold:\n{output}"


@needs_spin
def test_without_the_interlock_the_checker_finds_the_car_moving_with_the_doors_open(tmp_path: Path) -> None:
    text = MODEL.read_text()
    assert text.count("        interlock();\n") == 1
    pan = verifier(text.replace("        interlock();\n", "        skip;\n"), tmp_path)
    errors, _ = check(pan, "safe")
    assert errors >= 1


@needs_spin
def test_a_dispatcher_that_never_turns_down_again_is_caught_starving_the_bottom_landing(tmp_path: Path) -> None:
    text = MODEL.read_text()
    reversal = "                :: dir == 1 && !up_ahead && down_ahead -> dir = 2; drive_run = true\n"
    assert text.count(reversal) == 1
    # Without the reversal, a car that has gone up waits there for good (no call is ever above it).
    broken = text.replace(reversal, "").replace(
        "                :: dir != 1 && down_ahead -> dir = 2; drive_run = true\n",
        "                :: dir == 0 && down_ahead -> dir = 2; drive_run = true\n")
    pan = verifier(broken, tmp_path)
    errors, _ = check(pan, "serve_bottom")
    assert errors >= 1


def test_the_model_door_table_is_the_python_door_table() -> None:
    text = MODEL.read_text()
    lines = [line for line in text.splitlines() if "/* TRANSITION */" in line]
    pattern = re.compile(r"door == (\w+) && stim == (\w+) -> door = (\w+)")
    modelled = {pattern.search(line).groups() for line in lines}  # type: ignore[union-attr]
    python = {(before.name, stimulus.name, after.name) for (before, stimulus), after in door.TRANSITIONS.items()}
    assert len(lines) == len(modelled)
    assert modelled == python
    phases, stimuli = re.findall(r"mtype = \{([^}]*)\}", text)
    assert [name.strip() for name in phases.split(",")] == [phase.name for phase in door.DoorPhase]
    assert [name.strip() for name in stimuli.split(",")] == [stimulus.name for stimulus in door.Stimulus]


@needs_spin
def test_without_the_standstill_interlock_the_checker_finds_the_brake_lifted_on_a_sliding_car(tmp_path: Path) -> None:
    text = MODEL.read_text()
    guarded = "    drive_run = (drive_run && front == LOCKED && rear == LOCKED && !settling)\n"
    assert text.count(guarded) == 1
    unguarded = "    drive_run = (drive_run && front == LOCKED && rear == LOCKED)\n"
    pan = verifier(text.replace(guarded, unguarded), tmp_path)
    errors, _ = check(pan, "lift_at_rest")
    assert errors >= 1


@needs_spin
def test_an_interlock_that_watches_only_the_front_door_is_caught_moving_with_the_rear_one_open(tmp_path: Path) -> None:
    text = MODEL.read_text()
    guarded = "    drive_run = (drive_run && front == LOCKED && rear == LOCKED && !settling)\n"
    assert text.count(guarded) == 1
    pan = verifier(text.replace(guarded, "    drive_run = (drive_run && front == LOCKED && !settling)\n"), tmp_path)
    errors, _ = check(pan, "safe")
    assert errors >= 1
