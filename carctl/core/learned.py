"""The learning run's records: the run under way and the table it learned (kept in ControllerState).

Rules of this module:
- Records only, no behaviour (learning.py has it); frozen, positions in metres by the drive's count.
"""

from __future__ import annotations

from dataclasses import dataclass

from carctl.core.signals import Mode


@dataclass(frozen=True, slots=True)
class LearnedTable:
    """What a learning run measured, by the drive's count, in metres."""

    landings_m: tuple[float, ...]
    # Each vane's lower and upper edge; the bottom vane's lower and the top vane's upper edge are not passed (None).
    vane_edges_m: tuple[tuple[float | None, float | None], ...]
    # The terminal slowdown switches' edges passed, in order: ("bottom.0", "off", 0.412) — switch 0 of the bottom
    # terminal released at 0.412 m; ("top.0", "on", 13.9).
    switch_edges: tuple[tuple[str, str, float], ...] = ()


@dataclass(frozen=True, slots=True)
class LearningRun:
    """A run under way (ControllerState.learning)."""

    started_tick: int
    # Door-zone sensor edges in the order passed, going up from inside the bottom vane: upper edge of vane 0, lower
    # edge of vane 1, upper edge of vane 1, ...
    edges_m: tuple[float, ...] = ()
    in_zone: bool = True
    slowdown: tuple[int, int] = (0, 0)  # (top, bottom) as last seen
    switch_edges: tuple[tuple[str, str, float], ...] = ()
    last_position_m: float = 0.0
    started_in: Mode | None = None  # the mode the run returns to when it ends (None: modes.end_learning's own)


__all__ = ["LearnedTable", "LearningRun"]
