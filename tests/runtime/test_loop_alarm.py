"""One exception in the core must not tell the modem process the alarm is no longer wanted (the rider's call
hung up)."""

from __future__ import annotations

import time
from pathlib import Path

from carctl.core.signals import AlarmPhase
from carctl.protocol.loopback import AlarmCall, parse_alarm_call
from carctl.protocol.modem import AtSession, Step
from carctl.runtime.alarm_bridge import AlarmBridge
from carctl.runtime.sidechannel import MODEM_FROM_LOOP, Inbox, prepare_socket_dir
from sim.modem import SimulatedModem

from tests.runtime.test_loop import make_loop


def test_an_exception_in_the_core_does_not_hang_up_the_trapped_riders_call(tmp_path: Path) -> None:
    latch_file = tmp_path / "latches.json"
    latch_file.write_text('{"version": 1, "latched": [], "alarm": "transmitted"}')  # an alarm standing
    loop, _, _ = make_loop(tmp_path / "loop", latch_file=str(latch_file))
    directory = prepare_socket_dir(tmp_path / "run")
    loop.alarm_bridge = AlarmBridge(directory)
    modem_inbox = Inbox(directory, MODEM_FROM_LOOP)
    # The modem process's session: the rescue service is speaking with the rider.
    session, modem = AtSession(("+8653281234567",)), SimulatedModem(answer_after_s=0.2)
    session.want(True, 0.0)
    now = 0.0
    while not session.voice:
        session.receive(modem.on_bytes(session.to_send(now), now), now)
        now += 0.05
    try:
        for _ in range(5):
            loop.cycle()
        assert loop.state.alarm is AlarmPhase.TRANSMITTED and loop.commands.alarm_call
        real_step = loop.controller.step
        loop.controller.step = lambda state, inputs: 1 / 0  # type: ignore[method-assign]  # one core exception
        loop.cycle()
        loop.controller.step = real_step  # type: ignore[method-assign]
        loop.cycle()
        time.sleep(0.05)
        for value in modem_inbox.take():  # what the modem process does with what the loop told it
            message = parse_alarm_call(value)
            assert isinstance(message, AlarmCall)
            session.want(message.call, now)
            session.receive(modem.on_bytes(session.to_send(now), now), now)
            now += 0.05
        assert loop.state.alarm is AlarmPhase.TRANSMITTED  # the core never ended the alarm ...
        # ... but today the SAFE_STOP of that one cycle carries alarm_call False to the modem process: it sends ATH
        # (the rescue service's voice connection with the trapped rider is cut) and forgets the alarm was
        # transmitted; the next cycle's True starts a new round of calls from the first number.
        assert modem.connected and session.step is Step.CONNECTED, (session.step, modem.connected)
    finally:
        loop.alarm_bridge.close()
        modem_inbox.close()
