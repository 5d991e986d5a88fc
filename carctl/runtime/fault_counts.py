"""The faults the health record shows besides those active at its instant.

Why: the health record comes every 5 s and its `faults` is the set active at that cycle. A stop-at-once fault that
is raised and clears between two records (a stale board on a loaded machine: raised for a few cycles, again and
again) never appears there, yet each raise halts the car. These counts make it visible where the technician looks.

Rules of this module:
- Fed with every cycle's events; counts FAULT_RAISED by fault kind, and never raises on a detail it cannot read.
- `since_last` is what was active at any moment since the previous health record (active then, raised since, or
  active now); `raises_since_last` and `raises_total` count the raises. `next_window()` starts a new interval.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from carctl.core.signals import Event, EventKind


class FaultCounts:
    def __init__(self) -> None:
        self.raises_total: Counter[str] = Counter()
        self.raises_since_last: Counter[str] = Counter()
        self._seen: set[str] = set()

    def add(self, events: Iterable[Event]) -> None:
        for event in events:
            if event.kind is EventKind.FAULT_RAISED:
                kind = event.detail.split(":", 1)[0]
                self.raises_total[kind] += 1
                self.raises_since_last[kind] += 1
                self._seen.add(kind)

    def since_last(self, active: Iterable[str]) -> list[str]:
        return sorted(self._seen.union(active))

    def next_window(self, active: Iterable[str]) -> None:
        """After a health record: the next interval begins with what is active now."""
        self.raises_since_last = Counter()
        self._seen = set(active)
