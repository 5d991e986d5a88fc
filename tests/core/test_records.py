"""The hot path's records: the fast constructor gives what the keyword form gives, the fast replace() what
dataclasses.replace() gives, and identity-hashed enums behave as enums."""

import dataclasses
import pickle
import random
from dataclasses import dataclass

import pytest

from carctl.core.faults import Fault
from carctl.core.phases import Phase
from carctl.core.records import IdentityEnum, fast_constructor, fast_replacer, replace
from carctl.core.state import ControllerState
from carctl.core.signals import Commands, Commissioning, Direction, Inputs, Mode, Recognition
from carctl.protocol.drive_map import DriveStatus, make_drive_status


def _sample(rng: random.Random, kind: str) -> object:
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "float":
        return rng.uniform(-2.0, 20.0)
    if kind == "int":
        return rng.randrange(-1, 1 << 20)
    if kind == "Direction":
        return rng.choice(list(Direction))
    if kind == "frozenset[int]":
        return frozenset(rng.sample(range(7), rng.randrange(4)))
    if kind == "Mode | None":
        return rng.choice([None, *Mode])
    if kind == "Commissioning | None":
        return rng.choice([None, *Commissioning])
    if kind == "str":
        return rng.choice(["", "ok", "failed"])
    if kind == "tuple[Recognition, ...]":
        return tuple(Recognition(f"r{n}", n, frozenset({0, n})) for n in range(rng.randrange(3)))
    raise AssertionError(f"no sample for {kind}")


@dataclass(frozen=True, slots=True)
class Checked:
    """A record whose constructor checks its field: neither fast path may skip that."""
    value: int

    def __post_init__(self) -> None:
        if self.value < 0:
            raise ValueError("negative")


@dataclass(frozen=True, slots=True)
class Derived:
    """A record with a field its constructor does not take."""
    value: int
    twice: int = dataclasses.field(init=False, default=0)


@pytest.mark.parametrize("record", [Inputs, Commands, DriveStatus])
def test_the_fast_constructor_gives_what_the_keyword_form_gives(record: type) -> None:
    make = fast_constructor(record)
    names = [spec.name for spec in dataclasses.fields(record)]
    rng = random.Random(7)
    for _ in range(200):
        values = {spec.name: _sample(rng, str(spec.type)) for spec in dataclasses.fields(record)}
        by_keyword = make(**values)
        in_order = make(*values.values())
        expected = record(**values)
        assert by_keyword == expected and in_order == expected
        assert hash(by_keyword) == hash(expected)
        assert [getattr(by_keyword, name) for name in names] == list(values.values())
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(by_keyword, names[0], values[names[0]])


def test_the_fast_constructor_fills_in_no_defaults() -> None:
    with pytest.raises(TypeError):
        fast_constructor(Commands)(run_up=True)
    with pytest.raises(TypeError):
        make_drive_status(ready=True)


def test_the_fast_constructor_refuses_records_it_would_build_wrongly() -> None:
    @dataclass(slots=True)
    class Mutable:
        value: int

    @dataclass(frozen=True)
    class NoSlots:
        value: int

    @dataclass(frozen=True, slots=True)
    class Private:
        _value: int

    @dataclass(frozen=True, slots=True)
    class Named:  # a field named like a local of the generated code is fine: those all start with "_"
        made: int
        make_Named: int

    assert fast_constructor(Named)(made=1, make_Named=2) == Named(1, 2)
    for record in (Mutable, NoSlots, Checked, Derived, Private, int):
        with pytest.raises(TypeError):
            fast_constructor(record)


@pytest.mark.parametrize("record", [Inputs, Commands, DriveStatus])
def test_replace_gives_what_dataclasses_replace_gives(record: type) -> None:
    make = fast_constructor(record)
    specs = dataclasses.fields(record)
    rng = random.Random(11)
    for _ in range(200):
        original = make(**{spec.name: _sample(rng, str(spec.type)) for spec in specs})
        changed = rng.sample(specs, rng.randrange(len(specs) + 1))
        changes = {spec.name: _sample(rng, str(spec.type)) for spec in changed}
        made = replace(original, **changes)
        expected = dataclasses.replace(original, **changes)
        assert type(made) is record and made == expected and hash(made) == hash(expected)
        assert [getattr(made, spec.name) for spec in specs] == [getattr(expected, spec.name) for spec in specs]
        assert all(getattr(made, name) is value for name, value in changes.items())
        assert made is not original and original == make(*(getattr(original, spec.name) for spec in specs))
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(made, specs[0].name, getattr(made, specs[0].name))


