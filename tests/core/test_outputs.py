"""The commands the logic builds: the fast factory is the keyword form, and the record follows the phase."""

import dataclasses
import inspect
import random
from dataclasses import replace

from carctl.core.calls import Calls
from carctl.core.config import ControllerConfig
from carctl.core.context import Context
from carctl.core.door import DoorPhase, DoorState
from carctl.core.outputs import commands, make_commands
from carctl.core.phases import HOLD, DriveRequest, Phase, Run
from carctl.core.signals import Commands, Direction, Event, EventKind, Inputs
from carctl.core.state import ControllerState

CONTEXT = Context.from_config(ControllerConfig())


def test_the_factory_takes_every_field_in_order() -> None:
    parameters = list(inspect.signature(make_commands).parameters)
    assert parameters == [spec.name for spec in dataclasses.fields(Commands)]


def test_the_factory_gives_what_the_keyword_form_gives() -> None:
    rng = random.Random(5)
    samples = {bool: lambda: rng.random() < 0.5, float: lambda: rng.uniform(0.0, 1.2),
               int: lambda: rng.randrange(-1, 6), Direction: lambda: rng.choice(list(Direction)),
               frozenset: lambda: frozenset(rng.sample(range(6), rng.randrange(3)))}
    kinds = {"bool": bool, "float": float, "int": int, "Direction": Direction, "frozenset[int]": frozenset}
    for _ in range(200):
        values = {spec.name: samples[kinds[str(spec.type)]]() for spec in dataclasses.fields(Commands)}
        made = make_commands(*values.values())
        assert made == Commands(**values)
        assert dataclasses.asdict(made) == values
        assert hash(made.car_call_lamps) == hash(values["car_call_lamps"])


def test_run_bits_only_in_a_driving_phase() -> None:
    up = DriveRequest(Direction.UP, 0.4)
    inputs = Inputs(tick=1)
    for phase in Phase:
        state = ControllerState(phase=phase)
        built = commands(CONTEXT, state, inputs, up, [])
        driving = phase in (Phase.STARTING, Phase.RUNNING, Phase.INSPECTING, Phase.CORRECTING)
        assert (built.run_up, built.speed_ref_m_s) == ((True, 0.4) if driving else (False, 0.0)), phase
        assert not built.run_down and not built.quick_stop
    creeping = ControllerState(phase=Phase.RELEVELLING, run=Run(direction=Direction.DOWN, target=0))
    assert commands(CONTEXT, creeping, inputs, DriveRequest(Direction.DOWN, 0.05), []).run_down
    assert commands(CONTEXT, creeping, inputs, HOLD, []) == commands(CONTEXT, replace(creeping, run=None), inputs,
                                                                      HOLD, [])


def test_arrival_gongs_and_announces_and_the_lamps_show_the_calls() -> None:
    state = ControllerState(phase=Phase.STANDING, landing=2, calls=Calls(car=frozenset({4}), up=frozenset({1})),
                            door=DoorState(DoorPhase.OPENING), dark=True)
    built = commands(CONTEXT, state, Inputs(tick=9, position_m=5.8), HOLD, [Event(EventKind.ARRIVED, 9, 2, "up")])
    assert built.gong and built.announce_landing == 2 and built.position_landing == 2
    assert built.car_call_lamps == {4} and built.hall_up_lamps == {1} and not built.hall_down_lamps
    assert built.door_open and not built.door_close and not built.car_light and not built.car_fan
