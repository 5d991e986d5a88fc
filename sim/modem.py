"""A simulated GSM/4G module and the rescue centre it calls: answers AT commands as a real module does, for the
alarm's voice call (carctl/protocol/modem.py). Sans-I/O: bytes and a clock reading in, bytes out; `sim serve` puts it
on a pseudo-terminal.

What the rescue centre does with the next call is set from outside (the tests, `sim ctl rescue ...`):
- "answer": the call is answered after ``answer_after_s`` (CONNECT), and lasts until the centre hangs up;
- "busy": BUSY at once; "no-answer": it rings for ever (the car hangs up after its ring timeout);
- hang_up(): the centre ends a connected call (NO CARRIER).
``dead`` makes the module answer nothing at all; ``registered`` False makes it report no network.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from carctl.protocol.modem import AtSession, Step

BEHAVIOURS = ("answer", "busy", "no-answer")
RESCUE_ACTIONS = (*BEHAVIOURS, "hangup")  # what the tests may have the rescue centre do
MAX_RESCUE_NUMBERS = 16  # numbers with a behaviour of their own
DIALLED_NUMBER = re.compile(r"\+?[0-9]{1,32}")  # as the car dials it (carctl/protocol/modem.py: digits only)
MAX_DIALLED = 100


@dataclass(slots=True)
class SimulatedModem:
    answer_after_s: float = 3.0
    behaviour: str = "answer"  # what the rescue centre does with calls (BEHAVIOURS)
    per_number: dict[str, str] = field(default_factory=dict)  # a behaviour for one number only
    dead: bool = False
    registered: bool = True
    echo: bool = True
    # A module that does not say CONNECT when a voice call is answered (AT+COLP=0, the default of some): the answer
    # is seen only in AT+CLCC.
    quiet_connect: bool = False
    dialled: list[str] = field(default_factory=list)  # every number dialled, in order
    calling: str = ""  # the number of the call in progress ("" none)
    connected: bool = False
    answer_at_s: float = -1.0
    _line: bytearray = field(default_factory=bytearray)
    _out: bytearray = field(default_factory=bytearray)

    def on_bytes(self, data: bytes, now_s: float) -> bytes:
        if not self.dead:
            for byte in data:
                if byte == 0x0D:
                    command = bytes(self._line).decode("ascii", "replace").strip()
                    self._line.clear()
                    if self.echo:
                        self._out += command.encode() + b"\r\n"
                    if command:
                        self._command(command.upper(), now_s)
                elif byte != 0x0A and len(self._line) < 1024:
                    self._line.append(byte)
        return self.tick(now_s)

    def tick(self, now_s: float) -> bytes:
        """What the module says on its own by ``now_s`` (a call answered)."""
        if self.calling and not self.connected and 0 <= self.answer_at_s <= now_s and not self.dead:
            self.connected = True
            if not self.quiet_connect:
                self._say("CONNECT")
        out = bytes(self._out)
        self._out.clear()
        return out

    def hang_up(self, lost: bool = False) -> None:
        """The rescue centre ends the call (``lost``: its NO CARRIER garbled on the line)."""
        if self.calling and self.connected:
            self._out += b"\r\nNO CARR\xffER\r\n" if lost else b"\r\nNO CARRIER\r\n"
        self.calling, self.connected, self.answer_at_s = "", False, -1.0

    def _say(self, line: str) -> None:
        self._out += b"\r\n" + line.encode() + b"\r\n"

    def _command(self, command: str, now_s: float) -> None:
        if command == "ATE0":
            self.echo = False
            self._say("OK")
        elif command == "AT+CREG?":
            self._say(f"+CREG: 0,{1 if self.registered else 0}")
            self._say("OK")
        elif command.startswith("ATD") and command.endswith(";"):
            number = command[3:-1]
            # The latest calls only: `sim serve` may run for days, and the state shows the last twenty.
            self.dialled = [*self.dialled[-(MAX_DIALLED - 1):], number]
            if not self.registered:
                self._say("NO CARRIER")
                return
            self._say("OK")
            behaviour = self.per_number.get(number, self.behaviour)
            if behaviour == "busy":
                self._say("BUSY")
                return
            self.calling = number
            self.answer_at_s = now_s + self.answer_after_s if behaviour == "answer" else -1.0
        elif command == "ATH":
            self.calling, self.connected, self.answer_at_s = "", False, -1.0
            self._say("OK")
        elif command == "AT+CLCC":  # the calls: the one in progress, alerting (3) or active (0)
            if self.calling:
                self._say(f'+CLCC: 1,0,{0 if self.connected else 3},0,0,"{self.calling}",129')
            self._say("OK")
        elif command == "AT":
            self._say("OK")
        else:
            self._say("ERROR")


class AlarmLine:
    """The alarm's whole channel in the lockstep simulator: the firmware's own AT session (carctl/protocol/modem.py)
    talking to the simulated module and rescue centre on the simulated clock, as the modem process talks to a real
    module. ``busy`` while a call is wanted or the session is mid-exchange: the lockstep then steps every tick."""

    def __init__(self, numbers: tuple[str, ...], answer_after_s: float) -> None:
        # No idle probing here: an idle simulated car exchanges nothing, so its ticks can be skipped.
        self.session = AtSession(numbers, probe_every_s=float("inf"), test_every_s=float("inf"))
        self.session.probe_at_s = float("inf")
        self.modem = SimulatedModem(answer_after_s=answer_after_s)

    @property
    def busy(self) -> bool:
        session = self.session  # on every stepped tick of the lockstep: kept to two attribute reads
        return session.wanted or session.step is not Step.IDLE

    def rescue(self, action: str, number: str = "") -> None:
        """What the rescue centre does with the next calls (to ``number`` only, when given), or "hangup"."""
        if action == "hangup":
            self.modem.hang_up()
        elif number:
            self.modem.per_number[number] = action
        else:
            self.modem.behaviour = action
            self.modem.per_number.clear()

    def exchange(self, wanted: bool, now_s: float) -> tuple[bool, bool]:
        """One tick: the car's wish, the bytes both ways; (transmitted, voice)."""
        session = self.session
        session.want(wanted, now_s)
        if self.busy:
            session.receive(self.modem.on_bytes(session.to_send(now_s), now_s), now_s)
        return session.transmitted, session.voice
