"""Hypothesis profiles for the whole suite.

- "default" (`make test`): modest, so the suite stays quick.
- "fuzz" (`make fuzz`, HYPOTHESIS_PROFILE=fuzz): many more examples, for tests marked `fuzz`.

A fuzz test is marked `@pytest.mark.fuzz` and leaves max_examples to the profile (no max_examples in its @settings),
so that `make fuzz` runs it as long as the profile says.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("default", max_examples=200, deadline=None)
settings.register_profile("fuzz", max_examples=20_000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


# The board's state folder (the defaults of carctl/runtime/config.py). A test that reads or writes there shares
# state with every other test and with the next run (a latch record left there keeps the next car out of service;
# tests run in parallel workers): each test keeps its files under its own tmp_path. The audit hook sees the test process's own writes; the fixture fails the test
# that made them.
BOARD_STATE_DIR = "/var/lib/carctl/"
_writes_to_board_state: list[str] = []


def _note_board_state_writes(event: str, args: tuple[object, ...]) -> None:
    if event == "open" and isinstance(args[0], str) and args[0].startswith(BOARD_STATE_DIR):
        _writes_to_board_state.append(args[0])  # read or written: either way another run's state
    elif event in ("os.rename", "os.replace", "os.remove", "os.mkdir") and isinstance(args[0], str) \
            and args[0].startswith(BOARD_STATE_DIR):
        _writes_to_board_state.append(args[0])


sys.addaudithook(_note_board_state_writes)


@pytest.fixture(autouse=True)
def _no_writes_to_the_board_state_dir() -> Iterator[None]:
    del _writes_to_board_state[:]
    yield
    written = sorted(set(_writes_to_board_state))
    del _writes_to_board_state[:]
    assert not written, f"the test opened files in the board's state folder: {written} (give it paths under tmp_path)"
