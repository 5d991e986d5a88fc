"""Golden replay (openpilot process_replay style): recorded core inputs through step give identical commands and
identical events (kind, tick, landing, detail)."""

import gzip
import json
import os
from pathlib import Path
from typing import Any

from carctl.core.controller import Controller
from carctl.core.signals import Event
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


def event_row(event: Event) -> list[Any]:
    """An event as the golden file holds it: [kind, tick, landing, detail]."""
    return [event.kind.value, event.tick, event.landing, event.detail]


def record() -> tuple[Controller, Recording, list[Event], float]:
    """The scenario through the lockstep simulator: its stepped inputs and commands, and every event of the run."""
    scenario = from_dict(SCENARIO)
    recording = Recording()
    sim = Lockstep(scenario, recording=recording, keep_events=True)
    start_position = sim.shaft.encoder_m()
    sim.run()
    assert sim.event_log is not None
    return sim.controller, recording, sim.event_log, start_position


def test_recorded_inputs_replay_to_identical_commands_and_events() -> None:
    controller, recording, events, start_position = record()
    assert len(recording.inputs) > 5000 and len(events) > 200
    # Through JSON and back, as a recording on disk would be.
    inputs = [inputs_from_dict(json.loads(json.dumps(to_dict(i)))) for i in recording.inputs]
    assert inputs == recording.inputs
    state = controller.initial_state(start_position)
    replayed = []
    replayed_events: list[Event] = []
    for snapshot in inputs:
        state, commands, stepped_events = controller.step(state, snapshot)
        replayed.append(commands)
        replayed_events += stepped_events
    assert replayed == recording.commands
    assert replayed_events == events


def read_golden() -> tuple[float, list[dict[str, Any]]]:
    with gzip.open(GOLDEN, "rt", encoding="utf-8") as source:
        header = json.loads(source.readline())
        return header["start_position_m"], [json.loads(line) for line in source]


def write_golden(start_position: float, rows: list[dict[str, Any]]) -> None:
    with gzip.open(GOLDEN, "wt", encoding="utf-8") as out:
        out.write(json.dumps({"start_position_m": start_position}) + "\n")
        for row in rows:
            out.write(json.dumps(row) + "\n")


def rerecord_golden() -> None:
    """New inputs from the simulator as it is now, with their commands and events."""
    _, recording, events, start_position = record()
    by_tick: dict[int, list[list[Any]]] = {}
    for event in events:
        by_tick.setdefault(event.tick, []).append(event_row(event))
    rows = []
    for snapshot, commands in zip(recording.inputs, recording.commands):
        row: dict[str, Any] = {"in": to_dict(snapshot), "out": to_dict(commands)}
        if snapshot.tick in by_tick:
            row["events"] = by_tick.pop(snapshot.tick)
        rows.append(row)
    assert not by_tick, "events on ticks that were not stepped"
    write_golden(start_position, rows)


def update_golden() -> None:
    """The committed inputs kept as they are; their commands and events as the controller now gives them."""
    start_position, rows = read_golden()
    controller = Controller(from_dict(SCENARIO).controller)
    state = controller.initial_state(start_position)
    updated = []
    for row in rows:
        state, commands, events = controller.step(state, inputs_from_dict(row["in"]))
        new: dict[str, Any] = {"in": row["in"], "out": to_dict(commands)}
        if events:
            new["events"] = [event_row(event) for event in events]
        updated.append(new)
    write_golden(start_position, updated)


def test_golden_recording_still_gives_its_commands_and_events() -> None:
    """The committed recording pins the controller's behaviour: the commands of every stepped tick, and the events
    it gave (each row's "events", absent when none). After an intended change, regenerate its commands and events
    from its own inputs with CARCTL_UPDATE_GOLDEN=1 and review the difference like any other; with
    CARCTL_UPDATE_GOLDEN=rerecord the inputs are recorded anew from the simulator as well (the simulator's changes
    then show in the difference too)."""
    update = os.environ.get("CARCTL_UPDATE_GOLDEN")
    if update == "1":
        update_golden()
    elif update == "rerecord":
        rerecord_golden()
    start_position, rows = read_golden()
    controller = Controller(from_dict(SCENARIO).controller)
    state = controller.initial_state(start_position)
    command_mismatches = []
    event_mismatches = []
    events_seen = 0
    for index, row in enumerate(rows):
        state, commands, events = controller.step(state, inputs_from_dict(row["in"]))
        if commands != commands_from_dict(row["out"]):
            command_mismatches.append(index)
        if [event_row(event) for event in events] != row.get("events", []):
            event_mismatches.append(index)
        events_seen += len(events)
    assert not command_mismatches, (f"{len(command_mismatches)} ticks differ in commands, first at recorded step "
                                    f"{command_mismatches[0]}")
    assert not event_mismatches, (f"{len(event_mismatches)} ticks differ in events, first at recorded step "
                                  f"{event_mismatches[0]}: {rows[event_mismatches[0]].get('events', [])}")
    assert events_seen > 200


def test_a_commissioning_request_is_recorded_and_read_back() -> None:
    """The service tool's one-cycle request (Inputs.commission) survives a recording's JSON, as every input does."""
    from carctl.core.signals import Commissioning, Inputs

    for request in Commissioning:
        snapshot = Inputs(tick=3, commission=request)
        assert inputs_from_dict(json.loads(json.dumps(to_dict(snapshot)))) == snapshot
    assert "commission" not in to_dict(Inputs(tick=3))
