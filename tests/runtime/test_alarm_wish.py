"""The loop's wish for the call reaches the modem process as a level ("call wanted"): a reset that waited in a
stalled modem process must still be taken, or the next alarm would inherit the last one's state (transmitted, with
no call made for it)."""

from __future__ import annotations

import time
from pathlib import Path

from carctl.adapters.modem import CALL_WANTED_MAX_AGE_S, take_wishes
from carctl.protocol import loopback
from carctl.protocol.modem import AtSession, Step
from carctl.runtime.alarm_bridge import AlarmBridge
from carctl.runtime.sidechannel import LOOP_FROM_MODEM, MODEM_FROM_LOOP, Inbox, Sender, prepare_socket_dir
from sim.modem import SimulatedModem

NUMBERS = ("+8653281234567", "053280001111")


def settle() -> None:
    time.sleep(0.05)


def modem_process_takes(inbox: Inbox, session: AtSession) -> None:
    """What carctl/adapters/modem.py run() does with the loop's datagrams."""
    take_wishes(inbox.take(), session, inbox.refuse, time.monotonic())


def report(to_loop: Sender, session: AtSession) -> None:
    to_loop.send(loopback.alarm_channel(session.wanted, session.transmitted, session.voice, session.unreachable,
                                        session.test_result, session.tests_made))


def answered_call(session: AtSession, modem: SimulatedModem) -> None:
    now = 0.0
    while not session.voice and now < 10.0:
        session.receive(modem.on_bytes(session.to_send(now), now), now)
        now += 0.05
    modem.hang_up()
    session.receive(modem.on_bytes(session.to_send(now), now), now)


def test_a_new_alarm_after_a_reset_the_stalled_modem_process_missed_is_not_transmitted_without_a_call(
        tmp_path: Path) -> None:
    directory = prepare_socket_dir(tmp_path / "run")
    bridge = AlarmBridge(directory)
    modem_inbox = Inbox(directory, MODEM_FROM_LOOP)
    to_loop = Sender(directory, LOOP_FROM_MODEM)
    session, modem = AtSession(NUMBERS), SimulatedModem(answer_after_s=0.5)
    try:
        bridge.tell(True)  # alarm 1
        settle()
        modem_process_takes(modem_inbox, session)
        answered_call(session, modem)  # the rescue centre answered, then hung up: transmitted
        report(to_loop, session)
        settle()
        assert bridge.channel() == (True, False)
        # The modem process stalls (not scheduled, blocked in a serial open, swapping) for ~3 s. Meanwhile the
        # rescuer resets alarm 1 at the car, and a rider holds the button again: alarm 2.
        bridge.tell(False)
        time.sleep(0.3)
        bridge.tell(True)
        time.sleep(CALL_WANTED_MAX_AGE_S + 0.3)
        bridge.tell(True)  # the every-second repeat of the wish
        settle()
        # The process runs again: the reset waited too long and is refused; "wanted" it already was.
        modem_process_takes(modem_inbox, session)
        report(to_loop, session)
        settle()
        transmitted, _ = bridge.channel()
        # The reset was taken, late as it was: alarm 2 is not transmitted, and a new round of calls has begun for
        # it, rather than the yellow lamp with no call made.
        assert not transmitted and session.wanted and session.step in (Step.HANGING_UP, Step.ECHO_OFF), (
            session.step, modem.dialled)  # the reset hangs up first; the round follows
    finally:
        bridge.close()
        modem_inbox.close()
        to_loop.close()
