"""Every input source's expected period and maximum age, declared once in seconds and turned into ticks once.

Rules of this module:
- SOURCES is the one table of freshness. Nothing else in the firmware or the simulator writes down how old an
  input may be: the supervisor, the sense step and the real-time loop all read Freshness, built from SOURCES for
  the configured control period.
- A maximum age in ticks is the age in seconds divided by the period, rounded up, and never less than the source's
  ``min_ticks`` (so one lost answer is forgiven however short the period).
- An input older than its maximum age is stale. For the safety sources (drive, car top, car panel, landings) that
  is a fault with the reaction the supervisor gives it; the hold-to-run buttons are simply not held; the face
  worker and the platform link are not in the safety path: what they send is used in the cycle it arrives, and a
  message that waited in the socket longer than its maximum age is refused (the side channels stamp each message
  with the sender's monotonic clock, which is the same clock in every process of the board).
- The drive's freshness is its TICK register advancing (adapters/drive.py): a status block that stops changing is
  as stale as a silent drive.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from carctl.core.config import CarConfig


@dataclass(frozen=True, slots=True)
class Source:
    name: str
    period_s: float  # how often a fresh value is expected (the control period for sources read every cycle)
    max_age_s: float  # older than this, the value is stale
    min_ticks: int  # the maximum age is never fewer ticks than this
    stale_means: str


# The periods are those of the default 20 ms cycle; the maximum ages are what the car can afford, whatever the
# cycle. The landing boards are read a few per cycle in turn (panel.landing_polls_per_cycle), so each is seen a few
# times a second.
SOURCES: tuple[Source, ...] = (
    Source("drive", 0.02, 0.06, 2, "drive_stale: stop at once; its speed and position are not used"),
    Source("car_top", 0.02, 0.10, 2, "car_top_stale: stop at once (door state unknown)"),
    Source("hold_to_run", 0.02, 0.04, 2,
           "the inspection station's buttons count as released (a held level needs a fresh reading)"),
    Source("car_panel", 0.02, 0.50, 2, "car_panel_stale: let the passengers out at the next landing"),
    Source("landing", 0.06, 1.00, 2, "landing_stale: shown; that landing's calls are not heard"),
    # The cabinet's buttons come with the cabinet landing's board, read in turn with the others (up to twelve
    # landings at one a cycle): a release is seen within a quarter of a second, 6 cm at emergency electrical speed.
    Source("cabinet_hold_to_run", 0.06, 0.25, 2,
           "the cabinet's emergency electrical operation buttons count as released"),
    # Not in the safety path. Their messages are used in the cycle they arrive, unless they waited longer than this
    # (the loop stalled, a burst queued): a resident recognised seconds ago may have left the car, and a mode asked
    # for seconds ago may have been overtaken by a key switch. (The platform's commands carry their own expiry.)
    Source("face_worker", 0.2, 1.0, 1, "a recognition that waited longer is refused (counted), not acted on"),
    Source("platform_link", 1.0, 2.0, 1, "a mode request that waited longer is refused (counted), not acted on"),
    # The alarm's modem process reports its call twice a second: a voice connection not confirmed for this long is
    # taken as ended (the green lamp goes out); an alarm once transmitted stays so (alarm.py never moves it back).
    Source("alarm_modem", 0.5, 3.0, 1, "the voice connection counts as ended"),
)
SOURCE_NAMES = tuple(source.name for source in SOURCES)


def max_age_s(name: str) -> float:
    """The maximum age of a source by name (KeyError for a name not in SOURCES)."""
    return next(source.max_age_s for source in SOURCES if source.name == name)


def max_age_ticks(source: Source, period_s: float) -> int:
    # The small tolerance keeps 0.06 s / 0.02 s at 3 ticks, not 4, despite binary floating point.
    return max(source.min_ticks, math.ceil(source.max_age_s / period_s - 1e-9))


@dataclass(frozen=True, slots=True)
class Freshness:
    """The maximum age of each safety source in ticks, for one control period."""

    period_s: float
    drive: int
    car_top: int
    hold_to_run: int
    car_panel: int
    landing: int
    cabinet_hold_to_run: int = 13

    @classmethod
    def for_period(cls, period_s: float, drive_override_ticks: int = 0) -> Freshness:
        ticks = {source.name: max_age_ticks(source, period_s) for source in SOURCES}
        # car.drive_stale_ticks, kept for scenario files that set it: a positive value replaces the table's.
        drive = drive_override_ticks if drive_override_ticks > 0 else ticks["drive"]
        return cls(period_s=period_s, drive=drive, car_top=ticks["car_top"], hold_to_run=ticks["hold_to_run"],
                   car_panel=ticks["car_panel"], landing=ticks["landing"],
                   cabinet_hold_to_run=ticks["cabinet_hold_to_run"])

    @classmethod
    def from_config(cls, car: CarConfig) -> Freshness:
        return cls.for_period(car.control_period_s, car.drive_stale_ticks)


__all__ = ["SOURCES", "SOURCE_NAMES", "Freshness", "Source", "max_age_s", "max_age_ticks"]