def test_replace_copies_the_controller_state_field_for_field() -> None:
    """The controller's state (58 fields, records and sets in it) by the fast replace: each field the very object
    it was, but the changed ones."""
    state = ControllerState(phase=Phase.RUNNING, faults=frozenset({Fault.OVERLOAD}), park_tick=7)
    made = replace(state, phase_tick=12, landing=3)
    assert made == dataclasses.replace(state, phase_tick=12, landing=3) and made is not state
    for spec in dataclasses.fields(ControllerState):
        if spec.name not in ("phase_tick", "landing"):
            assert getattr(made, spec.name) is getattr(state, spec.name)
    assert replace(state) == state and replace(state) is not state


def test_replace_refuses_what_dataclasses_replace_refuses() -> None:
    """An unknown field: the same TypeError; a record the fast form would build wrongly, or no dataclass at all:
    dataclasses.replace itself, with its own checks and errors."""
    with pytest.raises(TypeError, match="unexpected keyword argument 'nonsense'"):
        replace(Commands(), nonsense=1)

    with pytest.raises(ValueError):
        replace(Checked(1), value=-1)  # its __post_init__ ran
    with pytest.raises((ValueError, TypeError)):  # as dataclasses.replace refuses an init=False field (3.13: TypeError)
        replace(Derived(1), twice=2)
    assert replace(Derived(1), value=4) == Derived(4)
    with pytest.raises(TypeError):
        replace(3, value=4)  # type: ignore[type-var]
    for record in (Checked, Derived, int):
        with pytest.raises(TypeError):
            fast_replacer(record)
    with pytest.raises(TypeError):
        fast_replacer(Commands)(Inputs(tick=1))  # only a record of exactly its class


def test_identity_hashed_enums_behave_as_enums() -> None:
    assert issubclass(Phase, IdentityEnum) and issubclass(Fault, IdentityEnum) and issubclass(Mode, IdentityEnum)
    table = {phase: phase.value for phase in Phase}
    assert all(table[phase] == phase.value for phase in Phase)
    assert Phase("running") in table and Phase("running") is Phase.RUNNING
    faults = frozenset({Fault.OVERLOAD, Fault.DOOR_LOCK_LOST})
    assert Fault.OVERLOAD in faults and Fault("overload") in faults and Fault.DRIVE_STALE not in faults
    # A member survives a trip through pickle (the fleet runner's worker processes) as the same member.
    assert pickle.loads(pickle.dumps(faults)) == faults
    assert pickle.loads(pickle.dumps(Mode.RESCUE)) is Mode.RESCUE


def test_replace_runs_what_the_constructor_runs_for_initvars_and_own_constructors() -> None:
    """A record whose constructor does more than set its fields (an InitVar it takes, an __init__ of its own, none
    generated at all): replace() is dataclasses.replace itself, which calls that constructor, and fast_constructor()
    and fast_replacer() refuse it."""

    @dataclass(frozen=True, slots=True)
    class Scaled:
        length_m: float
        scale: dataclasses.InitVar[float] = 1.0  # taken by the constructor, no __post_init__ to use it

    @dataclass(frozen=True, slots=True)
    class Normalised:
        speed_m_s: float

        def __init__(self, speed_m_s: float) -> None:
            object.__setattr__(self, "speed_m_s", abs(speed_m_s))

    @dataclass(frozen=True, slots=True, init=False)
    class Unbuilt:
        count: int = 0

    assert replace(Scaled(2.0), length_m=3.0, scale=2.0) == dataclasses.replace(Scaled(2.0), length_m=3.0, scale=2.0)
    assert replace(Normalised(1.0), speed_m_s=-2.0).speed_m_s == 2.0  # its own __init__ ran
    with pytest.raises(TypeError, match="takes no arguments"):  # dataclasses.replace's own refusal
        replace(Unbuilt(), count=3)
    for record in (Scaled, Normalised, Unbuilt):
        with pytest.raises(TypeError):
            fast_replacer(record)
        with pytest.raises(TypeError):
            fast_constructor(record)
