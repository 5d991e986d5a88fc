"""The drive's Modbus register map (docs/register-map.md): addresses, bits, scaling. Sans-I/O, shared by the
firmware and the simulator.

Rules of this module:
- Protocol addresses are 0-based, device id 1. The controller writes CONTROL..WATCHDOG with one write-multiple and
  reads STATUS..TICK with one read, every cycle; or both in one Read/Write Multiple Registers (0x17) where two
  transactions do not fit the period on the line (transactions_fit).
- Speeds are whole mm/s on the wire (SPEED_REF unsigned, SPEED signed), position is signed 32-bit mm, high word
  first; current is 0.1 A; load is kg.
- decode_status() never raises on bad input: a short, long or out-of-range answer is a DecodeError the supervisor
  sees as a stale drive, not an exception in the loop.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from carctl.core.records import fast_constructor

DEVICE_ID = 1

CONTROL = 0
SPEED_REF = 1
WATCHDOG = 2
COMMAND_BLOCK_START = CONTROL
COMMAND_BLOCK_COUNT = 3

STATUS = 16
SPEED = 17
POSITION_HI = 18
POSITION_LO = 19
FAULT_CODE = 20
CURRENT = 21
LOAD = 22
TICK = 23
STATUS_BLOCK_START = STATUS
STATUS_BLOCK_COUNT = 8

# CONTROL bits
RUN_UP = 1 << 0
RUN_DOWN = 1 << 1
FAULT_RESET = 1 << 2
QUICK_STOP = 1 << 3
# Added compatibly (a drive that predates it ignores it and never sets BRAKE_TEST_TORQUE: the test times out):
BRAKE_TEST = 1 << 4  # with the run bits clear: hold the configured test torque against the closed brake

# STATUS bits
READY = 1 << 0
RUNNING = 1 << 1
FAULTED = 1 << 2
BRAKE_OPEN = 1 << 3
ZERO_SPEED = 1 << 4
COMM_LOSS_TRIP = 1 << 5
SAFETY_CHAIN_CLOSED = 1 << 6
# Added compatibly (a drive that predates them leaves them 0, which reads as "on mains, count referenced"):
ON_BATTERY = 1 << 7  # mains lost; the rescue device's battery feeds the drive, at low speed only
UNREFERENCED = 1 << 8  # the position count began at the drive's power-up and has not passed the reference mark
BELOW_REFERENCE_MARK = 1 << 9  # the reference switch near the bottom landing is made (the car is below its mark)
# Added compatibly for brake monitoring (EN 81-20 5.6.7.3; a drive without brake contacts, or without the test,
# leaves them 0, and a controller configured with car.brake_contacts = 0 ignores bits 10 and 11):
BRAKE_CONTACT_1 = 1 << 10  # the first brake circuit's contact reads lifted
BRAKE_CONTACT_2 = 1 << 11  # the second brake circuit's contact reads lifted
BRAKE_CONTACTS_SHIFT = 10  # the contacts as a number: bit i, circuit i + 1 lifted
BRAKE_TEST_TORQUE = 1 << 12  # the drive holds its test torque against the closed brake (CONTROL bit4 answered)
KNOWN_STATUS_BITS = (1 << 13) - 1

# The drive ramps to a stop and trips when WATCHDOG stops changing for this long.
WATCHDOG_TIMEOUT_S = 0.5

# The time of one cycle's exchanges on an RTU line (8N1: 10 bits a byte), for choosing one transaction or two. Each
# frame is followed by 3.5 characters of silence; each transaction also costs the drive's turnaround, the USB
# adapter's latency and the master's own work, together about TRANSACTION_OVERHEAD_S (measured through a pty at
# 115,200 baud: a median of 11.3 ms for the two transactions, against 5.7 ms on the wire).
TRANSACTION_OVERHEAD_S = 0.0025
# The drive may take this share of the control period; the rest is the panel bus's and the controller's.
DRIVE_SHARE_OF_PERIOD = 0.5
_READ_BYTES = 8 + 5 + 2 * STATUS_BLOCK_COUNT  # 0x03: request, answer
_WRITE_BYTES = 9 + 2 * COMMAND_BLOCK_COUNT + 8  # 0x10: request, echo
_READ_WRITE_BYTES = 13 + 2 * COMMAND_BLOCK_COUNT + 5 + 2 * STATUS_BLOCK_COUNT  # 0x17: request, answer


def exchange_time_s(baud: int, combined: bool) -> float:
    """The estimated time of one cycle's exchanges with the drive at ``baud``: two transactions, or one 0x17."""
    frames, transactions, wire_bytes = (2, 1, _READ_WRITE_BYTES) if combined else (4, 2, _READ_BYTES + _WRITE_BYTES)
    return (wire_bytes + 3.5 * frames) * 10 / baud + transactions * TRANSACTION_OVERHEAD_S


