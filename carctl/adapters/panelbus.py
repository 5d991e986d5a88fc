"""The panel-bus master over pyserial: POLL a board, wait for its STATUS.

Rules of this module:
- The controller is the only master. Each poll sends one POLL frame and waits up to the response timeout (the
  boards answer within 5 ms) for the STATUS from that board; anything else on the line is counted and dropped by
  the codec.
- Nothing raises into the loop: a silent board is None, a serial error closes the port and it is reopened on a
  later poll.
"""

from __future__ import annotations

import select
import time

import serial

from carctl.protocol import panelbus
from carctl.protocol.panelbus import Frame, FrameDecoder


class PanelBusMaster:
    def __init__(self, port: str, baud: int = 115200, response_timeout_s: float = 0.005) -> None:
        self.port_name = port
        self.baud = baud
        self.response_timeout_s = response_timeout_s
        self.decoder = FrameDecoder()
        self.serial: serial.Serial | None = None
        self.timeouts = 0
        self.serial_errors = 0
        self.polls = 0
        # Why the port cannot be opened now (missing, not permitted, held by another process), None while it is
        # open: the health record carries it, and the loop logs each change once.
        self.port_problem: str | None = None

    def open(self) -> bool:
        try:
            # Exclusive (flock): the controller is the bus's only master.
            self.serial = serial.Serial(self.port_name, baudrate=self.baud, bytesize=8, parity="N", stopbits=1,
                                        timeout=0, write_timeout=0.05, exclusive=True)
            self.port_problem = None
            return True
        except (serial.SerialException, OSError, ValueError) as error:
            self.serial = None
            self.serial_errors += 1
            self.port_problem = port_problem(self.port_name, error)
            return False

    @staticmethod
    def port_free(port: str) -> bool:
        """False when another process holds ``port`` exclusively (another master on the bus); True otherwise,
        including for a port that is not there yet."""
        try:
            serial.Serial(port, exclusive=True, timeout=0).close()
        except serial.SerialException as error:
            return "lock" not in str(error).lower()
        except (OSError, ValueError):
            return True
        return True

    def close(self) -> None:
        if self.serial is not None:
            try:
                self.serial.close()
            except (serial.SerialException, OSError):
                pass
        self.serial = None

    def poll(self, address: int, payload: bytes) -> Frame | None:
        """One POLL to one board; its STATUS frame, or None if it did not answer in time."""
        self.polls += 1
        if self.serial is None and not self.open():
            return None
        port = self.serial
        assert port is not None
        try:
            stale = port.read(port.in_waiting or 0)
            if stale:
                self.decoder.feed(stale)  # counted: a late answer or noise
            self.decoder.reset()
            port.write(panelbus.encode_frame(address, panelbus.POLL, payload))
            deadline = time.monotonic() + self.response_timeout_s
            fd = port.fileno()
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self.timeouts += 1
                    return None
                ready, _, _ = select.select([fd], [], [], remaining)
                if not ready:
                    continue
                for frame in self.decoder.feed(port.read(port.in_waiting or 1)):
                    if frame.type == panelbus.STATUS and frame.address == address:
                        return frame
        except (serial.SerialException, OSError):
            self.serial_errors += 1
            self.close()
            return None


def port_problem(path: str, error: BaseException | None = None) -> str:
    """Why ``path`` could not be opened, in a technician's words (pyserial's message names neither cause nor cure)."""
    import errno
    import os

    code = getattr(error, "errno", None)
    if code == errno.ENOENT or not os.path.exists(path):
        return f"{path} does not exist (the adapter unplugged, or the UART not enabled)"
    if code in (errno.EACCES, errno.EPERM) or not os.access(path, os.R_OK | os.W_OK):
        return f"{path}: permission denied (the firmware's user must be in group dialout)"
    if "lock" in str(error).lower():
        return f"{path} is held by another process (a second carctl run?)"
    return f"{path}: {str(error)[:120]}" if error is not None else f"{path} could not be opened as a serial port"


def is_terminal(path: str) -> bool:
    """False for a character device that is not a terminal (/dev/zero, /dev/null): no serial port can be opened
    there. True when it is one, or when that cannot be told without the port (missing, not permitted)."""
    import os

    try:
        descriptor = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return True
    try:
        return os.isatty(descriptor)
    finally:
        os.close(descriptor)
