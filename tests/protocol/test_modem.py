"""The alarm's voice call (carctl/protocol/modem.py) against the simulated module and rescue centre (sim/modem.py):
answered, busy, unanswered, no network, a dead module, the reset; and hostile bytes from the module."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carctl.protocol.modem import MAX_LINE_BYTES, MAX_RETRY_AFTER_S, AtSession, Step, number_problem
from sim.modem import SimulatedModem

NUMBERS = ("+8653281234567", "053280001111")


def run(session: AtSession, modem: SimulatedModem, start_s: float, until_s: float, step_s: float = 0.05) -> float:
    """The session and the module talking, on a clock of ``step_s`` steps; returns the time reached."""
    now = start_s
    while now < until_s:
        session.receive(modem.on_bytes(session.to_send(now), now), now)
        now = round(now + step_s, 6)
    return now


def test_an_answered_call_is_transmitted_and_voice_until_the_centre_hangs_up_and_is_not_called_again() -> None:
    session, modem = AtSession(NUMBERS), SimulatedModem(answer_after_s=3.0)
    session.want(True, 0.0)
    now = run(session, modem, 0.0, 2.0)
    assert session.step is Step.RINGING and not session.transmitted and modem.dialled == [NUMBERS[0]]
    now = run(session, modem, now, 4.0)
    assert session.transmitted and session.voice and session.step is Step.CONNECTED
    modem.hang_up()
    now = run(session, modem, now, 5.0)
    assert session.transmitted and not session.voice and session.step is Step.IDLE
    run(session, modem, now, 400.0)
    assert modem.dialled == [NUMBERS[0]]  # answered once: the alarm stays transmitted, no second call


def test_a_busy_first_number_gets_the_second_dialled() -> None:
    session, modem = AtSession(NUMBERS), SimulatedModem(per_number={NUMBERS[0]: "busy"})
    session.want(True, 0.0)
    run(session, modem, 0.0, 10.0)
    assert modem.dialled == list(NUMBERS) and session.voice and session.calls_failed == 1


def test_an_unanswered_number_is_hung_up_after_the_ring_timeout_and_all_failing_is_tried_again_later() -> None:
    session, modem = AtSession(NUMBERS, ring_timeout_s=20.0, retry_after_s=30.0), SimulatedModem(behaviour="no-answer")
    session.want(True, 0.0)
    now = run(session, modem, 0.0, 19.0)
    assert modem.dialled == [NUMBERS[0]] and modem.calling == NUMBERS[0]
    now = run(session, modem, now, 45.0)
    assert modem.dialled == list(NUMBERS) and session.step is Step.WAITING and not session.transmitted
    now = run(session, modem, now, 80.0)  # the backoff of 30 s over: a new round
    assert modem.dialled == list(NUMBERS) + [NUMBERS[0]]
    # The backoff doubles, to at most MAX_RETRY_AFTER_S: a trapped rider is never given up on.
    run(session, modem, now, 4000.0)
    assert session.backoff_s == MAX_RETRY_AFTER_S and len(modem.dialled) > 10


def test_no_network_waits_and_dials_once_registered() -> None:
    session, modem = AtSession(NUMBERS, retry_after_s=10.0), SimulatedModem(registered=False)
    session.want(True, 0.0)
    now = run(session, modem, 0.0, 5.0)
    assert modem.dialled == [] and session.step is Step.WAITING
    modem.registered = True
    run(session, modem, now, 20.0)
    assert modem.dialled == [NUMBERS[0]] and session.voice


def test_a_dead_module_is_reported_and_tried_again_when_it_answers() -> None:
    session, modem = AtSession(NUMBERS, retry_after_s=5.0), SimulatedModem(dead=True)
    session.want(True, 0.0)
    now = run(session, modem, 0.0, 30.0)
    assert session.dead and modem.dialled == []
    modem.dead = False
    run(session, modem, now, 60.0)
    assert not session.dead and session.voice


def test_the_reset_hangs_up_a_call_and_forgets_it() -> None:
    session, modem = AtSession(NUMBERS), SimulatedModem(answer_after_s=1.0)
    session.want(True, 0.0)
    now = run(session, modem, 0.0, 3.0)
    assert session.voice
    session.want(False, now)
    run(session, modem, now, now + 1.0)
    assert not session.transmitted and not session.voice and session.step is Step.IDLE and modem.calling == ""
    # A new alarm calls again from the first number.
    session.want(True, now + 2.0)
    run(session, modem, now + 2.0, now + 6.0)
    assert modem.dialled == [NUMBERS[0], NUMBERS[0]] and session.voice


def test_numbers_are_checked() -> None:
    for bad in ("", "12", "+86 532", "110;ATH", "++12345", "1" * 21, "12+34", "*99#", "**21*999#", "*#06#",
                "+86\r\nATD999", "１２３"):
        assert number_problem(bad), bad
        with pytest.raises(ValueError):
            AtSession((bad,))
    with pytest.raises(ValueError):
        AtSession(())
    assert number_problem("+8653281234567") is None and number_problem("110") is None
    with pytest.raises(ValueError):
        AtSession(("110", "110"))


def test_overlong_and_non_ascii_lines_are_dropped_and_counted() -> None:
    session = AtSession(NUMBERS)
    session.want(True, 0.0)
    session.to_send(0.0)
    session.receive(b"X" * (10 * MAX_LINE_BYTES) + b"\r\nOK\r\n", 0.1)  # the OK after the garbage still counts
    assert session.lines_dropped == 1 and session.step is Step.REGISTRATION
    session.receive(b"\xff\xfeOK\r\n", 0.2)
    assert session.lines_dropped == 2 and session.step is Step.REGISTRATION


@given(st.lists(st.binary(max_size=300), max_size=20))
def test_any_bytes_from_the_module_never_raise_and_never_grow_the_buffer(chunks: list[bytes]) -> None:
    session = AtSession(NUMBERS)
    session.want(True, 0.0)
    now = 0.0
    for chunk in chunks:
        session.to_send(now)
        session.receive(chunk, now)
        now += 0.5
        assert len(session._buffer) <= MAX_LINE_BYTES
    assert session.step in Step


def test_an_idle_module_is_probed_so_a_dead_one_is_known_before_the_alarm() -> None:
    session, modem = AtSession(NUMBERS, command_timeout_s=2.0, probe_every_s=60.0), SimulatedModem()
    now = run(session, modem, 0.0, 10.0)
    assert not session.dead and session.step is Step.IDLE
    modem.dead = True
    now = run(session, modem, now, 70.0)  # the next probe, and its retry
    assert session.dead and modem.dialled == []


def test_an_alarm_during_a_probe_starts_its_round_once_the_probe_is_answered() -> None:
    session, modem = AtSession(NUMBERS, probe_every_s=60.0), SimulatedModem(answer_after_s=1.0)
    session.to_send(0.0)  # the probe goes out
    assert session.step is Step.PROBE
    session.want(True, 0.01)
    run(session, modem, 0.01, 5.0)
    assert modem.dialled == [NUMBERS[0]] and session.voice


def test_a_periodic_test_call_is_made_answered_and_hung_up_without_lighting_the_riders_lamps() -> None:
    from carctl.protocol.modem import TEST_FIRST_AFTER_S

    session = AtSession(NUMBERS, test_every_s=72 * 3600.0, test_number="0532999")
    modem = SimulatedModem(answer_after_s=1.0)
    now = run(session, modem, 0.0, TEST_FIRST_AFTER_S - 1.0, step_s=0.5)
    assert modem.dialled == [] and session.test_result == ""
    now = run(session, modem, now, TEST_FIRST_AFTER_S + 10.0, step_s=0.1)
    assert modem.dialled == ["0532999"] and session.test_result == "ok" and modem.calling == ""
    assert not session.transmitted and not session.voice  # a test lights nothing in the car
    assert session.test_due_s >= now - 10.0 + 72 * 3600.0 - 1.0


def test_a_failed_test_is_reported_and_tried_again_within_the_hour() -> None:
    from carctl.protocol.modem import TEST_FIRST_AFTER_S, TEST_RETRY_AFTER_S

    session, modem = AtSession(NUMBERS, ring_timeout_s=10.0), SimulatedModem(behaviour="busy")
    now = run(session, modem, 0.0, TEST_FIRST_AFTER_S + 5.0, step_s=0.5)
    assert session.test_result == "failed" and modem.dialled == list(NUMBERS)
    modem.behaviour = "answer"
    run(session, modem, now, now + TEST_RETRY_AFTER_S + 10.0, step_s=1.0)
    assert session.test_result == "ok" and session.tests_made == 2


def test_an_alarm_takes_the_line_from_a_test_call() -> None:
    from carctl.protocol.modem import TEST_FIRST_AFTER_S

    session, modem = AtSession(NUMBERS, test_number="0532999"), SimulatedModem(behaviour="no-answer")
    now = run(session, modem, 0.0, TEST_FIRST_AFTER_S + 2.0, step_s=0.1)
    assert modem.calling == "0532999" and session.testing
    modem.behaviour = "answer"
    session.want(True, now)
    run(session, modem, now, now + 10.0)
    assert modem.dialled == ["0532999", NUMBERS[0]] and session.transmitted and session.voice
    assert not session.testing


def test_a_reset_then_a_new_alarm_at_once_is_dialled_without_waiting_for_a_backoff() -> None:
    """The hang-up's OK, arriving after the new alarm began, once passed for the new round's first answer."""
    session, modem = AtSession(NUMBERS), SimulatedModem(answer_after_s=1.0)
    session.want(True, 0.0)
    now = run(session, modem, 0.0, 3.0)
    assert session.voice
    session.want(False, now)
    session.want(True, now)  # a new alarm before the hang-up is answered
    run(session, modem, now, now + 4.0)
    assert modem.dialled == [NUMBERS[0], NUMBERS[0]] and session.voice


def test_a_registration_answer_with_location_fields_is_read_by_position() -> None:
    session = AtSession(NUMBERS)
    session.want(True, 0.0)
    session.to_send(0.0)
    session.receive(b"\r\nOK\r\n", 0.1)
    assert session.to_send(0.1) == b"AT+CREG?\r"
    session.receive(b'\r\n+CREG: 2,1,"00C3","0010"\r\n\r\nOK\r\n', 0.2)
    assert session.to_send(0.2) == f"ATD{NUMBERS[0]};\r".encode()


def test_a_lost_no_carrier_or_a_silent_answer_is_caught_by_checking_the_call() -> None:
    from carctl.protocol.modem import CALL_CHECK_EVERY_S

    session, modem = AtSession(NUMBERS), SimulatedModem(answer_after_s=1.0, quiet_connect=True)
    session.want(True, 0.0)
    now = run(session, modem, 0.0, 2.0 + CALL_CHECK_EVERY_S + 1.0)
    assert session.voice and session.step is Step.CONNECTED  # answered, though the module never said CONNECT
    modem.hang_up(lost=True)  # the centre hangs up; its NO CARRIER garbled
    now = run(session, modem, now, now + CALL_CHECK_EVERY_S + 1.0)
    assert not session.voice and session.transmitted and session.lines_dropped >= 1
    run(session, modem, now, now + 100.0)
    assert modem.dialled == [NUMBERS[0]]  # answered once: never hung up and called again


def test_unsolicited_lines_do_not_bring_a_dead_module_back_and_failed_rounds_are_counted() -> None:
    session, modem = AtSession(NUMBERS, retry_after_s=5.0), SimulatedModem(dead=True)
    session.want(True, 0.0)
    now = run(session, modem, 0.0, 10.0)
    assert session.dead
    session.receive(b"\r\nRING\r\n", now)
    assert session.dead
    modem.dead, modem.behaviour = False, "busy"
    run(session, modem, now, now + 60.0)
    assert not session.dead and session.failed_rounds >= 2


def test_a_late_ok_is_not_taken_for_the_registration_answer() -> None:
    session = AtSession(NUMBERS)
    session.want(True, 0.0)
    session.to_send(0.0)
    session.receive(b"\r\nOK\r\n", 0.1)  # ATE0's
    session.to_send(0.1)
    session.receive(b"\r\nOK\r\n", 0.15)  # a late one, before the registration's answer
    assert session.step is Step.REGISTRATION
    session.receive(b"\r\n+CREG: 0,1\r\n\r\nOK\r\n", 0.2)
    assert session.to_send(0.2).startswith(b"ATD")
