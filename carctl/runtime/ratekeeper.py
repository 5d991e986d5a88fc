"""A monotonic-clock rate keeper that reports its lag instead of hiding it (after openpilot's common/realtime.py).

Each cycle ends with keep(): it sleeps until the next frame boundary and records how late this cycle woke up.
A cycle that starts more than one period late counts as missed; frames are never bunched to catch up, the schedule
moves on. The lag statistics are telemetry for the platform and `make bench`.
"""

from __future__ import annotations

import time
from collections import deque


class RateKeeper:
    def __init__(self, period_s: float, window: int = 3000) -> None:
        self.period_s = period_s
        self.frame = 0
        self.missed = 0
        self.lags_s: deque[float] = deque(maxlen=window)
        self._next_s = time.monotonic() + period_s
        self.lagging = False

    def keep(self) -> float:
        """Sleep to the next frame; return how late this wake-up was (seconds, 0 or more)."""
        self.frame += 1
        now = time.monotonic()
        remaining = self._next_s - now
        if remaining > 0:
            time.sleep(remaining)
            now = time.monotonic()
        lag = max(0.0, now - self._next_s)
        self.lags_s.append(lag)
        if lag > self.period_s:
            skipped = int(lag // self.period_s)
            self.missed += skipped
            self._next_s += skipped * self.period_s
        self._next_s += self.period_s
        self.lagging = lag > 0.1 * self.period_s
        return lag

    def percentile_ms(self, fraction: float) -> float:
        if not self.lags_s:
            return 0.0
        ordered = sorted(self.lags_s)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000.0
