"""The run recorder's messages (protocol/run_records.py, through protocol/loopback.py): what the loop sends parses
back to what it recorded; anything else, on either side, is refused with a reason, never an exception."""

from __future__ import annotations

import base64
import random
from array import array
from typing import Any

import pytest

from carctl.protocol.loopback import Refused, parse_service_message, parse_service_request
from carctl.protocol.run_records import MAX_SAMPLES, RunAnswer, RunCurves, RunRequest, RunsAnswer, RunsRequest, \
    RunSummary, pack_column, parse_answer, run_answer, run_request, runs_answers, runs_request, summary_json

BOOT = "0123456789abcdef"
SUMMARY = RunSummary(id=4, kind="run", from_landing=0, to_landing=3, start_utc_s=1_796_000_000.5, duration_s=21.34,
                     peak_speed_m_s=1.002, levelling_error_mm=-2.5, faults=("overload",), end="doors_open", samples=3)


def columns(position: list[int], speed: list[int], door: list[int]) -> dict[str, str]:
    return {"position_mm": pack_column(array("i", position)), "speed_mm_s": pack_column(array("h", speed)),
            "door": pack_column(array("b", door))}


GOOD_RUN = run_answer(BOOT, 9, 4, summary_json(SUMMARY), columns([0, 1200, 8700], [0, 1000, -3], [3, 8, 10]))


def test_what_the_loop_sends_parses_back() -> None:
    answer = parse_service_message(GOOD_RUN)
    assert answer == RunAnswer(BOOT, 9, 4, SUMMARY, RunCurves(0.1, (0, 1200, 8700), (0, 1000, -3), (3, 8, 10)))
    parts = runs_answers(BOOT, 2, 0, 24, [summary_json(SUMMARY)] * 25)
    assert len(parts) == 3 and all(isinstance(parse_service_message(part), RunsAnswer) for part in parts)
    assert parse_service_message(runs_answers(BOOT, 2, 0, -1, [])[0]) == RunsAnswer(BOOT, 2, 0, -1, ())
    missing = run_answer(BOOT, 1, 77, None, None)
    assert parse_service_message(missing) == RunAnswer(BOOT, 1, 77, None, None)
    assert parse_service_request({**runs_request(5), "sent_s": 1.0}) == RunsRequest(5)
    assert parse_service_request(run_request(5, 12)) == RunRequest(5, 12)


def _with(base: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    copy: dict[str, Any] = {**base}
    target = copy
    for key in path[:-1]:
        target[key] = {**target[key]}
        target = target[key]
    if value is ...:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return copy


@pytest.mark.parametrize("path, value", [
    (("boot",), "ABC"), (("boot",), 5), (("ask",), -1), (("ask",), True), (("ask",), 1.5), (("id",), 5),
    (("summary",), ...), (("curves",), ...), (("extra",), 1),
    (("summary", "kind"), "flight"), (("summary", "from"), 999), (("summary", "to"), "3"),
    (("summary", "start_utc_s"), float("inf")), (("summary", "duration_s"), -1.0), (("summary", "peak_m_s"), 99.0),
    (("summary", "level_mm"), "0"), (("summary", "faults"), ["x"] * 9), (("summary", "faults"), ["Bad Name"]),
    (("summary", "end"), "exploded"), (("summary", "samples"), MAX_SAMPLES + 1), (("summary", "samples"), 4),
    (("summary", "extra"), 1), (("summary", "id"), ...),
    (("curves", "every_s"), 0.0), (("curves", "every_s"), "0.1"), (("curves", "door"), "!!!"),
    (("curves", "door"), base64.b64encode(bytes([3, 8, 7])).decode()),  # 7: not a door phase
    (("curves", "door"), base64.b64encode(bytes([3, 8, 200])).decode()),
    (("curves", "speed_mm_s"), base64.b64encode(b"\x00" * 5).decode()),  # not whole int16s
    (("curves", "position_mm"), base64.b64encode(array("i", [0, 1, 2_000_000_000]).tobytes()).decode()),
    (("curves", "position_mm"), "A" * 100_000), (("curves", "position_mm"), ["AAAA"]), (("curves", "extra"), ""),
])
def test_a_run_answer_out_of_shape_or_range_is_refused(path: tuple[str, ...], value: Any) -> None:
    refused = parse_service_message(_with(GOOD_RUN, path, value))
    assert isinstance(refused, Refused) and refused.reason


@pytest.mark.parametrize("value", [
    {"type": "runs", "boot": BOOT, "ask": 1, "oldest": 0, "newest": 100, "runs": []},  # more than the ring holds
    {"type": "runs", "boot": BOOT, "ask": 1, "oldest": 0, "newest": 3, "runs": [summary_json(SUMMARY)] * 11},
    {"type": "runs", "boot": BOOT, "ask": 1, "oldest": 0, "newest": 3, "runs": [{"id": 1}]},
    {"type": "runs", "boot": BOOT, "ask": 1, "oldest": -5, "newest": 3, "runs": []},
    {"type": "runs", "boot": BOOT, "ask": 1, "oldest": 0, "newest": 3, "runs": {}},
    {"type": "run", "boot": BOOT, "ask": 1, "id": 3, "missing": False},
    {"type": "run", "boot": BOOT, "ask": 1, "id": 3, "missing": True, "summary": {}},
    {"type": "run"}, {"type": "runs"}, None, [], "runs",
])
def test_garbage_for_the_service_is_refused(value: Any) -> None:
    assert isinstance(parse_service_message(value), Refused)


@pytest.mark.parametrize("value", [
    {"type": "runs"}, {"type": "runs", "ask": -1}, {"type": "runs", "ask": 1 << 40}, {"type": "runs", "ask": "1"},
    {"type": "runs", "ask": 1, "all": True}, {"type": "run", "ask": 1}, {"type": "run", "ask": 1, "id": None},
    {"type": "run", "ask": 1, "id": 2, "format": "csv"}, {"type": "run", "ask": False, "id": 2},
])
def test_garbage_for_the_loop_is_refused(value: Any) -> None:
    assert isinstance(parse_service_request(value), Refused)


def test_random_mutations_are_taken_or_refused_never_raised() -> None:
    generator = random.Random(17)
    leaves: tuple[Any, ...] = (None, True, -1, 0, 2 ** 31, 1e308, "", "x" * 300, (), "AAAA", 0.1)
    for _ in range(3000):
        message: Any = _with(GOOD_RUN, ("summary",), {**GOOD_RUN["summary"]})
        message["curves"] = {**message["curves"]}
        parts = (message, message["summary"], message["curves"])
        for _ in range(generator.randint(1, 3)):
            part = generator.choice(parts)
            part[generator.choice(sorted(part))] = generator.choice(leaves)
        parsed = parse_service_message(message)
        assert isinstance(parsed, (Refused, RunAnswer))
