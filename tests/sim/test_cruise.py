"""The cruise law (carctl/core/cruise.py) against Controller.step(): wherever the law answers, step() gives exactly
that; and the lockstep simulator cruising its runs gives the trace of stepping every tick."""

import copy
import io
import random
from collections.abc import Callable
from dataclasses import fields
from typing import Any

import pytest

from carctl.core.controller import Controller, ControllerState
from carctl.core.cruise import Cruise
from carctl.core.records import replace
from carctl.core.signals import Commands, Event, Inputs
from sim.lockstep import Lockstep
from sim.physics import Shaft
from sim.scenario import from_dict

# The inputs the law lets change between its quiet step and the ticks it answers for.
MOTION = {"tick", "position_m", "speed_m_s", "in_door_zone", "below_reference_mark"}
BUSY = {"traffic": {"pattern": "residential", "rate_pct_per_5min": 14.0, "duration_s": 1500.0, "seed": 7}}


def only_motion_differs(a: Inputs, b: Inputs) -> bool:
    return all(getattr(a, f.name) == getattr(b, f.name) for f in fields(Inputs) if f.name not in MOTION)


def check_every_answer_against_step(scenario: dict[str, Any],
                                    on_checked: Callable[[ControllerState], None] | None = None) -> tuple[int, int]:
    """Run ``scenario`` stepped (nothing cruised) and, at every tick where the law made at the last quiet step
    answers for this tick's inputs, check that step() keeps the state, gives no event and commands exactly
    commands_at(), and that the compiled law answers to the bit what the law answers. (checked, refused)."""
    sim = Lockstep(from_dict(scenario), cruise=False)
    controller = sim.controller
    law: list[tuple[Cruise, Inputs, Callable[[int, float, float], float]] | None] = [None]
    checked = refused = 0
    step = controller.step

    def watched(state: ControllerState, inputs: Inputs) -> tuple[ControllerState, Commands, tuple[Event, ...]]:
        nonlocal checked, refused
        new_state, commands, events = step(state, inputs)
        made = law[0]
        if made is not None and made[0].state is state and only_motion_differs(made[1], inputs):
            reference = made[0].reference(inputs.tick, inputs.position_m, inputs.speed_m_s)
            assert made[2](inputs.tick, inputs.position_m, inputs.speed_m_s).hex() == reference.hex()
            if reference < 0.0:
                refused += 1
            else:
                checked += 1
                assert new_state is state and events == ()
                assert commands == made[0].commands_at(inputs.position_m, reference)
                assert commands.speed_ref_m_s.hex() == reference.hex()
                if on_checked is not None:
                    on_checked(state)
        cruise = controller.cruise(new_state, inputs, commands) if new_state is state and not events else None
        law[0] = (cruise, inputs, cruise.compiled()) if cruise is not None else None
        return new_state, commands, events

    controller.step = watched  # type: ignore[method-assign]
    sim.run()
    return checked, refused


def test_every_answer_of_the_law_is_what_step_returns() -> None:
    """Every stepped tick of a busy 25 minutes (nothing cruised): where the law made at the last quiet step answers
    for this tick's inputs, step() keeps the state, gives no event and commands exactly commands_at()."""
    checked, refused = check_every_answer_against_step(BUSY)
    assert checked > 20_000 and refused < checked / 20


