"""A USB serial adapter's latency timer: read it, and lower it where the driver lets us (docs/wiring.md).

An FTDI adapter holds received bytes for up to its latency timer (16 ms by default) before handing them to the
host. That is longer than the drive's reply timeout (`drive.timeout_s`, 8-9 ms): every read would time out and the
car would never run, with nothing on the line wrong. The driver exposes the timer as
/sys/class/tty/<tty>/device/latency_timer, writable by root only; pyserial's low-latency mode (TIOCSSERIAL with
ASYNC_LOW_LATENCY, allowed to the port's user) sets it to 1 ms until the adapter is unplugged. A udev rule makes it
permanent (docs/wiring.md).

Rules of this module:
- Nothing raises: a port that is not a USB adapter (the board's UART, a pseudo-terminal) has no timer, and that is
  the answer (None); a driver that refuses low-latency mode leaves the timer as it was, and the caller says so.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import serial

SYSFS = Path("/sys")


@dataclass(frozen=True, slots=True)
class LatencyReport:
    port: str
    before_ms: int | None  # None: no latency timer (not a USB adapter that has one)
    after_ms: int | None
    note: str = ""  # why it could not be lowered

    def too_slow_for(self, budget_s: float) -> bool:
        return self.after_ms is not None and self.after_ms / 1000.0 >= budget_s


def latency_timer_ms(port: str, sysfs: Path | None = None) -> int | None:
    """The adapter's latency timer in ms, or None if ``port`` has none."""
    sysfs = SYSFS if sysfs is None else sysfs
    try:
        name = os.path.basename(os.path.realpath(port))
        text = (sysfs / "class" / "tty" / name / "device" / "latency_timer").read_text(encoding="ascii")
    except (OSError, ValueError):
        return None
    text = text.strip()
    return int(text) if text.isdigit() and len(text) <= 4 else None


def lower_latency(port: str, budget_s: float, sysfs: Path | None = None) -> LatencyReport:
    """Read the timer; if it is not well under ``budget_s``, ask for low-latency mode and read it again."""
    before = latency_timer_ms(port, sysfs)
    if before is None or before / 1000.0 < budget_s / 2:
        return LatencyReport(port, before, before)
    note = ""
    try:
        with serial.Serial(port, timeout=0) as opened:
            opened.set_low_latency_mode(True)
    except (serial.SerialException, OSError, ValueError, NotImplementedError, AttributeError) as error:
        note = f"low-latency mode refused ({getattr(error, 'strerror', None) or error})"
    return LatencyReport(port, before, latency_timer_ms(port, sysfs), note)