def transactions_fit(baud: int, period_s: float, combined: bool) -> bool:
    """Whether the cycle's exchanges at ``baud`` fit the drive's share of a control period of ``period_s``."""
    return exchange_time_s(baud, combined) <= DRIVE_SHARE_OF_PERIOD * period_s
MAX_SPEED_REF_MM_S = 4000


class DriveFaultCode(enum.IntEnum):
    """FAULT_CODE values (docs/register-map.md)."""

    NONE = 0
    OVERCURRENT = 0x21
    COMM_LOSS = 0x31
    UNDERVOLTAGE = 0x41
    ENCODER = 0x51
    MOTOR_OVERTEMPERATURE = 0x61


@dataclass(frozen=True, slots=True)
class DriveCommand:
    run_up: bool = False
    run_down: bool = False
    speed_ref_m_s: float = 0.0
    fault_reset: bool = False
    quick_stop: bool = False
    brake_test: bool = False  # hold the test torque against the closed brake (the periodic brake test)


@dataclass(frozen=True, slots=True)
class DriveStatus:
    ready: bool
    running: bool
    faulted: bool
    brake_open: bool
    zero_speed: bool
    comm_loss_trip: bool
    safety_chain_closed: bool
    speed_m_s: float
    position_m: float
    fault_code: int
    current_a: float
    load_kg: float
    drive_tick: int
    on_battery: bool = False
    position_unreferenced: bool = False
    below_reference_mark: bool = False
    brake_contacts: int = 0  # bit i: brake circuit i + 1's contact reads lifted (STATUS bits 10-11)
    brake_test_torque: bool = False


# A DriveStatus with every field given by keyword, without the dataclass constructor's cost: the firmware decodes
# one per cycle and the lockstep simulator builds one per moving tick (core/records.py).
make_drive_status = fast_constructor(DriveStatus)


class DecodeError(ValueError):
    """A status block that cannot be trusted."""


def encode_command(command: DriveCommand, watchdog: int) -> list[int]:
    """Registers CONTROL, SPEED_REF, WATCHDOG for one write-multiple."""
    control = (RUN_UP if command.run_up else 0) | (RUN_DOWN if command.run_down else 0) | (
        FAULT_RESET if command.fault_reset else 0) | (QUICK_STOP if command.quick_stop else 0) | (
        BRAKE_TEST if command.brake_test else 0)
    speed_mm_s = min(MAX_SPEED_REF_MM_S, max(0, round(command.speed_ref_m_s * 1000.0)))
    return [control, speed_mm_s, watchdog & 0xFFFF]


def decode_command(registers: list[int]) -> tuple[DriveCommand, int]:
    """The drive's side: (command, watchdog) from registers CONTROL..WATCHDOG."""
    if len(registers) != COMMAND_BLOCK_COUNT:
        raise DecodeError(f"command block needs {COMMAND_BLOCK_COUNT} registers, got {len(registers)}")
    control, speed, watchdog = registers
    command = DriveCommand(bool(control & RUN_UP), bool(control & RUN_DOWN), speed / 1000.0,
                           bool(control & FAULT_RESET), bool(control & QUICK_STOP), bool(control & BRAKE_TEST))
    return command, watchdog


def _signed16(value: int) -> int:
    return value - 0x10000 if value & 0x8000 else value


def encode_status(status: DriveStatus) -> list[int]:
    """The drive's side: registers STATUS..TICK."""
    bits = ((READY if status.ready else 0) | (RUNNING if status.running else 0) | (FAULTED if status.faulted else 0)
            | (BRAKE_OPEN if status.brake_open else 0) | (ZERO_SPEED if status.zero_speed else 0)
            | (COMM_LOSS_TRIP if status.comm_loss_trip else 0)
            | (SAFETY_CHAIN_CLOSED if status.safety_chain_closed else 0) | (ON_BATTERY if status.on_battery else 0)
            | (UNREFERENCED if status.position_unreferenced else 0)
            | (BELOW_REFERENCE_MARK if status.below_reference_mark else 0)
            | (status.brake_contacts & 0b11) << BRAKE_CONTACTS_SHIFT
            | (BRAKE_TEST_TORQUE if status.brake_test_torque else 0))
    speed = max(-32768, min(32767, round(status.speed_m_s * 1000.0))) & 0xFFFF
    position = round(status.position_m * 1000.0) & 0xFFFFFFFF
    current = max(0, min(0xFFFF, round(status.current_a * 10.0)))
    load = max(0, min(0xFFFF, round(status.load_kg)))
    return [bits, speed, position >> 16, position & 0xFFFF, status.fault_code & 0xFFFF, current, load,
            status.drive_tick & 0xFFFF]


