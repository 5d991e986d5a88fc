"""Hostile or broken module bytes that once left the alarm's AT session stuck, or marked an alarm transmitted that
the rescue service never received. Each test states the behaviour EN 81-28 needs."""

from __future__ import annotations

from carctl.protocol.modem import AtSession, Step
from sim.modem import SimulatedModem

NUMBERS = ("+8653281234567", "053280001111")


def drive(session: AtSession, responder, start_s: float, until_s: float, step_s: float = 0.05) -> float:
    now = start_s
    while now < until_s:
        out = session.to_send(now)
        session.receive(responder(out, now), now)
        now = round(now + step_s, 6)
    return now


def echo_only(out: bytes, now_s: float) -> bytes:
    """A module that answers nothing but the echo of what it is sent: wedged firmware with echo on, or the serial
    line's TX and RX shorted (a classic wiring fault)."""
    return out.replace(b"\r", b"\r\n")


def test_a_module_that_only_echoes_is_dead_and_the_alarm_is_not_stuck_before_dialling() -> None:
    session = AtSession(NUMBERS)
    session.want(True, 0.0)
    drive(session, echo_only, 0.0, 600.0)
    # Once: step ECHO_OFF for ever, dead False, failed_rounds 0 — no call, and the car never shows
    # alarm_modem_dead, because every echoed line counts as "an answer to what was asked".
    assert session.unreachable, (session.step, session.dead, session.failed_rounds)


def test_a_module_that_only_echoes_fails_the_periodic_test_call() -> None:
    session = AtSession(NUMBERS, test_every_s=3600.0)
    drive(session, echo_only, 0.0, 2 * 3600.0)
    # Once: the first test (at 300 s) never ends: test_result "" and tests_made 0, so alarm_test_failed is never
    # raised either.
    assert session.test_result == "failed", (session.step, session.test_result, session.tests_made)


def test_a_cme_error_final_result_is_an_error_not_an_endless_resend() -> None:
    """With AT+CMEE=1/2 (stored in many modules' profiles) a failing command ends with "+CME ERROR: ..." instead of
    ERROR: here AT+CREG? on a module without its SIM."""
    modem = SimulatedModem()

    def cme(out: bytes, now_s: float) -> bytes:
        answer = modem.on_bytes(out, now_s)
        return b"\r\n+CME ERROR: SIM not inserted\r\n" if b"AT+CREG?" in out else answer

    session = AtSession(NUMBERS)
    session.want(True, 0.0)
    drive(session, cme, 0.0, 600.0)
    # Once: AT+CREG? sent again every 2 s for ever (the CME line resets the silence count), failed_rounds 0: the
    # rescue service is never reachable and the car never says so.
    assert session.unreachable, (session.step, session.dead, session.failed_rounds)


def test_an_active_incoming_call_listed_by_clcc_is_not_the_rescue_service_answering() -> None:
    """+CLCC: <id>,<dir>,<stat>,<mode>,...: dir 1 is a call coming in (a call-back, a wrong number, auto-answered
    with ATS0=1). Our own call to the rescue service is still ringing, unanswered."""
    modem = SimulatedModem(behaviour="no-answer")

    def with_incoming(out: bytes, now_s: float) -> bytes:
        answer = modem.on_bytes(out, now_s)
        if b"AT+CLCC" in out:
            answer = b'\r\n+CLCC: 2,1,0,0,0,"+8613800000000",145\r\n' + answer
        return answer

    session = AtSession(NUMBERS)
    session.want(True, 0.0)
    drive(session, with_incoming, 0.0, 10.0)
    assert not modem.connected
    # Once: transmitted and voice True: the yellow and green lamps and "help is on the way", while the rescue
    # service's phone is still ringing; the alarm is then never called again.
    assert not session.transmitted, (session.step, session.transmitted, session.voice)


def test_one_spurious_connect_that_clcc_contradicts_does_not_end_the_calling_for_good() -> None:
    """A single CONNECT line (line noise, a module quirk) while the call still rings; AT+CLCC lists it alerting
    (stat 3), not active."""
    modem = SimulatedModem(behaviour="no-answer")
    session = AtSession(NUMBERS)
    session.want(True, 0.0)
    now = drive(session, modem.on_bytes, 0.0, 2.0)
    assert session.step is Step.RINGING
    session.receive(b"\r\nCONNECT\r\n", now)
    drive(session, modem.on_bytes, now, 400.0)
    # Once: transmitted True for good, step IDLE, only the first number ever dialled, and the module's call left
    # ringing (never hung up): the rescue service never had the alarm.
    assert not session.transmitted or modem.connected, (session.step, modem.dialled)


def test_one_lost_clcc_answer_does_not_drop_a_call_still_up_nor_leave_it_up_after_the_reset() -> None:
    """The rescue service is talking with the car; one answer to AT+CLCC is lost on the line (noise)."""
    modem = SimulatedModem(answer_after_s=1.0)

    def lossy(out: bytes, now_s: float) -> bytes:
        answer = modem.on_bytes(out, now_s)
        return b"" if b"AT+CLCC" in out and 10.0 < now_s < 14.0 else answer

    session = AtSession(NUMBERS)
    session.want(True, 0.0)
    now = drive(session, lossy, 0.0, 30.0)
    assert modem.connected
    # Once: voice False and step IDLE after one lost answer: the green lamp goes out while the rider still talks,
    # and the session has forgotten the call, so ...
    session.want(False, now)  # ... the rescuer's reset at the car
    drive(session, modem.on_bytes, now, now + 5.0)
    # ... sends no ATH: the module keeps the call open after the reset.
    assert not modem.connected, (session.step, session.voice)


def test_unsolicited_noise_does_not_bring_a_dead_module_back() -> None:
    """docs/alarm.md: "Only an answer to a command sent brings it back (an unsolicited RING does not)". A module
    whose AT interpreter has hung still emits a URC now and then (+CSQ, +CREG, +CPIN): every such line that falls
    while a probe is in flight clears ``dead``."""
    session = AtSession(NUMBERS, test_every_s=float("inf"))
    now, alive_after_dead = 0.0, 0
    while now < 3600.0:
        session.to_send(now)
        if now % 10.0 < 0.05 - 1e-9:
            session.receive(b"\r\n+CSQ: 99,99\r\n", now)
        if now > 200.0:
            alive_after_dead += not session.dead
        now = round(now + 0.05, 6)
    # Once: dead flips back to False dozens of times in the hour (alarm_modem_dead raised and cleared each time: a
    # flapping fault and ~140 platform events an hour from a module that answers nothing).
    assert alive_after_dead == 0
