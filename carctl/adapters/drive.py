"""The drive over Modbus (TCP or RTU): the only pymodbus import in carctl.

Rules of this module:
- One read of the status block and one write of the command block per cycle, with short explicit timeouts and no
  retries (pymodbus's defaults, 3 s and 3 retries, would stall the loop). Where two transactions do not fit the
  period (a slow RTU line, drive_map.transactions_fit), both go in one Read/Write Multiple Registers (function 0x17):
  the cycle's command is then kept and written with the next cycle's read, one period later; a drive that answers
  0x17 with "illegal function" gets two transactions from then on (``combined_refused``, in the health record).
  close() writes a command still kept.
- Nothing raises into the loop: a timeout, a Modbus exception, a short or malformed answer, a lost connection is a
  LinkError the runtime turns into a stale drive input; the counters say how often each happened.
- pymodbus is pinned to 3.11.x (device_id= and keyword count=, the API of 3.10+).
- An answer is taken only for the request it answers: a reply with another function code (a late answer to the
  other request of the cycle, or a confused peer) is malformed. Over RTU, bytes waiting before a request (a late
  reply to an earlier one) are discarded and counted first.
- A status block is fresh only if the drive's TICK moved on since the last one taken (drive_map.TickFreshness):
  the same TICK (a frozen block) or one a little behind it (a late reply to an earlier read) is STALE and does not
  refresh the drive's age. A drive that restarted its count is taken again at once, or on its second answer; and
  the rule starts afresh after a reconnection.
- A fresh status is also refused when its speed or position changed faster than the car physically can since the
  last one taken, or whose position and speeds disagree (drive_map.Plausibility: a damaged answer over TCP, which
  has no checksum; over RTU, a drive or encoder at fault), counted as "implausible"; like a stale one it does not
  refresh the drive's age, so damage that lasts stops the car. The first status after start waits for the next
  to agree with it ("unconfirmed", once per start).
"""

from __future__ import annotations

import enum
import ipaddress
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pymodbus.client import ModbusSerialClient, ModbusTcpClient
from pymodbus.exceptions import ModbusException
from pymodbus.framer import FramerType

from carctl.protocol import drive_map
from carctl.protocol.drive_map import DecodeError, DriveCommand, DriveStatus

# pymodbus logs every failed exchange on its own (about 100 lines a second with the drive unplugged); this adapter
# counts them by kind for the health record instead, so pymodbus may speak only of what would stop it altogether.
logging.getLogger("pymodbus").setLevel(logging.CRITICAL)

READ_HOLDING_REGISTERS = 3
WRITE_MULTIPLE_REGISTERS = 16
READ_WRITE_MULTIPLE_REGISTERS = 23
ILLEGAL_FUNCTION = 1  # the Modbus exception of a drive that does not implement a function
TRANSACTIONS = ("auto", "combined", "separate")


class LinkErrorKind(enum.Enum):
    TIMEOUT = "timeout"
    EXCEPTION = "exception"  # the drive answered with a Modbus exception
    MALFORMED = "malformed"  # an answer that does not fit the register map or the request
    DISCONNECTED = "disconnected"
    STALE = "stale"  # a well-formed status whose TICK has not advanced
    IMPLAUSIBLE = "implausible"  # a status whose speed or position changed faster than the car can (a damaged answer)
    UNCONFIRMED = "unconfirmed"  # the first status since start, waiting for the next to agree with it (one per start)
    UNSUPPORTED = "unsupported"  # the drive does not implement Read/Write Multiple Registers (0x17)


@dataclass(frozen=True, slots=True)
class LinkError:
    kind: LinkErrorKind
    detail: str


