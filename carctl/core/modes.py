"""Operating modes, as a table of what each mode lets the car do.

Rules of this module:
- A mode changes only on a mode request (key switch, fire-service switch, platform command); the change withdraws
  the calls the new mode does not serve, with an event for each.
- The rest of the core asks ModeRules, never the mode itself, so adding a mode is adding a row.
- Rescue is the one mode no request selects: the controller enters it while the drive reports that it runs on the
  rescue device's battery (never during inspection: a mechanic may be on the car top) and leaves it, back to the
  mode it interrupted, when the mains return. A request that arrives meanwhile becomes the mode to return to;
  only inspection takes over at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from carctl.core.signals import Mode


@dataclass(frozen=True, slots=True)
class ModeRules:
    car_calls: bool  # car-call buttons register calls
    landing_calls: bool  # landing buttons register calls
    cancel_car_calls: bool  # entering the mode cancels registered car calls (else the current ride is finished)
    automatic_runs: bool  # the car moves by itself to serve calls or park
    auto_close: bool  # the doors close by themselves after the dwell (else only on the door-close button)
    park_open: bool  # park with the doors open (fire return)
    park_at_home: bool  # an idle car returns to its home landing (False: to the recall landing, if any)
    recall_main_landing: bool  # go non-stop to the fire landing (the designated one, or the alternate)
    energy_saving: bool  # an idle car may turn its light and fan off (never in fire service or inspection)


RULES: dict[Mode, ModeRules] = {
    Mode.NORMAL: ModeRules(True, True, False, True, True, False, True, False, True),
    Mode.INDEPENDENT: ModeRules(True, False, False, True, False, False, False, False, True),
    Mode.OUT_OF_SERVICE: ModeRules(False, False, False, True, True, False, True, False, True),
    Mode.FIRE: ModeRules(False, False, True, True, True, True, False, True, False),
    Mode.INSPECTION: ModeRules(False, False, True, False, False, False, False, False, False),
    # On the rescue device's battery: calls cancelled, one low-speed run to the rescue landing, doors parked open.
    Mode.RESCUE: ModeRules(False, False, True, True, False, True, False, False, False),
}
