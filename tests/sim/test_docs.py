"""docs/scenarios.md names every key the program accepts, so the documentation cannot fall behind."""

import dataclasses
from pathlib import Path

from carctl.core.config import BuildingConfig, CarConfig
from sim.physics import PhysicsConfig
from sim.scenario import EVENT_TYPES, FAULT_KINDS, ScriptedEvent
from sim.traffic import TrafficConfig

DOC = (Path(__file__).parent.parent.parent / "docs" / "scenarios.md").read_text(encoding="utf-8")


def test_every_key_and_event_is_documented() -> None:
    for cls in (BuildingConfig, CarConfig, PhysicsConfig, TrafficConfig, ScriptedEvent):
        for spec in dataclasses.fields(cls):
            assert f"`{spec.name}`" in DOC, f"{cls.__name__}.{spec.name} is missing from docs/scenarios.md"
    for name in EVENT_TYPES + FAULT_KINDS:
        assert f"`{name}`" in DOC, name


def test_documented_defaults_match_the_code() -> None:
    for cls, table in ((CarConfig, "car"), (BuildingConfig, "building")):
        for spec in dataclasses.fields(cls):
            if isinstance(spec.default, float):
                row = next(line for line in DOC.splitlines() if line.startswith(f"| `{spec.name}` |"))
                documented = row.split("|")[2].strip().strip("`")
                assert float(documented) == spec.default, f"{table}.{spec.name}"


def table_text(heading: str) -> str:
    """The part of docs/scenarios.md under the heading that contains ``heading``, up to the next one."""
    start = next(index for index, line in enumerate(DOC.splitlines()) if line.startswith("## ") and heading in line)
    lines = DOC.splitlines()[start + 1:]
    end = next((index for index, line in enumerate(lines) if line.startswith("## ")), len(lines))
    return "\n".join(lines[:end])


def test_every_numeric_key_is_documented_with_its_range() -> None:
    for cls, heading in ((BuildingConfig, "`[building]`"), (CarConfig, "`[car]`"), (PhysicsConfig, "`[physics]`"),
                         (TrafficConfig, "`[traffic]`"), (ScriptedEvent, "`[[events]]`")):
        text = table_text(heading)
        for name, span in cls.RANGES.items():  # type: ignore[attr-defined]
            row = next((line for line in text.splitlines() if line.startswith(f"| `{name}` |")), None)
            assert row is not None, f"{heading} {name} has no row"
            assert f"| {span.interval} |" in row, f"{heading} {name}: range {span.interval} not shown"
