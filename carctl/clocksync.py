"""Is this board's clock synchronised? The kernel knows: NTP (systemd-timesyncd, chrony) tells it through
adjtimex(2), and it clears STA_UNSYNC only while a time daemon keeps the clock disciplined.

Why it matters: the board has no battery-backed real-time clock. After a power cut it starts from whatever time the
image or the last fake-hwclock save held, and until NTP answers, its clock can be days in the past or the future.
Signed platform commands live 60 s (carctl/platform/commands.py), so an unsynchronised car refuses every command as
expired or issued in the future; the refusal should say that the car's clock is the reason, not the command.

Rules of this module:
- Standard library only (ctypes); Linux only. Anywhere the answer cannot be had (another system, no libc, a
  seccomp filter refusing the call) the answer is None, "cannot tell", never an exception: callers sit in a link's
  network thread.
- Read-only: adjtimex is called with modes = 0, which changes nothing and needs no privilege.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from typing import Any

TIME_ERROR = 5  # adjtimex's return value: the clock is not synchronised (or the kernel's PPS state is bad)
STA_UNSYNC = 0x0040  # struct timex .status: the clock is not synchronised

_libc: ctypes.CDLL | None = None


class _Timex(ctypes.Structure):
    """struct timex of <sys/timex.h>, as the default `adjtimex` symbol of glibc and musl takes it (fields of C
    `long`, as ctypes' c_long, so it fits 32- and 64-bit boards alike), with room to spare at the end: the kernel
    writes the whole structure, and a libc whose structure is larger must never write past ours."""

    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("constant", ctypes.c_long),
        ("precision", ctypes.c_long),
        ("tolerance", ctypes.c_long),
        ("time_sec", ctypes.c_long),
        ("time_usec", ctypes.c_long),
        ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long),
        ("jitter", ctypes.c_long),
        ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long),
        ("jitcnt", ctypes.c_long),
        ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long),
        ("stbcnt", ctypes.c_long),
        ("tai", ctypes.c_int),
        ("_spare", ctypes.c_byte * 256),
    ]


def _adjtimex() -> Any:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    function = _libc.adjtimex
    function.argtypes = [ctypes.POINTER(_Timex)]
    function.restype = ctypes.c_int
    return function


def clock_synchronised() -> bool | None:
    """True if the kernel says the clock is synchronised, False if it says it is not, None if it cannot be asked."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        adjtimex = _adjtimex()
        timex = _Timex()  # zeroed: modes = 0, a query
        state = adjtimex(ctypes.byref(timex))
    except Exception:  # noqa: BLE001 - no libc, no symbol, a refused call: the answer is "cannot tell"
        return None
    if state < 0:
        return None  # the call failed (errno says why); nothing is known about the clock
    return not (state == TIME_ERROR or timex.status & STA_UNSYNC)


if __name__ == "__main__":  # `python -m carctl.clocksync`: what the car would report
    print({True: "synchronised", False: "not synchronised", None: "unknown"}[clock_synchronised()])
