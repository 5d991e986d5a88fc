"""The rear door operator of a car with doors on both sides: its door, lock contacts and light curtain.

Rules of this module:
- The same arithmetic as the front door in physics.Shaft (an integer count of units, a lock that makes door_lock_s
  after the door shuts, the operator's own interlock that opens the door only inside the door zone), so the two
  operators of a through car move alike under the same commands.
- It reads only its own commands (rear_door_open .. rear_door_slow) and its own faults: rear_door_jam,
  rear_door_lock_lost, rear_light_curtain_blocked; its light curtain also sees an obstruction scripted for the rear
  side and a passenger crossing its open threshold.
- It tells the lockstep loop, as the shaft does, when its readings will next change under the same commands.
"""

from __future__ import annotations

from typing import Any

DOOR_TRAVEL_UNITS = 1_000_000  # as physics.DOOR_TRAVEL_UNITS
NEVER = 1 << 62


class RearDoor:
    def __init__(self, lock_ticks: int, rate_open: int, rate_close: int, rate_slow: int, rate_nudge: int) -> None:
        self.lock_ticks = lock_ticks
        self.rate_open, self.rate_close, self.rate_slow, self.rate_nudge = rate_open, rate_close, rate_slow, rate_nudge
        self.units = 0
        self.motion = 0  # +1 opening, -1 closing, 0 still
        self.lock_count = lock_ticks  # ticks the door has been shut; locked at lock_ticks
        self.obstructed_until_tick = -1
        self.jammed = False
        self.lock_forced_open = False
        self.curtain_failed = False

    def _close_rate(self, commands: Any) -> int:
        if commands.rear_door_nudge:
            return self.rate_nudge
        return self.rate_slow if commands.rear_door_slow else self.rate_close

    def update(self, commands: Any, in_door_zone: bool, powered: bool) -> None:
        """One tick under the rear operator's commands (``commands``: anything with rear_door_open .. slow)."""
        if self.jammed or not powered:
            self.motion = 0
            return
        opening, closing = commands.rear_door_open, commands.rear_door_close
        if opening and not closing:
            if self.units < DOOR_TRAVEL_UNITS and in_door_zone:
                self.units = min(DOOR_TRAVEL_UNITS, self.units + self.rate_open)
                self.motion = 1
                self.lock_count = 0
            else:
                self.motion = 0
        elif closing and not opening:
            if self.units > 0:
                self.units = max(0, self.units - self._close_rate(commands))
                self.motion = -1
            else:
                self.motion = 0
                if self.lock_count < self.lock_ticks:
                    self.lock_count += 1
        else:
            self.motion = 0

    def next_change_tick(self, commands: Any, tick: int, in_door_zone: bool, powered: bool) -> int:
        """The first tick at which this door's readings differ from now under the same commands."""
        candidates = [self.obstructed_until_tick if self.obstructed_until_tick > tick else NEVER]
        if self.jammed or not powered:
            return min(candidates)
        opening, closing = commands.rear_door_open, commands.rear_door_close
        if opening and not closing and in_door_zone:
            if self.units == 0:
                candidates.append(tick + 1)
            elif self.units < DOOR_TRAVEL_UNITS:
                candidates.append(tick + -(-(DOOR_TRAVEL_UNITS - self.units) // self.rate_open))
        elif closing and not opening:
            if self.units == DOOR_TRAVEL_UNITS:
                candidates.append(tick + 1)
            elif self.units > 0:
                candidates.append(tick + -(-self.units // self._close_rate(commands)))
            elif self.lock_count < self.lock_ticks:
                candidates.append(tick + self.lock_ticks - self.lock_count)
        return min(candidates)

    def locked(self) -> bool:
        return self.units == 0 and self.lock_count >= self.lock_ticks and not self.lock_forced_open

    def open_fraction(self) -> float:
        return self.units / DOOR_TRAVEL_UNITS

    def state(self) -> str:
        if self.units == 0:
            return "closed"
        if self.units == DOOR_TRAVEL_UNITS:
            return "open"
        return "opening" if self.motion > 0 else "closing"

    def curtain_blocked(self, tick: int, transferring: bool) -> bool:
        """A passenger crosses this threshold only while this door is open."""
        return (transferring and self.units > 0) or tick < self.obstructed_until_tick or self.curtain_failed


__all__ = ["RearDoor"]
