"""Golden replay (openpilot process_replay style): recorded core inputs through step give identical commands."""

import gzip
import json
import os
from pathlib import Path

from carctl.core.controller import Controller
from carctl.replay import commands_from_dict, inputs_from_dict, to_dict
from sim.lockstep import Lockstep, Recording
from sim.scenario import from_dict

GOLDEN = Path(__file__).parent.parent / "data" / "golden_replay.jsonl.gz"
SCENARIO = {
    "traffic": {"pattern": "residential", "rate_pct_per_5min": 40.0, "duration_s": 600.0, "seed": 11},
    "events": [
        {"t_s": 30.0, "type": "obstruct", "duration_s": 25.0},
        {"t_s": 100.0, "type": "seat_occupied"},
        {"t_s": 160.0, "type": "seat_free"},
        {"t_s": 200.0, "type": "accessible_call", "landing": 4},
        {"t_s": 260.0, "type": "fault", "kind": "drive_fault"},
        {"t_s": 265.0, "type": "clear_fault", "kind": "drive_fault"},
        {"t_s": 320.0, "type": "load", "load_kg": 700.0},
        {"t_s": 345.0, "type": "load", "load_kg": 0.0},
        {"t_s": 400.0, "type": "mode", "mode": "independent"},
        {"t_s": 460.0, "type": "mode", "mode": "normal"},
        {"t_s": 480.0, "type": "fault", "kind": "power_loss"},
        {"t_s": 530.0, "type": "clear_fault", "kind": "power_loss"},
        {"t_s": 540.0, "type": "fire_detected", "landing": 0},
        {"t_s": 545.0, "type": "mode", "mode": "fire"},
        {"t_s": 580.0, "type": "mode", "mode": "normal"},
    ],
}


def record() -> tuple[Controller, Recording, float]:
    scenario = from_dict(SCENARIO)
    recording = Recording()
    sim = Lockstep(scenario, recording=recording)
    start_position = sim.shaft.encoder_m()
    sim.run()
    return sim.controller, recording, start_position


def test_recorded_inputs_replay_to_identical_commands() -> None:
    controller, recording, start_position = record()
    assert len(recording.inputs) > 5000
    # Through JSON and back, as a recording on disk would be.
    inputs = [inputs_from_dict(json.loads(json.dumps(to_dict(i)))) for i in recording.inputs]
    assert inputs == recording.inputs
    state = controller.initial_state(start_position)
    replayed = []
    for snapshot in inputs:
        state, commands, _ = controller.step(state, snapshot)
        replayed.append(commands)
    assert replayed == recording.commands


def test_golden_recording_still_gives_its_commands() -> None:
    """The committed recording pins the controller's behaviour. After an intended change, regenerate it with
    CARCTL_UPDATE_GOLDEN=1 and review the difference like any other."""
    if os.environ.get("CARCTL_UPDATE_GOLDEN") == "1":
        controller, recording, start_position = record()
        with gzip.open(GOLDEN, "wt", encoding="utf-8") as out:
            out.write(json.dumps({"start_position_m": start_position}) + "\n")
            for snapshot, commands in zip(recording.inputs, recording.commands):
                out.write(json.dumps({"in": to_dict(snapshot), "out": to_dict(commands)}) + "\n")
    with gzip.open(GOLDEN, "rt", encoding="utf-8") as source:
        header = json.loads(source.readline())
        rows = [json.loads(line) for line in source]
    controller = Controller(from_dict(SCENARIO).controller)
    state = controller.initial_state(header["start_position_m"])
    mismatches = []
    for index, row in enumerate(rows):
        state, commands, _ = controller.step(state, inputs_from_dict(row["in"]))
        if commands != commands_from_dict(row["out"]):
            mismatches.append(index)
    assert not mismatches, f"{len(mismatches)} ticks differ, first at recorded step {mismatches[0]}"
