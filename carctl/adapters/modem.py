"""The alarm's modem process (`python -m carctl.adapters.modem --config FILE`, started by the process table when
processes.modem is on): the GSM/4G module on a serial port, driven by the AT session of carctl/protocol/modem.py.

Rules of this module:
- Its own process at ordinary priority, like the platform link: a module that hangs, a port that blocks, a driver
  that misbehaves can never stall the control loop; the loop hears only this process's datagrams.
- From the loop (its socket MODEM_FROM_LOOP, only the loop's process may speak): whether the alarm's call is wanted.
  To the loop (LOOP_FROM_MODEM): the call's state, on every change and twice a second, so a restarted loop or a lost
  datagram is put right within half a second. A call wanted but not heard of again for CALL_FORGOTTEN_S (the loop
  gone) is kept: only the loop's "not wanted" (the rescuer's reset) ends a call.
- The serial port is opened again and again while it is missing (a USB module unplugged); meanwhile the module
  counts as dead. Every byte it sends goes through the session's bounded parser.
"""

from __future__ import annotations

import argparse
import os
import select
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import serial

from carctl.protocol import loopback
from carctl.protocol.loopback import AlarmCall, Refused, age_problem, parse_alarm_call
from carctl.protocol.modem import AtSession

EXIT_NOT_STARTING = 3
REPORT_EVERY_S = 0.5
REOPEN_EVERY_S = 2.0
CALL_WANTED_MAX_AGE_S = 2.0  # a "wanted" that waited longer (a burst queued) is refused, the next one taken


class ModemLink:
    """The serial port: opened again while it cannot be; reads what is there, writes what the session says."""

    def __init__(self, port: str, baud: int) -> None:
        self.port_name, self.baud = port, baud
        self.port: serial.Serial | None = None
        self.next_open_s = 0.0
        self.problem = ""

    def open(self, now_s: float) -> bool:
        if self.port is not None:
            return True
        if now_s < self.next_open_s:
            return False
        self.next_open_s = now_s + REOPEN_EVERY_S
        try:
            self.port = serial.Serial(self.port_name, baudrate=self.baud, timeout=0, write_timeout=0.5,
                                      exclusive=True)
        except (serial.SerialException, OSError, ValueError) as error:
            self.problem = str(error)[:160]
            return False
        self.problem = ""
        return True

    def exchange(self, out: bytes) -> bytes:
        """Write ``out``, then read what has arrived (nothing blocks)."""
        assert self.port is not None
        try:
            if out:
                self.port.write(out)
            return bytes(self.port.read(self.port.in_waiting or 0))
        except (serial.SerialException, OSError) as error:
            self.problem = str(error)[:160]
            self.close()
            return b""

    def fileno(self) -> int | None:
        return self.port.fileno() if self.port is not None else None

    def close(self) -> None:
        if self.port is not None:
            try:
                self.port.close()
            except (serial.SerialException, OSError):
                pass
        self.port = None


def take_wishes(values: list[Any], session: AtSession, refuse: Callable[[str], None], now_s: float) -> None:
    """The loop's wishes for the call, in the order sent. A "wanted" that waited longer than CALL_WANTED_MAX_AGE_S
    is refused (the alarm may have been reset since: the next, repeated every second, says); a "not wanted" never
    is: it is the rescuer's reset, and dropping it would let the next alarm inherit this one's state (transmitted,
    with no call made)."""
    for value in values:
        message = parse_alarm_call(value)
        if isinstance(message, AlarmCall) and message.call:
            problem = age_problem(value, now_s, CALL_WANTED_MAX_AGE_S)
            if problem:
                message = Refused(problem)
        if isinstance(message, AlarmCall):
            session.want(message.call, now_s)
        else:
            refuse(message.reason)


def run(config_path: Path, port: str | None = None, stop_after_s: float = 0.0) -> int:
    from carctl.runtime import config as firmware_config
    from carctl.runtime.sidechannel import (LOOP_FROM_MODEM, LOOP_PID_VARIABLE, MODEM_FROM_LOOP, Inbox, Sender,
                                            SocketDirError, only_process, prepare_socket_dir, same_user)

    try:
        config = firmware_config.load(config_path)
        settings = config.alarm
        session = AtSession(settings.numbers, settings.command_timeout_s, settings.ring_timeout_s,
                            settings.retry_after_s, test_every_s=settings.test_every_h * 3600.0,
                            test_number=settings.test_number)
        socket_dir = prepare_socket_dir(Path(config.runtime.socket_dir), create=False)
    except (firmware_config.FirmwareConfigError, SocketDirError, ValueError) as error:
        print(f"alarm modem: not starting: {error}", file=sys.stderr)
        return EXIT_NOT_STARTING
    loop_pid = os.environ.get(LOOP_PID_VARIABLE, "")
    sender_check = only_process(lambda: int(loop_pid)) if loop_pid.isdigit() else same_user
    inbox = Inbox(socket_dir, MODEM_FROM_LOOP, sender=sender_check)
    to_loop = Sender(socket_dir, LOOP_FROM_MODEM)
    link = ModemLink(port or settings.modem_port, settings.baud)
    started = time.monotonic()
    next_report = 0.0
    told: tuple[bool, bool, bool, bool, str, int] | None = None
    try:
        while not stop_after_s or time.monotonic() - started < stop_after_s:
            now = time.monotonic()
            take_wishes(inbox.take(), session, inbox.refuse, now)
            if link.open(now):
                session.receive(link.exchange(session.to_send(now)), now)
            else:
                # No port: the module cannot be reached and no call can be going on. The session's timers still run
                # (commands time out, a round waits its backoff), and what it would write is dropped with the port,
                # so nothing queues up for a module that comes back.
                session.to_send(now)
                session.dead = True
                session.voice = False
            state = (session.wanted, session.transmitted, session.voice, session.unreachable, session.test_result,
                     session.tests_made)
            if state != told or now >= next_report:
                to_loop.send(loopback.alarm_channel(*state))
                told, next_report = state, now + REPORT_EVERY_S
            waiting = [descriptor for descriptor in (link.fileno(), inbox.fileno()) if descriptor is not None]
            select.select(waiting, [], [], 0.05)
    finally:
        link.close()
        inbox.close()
        to_loop.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m carctl.adapters.modem")
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--port", help="the modem's serial port, instead of alarm.modem_port (carctl run --modem)")
    args = parser.parse_args(argv)
    if args.port is not None and not args.port.startswith("/"):
        print("alarm modem: not starting: --port must be the serial port's path", file=sys.stderr)
        return EXIT_NOT_STARTING
    from carctl.runtime.realtime import set_lower_priority

    set_lower_priority(10)
    return run(args.config, args.port)


if __name__ == "__main__":
    sys.exit(main())