def decode_status(registers: list[int]) -> DriveStatus:
    """Registers STATUS..TICK as read; DecodeError if the block is not what the map says."""
    if len(registers) != STATUS_BLOCK_COUNT:
        raise DecodeError(f"status block needs {STATUS_BLOCK_COUNT} registers, got {len(registers)}")
    for value in registers:
        if not isinstance(value, int) or not 0 <= value <= 0xFFFF:
            raise DecodeError(f"register value out of range: {value!r}")
    bits, speed, position_hi, position_lo, fault_code, current, load, tick = registers
    if bits & ~KNOWN_STATUS_BITS:
        raise DecodeError(f"unknown STATUS bits set: {bits:#06x}")
    position = (position_hi << 16) | position_lo
    if position & 0x80000000:
        position -= 1 << 32
    return make_drive_status(
        ready=bool(bits & READY),
        running=bool(bits & RUNNING),
        faulted=bool(bits & FAULTED),
        brake_open=bool(bits & BRAKE_OPEN),
        zero_speed=bool(bits & ZERO_SPEED),
        comm_loss_trip=bool(bits & COMM_LOSS_TRIP),
        safety_chain_closed=bool(bits & SAFETY_CHAIN_CLOSED),
        speed_m_s=_signed16(speed) / 1000.0,
        position_m=position / 1000.0,
        fault_code=fault_code,
        current_a=current / 10.0,
        load_kg=float(load),
        drive_tick=tick,
        on_battery=bool(bits & ON_BATTERY),
        position_unreferenced=bool(bits & UNREFERENCED),
        below_reference_mark=bool(bits & BELOW_REFERENCE_MARK),
        brake_contacts=(bits >> BRAKE_CONTACTS_SHIFT) & 0b11,
        brake_test_torque=bool(bits & BRAKE_TEST_TORQUE),
    )

# A late reply is an answer to the read before (or the one before that): its TICK a few steps behind the last one
# taken. Further behind than this is not a late reply.
LATE_TICK_WINDOW = 16


class TickFreshness:
    """The drive's TICK register is its heartbeat: a status block is fresh only if TICK moved on since the last one
    taken. The same TICK is a frozen drive (its registers answered, its cycle stopped); a TICK a little behind is a
    late reply to an earlier read. A drive that restarted its count is taken at once when its TICK is far behind,
    and otherwise on the second answer in a row that is behind the last taken yet ahead of the one before (late
    replies do not advance among themselves). forget() after a reconnection: the drive may have restarted."""

    __slots__ = ("last", "behind")

    def __init__(self) -> None:
        self.last: int | None = None
        self.behind: int | None = None  # the TICK of an answer behind the last taken, seen just before

    def take(self, tick: int) -> bool:
        last = self.last
        if last is None:
            self.last, self.behind = tick, None
            return True
        back = (last - tick) % 0x10000
        if back == 0:
            self.behind = None
            return False  # frozen
        if back <= LATE_TICK_WINDOW:
            before, self.behind = self.behind, tick
            if before is None or (tick - before) % 0x10000 == 0 or (tick - before) % 0x10000 > LATE_TICK_WINDOW:
                return False  # a late reply
            # Two answers behind the last taken, the second ahead of the first: the drive counts again from lower.
        self.last, self.behind = tick, None
        return True

    def forget(self) -> None:
        self.last = self.behind = None


# No lift car changes its speed faster than 1 g (an emergency stop on the brake, a buffer strike), nor runs at twice
# its rated speed (the governor trips at 115 %): a status that says otherwise is damaged, not news.
PLAUSIBLE_ACCEL_M_S2 = 9.81
# Speeding up is slower: the motor's torque, or at worst the out-of-balance mass falling against the counterweight
# (a few tenths of g for these small cars), never 1 g.
PLAUSIBLE_SPEEDUP_M_S2 = 4.0
SPEED_QUANTUM_M_S = 0.05  # allowance for the speed's rounding and the drive's own sampling
POSITION_QUANTUM_M = 0.02  # allowance for the count's rounding and rope stretch as the load changes
# The drive samples its status on its own cycle, and an answer spends time on the link: two statuses may be this
# much further apart in the car's time than the reads that fetched them.
SAMPLING_SLACK_S = 0.05
# A status refused this many times in a row is taken after all, as the new baseline: a drive that insists is
# believed, and the supervisor judges what it says (a single damaged answer never lasts this long).
REBASE_AFTER = 25