@dataclass(frozen=True, slots=True)
class Endpoint:
    kind: str  # "tcp" or "rtu"
    address: str  # host or device path
    port: int = 502

    @classmethod
    def parse(cls, text: str) -> Endpoint:
        """'tcp://IP:port' or 'rtu:/dev/ttyUSB0'. The host is an IP address, not a name: a name would be looked up
        on the control loop at every reconnection (seconds, with no DNS server in reach). The serial port is a path,
        not a pyserial URL (`socket://…` would connect over the network from the loop)."""
        shown = repr(text[:80])
        if text.startswith("tcp://"):
            host, _, port = text[len("tcp://"):].rpartition(":")
            host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
            try:
                ipaddress.ip_address(host)
            except ValueError:
                raise ValueError(f"drive endpoint {shown}: expected tcp://IP:PORT with the drive's IP address (not a "
                                 f"name)") from None
            if not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"drive endpoint {shown}: expected tcp://IP:PORT with a port 1..65535")
            return cls("tcp", host, int(port))
        if text.startswith("rtu:"):
            path = text[len("rtu:"):]
            if not path.startswith("/") or "\0" in path:
                raise ValueError(f"drive endpoint {shown}: expected rtu:/dev/PATH (a serial device's path)")
            return cls("rtu", path)
        raise ValueError(f"drive endpoint {shown}: expected tcp://IP:PORT or rtu:/dev/PATH")


def combined_for(transaction: str, endpoint: Endpoint, baud: int, period_s: float) -> bool:
    """Whether the cycle's two exchanges go in one 0x17 transaction: "combined" always, "separate" never, "auto"
    where two transactions do not fit the period at this baud rate (RTU only: TCP is fast enough for two)."""
    if transaction == "auto":
        return endpoint.kind == "rtu" and not drive_map.transactions_fit(baud, period_s, combined=False)
    return transaction == "combined"