def test_the_compiled_law_answers_what_the_law_answers() -> None:
    """Cruise.compiled() (follow() and the plan's sampling written out) against reference() (which calls them): at
    every tick of every law made over a busy 25 minutes, with terminal switches fitted, at the tick's own motion and
    at motions about it — strayed from the plan, too fast, too slow, backwards, near and beyond the terminals, past
    the plan's end, while levelling and after the levelling gives up — the same answer to the bit, refusals
    included."""
    scenario = from_dict({**BUSY, "car": {"terminal_switches_m": [0.5, 0.25]}})
    sim = Lockstep(scenario, cruise=False)
    controller = sim.controller
    rng = random.Random(3)
    answered = refused = levelling = 0
    top_m = scenario.controller.building.landings_m[-1]
    period_s = scenario.controller.car.control_period_s
    step = controller.step

    def watched(state: ControllerState, inputs: Inputs) -> tuple[ControllerState, Commands, tuple[Event, ...]]:
        nonlocal answered, refused, levelling
        new_state, commands, events = step(state, inputs)
        law = controller.cruise(new_state, inputs, commands) if new_state is state and not events else None
        if law is not None:
            compiled = law.compiled()
            tick, position_m, speed_m_s = inputs.tick, inputs.position_m, inputs.speed_m_s
            motions = [(tick, position_m, speed_m_s), (tick + 1, position_m, speed_m_s), (tick + 400, position_m, 0.3)]
            for _ in range(12):
                motions.append((tick + rng.randrange(-50, 600), position_m + rng.uniform(-0.4, 0.4),
                                speed_m_s * rng.uniform(-0.2, 1.3) + rng.uniform(-0.05, 0.05)))
            motions.append((tick, rng.uniform(-0.3, 0.3), speed_m_s))
            motions.append((tick, top_m + rng.uniform(-1.6, 0.3), speed_m_s))
            for motion in motions:
                expected = law.reference(*motion)
                assert compiled(*motion).hex() == expected.hex(), motion
                answered += expected >= 0.0
                refused += expected < 0.0
                assert law.run is not None and law.run.profile is not None
                past_plan = (motion[0] - law.run.start_tick) * period_s >= law.run.profile.duration_s
                levelling += expected >= 0.0 and past_plan
        return new_state, commands, events

    controller.step = watched  # type: ignore[method-assign]
    sim.run()
    assert answered > 20_000 and refused > 20_000 and levelling > 1000


def _plain_steps(shaft: Shaft, reference: Callable[[int, float, float], float], tick: int, horizon: int,
                 run_up: bool) -> tuple[int, float, float]:
    """A cruise tick by tick as the lockstep made it before Shaft.run_plain: the drive's readings (encoder_m,
    reported_speed_m_s) to the law, update_plain_run() by its answer."""
    reached, position_m, answer = tick, 0.0, 0.0
    while reached < horizon:
        if not shaft.speed_m_s or not shaft.brake_open or shaft.slowdown != (0, 0):
            break
        count_m = shaft.encoder_m()
        speed_ref = reference(reached, count_m, shaft.reported_speed_m_s())
        if speed_ref < 0.0:
            break
        position_m, answer = count_m, speed_ref
        shaft.update_plain_run(run_up, speed_ref)
        reached += 1
    return reached, position_m, answer


def _state(shaft: Shaft) -> dict[str, Any]:
    return {name: value for name, value in vars(shaft).items() if name != "run_plain"}  # not the test's own hook


