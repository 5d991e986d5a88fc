"""What the real-time loop needs of the world, as interfaces: the drive link and the panel-bus master.

carctl/adapters/drive.py (pymodbus) and carctl/adapters/panelbus.py (pyserial) are the implementations on the car;
a test gives the loop fakes with the same shape and steps cycle() with no port, no network and no clock of its own.
"""

from __future__ import annotations

from collections import Counter
from typing import Protocol

from carctl.adapters.drive import LinkError
from carctl.protocol.drive_map import DriveCommand, DriveStatus
from carctl.protocol.panelbus import Frame, FrameDecoder


class DrivePort(Protocol):
    exchanges: int
    errors: Counter[str]
    port_problem: str | None  # why it cannot be reached now, None once connected
    combined: bool  # one Read/Write Multiple Registers transaction a cycle (docs/register-map.md)
    combined_refused: bool  # the drive refused it: two transactions from then on

    def connect(self) -> bool: ...

    def close(self) -> None: ...

    def read_status(self) -> DriveStatus | LinkError:
        """The drive's status block, or why there is none this cycle. Never raises."""
        ...

    def write_command(self, command: DriveCommand, watchdog: int) -> LinkError | None: ...


class PanelPort(Protocol):
    polls: int
    timeouts: int
    serial_errors: int
    port_problem: str | None  # why the port cannot be opened now, None while it is open
    decoder: FrameDecoder

    def open(self) -> bool: ...

    def close(self) -> None: ...

    def poll(self, address: int, payload: bytes) -> Frame | None:
        """One POLL to one board: its STATUS frame, or None if it did not answer in time. Never raises."""
        ...


__all__ = ["DrivePort", "PanelPort"]
