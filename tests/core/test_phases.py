"""The car's phase table, walked row by row, and held against what the controller really does."""

import gzip
import json
import re
from pathlib import Path

import pytest

from carctl.core.controller import HANDLERS, Controller
from carctl.core.phases import TRANSITIONS, Cue, Phase, enter
from carctl.core.state import ControllerState
from carctl.replay import inputs_from_dict
from sim.scenario import from_dict
from tests.sim.test_replay import GOLDEN, SCENARIO

CORE = Path(__file__).parent.parent.parent / "carctl" / "core"
ROWS = sorted(TRANSITIONS.items(), key=lambda row: (row[0][0].value, row[0][1].value))


@pytest.mark.parametrize(("row", "after"), ROWS, ids=[f"{p.value}-{c.value}" for (p, c), _ in ROWS])
def test_each_row_moves_to_its_phase_and_stamps_the_tick(row: tuple[Phase, Cue], after: Phase) -> None:
    phase, cue = row
    state = enter(ControllerState(phase=phase, phase_tick=3, landing=2), cue, 40, landing=4)
    assert (state.phase, state.phase_tick, state.landing) == (after, 40, 4)


def test_a_move_not_in_the_table_is_refused() -> None:
    with pytest.raises(KeyError):
        enter(ControllerState(phase=Phase.STOPPING), Cue.DEPART, 1)


def test_every_phase_is_entered_left_and_handled() -> None:
    assert {phase for phase, _ in TRANSITIONS} == set(Phase)
    assert set(TRANSITIONS.values()) == set(Phase)
    assert set(HANDLERS) == set(Phase)


def test_every_cue_is_in_the_table_and_given_by_the_code() -> None:
    """No cue without a row, and no row whose cue no handler ever gives."""
    source = "\n".join(path.read_text(encoding="utf-8") for path in CORE.glob("*.py") if path.name != "phases.py")
    given = set(re.findall(r"Cue\.([A-Z_]+)", source))
    assert given == {cue.name for cue in Cue}
    assert {cue for _, cue in TRANSITIONS} == set(Cue)


def test_every_phase_change_of_the_golden_replay_follows_the_table() -> None:
    """A tick may chain two moves (the brake opens and the plan is already lost): each change of phase over a
    tick is one row, or two rows in a row."""
    one = {(before, after) for (before, _), after in TRANSITIONS.items()}
    two = {(a, c) for a, b in one for b2, c in one if b == b2}
    with gzip.open(GOLDEN, "rt", encoding="utf-8") as source:
        header = json.loads(source.readline())
        rows = [json.loads(line) for line in source]
    controller = Controller(from_dict(SCENARIO).controller)
    state = controller.initial_state(header["start_position_m"])
    seen = set()
    for row in rows:
        before = state.phase
        state, _, _ = controller.step(state, inputs_from_dict(row["in"]))
        if state.phase is not before:
            seen.add((before, state.phase))
    assert seen <= one | two
    # The recording exercises the whole service cycle, relevelling and recovery from a fault.
    assert {(Phase.STANDING, Phase.STARTING), (Phase.STARTING, Phase.RUNNING), (Phase.RUNNING, Phase.STOPPING),
            (Phase.STOPPING, Phase.STANDING), (Phase.RUNNING, Phase.HALTED), (Phase.HALTED, Phase.STARTING)} <= seen