class Plausibility:
    """Defence in depth over a link without a checksum (Modbus TCP): a status whose speed or position changed
    faster than the car physically can since the last one taken, given the time between the reads (and
    SAMPLING_SLACK_S), is refused as untrusted, like a stale one; so is one whose position did not move as its
    speeds say it must have, and one that newly says the count is unreferenced, until the next status says so too
    (a flipped bit would otherwise send the car on a correction run). With nothing to compare with (at start) the
    first status is only a candidate: the next one that agrees with it is taken (first_pending says a refusal was
    that). A reconnection keeps the last status taken: a drive that restarted meanwhile says so by its reference
    flags, which let its count jump. Sans-I/O: check() is given each decoded status and the time it was read."""

    __slots__ = ("speed_limit_m_s", "last", "last_s", "refused_in_row", "pending_unreferenced", "candidate",
                 "candidate_s", "first_pending")

    def __init__(self, rated_speed_m_s: float) -> None:
        self.speed_limit_m_s = 2.0 * rated_speed_m_s
        self.last: DriveStatus | None = None
        self.last_s = 0.0  # when the last status taken was read
        self.refused_in_row = 0
        self.pending_unreferenced = False
        self.candidate: DriveStatus | None = None  # a first status, waiting for one that agrees with it
        self.candidate_s = 0.0
        self.first_pending = False  # the last refusal was of a first status, not of a damaged one

    def check(self, status: DriveStatus, now_s: float) -> str | None:
        """None if ``status``, read at ``now_s`` (a monotonic clock), is taken (it becomes the baseline), else why
        it is refused."""
        self.first_pending = False
        if self.last is None:
            candidate, candidate_s = self.candidate, self.candidate_s
            self.candidate, self.candidate_s = status, now_s
            if candidate is None:
                self.first_pending = True
                return "a first status: waiting for the next to agree with it"
            problem = self._problem(candidate, now_s - candidate_s, status)
            if problem is not None:
                return f"{problem} (no agreed status yet)"
            self.candidate = None
        else:
            problem = self._problem(self.last, now_s - self.last_s, status)
            if problem is not None and self.refused_in_row + 1 < REBASE_AFTER:
                self.refused_in_row += 1
                return problem
        self.last, self.last_s, self.refused_in_row = status, now_s, 0
        return None

    def _problem(self, last: DriveStatus, read_apart_s: float, status: DriveStatus) -> str | None:
        speed = abs(status.speed_m_s)
        if speed > self.speed_limit_m_s:
            return f"speed {status.speed_m_s:.3f} m/s is beyond what the car can do"
        elapsed_s = max(0.0, read_apart_s) + SAMPLING_SLACK_S  # the most the two samples can be apart
        change = abs(status.speed_m_s - last.speed_m_s)
        if change > PLAUSIBLE_ACCEL_M_S2 * elapsed_s + SPEED_QUANTUM_M_S:
            return f"speed changed by {change:.3f} m/s in {elapsed_s:.3f} s"
        gained = speed - abs(last.speed_m_s)
        if gained > PLAUSIBLE_SPEEDUP_M_S2 * elapsed_s + SPEED_QUANTUM_M_S:
            return f"speed rose by {gained:.3f} m/s in {elapsed_s:.3f} s"
        if status.position_unreferenced and not last.position_unreferenced:
            confirmed, self.pending_unreferenced = self.pending_unreferenced, True
            if not confirmed:
                return "the count newly unreferenced: waiting for the next status to say so too"
        self.pending_unreferenced = False
        if status.position_unreferenced != last.position_unreferenced or status.below_reference_mark != (
                last.below_reference_mark):
            return None  # the count restarted or was referenced again: its position may jump
        moved = status.position_m - last.position_m
        fastest = max(speed, abs(last.speed_m_s)) + PLAUSIBLE_ACCEL_M_S2 * elapsed_s
        if abs(moved) > fastest * elapsed_s + POSITION_QUANTUM_M:
            return f"position moved {abs(moved):.3f} m in {elapsed_s:.3f} s"
        # Between two samples T apart the car moved by about their mean speed times T: with its acceleration
        # anywhere within the bound a, by no more than a T^2 / 4 - (speed change)^2 / (4 a) off that. T is known
        # only to within the sampling slack, which at the higher speed is worth that speed times the slack.
        apart_s = max(0.0, read_apart_s)
        expected = (status.speed_m_s + last.speed_m_s) / 2.0 * apart_s
        slack_m = max(0.0, PLAUSIBLE_ACCEL_M_S2 * elapsed_s * elapsed_s - change * change / PLAUSIBLE_ACCEL_M_S2) / 4.0
        slack_m += max(speed, abs(last.speed_m_s)) * SAMPLING_SLACK_S
        if abs(moved - expected) > slack_m + POSITION_QUANTUM_M:
            return f"position moved {moved:+.3f} m in {apart_s:.3f} s where its speeds say {expected:+.3f} m"
        return None