@pytest.mark.parametrize("car", [{}, {"terminal_switches_m": [0.5, 0.25]}])
def test_a_span_of_plain_run_is_update_plain_run_tick_by_tick(car: dict[str, Any]) -> None:
    """Every cruise of a busy 25 minutes (loads changing, runs across the reference mark, into the terminal zones
    and, with terminal switches, onto them): Shaft.run_plain() leaves the shaft exactly as update_plain_run() tick
    by tick under the law's reference() leaves a copy of it, having answered the same at the same ticks; and a watch
    asked for every tick sees each tick's shaft as update_plain_run() had left it."""
    sim = Lockstep(from_dict({**BUSY, "car": car}))
    shaft = sim.shaft
    laws: list[Cruise] = []
    made_law = sim.controller.cruise

    def keep(*args: Any) -> Cruise | None:
        law = made_law(*args)
        if law is not None:
            laws.append(law)
        return law

    spans = watched_ticks = crossings = on_switches = 0

    def compared(reference: Callable[[int, float, float], float], tick: int, horizon: int, run_up: bool,
                 watch: Callable[[int, float, float], None] | None = None, watch_every: bool = False,
                 bounds: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> tuple[int, float, float]:
        nonlocal spans, watched_ticks, crossings, on_switches
        twin, watched, shown = copy.deepcopy(shaft), copy.deepcopy(shaft), copy.deepcopy(shaft)
        expected = _plain_steps(twin, laws[-1].reference, tick, horizon, run_up)
        seen: list[tuple[int, float, float, dict[str, Any]]] = []

        def record(at_tick: int, position_m: float, speed_ref: float) -> None:
            seen.append((at_tick, position_m, speed_ref, _state(watched)))

        assert Shaft.run_plain(watched, reference, tick, horizon, run_up, record, True, bounds) == expected
        assert _state(watched) == _state(twin)
        assert [at for at, _, _, _ in seen] == list(range(tick, expected[0]))
        for _, position_m, speed_ref, state in seen:
            assert state == _state(shown) and position_m == shown.encoder_m()
            shown.update_plain_run(run_up, speed_ref)
        below = shaft.below_mark
        made = Shaft.run_plain(shaft, reference, tick, horizon, run_up, watch, watch_every, bounds)
        assert made == expected and _state(shaft) == _state(twin)
        watched_ticks += len(seen)
        spans += made[0] > tick
        crossings += shaft.below_mark is not below
        on_switches += shaft.slowdown != (0, 0)
        return made

    sim.controller.cruise = keep  # type: ignore[method-assign]
    shaft.run_plain = compared  # type: ignore[method-assign]
    sim.run()
    assert spans > 50 and watched_ticks > 10_000 and crossings > 0
    assert (on_switches > 0) is bool(car)


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


def test_a_brake_test_falling_overdue_mid_run_is_raised_on_its_tick() -> None:
    """A periodic brake test abandoned by a call keeps its overdue tick, which now comes before the retry's due tick;
    falling overdue while the car runs raises BRAKE_TEST_OVERDUE on that very tick, cruised or stepped (the law once
    watched only the due tick and left the fault to the run's next stepped tick, a second later)."""
    scenario = from_dict({"car": {"brake_test_every_h": 0.01},  # due at 600 s, overdue 36 s later
                          "traffic": {"pattern": "none", "duration_s": 700.0, "drain_s": 60.0},
                          "events": [{"t_s": 601.0, "type": "car_call", "landing": 5},  # abandons the test
                                     {"t_s": 625.0, "type": "car_call", "landing": 0}]})
    traces, events = [], []
    for cruise in (True, False):
        buffer = io.StringIO()
        sim = Lockstep(scenario, trace=buffer, keep_events=True, cruise=cruise)
        sim.run()
        assert sim.event_log is not None
        events.append([(event.kind.value, event.tick, event.detail) for event in sim.event_log])
        traces.append(buffer.getvalue())
        assert (sim.cruised_ticks > 1000) is cruise
    assert ("brake_test", 30050, "abandoned") in events[1]
    overdue = [tick for kind, tick, detail in events[1] if kind == "fault_raised" and "brake_test_overdue" in detail]
    assert overdue == [round(636.0 / 0.02)]
    assert '"t_s": 636.0, "position_m"' in traces[1] and '"phase": "running"' in traces[1].split('"t_s": 636.0,')[1][:400]
    assert events[0] == events[1] and traces[0] == traces[1]


ODD_CARS = [
    # Two landings far apart, a slow tick, terminal switches, a load and a comm loss mid-run.
    ({"building": {"landings_m": [0.0, 5.3]}, "car": {"control_period_s": 0.05, "terminal_switches_m": [0.4, 1.2]},
      "events": [{"t_s": 1.0, "type": "car_call", "landing": 1}, {"t_s": 3.15, "type": "fault", "kind": "comm_loss"},
                 {"t_s": 3.2, "type": "clear_fault", "kind": "comm_loss"}, {"t_s": 30.0, "type": "load", "load_kg": 400},
                 {"t_s": 31.0, "type": "car_call", "landing": 0}]}),
    # Uneven half-landings, a fast tick, a fast car, a call pressed and the seat taken mid-run.
    ({"building": {"landings_m": [0.0, 1.45, 4.2, 5.6, 9.9, 11.3, 16.0, 17.4]},
      "car": {"control_period_s": 0.01, "rated_speed_m_s": 1.6, "acceleration_m_s2": 1.0},
      "events": [{"t_s": 0.5, "type": "car_call", "landing": 7}, {"t_s": 4.37, "type": "car_call", "landing": 5},
                 {"t_s": 20.0, "type": "car_call", "landing": 0}, {"t_s": 22.23, "type": "seat_occupied"}]}),
    # An odd tick, landings off their typed heights, passengers and a drive frozen for a tick mid-run.
    ({"building": {"landings_m": [0.0, 2.9, 5.8, 8.7], "landing_offsets_mm": [0, 12, -20, 25]},
      "car": {"control_period_s": 0.03},
      "events": [{"t_s": 0.3, "type": "passenger", "origin": 0, "destination": 3},
                 {"t_s": 14.31, "type": "fault", "kind": "drive_frozen"},
                 {"t_s": 14.34, "type": "clear_fault", "kind": "drive_frozen"},
                 {"t_s": 40.0, "type": "passenger", "origin": 3, "destination": 1}]}),
]


def run_three_ways(data: dict[str, Any], cruised_at_least: int) -> list[tuple[Any, ...]]:
    """``data`` stepped every tick with a trace, cruised with a trace and cruised without: for each, the report (but
    its timings), the events, the shaft's bits, the controller's state and the trace; the first four the same all
    three ways, the traces the same both ways."""
    results: list[tuple[Any, ...]] = []
    for options in ({"skip_idle": False, "trace": io.StringIO()}, {"trace": io.StringIO()}, {}):
        sim = Lockstep(from_dict(data), keep_events=True, **options)  # type: ignore[arg-type]
        report = sim.run()
        assert sim.event_log is not None
        results.append(({key: value for key, value in report.items()
                          if key not in ("wall_seconds", "stepped_ticks", "skipped_ticks")},
                         [(event.kind, event.tick, event.detail) for event in sim.event_log], _shaft_bits(sim.shaft),
                         sim.state, options["trace"].getvalue() if options else None))
        assert (sim.cruised_ticks > cruised_at_least) is ("skip_idle" not in options)
    assert results[0][:4] == results[1][:4] == results[2][:4]
    assert results[0][4] == results[1][4]
    return results


@pytest.mark.parametrize("scenario", ODD_CARS)
def test_cruised_runs_leave_the_shaft_exactly_as_stepping_every_tick(scenario: dict[str, Any]) -> None:
    """Odd ticks, two and eight landings, terminal switches, events mid-run: cruised (with and without a trace, whose
    cruised ticks take another road through the shaft) or stepped, the same events, trace and report, and the shaft's
    state to the last bit of every float (the trace rounds to 0.1 mm)."""
    data = {**scenario, "traffic": {"pattern": "none", "duration_s": 60.0, "drain_s": 60.0}}
    results = run_three_ways(data, cruised_at_least=50)
    assert results[0][0]["trips"] >= 2


# Walk-up buildings with a rear door: half-landings served by it (the stairs turn there), a through car with landings
# served from both sides.
HALF_LANDINGS = {"landings_m": [0.0, 1.45, 2.9, 4.35, 5.8, 7.25, 8.7],
                 "door_sides": ["front", "rear", "front", "rear", "front", "rear", "front"]}
THROUGH_CAR = {"landings_m": [0.0, 2.9, 5.8, 8.7, 11.6, 14.5],
               "door_sides": ["both", "front", "rear", "both", "front", "rear"]}


def test_every_answer_of_the_law_is_what_step_returns_for_a_car_with_a_rear_door() -> None:
    """As for the default building, over a busy 25 minutes of the half-landing building, its runs stepped in full:
    wherever the law made at the last quiet step answers for this tick's inputs (the rear door's readings among them),
    step() keeps the state, gives no event and commands exactly commands_at(), the rear operator's outputs included.
    """
    assert Lockstep(from_dict({**BUSY, "building": HALF_LANDINGS})).controller.context.rear_door
    sides_left: set[str] = set()  # the side of the landing each checked run left
    checked, refused = check_every_answer_against_step(
        {**BUSY, "building": HALF_LANDINGS},
        on_checked=lambda state: sides_left.add(HALF_LANDINGS["door_sides"][state.landing]))
    assert checked > 10_000 and refused < checked / 20
    assert sides_left == {"front", "rear"}


def test_the_law_refuses_a_rear_door_unlocked_or_its_curtain_blocked() -> None:
    """A quiet step of a run of the half-landing building, then the same with the rear door's lock contact open, or
    its light curtain blocked while the car left a front landing (the doorway there does not count that curtain):
    the law is made for the first only."""
    sim = Lockstep(from_dict({"building": HALF_LANDINGS, "traffic": {"pattern": "none", "duration_s": 30.0},
                              "events": [{"t_s": 0.5, "type": "car_call", "landing": 6}]}), cruise=False)
    controller = sim.controller
    made: list[tuple[ControllerState, Inputs, Commands]] = []
    step = controller.step

    def watched(state: ControllerState, inputs: Inputs) -> tuple[ControllerState, Commands, tuple[Event, ...]]:
        new_state, commands, events = step(state, inputs)
        if new_state is state and not events and controller.cruise(new_state, inputs, commands) is not None:
            made.append((new_state, inputs, commands))
        return new_state, commands, events

    controller.step = watched  # type: ignore[method-assign]
    sim.advance(round(8.0 / sim.period_s))
    assert made
    state, inputs, commands = made[-1]
    assert HALF_LANDINGS["door_sides"][state.landing] == "front"
    assert controller.cruise(state, replace(inputs, rear_door_locked=False), commands) is None
    assert controller.cruise(state, replace(inputs, rear_light_curtain_blocked=True), commands) is None
    assert controller.cruise(state, replace(inputs, door_locked=False), commands) is None


def _shaft_bits(shaft: Shaft) -> dict[str, Any]:
    """The shaft's state, every float by its bits, the rear door's own state included."""
    state = {name: value.hex() if isinstance(value, float) else value for name, value in vars(shaft).items()
             if name != "rear"}
    if shaft.rear is not None:
        state["rear"] = dict(vars(shaft.rear))
    return state


REAR_DOOR_CARS = [
    # Half-landings by the rear door: calls, a rear obstruction while standing at one, a rear lock lost mid-run (the
    # car stops at once and stays: unintended movement, latched).
    ({"building": HALF_LANDINGS,
      "events": [{"t_s": 0.5, "type": "car_call", "landing": 6}, {"t_s": 3.0, "type": "hall_call", "landing": 3,
                                                                   "direction": "down"},
                 {"t_s": 20.0, "type": "car_call", "landing": 1}, {"t_s": 30.5, "type": "obstruct", "side": "rear",
                                                                    "duration_s": 4.0},
                 {"t_s": 45.0, "type": "car_call", "landing": 5}, {"t_s": 54.3, "type": "fault",
                                                                    "kind": "rear_door_lock_lost"},
                 {"t_s": 56.0, "type": "clear_fault", "kind": "rear_door_lock_lost"},
                 {"t_s": 70.0, "type": "car_call", "landing": 0}]}),
    # A through car: landings from both sides, passengers, the rear curtain blocked by a fault at a landing, a comm
    # loss mid-run, a rear obstruction starting mid-run.
    ({"building": THROUGH_CAR,
      "events": [{"t_s": 0.3, "type": "passenger", "origin": 0, "destination": 5},
                 {"t_s": 15.41, "type": "fault", "kind": "comm_loss"},
                 {"t_s": 15.44, "type": "clear_fault", "kind": "comm_loss"},
                 {"t_s": 30.0, "type": "passenger", "origin": 5, "destination": 3},
                 {"t_s": 38.5, "type": "fault", "kind": "rear_light_curtain_blocked"},
                 {"t_s": 40.0, "type": "clear_fault", "kind": "rear_light_curtain_blocked"},
                 {"t_s": 50.0, "type": "car_call", "landing": 0},
                 {"t_s": 63.5, "type": "obstruct", "side": "rear", "duration_s": 2.0},
                 {"t_s": 75.0, "type": "hall_call", "landing": 2, "direction": "up"}]}),
]


@pytest.mark.parametrize(("scenario", "felt"), list(zip(REAR_DOOR_CARS, ["fault_raised", "doors_reopened"])))
def test_cruised_runs_of_a_car_with_a_rear_door_leave_everything_exactly_as_stepping_every_tick(
        scenario: dict[str, Any], felt: str) -> None:
    """Rear doors at half-landings and a through car, with calls, passengers, rear obstructions, a rear lock lost and
    a comm loss mid-run: cruised (with and without a trace) or stepped, the same events, trace and report, and the
    shaft's state, the rear door's included, to the last bit of every float."""
    data = {**scenario, "traffic": {"pattern": "none", "duration_s": 90.0, "drain_s": 60.0}}
    results = run_three_ways(data, cruised_at_least=200)
    report, events, trace = results[0][0], results[0][1], results[0][4]
    assert report["trips"] >= 4
    assert '"rear_door": "open"' in trace  # the rear door worked
    assert felt in {kind.value for kind, _, _ in events}  # the scripted trouble happened


def test_a_rear_obstruction_begun_between_two_advances_mid_run_is_stepped() -> None:
    """Something in the rear curtain and the rear lock lost, each set between two advance() calls mid-run: cruised
    or not, the same events and trace."""
    scenario = from_dict({"building": THROUGH_CAR, "traffic": {"pattern": "none", "duration_s": 60.0, "drain_s": 0.0},
                          "events": [{"t_s": 0.5, "type": "car_call", "landing": 5}]})
    traces, events = [], []
    for cruise in (True, False):
        buffer = io.StringIO()
        sim = Lockstep(scenario, trace=buffer, keep_events=True, cruise=cruise)
        sim.advance(round(5.0 / sim.period_s))
        assert sim.state.phase.value == "running" and sim.shaft.rear is not None
        sim.shaft.rear.obstructed_until_tick = sim.tick + round(1.0 / sim.period_s)
        sim.advance(round(7.0 / sim.period_s))
        sim.shaft.rear.lock_forced_open = True
        sim.advance(round(7.5 / sim.period_s))
        sim.shaft.rear.lock_forced_open = False
        sim.advance(round(40.0 / sim.period_s))
        traces.append(buffer.getvalue())
        assert sim.event_log is not None
        events.append([(event.kind, event.tick, event.detail) for event in sim.event_log])
        assert (sim.cruised_ticks > 100) is cruise
    assert traces[0] == traces[1] and events[0] == events[1]
    assert any(kind.value == "fault_raised" for kind, _, _ in events[0])


def test_a_plain_run_of_a_car_with_a_rear_door_asks_that_door_shut_still_and_locked() -> None:
    """Mid-run in the half-landing building, Shaft.plain_run() holds of the car's outputs; it no longer holds with the
    rear door ajar, still moving, not yet locked, its contact forced open, or the rear operator told to open — each
    a case where update() would do what update_plain_run() leaves out."""
    sim = Lockstep(from_dict({"building": HALF_LANDINGS, "traffic": {"pattern": "none", "duration_s": 30.0},
                              "events": [{"t_s": 0.5, "type": "car_call", "landing": 6}]}), cruise=False)
    sim.advance(round(6.0 / sim.period_s))
    assert sim.state.phase.value == "running" and sim.shaft.rear is not None
    outputs = sim._output(sim.commands)
    assert sim.shaft.plain_run(outputs)
    for name, value in (("units", 1), ("motion", -1), ("lock_count", 0), ("lock_forced_open", True)):
        shaft = copy.deepcopy(sim.shaft)
        setattr(shaft.rear, name, value)
        assert not shaft.plain_run(outputs), name
    assert not sim.shaft.plain_run(outputs._replace(rear_door_open=True, rear_door_close=False))
