"""The alarm's voice call over a GSM/4G module's AT commands (EN 81-28), sans-I/O: bytes and a clock reading in,
bytes to write and the call's state out. The adapter (a serial port) and the process that runs it are elsewhere.

Rules of this module:
- Every byte from the module is hostile until parsed: lines are split on CR/LF, at most MAX_LINE_BYTES each (a
  longer run is dropped and counted, never buffered without bound), non-ASCII lines dropped and counted.
- One command at a time, each with its own timeout: ATE0 (no echo) and AT+CREG? (registered on the network: home or
  roaming) before each round of calls, then ATD<number>; for each number in order. A number that gives BUSY, NO
  ANSWER, NO CARRIER, NO DIALTONE or ERROR, or rings for longer than ring_timeout_s, is hung up (ATH) and the next
  one dialled. When every number has failed, the round is tried again after a backoff that doubles from
  retry_after_s to MAX_RETRY_AFTER_S, for as long as the alarm is wanted: a trapped rider is never given up on.
- While a call rings or is connected the module is asked AT+CLCC every CALL_CHECK_EVERY_S: a call listed active is
  answered (for modules that do not say CONNECT unless AT+COLP=1 is set), and a connected call no longer listed has
  ended (a NO CARRIER lost to line noise cannot leave the green lamp lit). A check with no answer while connected
  ends the voice connection too.
- CONNECT (or VOICE CALL: BEGIN, which some modules say instead) is a voice connection: the alarm has reached the
  rescue service (transmitted) and someone speaks with the car (voice). When that call ends (NO CARRIER, VOICE CALL:
  END), the alarm stays transmitted and is not called again; it ends only when it is no longer wanted (the
  rescuer's reset at the car), which hangs up a call in progress.
- The periodic test call (EN 81-28: at least every 3 days): while no alarm stands, every test_every_s (the first
  TEST_FIRST_AFTER_S after start) the test number (or the alarm's numbers) is called as an alarm would be; answered,
  it is hung up at once and the test is "ok"; every number failed, it is "failed", and tried again after
  TEST_RETRY_AFTER_S. A test never lights the rider's lamps, and an alarm always takes the line from a test.
- A command in flight (a probe, a hang-up) is let finish before a round of calls begins, so its late answer is never
  taken for the next command's.
- Only an answer to a command sent clears ``dead`` (an unsolicited RING or noise does not). Rounds of an alarm's
  calls that reached no one are counted (``failed_rounds``): from NO_SERVICE_AFTER_ROUNDS on, the rescue service is
  not reachable through this module, and the car shows it as the module's failure.
- A command with no answer in time is sent again at once; a module that answers nothing to DEAD_AFTER_TIMEOUTS
  commands in a row is dead (``dead``: for the car to show), and is tried again at each backoff. While no call is
  wanted the module is asked "AT" every probe_every_s, so a dead module is known before the alarm that needs it.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field

MAX_LINE_BYTES = 256
MAX_RETRY_AFTER_S = 300.0
CALL_CHECK_EVERY_S = 3.0
NO_SERVICE_AFTER_ROUNDS = 2
TEST_FIRST_AFTER_S = 300.0
TEST_RETRY_AFTER_S = 3600.0
DEAD_AFTER_TIMEOUTS = 2
FAILED = ("BUSY", "NO ANSWER", "NO CARRIER", "NO DIALTONE", "ERROR")
# What answers a command: final result codes, and the information lines of the commands sent. An unsolicited line
# (+CSQ, +CPIN, RING, ...) or the echo of a command is not an answer: a hung module still emits them.
FINAL_RESULTS = frozenset({"OK", "CONNECT", "VOICE CALL: BEGIN", "VOICE CALL: END", *FAILED})
CLCC_MISSES_TO_END = 2  # unanswered AT+CLCC checks before a connected call is taken as ended (one may be noise)
CONNECTED = ("CONNECT", "VOICE CALL: BEGIN")
ENDED = ("NO CARRIER", "VOICE CALL: END")


class Step(enum.Enum):
    IDLE = "idle"  # nothing wanted, or the alarm already answered
    ECHO_OFF = "echo_off"  # ATE0 sent
    REGISTRATION = "registration"  # AT+CREG? sent
    DIALLING = "dialling"  # ATD sent, waiting for its OK
    RINGING = "ringing"  # the call placed, waiting for an answer
    CONNECTED = "connected"  # a voice connection
    HANGING_UP = "hanging_up"  # ATH sent
    WAITING = "waiting"  # every number failed (or the module was silent): the next round after a backoff
    PROBE = "probe"  # AT sent while idle: is the module there?


def number_problem(number: str) -> str | None:
    """Why ``number`` cannot be dialled as a voice call, or None: digits only, with an optional leading + (no * or
    #: a service code such as **21*...# would change the module's call forwarding instead of calling anyone)."""
    digits = number[1:] if number.startswith("+") else number
    if not 3 <= len(digits) <= 20 or not digits.isascii() or not digits.isdigit():
        return f"{number[:24]!r}: a number is 3-20 of the digits 0-9, with an optional leading +"
    return None


@dataclass(slots=True)
class AtSession:
    numbers: tuple[str, ...]
    command_timeout_s: float = 2.0
    ring_timeout_s: float = 60.0
    retry_after_s: float = 30.0
    probe_every_s: float = 60.0
    test_every_s: float = 72 * 3600.0
    test_number: str = ""  # the rescue service's number for test calls ("": the alarm's numbers)
    # What the session reports.
    test_result: str = ""  # the last periodic test call: "", "ok" or "failed"
    tests_made: int = 0
    failed_rounds: int = 0  # rounds of the standing alarm's calls that reached no one
    transmitted: bool = False
    voice: bool = False
    dead: bool = False
    calls_made: int = 0
    calls_failed: int = 0
    lines_dropped: int = 0
    # Where it is.
    step: Step = Step.IDLE
    wanted: bool = False
    number_index: int = 0
    deadline_s: float = 0.0
    backoff_s: float = 0.0
    silent_commands: int = 0
    registered: bool = False  # the last AT+CREG? said home network or roaming
    next_after_hang_up: bool = False  # the ATH sent ends a failed call: the next number follows it
    last_command: str = ""
    probe_at_s: float = 0.0  # when the idle module is next asked "AT"
    testing: bool = False  # the calls under way are the periodic test
    creg_seen: bool = False  # a +CREG line has come since AT+CREG? was sent (a bare OK before it is a late one)
    clcc_due_s: float = 0.0  # when the call under way is next checked with AT+CLCC
    clcc_deadline_s: float = -1.0  # the AT+CLCC in flight must be answered by then (-1: none in flight)
    clcc_active: bool = False  # the AT+CLCC in flight listed an active voice call
    clcc_missed: int = 0  # AT+CLCC checks of the connected call in a row with no answer
    clcc_alerting: bool = False  # the AT+CLCC in flight listed the car's own call still dialling or ringing
    test_due_s: float = -1.0  # when the next test call is due (-1: not yet scheduled)
    _buffer: bytearray = field(default_factory=bytearray)
    _overlong: bool = False
    _out: bytearray = field(default_factory=bytearray)

    def __post_init__(self) -> None:
        if not self.numbers:
            raise ValueError("at least one number to call")
        if len(set(self.numbers)) != len(self.numbers):
            raise ValueError("a number given twice")
        for number in self.numbers + ((self.test_number,) if self.test_number else ()):
            problem = number_problem(number)
            if problem:
                raise ValueError(problem)
        self.backoff_s = self.retry_after_s

    # -- what the car wants ----------------------------------------------------------------------------------------

    def want(self, wanted: bool, now_s: float) -> None:
        """The alarm active (a call wanted) or ended (the rescuer's reset: hang up, forget)."""
        if wanted == self.wanted:
            return
        self.wanted = wanted
        if wanted:
            self.transmitted = self.voice = False
            self.backoff_s = self.retry_after_s
            self.failed_rounds = 0
            if self.testing:  # the alarm takes the line from the test, which is made again later
                self.testing = False
                self.test_due_s = now_s + TEST_FIRST_AFTER_S
                if self.step in (Step.DIALLING, Step.RINGING, Step.CONNECTED):
                    self.next_after_hang_up = False
                    self._send("ATH", Step.HANGING_UP, now_s)  # the round follows the hang-up (_settled)
                    return
            if self.step in (Step.IDLE, Step.WAITING):
                self._start_round(now_s)
            elif self.step in (Step.ECHO_OFF, Step.REGISTRATION, Step.DIALLING):
                self.number_index = 0  # a round under way (a test's) goes on as the alarm's
            # else (a probe or a hang-up in flight): the round begins once it is answered (_settled)
        else:
            call_may_be_up = self.voice or self.step in (Step.DIALLING, Step.RINGING, Step.CONNECTED)
            self.transmitted = self.voice = False
            self.next_after_hang_up = False
            if call_may_be_up or self.calls_made:
                # The reset hangs up whatever the session believes: a call whose end it only inferred (a check
                # unanswered) may still be up on the module.
                self._send("ATH", Step.HANGING_UP, now_s)
            else:
                self.step = Step.IDLE

    # -- bytes in, bytes out ---------------------------------------------------------------------------------------

    def receive(self, data: bytes, now_s: float) -> None:
        for byte in data:
            if byte in (0x0D, 0x0A):
                if self._overlong:
                    self._overlong = False
                elif self._buffer:
                    line = bytes(self._buffer)
                    self._buffer.clear()
                    self._line(line, now_s)
                continue
            if self._overlong:
                continue
            if len(self._buffer) >= MAX_LINE_BYTES:
                self._buffer.clear()
                self._overlong = True
                self.lines_dropped += 1
                continue
            self._buffer.append(byte)

    def to_send(self, now_s: float) -> bytes:
        """What to write to the module now (after the timers have been looked at)."""
        self._timers(now_s)
        out = bytes(self._out)
        self._out.clear()
        return out

    # -- the steps -------------------------------------------------------------------------------------------------

    @property
    def unreachable(self) -> bool:
        """The rescue service cannot be reached through this module: it answers nothing, or rounds of calls reached
        no one (no SIM, no network). The car shows it as the module's failure (alarm_modem_dead)."""
        return self.dead or self.failed_rounds >= NO_SERVICE_AFTER_ROUNDS

    def _send(self, command: str, step: Step, now_s: float, timeout_s: float | None = None) -> None:
        self._out += command.encode("ascii") + b"\r"
        self.last_command = command
        self.step = step
        self.deadline_s = now_s + (self.command_timeout_s if timeout_s is None else timeout_s)

    def _start_round(self, now_s: float) -> None:
        self.number_index = 0
        self.registered = False
        self.clcc_deadline_s = -1.0
        self._send("ATE0", Step.ECHO_OFF, now_s)

    def _numbers(self) -> tuple[str, ...]:
        return (self.test_number,) if self.testing and self.test_number else self.numbers

    def _dial(self, now_s: float) -> None:
        self.calls_made += 1
        self.clcc_due_s = now_s + CALL_CHECK_EVERY_S
        self._send(f"ATD{self._numbers()[self.number_index]};", Step.DIALLING, now_s)

    def _next_number(self, now_s: float) -> None:
        self.calls_failed += 1
        self.number_index += 1
        if self.number_index < len(self._numbers()):
            self._dial(now_s)
        else:
            self._wait(now_s)

    def _test_done(self, result: str, now_s: float, next_in_s: float) -> None:
        self.testing = False
        self.test_result = result
        self.tests_made += 1
        self.test_due_s = now_s + next_in_s

    def _settled(self, now_s: float) -> None:
        """A command in flight has been answered (or timed out) with nothing to follow it: a round of calls if an
        alarm stands that has not reached the rescue service, else idle."""
        if self.wanted and not self.transmitted:
            self._start_round(now_s)
        else:
            self.step = Step.IDLE

    def _wait(self, now_s: float) -> None:
        if self.wanted and not self.testing:
            self.failed_rounds += 1
        if self.testing:  # no module, no network or no answer: the test has failed; tried again later
            self._test_done("failed", now_s, TEST_RETRY_AFTER_S)
            self.step = Step.IDLE
            return
        self.step = Step.WAITING
        self.deadline_s = now_s + self.backoff_s
        self.backoff_s = min(MAX_RETRY_AFTER_S, self.backoff_s * 2)

    def _line(self, raw: bytes, now_s: float) -> None:
        try:
            line = raw.decode("ascii").strip()
        except UnicodeDecodeError:
            self.lines_dropped += 1
            return
        if not line or line == self.last_command or line == "AT+CLCC":
            return  # the module's echo of what it was sent (echo on, or TX and RX shorted): not an answer
        if line.startswith(("+CME ERROR", "+CMS ERROR")):
            line = "ERROR"  # the extended error result (AT+CMEE=1 or 2 in the module's profile)
        step = self.step
        answer = line in FINAL_RESULTS or (step is Step.REGISTRATION and line.startswith("+CREG:"))
        if step is not Step.IDLE and step is not Step.CONNECTED and answer:
            self.silent_commands = 0  # an answer to what was asked: the module is there
            self.dead = False
        if self.clcc_deadline_s >= 0 and (line.startswith("+CLCC:") or line in ("OK", "ERROR")):
            self.silent_commands = 0
            self.dead = False
            self._call_check(line, now_s)
            return
        if step is Step.PROBE:
            if line in ("OK", "ERROR"):
                self._settled(now_s)  # an alarm that came during the probe begins now
        elif step is Step.ECHO_OFF:
            if line == "OK":
                self.creg_seen = False
                self._send("AT+CREG?", Step.REGISTRATION, now_s)
            elif line == "ERROR":
                self._wait(now_s)
        elif step is Step.REGISTRATION:
            if line.startswith("+CREG:"):
                # The answer to AT+CREG? is "+CREG: <n>,<stat>[,<lac>,<ci>...]": the second field, whatever the
                # module's report setting (a bare "+CREG: <stat>" is unsolicited, and read the same way).
                fields = [part.strip() for part in line[len("+CREG:"):].split(",")]
                status = fields[1] if len(fields) >= 2 else fields[0]
                self.registered = status in ("1", "5")  # home network, or roaming
                self.creg_seen = True
            elif line == "OK" and not self.creg_seen:
                pass  # a late OK (of a command before): the answer to AT+CREG? is still to come
            elif line == "OK":
                if self.registered:
                    self._dial(now_s)
                else:
                    self._wait(now_s)  # no network yet: try the round again after the backoff
            elif line == "ERROR":
                self._wait(now_s)
        elif step is Step.DIALLING or step is Step.RINGING:
            if line == "OK" and step is Step.DIALLING:
                self.step = Step.RINGING
                self.deadline_s = now_s + self.ring_timeout_s
            elif line in CONNECTED and self.testing:
                self._test_done("ok", now_s, self.test_every_s)  # answered: the line works; hang up at once
                self._send("ATH", Step.HANGING_UP, now_s)
            elif line in CONNECTED:
                self.transmitted = self.voice = True
                self.failed_rounds = 0
                self.step = Step.CONNECTED
                self.clcc_due_s = now_s + CALL_CHECK_EVERY_S
            elif line in FAILED:
                self._send("ATH", Step.HANGING_UP, now_s)
                self.next_after_hang_up = True
        elif step is Step.CONNECTED:
            if line in ENDED:
                self.voice = False
                self.step = Step.IDLE  # answered: the alarm stays transmitted, and is not called again
        elif step is Step.HANGING_UP:
            if line in ("OK", "ERROR", "NO CARRIER"):
                self._hung_up(now_s)

    def _hung_up(self, now_s: float) -> None:
        then_next, self.next_after_hang_up = self.next_after_hang_up, False
        if then_next and (self.wanted or self.testing):
            self._next_number(now_s)
        else:
            self._settled(now_s)

    def _call_check(self, line: str, now_s: float) -> None:
        """A line of the answer to AT+CLCC: a call listed, or the end of the list."""
        if line.startswith("+CLCC:"):
            fields = [part.strip() for part in line[len("+CLCC:"):].split(",")]
            # +CLCC: <id>,<dir>,<stat>,<mode>,...: dir 0 is a call the car made (1: one coming in, a call-back or
            # a wrong number, which is not the rescue service answering); stat 0 is an active call; mode 0 voice.
            if len(fields) >= 4 and fields[1] == "0" and fields[2] == "0" and fields[3] == "0":
                self.clcc_active = True
            elif len(fields) >= 4 and fields[1] == "0" and fields[2] in ("2", "3") and fields[3] == "0":
                self.clcc_alerting = True
            return
        self.clcc_missed = 0
        self.clcc_deadline_s = -1.0
        self.clcc_due_s = now_s + CALL_CHECK_EVERY_S
        if self.step is Step.RINGING and self.clcc_active:
            self._line(b"CONNECT", now_s)  # answered, though the module did not say so
        elif self.step is Step.CONNECTED and not self.clcc_active and self.clcc_alerting and not self.testing:
            # The CONNECT was not an answer (line noise, a module's quirk): the car's call still rings. Back to
            # ringing, so that it is hung up at the ring timeout and the next number called; the session no longer
            # reports the alarm transmitted (the core keeps what it was told: it never goes back).
            self.transmitted = self.voice = False
            self.step = Step.RINGING
            self.deadline_s = now_s + self.ring_timeout_s
        elif self.step is Step.CONNECTED and not self.clcc_active:
            self._line(b"NO CARRIER", now_s)  # the call has ended, though its NO CARRIER was lost

    def _timers(self, now_s: float) -> None:
        step = self.step
        if step is Step.RINGING or step is Step.CONNECTED:
            if self.clcc_deadline_s < 0 and now_s >= self.clcc_due_s:
                self._out += b"AT+CLCC\r"
                self.clcc_active = self.clcc_alerting = False
                self.clcc_deadline_s = now_s + self.command_timeout_s
            elif 0 <= self.clcc_deadline_s <= now_s:
                self.clcc_deadline_s = -1.0  # no answer: the module has gone quiet
                self.silent_commands += 1
                self.clcc_missed += 1
                if self.silent_commands >= DEAD_AFTER_TIMEOUTS:
                    self.dead = True
                if step is Step.CONNECTED and self.clcc_missed >= CLCC_MISSES_TO_END:
                    self.voice = False  # a connection that cannot be confirmed is not shown as one
                    self.step = Step.IDLE
                    return
                self.clcc_due_s = now_s + CALL_CHECK_EVERY_S
        if step is Step.IDLE:
            if self.test_due_s < 0:  # the first test soon after start (an infinite period: none)
                self.test_due_s = now_s + min(TEST_FIRST_AFTER_S, self.test_every_s) * (
                    1 if math.isfinite(self.test_every_s) else math.inf)
            if not self.wanted and now_s >= self.test_due_s:
                self.testing = True
                self._start_round(now_s)
            elif now_s >= self.probe_at_s:
                self.probe_at_s = now_s + self.probe_every_s
                self._send("AT", Step.PROBE, now_s)
            return
        if step is Step.CONNECTED or now_s < self.deadline_s:
            return
        self.clcc_deadline_s = -1.0
        if step is Step.WAITING:
            if self.wanted:
                self._start_round(now_s)
            else:
                self.step = Step.IDLE
        elif step is Step.RINGING:
            # Rung for ring_timeout_s without an answer: hang up, and the next number.
            self._send("ATH", Step.HANGING_UP, now_s)
            self.next_after_hang_up = True
        else:
            # A command with no answer in time.
            self.silent_commands += 1
            if self.silent_commands >= DEAD_AFTER_TIMEOUTS:
                self.dead = True
            if step is Step.HANGING_UP:
                self._hung_up(now_s)
            elif step is Step.DIALLING:
                self._next_number(now_s)
            elif step is Step.PROBE:
                # Asked again soon (at the next probe if the module is dead), or by the alarm waiting for it.
                self.probe_at_s = now_s + (self.command_timeout_s if not self.dead else self.retry_after_s)
                self._settled(now_s)
            elif not self.dead:
                self._send(self.last_command, step, now_s)  # once more, at once
            else:
                self._wait(now_s)
