"""The scenario event ``learn``: what a technician does for a shaft learning run, tick by tick, in the lockstep.

Rules of this module:
- The cabinet's emergency electrical operation switch on (the car-top inspection switch off: no one is on the roof,
  and the cabinet has the car); the cabinet's down button held until the car stands at the bottom terminal (it
  stops level there); the cabinet's learn button pressed; the run left to the controller until it reports its end
  (done, refused or interrupted: a LEARNING event); the switch off.
- It moves only what a person would: the switch and the buttons. The controller decides everything else; a learned
  table reaches the lockstep's controller through the LEARNING event (Lockstep._on_events), as the firmware's loop
  writes it and builds its configuration from it.
- A step that does not come about within its time gives up (the switch off), so a scenario never hangs on it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from carctl.core.phases import Phase
from carctl.core.signals import Mode

if TYPE_CHECKING:
    from sim.lockstep import Lockstep

# How long the learn button is held (a press the cabinet board reports on at least one poll).
PRESS_S = 0.3
# The longest the walk to the bottom, and the learning run itself, may take before the technician gives up.
STEP_LIMIT_S = 300.0


class LearnProcedure:
    """One ``learn`` event in progress: step() once a tick, until it says it is over."""

    def __init__(self, tick: int, period_s: float) -> None:
        self.step_name = "cabinet"
        self.since_tick = tick
        self.period_s = period_s
        self.result = ""  # the LEARNING event's detail that ended the run ("" before)

    def _to(self, name: str, tick: int) -> None:
        self.step_name = name
        self.since_tick = tick

    def step(self, sim: Lockstep, tick: int) -> bool:
        """Advance the procedure; True when it is over."""
        state = sim.state
        elapsed_s = (tick - self.since_tick) * self.period_s
        if elapsed_s > STEP_LIMIT_S and self.step_name != "cabinet":
            self.result = self.result or f"gave_up:{self.step_name}"
            self.step_name = "normal"
        name = self.step_name
        if name == "cabinet":
            sim.cabinet = (True, False, False)
            self._to("down", tick)
        elif name == "down":
            if state.mode is not Mode.EMERGENCY_ELECTRICAL:
                return False
            at_bottom = state.phase is not Phase.INSPECTING and sim.shaft.speed_m_s == 0.0 and (
                sim.readings.car_top.in_door_zone and sim.shaft.below_mark)
            if at_bottom and elapsed_s > 1.0:
                sim.cabinet = (True, False, False)
                self._to("press", tick)
            else:
                sim.cabinet = (True, False, True)
        elif name == "press":
            sim.learn_button = elapsed_s < PRESS_S
            if not sim.learn_button:
                self._to("wait", tick)
        elif name == "wait":
            if self.result:
                self._to("normal", tick)
        else:
            sim.learn_button = False
            sim.cabinet = (False, False, False)
            return True
        return False


__all__ = ["PRESS_S", "STEP_LIMIT_S", "LearnProcedure"]