class DriveLink:
    def __init__(self, endpoint: Endpoint, timeout_s: float, baud: int = 115200,
                 plausibility: drive_map.Plausibility | None = None, combined: bool = False) -> None:
        self.endpoint = endpoint
        self.combined = combined  # read and write in one 0x17 transaction
        self.combined_refused = False  # the drive answered 0x17 with "illegal function": two from then on
        self._kept: tuple[DriveCommand, int] | None = None  # the command to write with the next read (combined)
        self.errors: Counter[str] = Counter()
        self.exchanges = 0
        self.late_bytes = 0  # discarded before a request over RTU: answers that came after their timeout
        self.freshness = drive_map.TickFreshness()
        self.plausibility = plausibility
        # Why the drive cannot be reached now (its serial port missing or not permitted, its TCP port refusing),
        # None once connected: in the health record, and logged once per change by the loop.
        self.port_problem: str | None = None
        if endpoint.kind == "tcp":
            self.client: ModbusTcpClient | ModbusSerialClient = ModbusTcpClient(
                endpoint.address, port=endpoint.port, timeout=timeout_s, retries=0, reconnect_delay=0.0)
        else:
            self.client = ModbusSerialClient(endpoint.address, framer=FramerType.RTU, baudrate=baud, bytesize=8,
                                             parity="N", stopbits=1, timeout=timeout_s, retries=0,
                                             reconnect_delay=0.0)

    def connect(self) -> bool:
        self.freshness.forget()  # a drive reached again may have restarted its TICK count meanwhile
        try:
            connected = bool(self.client.connect())
        except (ModbusException, OSError, ValueError):  # ValueError: a path pyserial cannot use
            connected = False
        self.port_problem = None if connected else self._why_not_connected()
        return connected

    def _why_not_connected(self) -> str:
        if self.endpoint.kind == "rtu":
            from carctl.adapters.panelbus import port_problem

            return port_problem(self.endpoint.address)
        return f"no connection to {self.endpoint.address}:{self.endpoint.port} (the drive off, its address, the cable)"

    def close(self) -> None:
        """Write a command still kept (combined: the last one of the loop, a stop), then close."""
        if self._kept is not None:
            command, watchdog = self._kept
            self._kept = None
            self._write(command, watchdog)
        self.client.close()

    def _error(self, kind: LinkErrorKind, detail: str) -> LinkError:
        self.errors[kind.value] += 1
        return LinkError(kind, detail)

    def _discard_late_bytes(self) -> None:
        port = getattr(self.client, "socket", None) if self.endpoint.kind == "rtu" else None
        waiting = getattr(port, "in_waiting", 0) if port is not None else 0
        if waiting:
            self.late_bytes += len(port.read(waiting))

    def _transact(self, request: Callable[[], Any], function_code: int) -> Any:
        """One Modbus transaction: its response, or a counted LinkError."""
        if not self.client.connected and not self.connect():
            return self._error(LinkErrorKind.DISCONNECTED, "not connected")
        try:
            self._discard_late_bytes()
            response = request()
        except ModbusException as error:
            return self._error(LinkErrorKind.TIMEOUT, str(error))
        except Exception as error:  # noqa: BLE001 - pymodbus's decoders raise struct.error and more on garbage
            # The stream may be out of step after garbage: drop the connection so the next cycle starts clean.
            self.client.close()
            return self._error(LinkErrorKind.MALFORMED, repr(error))
        if response.isError():
            if function_code == READ_WRITE_MULTIPLE_REGISTERS and getattr(
                    response, "exception_code", None) == ILLEGAL_FUNCTION:
                return self._error(LinkErrorKind.UNSUPPORTED, str(response))
            return self._error(LinkErrorKind.EXCEPTION, str(response))
        if getattr(response, "function_code", None) != function_code:
            return self._error(LinkErrorKind.MALFORMED, f"an answer to function {response.function_code}, not "
                                                        f"{function_code}")
        return response

    def read_status(self) -> DriveStatus | LinkError:
        """The drive's status; combined, the command kept from the last cycle is written in the same transaction."""
        self.exchanges += 1
        kept, self._kept = self._kept, None
        if kept is not None and self.combined:
            command, watchdog = kept
            response = self._transact(lambda: self.client.readwrite_registers(
                read_address=drive_map.STATUS_BLOCK_START, read_count=drive_map.STATUS_BLOCK_COUNT,
                write_address=drive_map.COMMAND_BLOCK_START, values=drive_map.encode_command(command, watchdog),
                device_id=drive_map.DEVICE_ID), READ_WRITE_MULTIPLE_REGISTERS)
            if isinstance(response, LinkError) and response.kind is LinkErrorKind.UNSUPPORTED:
                # Two transactions from now on; this cycle's command still goes out, before its read.
                self.combined, self.combined_refused = False, True
                self._write(command, watchdog)
                response = self._read()
        else:
            response = self._read()
        if isinstance(response, LinkError):
            return response
        try:
            status = drive_map.decode_status(list(response.registers))
        except DecodeError as error:
            return self._error(LinkErrorKind.MALFORMED, str(error))
        if not self.freshness.take(status.drive_tick):
            return self._error(LinkErrorKind.STALE, f"TICK {status.drive_tick} has not advanced")
        if self.plausibility is not None:
            problem = self.plausibility.check(status, time.monotonic())
            if problem is not None:
                kind = LinkErrorKind.UNCONFIRMED if self.plausibility.first_pending else LinkErrorKind.IMPLAUSIBLE
                return self._error(kind, problem)
        return status

    def _read(self) -> Any:
        return self._transact(lambda: self.client.read_holding_registers(
            drive_map.STATUS_BLOCK_START, count=drive_map.STATUS_BLOCK_COUNT, device_id=drive_map.DEVICE_ID),
            READ_HOLDING_REGISTERS)

    def write_command(self, command: DriveCommand, watchdog: int) -> LinkError | None:
        """Write the cycle's command now; combined, keep it for the next cycle's read (None: nothing known yet)."""
        if self.combined:
            self._kept = (command, watchdog)
            return None
        return self._write(command, watchdog)

    def _write(self, command: DriveCommand, watchdog: int) -> LinkError | None:
        response = self._transact(lambda: self.client.write_registers(
            drive_map.COMMAND_BLOCK_START, drive_map.encode_command(command, watchdog),
            device_id=drive_map.DEVICE_ID), WRITE_MULTIPLE_REGISTERS)
        if isinstance(response, LinkError):
            return response
        if (getattr(response, "address", None), getattr(response, "count", None)) != (
                drive_map.COMMAND_BLOCK_START, drive_map.COMMAND_BLOCK_COUNT):
            return self._error(LinkErrorKind.MALFORMED, "the write's echo names other registers")
        return None
