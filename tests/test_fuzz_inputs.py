"""Fuzzing the parsers of outside input this suite owns: scenario files, the firmware's configuration, the simulator's
control channel, the fault log. Whatever they are fed, they answer with their own refusal, in one line, never with
another exception. `make test` runs a few hundred examples each; `make fuzz` many more (conftest.py)."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import math
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carctl import cli
from carctl.core.config import BuildingConfig, CarConfig, ControllerConfig
from carctl.runtime import config as firmware
from carctl.runtime.fault_log import OPTIONAL_FIELDS, RECORD_FIELDS, read_log
from sim import scenario
from sim.physics import FAULT_KINDS, PhysicsConfig
from sim.scenario import ScriptedEvent
from sim.serve import CONTROL_COMMANDS, LineFaults, ShaftServer
from sim.traffic import TrafficConfig

pytestmark = pytest.mark.fuzz

# What a TOML (or JSON) file can hold, and then some: absurd numbers, the wrong types, nesting.
NUMBERS = st.one_of(
    st.integers(), st.integers(-(2**70), 2**70), st.sampled_from([2**63, -(2**63), 10**4000, 0, -1, 1]),
    st.floats(), st.floats(-10.0, 10.0), st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -1e308, 1e-300]))
LEAVES = st.one_of(st.none(), st.booleans(), NUMBERS, st.text(max_size=12),
                   st.sampled_from(["up", "down", "car_call", "hall_call", "fault", "drive_fault", "residential",
                                    "tcp://127.0.0.1:5020", "/dev/ttyAMA0", "\x1b[2J", "x" * 300]))
VALUES = st.recursive(LEAVES, lambda inner: st.lists(inner, max_size=6)
                      | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)


# Values that pass the type checks and often the ranges, so that the checks behind them are reached too.
PLAUSIBLE = st.one_of(st.floats(-1.0, 20.0), st.integers(-2, 12), st.booleans(),
                      st.lists(st.floats(0.0, 40.0), min_size=1, max_size=8).map(sorted),
                      st.lists(st.integers(0, 9), max_size=8))


def table(cls: type, fixed: dict[str, Any] | None = None) -> st.SearchStrategy[Any]:
    """A table of ``cls``'s own keys with any values (``fixed`` mostly kept); now and then a misspelt key, or
    something that is not a table at all."""
    names = st.sampled_from([spec.name for spec in dataclasses.fields(cls)])
    drawn = st.dictionaries(names, st.one_of(PLAUSIBLE, VALUES), max_size=6)
    misspelt = st.dictionaries(st.text(max_size=8), VALUES, min_size=1, max_size=2)
    kept = drawn.map(lambda values: {**values, **(fixed or {})})
    # Half the time the table as given; otherwise (a sixth each) without its fixed keys, misspelt, not a table.
    return st.one_of(kept, st.one_of(drawn, st.tuples(drawn, misspelt).map(lambda both: {**both[0], **both[1]}),
                                     VALUES))


def document(tables: dict[str, st.SearchStrategy[Any]], required: tuple[str, ...] = ()) -> st.SearchStrategy[Any]:
    """A whole file: some of its tables (``required`` ones mostly present), now and then an unknown table, or a
    document that is not a table of tables."""
    present = {name: strategy for name, strategy in tables.items() if name in required}
    optional = {name: strategy for name, strategy in tables.items() if name not in required}
    files = st.fixed_dictionaries(present, optional=optional)
    unknown = st.dictionaries(st.text(max_size=8), VALUES, min_size=1, max_size=1)
    # Half the time the file as given; otherwise (a sixth each) one table short, one too many, not a table.
    return st.one_of(files, st.one_of(files.map(lambda data: dict(list(data.items())[1:])),
                                      st.tuples(files, unknown).map(lambda both: {**both[0], **both[1]}), VALUES))


SCENARIOS = document({
    "building": table(BuildingConfig), "car": table(CarConfig), "physics": table(PhysicsConfig),
    "traffic": table(TrafficConfig),
    "events": st.one_of(st.lists(table(ScriptedEvent, {"t_s": 1.0}), max_size=4), VALUES),
})
FIRMWARE_FILES = document({
    "drive": table(firmware.DriveSection, {"endpoint": "tcp://127.0.0.1:5020"}),
    "panel": table(firmware.PanelSection, {"port": "/dev/ttyAMA0"}),
    "building": table(BuildingConfig), "car": table(CarConfig), "runtime": table(firmware.RuntimeSection),
    "processes": table(firmware.ProcessesSection), "face": table(firmware.FaceSection),
    "platform": table(firmware.PlatformSection),
}, required=("drive", "panel"))


@given(SCENARIOS)
def test_a_scenario_is_built_or_refused_in_one_line(data: dict[str, Any]) -> None:
    try:
        scenario.from_dict(data)
    except scenario.ScenarioError as error:
        assert "\n" not in str(error) and len(str(error)) < 1000


@given(FIRMWARE_FILES)
def test_a_firmware_configuration_is_built_or_refused_in_one_line(data: dict[str, Any]) -> None:
    try:
        firmware.from_dict(data)
    except firmware.FirmwareConfigError as error:
        assert "\n" not in str(error) and len(str(error)) < 1000


@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_any_file_is_read_or_refused(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "file.toml"
        path.write_bytes(content)
        with contextlib.suppress(scenario.ScenarioError):
            scenario.load(path)
        with contextlib.suppress(firmware.FirmwareConfigError):
            firmware.load(path)


def control_server() -> ShaftServer:
    """A simulator whose control channel answers without the serial lines running (they are not fuzzed here)."""
    server = ShaftServer(ControllerConfig(), PhysicsConfig())
    server.relay = SimpleNamespace(to_a_faults=LineFaults())  # type: ignore[assignment]
    server.write_panel_garbage = lambda count: None  # type: ignore[method-assign]
    return server


COMMAND_KEYS = sorted({key for keys in CONTROL_COMMANDS.values() for key in keys})
REQUESTS = st.one_of(
    st.fixed_dictionaries({"cmd": st.sampled_from(sorted(CONTROL_COMMANDS))}, optional={
        key: st.one_of(VALUES, st.sampled_from([*FAULT_KINDS, "no_such_fault", 0, 3, 5, 9, 2.5, True]))
        for key in COMMAND_KEYS}),
    VALUES)


@given(st.lists(st.one_of(REQUESTS.map(lambda request: json.dumps(request).encode()), st.binary(max_size=60)),
                min_size=1, max_size=8))
def test_the_control_channel_answers_every_line_with_a_json_object(lines: list[bytes]) -> None:
    server = control_server()
    for line in lines:
        answer = json.loads(server.reply(line + b"\n"))
        assert isinstance(answer, dict) and isinstance(answer["ok"], bool)
        assert answer["ok"] or isinstance(answer["error"], str)


RECORD_VALUES = st.one_of(VALUES, st.sampled_from(["raised", "cleared", "drive_fault", 1712345678.5, 21, 4]))
RECORDS = st.one_of(
    st.fixed_dictionaries({key: RECORD_VALUES for key in RECORD_FIELDS},
                          optional={key: RECORD_VALUES for key in [*OPTIONAL_FIELDS, "extra"]}),
    st.dictionaries(st.sampled_from([*RECORD_FIELDS, *OPTIONAL_FIELDS]), RECORD_VALUES, max_size=14),
    VALUES)


@given(st.lists(RECORDS, max_size=6), st.sampled_from([1, 2, "1", None]))
def test_carctl_faults_shows_any_log_or_refuses_it(records: list[Any], version: Any) -> None:
    text = json.dumps({"version": version, "records": records})
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "faults.json"
        path.write_text(text, encoding="utf-8")
        try:
            contents = read_log(path)
        except ValueError:
            return
        assert len(contents.records) + contents.malformed == len(records)
        with contextlib.redirect_stdout(io.StringIO()) as shown, contextlib.redirect_stderr(io.StringIO()) as said:
            code = cli._show_faults(path, 50, as_json=False)
        assert code == (2 if contents.malformed else 0)
        assert len(shown.getvalue().splitlines()) == len(contents.records)
        assert len(said.getvalue().splitlines()) == (1 if contents.malformed else 0)
