"""Command authentication: every way a command is refused, and acceptance exactly once."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carctl.platform.commands import MAX_COMMAND_BYTES, CommandGate, sign

KEY = b"k" * 32
NOW = 1_800_000_000.0


def command(**changes: Any) -> dict[str, Any]:
    base = {"id": "cmd-1", "type": "car.mode", "community": "xihan", "car": "b7-u2", "issued_at": NOW - 1,
            "expires_at": NOW + 60, "params": {"mode": "out_of_service"}}
    base.update(changes)
    return base


def payload(body: dict[str, Any], key: bytes = KEY) -> bytes:
    return json.dumps(sign(body, key)).encode()


def gate() -> CommandGate:
    return CommandGate("xihan", "b7-u2", KEY)


def test_a_good_command_is_accepted_once_and_its_replay_refused() -> None:
    checker = gate()
    first = checker.check(payload(command()), NOW)
    assert first.accepted and first.command is not None and first.command["params"]["mode"] == "out_of_service"
    replay = checker.check(payload(command()), NOW + 5)
    assert not replay.accepted and replay.reason.startswith("replayed")


@pytest.mark.parametrize(("body", "key", "reason"), [
    (command(), b"x" * 32, "bad signature"),
    (command(community="dongfang"), KEY, "community"),
    (command(car="b7-u3"), KEY, "not this one"),
    (command(issued_at=NOW + 120), KEY, "future"),
    (command(expires_at=NOW - 1), KEY, "expired"),
    (command(issued_at=NOW - 1, expires_at=NOW + 3600), KEY, "longer than"),
    (command(type="car.selfdestruct"), KEY, "unknown command type"),
    (command(params={"mode": "party"}), KEY, "bad value"),
    (command(params={}), KEY, "missing parameter"),
    (command(params={"mode": "normal", "extra": 1}), KEY, "unknown parameter"),
    (command(type="car.home_landing", params={"landing": "3"}), KEY, "bad value"),
    (command(type="resident.enroll", params={"resident": "r", "home_landing": 2, "consent": "C",
                                             "photos": []}), KEY, "bad value"),
    (command(issued_at="yesterday"), KEY, "malformed"),
])
def test_refusals_say_why(body: dict[str, Any], key: bytes, reason: str) -> None:
    verdict = gate().check(payload(body, key), NOW)
    assert not verdict.accepted and reason in verdict.reason
    assert verdict.ack()["accepted"] is False and verdict.ack()["id"] == "cmd-1"


def test_unsigned_and_tampered_commands_are_refused() -> None:
    assert gate().check(json.dumps(command()).encode(), NOW).reason == "unsigned"
    signed = sign(command(), KEY)
    signed["params"] = {"mode": "normal"}  # changed after signing
    assert gate().check(json.dumps(signed).encode(), NOW).reason == "bad signature"


@pytest.mark.parametrize("raw", [b"", b"not json", b"[1,2,3]", b'"text"', b"{}", b'{"id": 7}',
                                 b"\xff\xfe\x00", b'{"id": "x", "type": "car.mode"}'])
def test_malformed_payloads_are_refused(raw: bytes) -> None:
    verdict = gate().check(raw, NOW)
    assert not verdict.accepted and verdict.reason.startswith(("malformed", "unsigned"))


def test_huge_payload_is_refused_before_parsing() -> None:
    verdict = gate().check(b"{" + b" " * (MAX_COMMAND_BYTES + 1) + b"}", NOW)
    assert not verdict.accepted and verdict.reason.startswith("too large")


def test_replay_memory_forgets_only_expired_ids() -> None:
    checker = gate()
    assert checker.check(payload(command(id="a", expires_at=NOW + 10)), NOW).accepted
    assert "a" in checker.seen
    assert checker.check(payload(command(id="b", expires_at=NOW + 100)), NOW + 20).accepted
    assert "a" not in checker.seen  # it expired: a replay of it is refused as expired anyway


def test_wildcard_car_reaches_every_car_of_the_community() -> None:
    assert gate().check(payload(command(car="*")), NOW).accepted


@pytest.mark.fuzz
@settings(deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                                 max_size=6), max_leaves=20))
def test_fuzz_any_json_is_refused_or_accepted_never_raises(value: Any) -> None:
    try:
        raw = json.dumps(value).encode()
    except ValueError:
        return
    verdict = gate().check(raw, NOW)
    assert not verdict.accepted  # nothing unsigned can be accepted


@pytest.mark.parametrize(("body", "verdict"), [(command(expires_at=NOW - 1), "expired"),
                                               (command(issued_at=NOW + 120, expires_at=NOW + 150),
                                                "issued in the future")])
def test_a_car_whose_clock_is_unsynchronised_says_so(body: dict[str, Any], verdict: str) -> None:
    """The board has no real-time clock: until NTP answers after a power cut, its time can be far off, and every
    command looks expired or from the future. The refusal names the car's clock when the kernel says it is wrong."""
    unsynchronised = gate().check(payload(body), NOW, clock_synchronised=False)
    assert not unsynchronised.accepted
    assert unsynchronised.reason == (f"the car's clock is not synchronised ({verdict} by its clock); check NTP on "
                                     f"the car")
    for known in (True, None):  # synchronised, or cannot tell: the command is what is out of date
        plain = gate().check(payload(body), NOW, clock_synchronised=known)
        assert not plain.accepted and plain.reason.startswith(verdict) and "clock is not" not in plain.reason


def test_an_unsynchronised_clock_does_not_refuse_a_command_that_fits_it() -> None:
    assert gate().check(payload(command()), NOW, clock_synchronised=False).accepted


def test_the_kernel_is_asked_whether_the_clock_is_synchronised_without_raising() -> None:
    from carctl.clocksync import clock_synchronised

    answers = {clock_synchronised() for _ in range(3)}
    assert len(answers) == 1 and answers <= {True, False, None}
    import sys
    if sys.platform.startswith("linux"):
        assert answers != {None}  # adjtimex with modes 0 needs no privilege: Linux always answers
