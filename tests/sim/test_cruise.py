"""The cruise law (carctl/core/cruise.py) against Controller.step(): wherever the law answers, step() gives exactly
that; and the lockstep simulator cruising its runs gives the trace of stepping every tick."""

import io
from dataclasses import fields

from carctl.core.controller import Controller, ControllerState
from carctl.core.cruise import Cruise
from carctl.core.signals import Commands, Event, Inputs
from sim.lockstep import Lockstep
from sim.scenario import from_dict

# The inputs the law lets change between its quiet step and the ticks it answers for.
MOTION = {"tick", "position_m", "speed_m_s", "in_door_zone", "below_reference_mark"}
BUSY = {"traffic": {"pattern": "residential", "rate_pct_per_5min": 14.0, "duration_s": 1500.0, "seed": 7}}


def only_motion_differs(a: Inputs, b: Inputs) -> bool:
    return all(getattr(a, f.name) == getattr(b, f.name) for f in fields(Inputs) if f.name not in MOTION)


def test_every_answer_of_the_law_is_what_step_returns() -> None:
    """Every stepped tick of a busy 25 minutes (nothing cruised): where the law made at the last quiet step answers
    for this tick's inputs, step() keeps the state, gives no event and commands exactly commands_at()."""
    sim = Lockstep(from_dict(BUSY), cruise=False)
    controller = sim.controller
    law: list[tuple[Cruise, Inputs] | None] = [None]
    checked = refused = 0
    step = controller.step

    def watched(state: ControllerState, inputs: Inputs) -> tuple[ControllerState, Commands, tuple[Event, ...]]:
        nonlocal checked, refused
        new_state, commands, events = step(state, inputs)
        made = law[0]
        if made is not None and made[0].state is state and only_motion_differs(made[1], inputs):
            reference = made[0].reference(inputs.tick, inputs.position_m, inputs.speed_m_s)
            if reference < 0.0:
                refused += 1
            else:
                checked += 1
                assert new_state is state and events == ()
                assert commands == made[0].commands_at(inputs.position_m, reference)
                assert commands.speed_ref_m_s.hex() == reference.hex()
        cruise = controller.cruise(new_state, inputs, commands) if new_state is state and not events else None
        law[0] = (cruise, inputs) if cruise is not None else None
        return new_state, commands, events

    controller.step = watched  # type: ignore[method-assign]
    sim.run()
    assert checked > 20_000 and refused < checked / 20


def test_the_law_refuses_outside_a_plain_run() -> None:
    controller = Controller(from_dict(BUSY).controller)
    state = controller.initial_state(0.0)
    assert controller.cruise(state, Inputs(tick=0), Commands()) is None  # HALTED, not running


def test_cruising_runs_gives_the_trace_of_stepping_every_tick() -> None:
    scenario = from_dict(BUSY)
    traces, reports = [], []
    for options in ({"skip_idle": True}, {"skip_idle": True, "cruise": False}, {"skip_idle": False}):
        buffer = io.StringIO()
        sim = Lockstep(scenario, trace=buffer, **options)
        report = sim.run()
        traces.append(buffer.getvalue())
        reports.append({key: value for key, value in report.items()
                        if key not in ("wall_seconds", "stepped_ticks", "skipped_ticks")})
        if options == {"skip_idle": True}:
            assert sim.cruised_ticks > 0.8 * report["stepped_ticks"]
        else:
            assert sim.cruised_ticks == 0
    assert traces[0] == traces[1] == traces[2]
    assert reports[0] == reports[1] == reports[2]


def test_a_drive_withheld_mid_run_keeps_the_reading_of_the_tick_before() -> None:
    """A comm loss scripted mid-run (as the property tests strike one): the drive's status the controller keeps is
    that of the last tick before it, cruised or stepped (a cruise once left the reading of its first tick)."""
    events = [{"t_s": 1.0, "type": "car_call", "landing": 5}, {"t_s": 67.8, "type": "car_call", "landing": 0},
              {"t_s": 3.3, "type": "fault", "kind": "comm_loss"}, {"t_s": 3.32, "type": "clear_fault",
                                                                   "kind": "comm_loss"}]
    scenario = from_dict({"traffic": {"pattern": "none", "duration_s": 150.0, "drain_s": 600.0}, "events": events})
    traces, faults = [], []
    for cruise in (True, False):
        buffer = io.StringIO()
        sim = Lockstep(scenario, trace=buffer, cruise=cruise)
        faults.append([fault["kind"] for fault in sim.run()["faults"]])
        traces.append(buffer.getvalue())
        assert (sim.cruised_ticks > 1000) is cruise
    assert traces[0] == traces[1]
    assert "position_tracking" not in faults[0]


def test_what_changes_between_two_advances_mid_run_is_stepped() -> None:
    """An alarm held and a door obstructed between two advance() calls mid-run (as the procedures do): the tick they
    begin at is sensed and stepped, so cruised or not, the same events and trace."""
    scenario = from_dict({"traffic": {"pattern": "none", "duration_s": 60.0, "drain_s": 0.0},
                          "events": [{"t_s": 0.5, "type": "car_call", "landing": 5}]})
    traces, events = [], []
    for cruise in (True, False):
        buffer = io.StringIO()
        sim = Lockstep(scenario, trace=buffer, keep_events=True, cruise=cruise)
        sim.advance(round(5.0 / sim.period_s))
        assert sim.state.phase.value == "running"
        sim.alarm_until_tick = sim.tick + round(4.0 / sim.period_s)
        sim.advance(round(7.0 / sim.period_s))
        sim.shaft.obstructed_until_tick = sim.tick + round(1.0 / sim.period_s)
        sim.advance(round(30.0 / sim.period_s))
        traces.append(buffer.getvalue())
        assert sim.event_log is not None
        events.append([(event.kind, event.tick, event.detail) for event in sim.event_log])
    assert traces[0] == traces[1] and events[0] == events[1]
    assert any(kind.value == "alarm_button" for kind, _, _ in events[0])
