"""Passengers: seeded generation, their behaviour at the landings and in the car, and the traffic metrics.

Rules of this module:
- Generation is a Poisson process at ``rate_pct_per_5min`` of the building's population per 5 minutes, seeded, with
  origins and destinations weighted by the population of each landing (CIBSE Guide D). With
  ``hourly_rate_pct_per_5min`` the rate is that list's entry for each hour of the day (the run starts at midnight):
  a building's day, quiet at night and busy at the peaks, from which a planner scales a year.
- Passengers behave as people do: press the landing button if its lamp is dark, board only a car whose lantern
  shows their direction (or none) and that has room, one at a time taking ``transfer_s`` each while the light
  curtain sees them, press their car call, alight first at their landing. A passenger left behind presses again
  once the doors have closed.
- Metrics as the industry defines them (Peters Research Elevate; CIBSE Guide D 2020 §4.8.2): waiting time from the
  landing call's registration (the passenger's arrival) until the doors of the car they board begin to open, zero if
  the doors were already open; transit time from then until the doors begin to open at the destination.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from carctl.core.config import DAY_S, YEAR_S, ConfigError, Range, check_ranges
from carctl.core.signals import Commands, Recognition
from carctl.protocol.sense import Presses  # what the passengers press: the boards' presses, as the firmware senses them
from sim.physics import DOOR_TRAVEL_UNITS, Shaft

if TYPE_CHECKING:
    from sim.runstats import PassengerStats

PATTERNS = ("residential", "up_peak", "down_peak", "interfloor", "none")
# A passenger left behind presses the landing button again no sooner than this.
REPRESS_S = 5.0
HOURS_A_DAY = 24
HOUR_S = 3600.0


@dataclass(frozen=True, slots=True)
class TrafficConfig:
    pattern: str = "residential"
    rate_pct_per_5min: float = 6.0
    duration_s: float = 3600.0
    seed: int = 1
    # The residential mix (percent of arrivals); the default is a weekday morning in a walk-up block, when most
    # trips leave for work and school.
    incoming_pct: float = 20.0
    outgoing_pct: float = 70.0
    interfloor_pct: float = 10.0
    passenger_mass_kg: float = 75.0
    # After duration_s no one new arrives; the simulation runs on up to this long to deliver those still travelling.
    drain_s: float = 900.0
    # A day's pattern: the rate for each hour of the day, 24 entries, repeated every day of the run (which starts at
    # midnight); replaces rate_pct_per_5min. Empty: rate_pct_per_5min around the clock.
    hourly_rate_pct_per_5min: tuple[float, ...] = ()

    RANGES: ClassVar[Mapping[str, Range]] = {
        "rate_pct_per_5min": Range(0.0, 100.0, "%"),
        # At most a leap year of traffic, so that a car's year can be simulated.
        "duration_s": Range(0.0, YEAR_S, "s", above=True),
        "seed": Range(0, 2**63 - 1),
        "incoming_pct": Range(0.0, 100.0, "%"),
        "outgoing_pct": Range(0.0, 100.0, "%"),
        "interfloor_pct": Range(0.0, 100.0, "%"),
        # The mean of the passengers' masses, which are drawn between 20 and 150 kg.
        "passenger_mass_kg": Range(20.0, 150.0, "kg"),
        "drain_s": Range(0.0, DAY_S, "s"),
        "hourly_rate_pct_per_5min": Range(0.0, 100.0, "%"),
    }

    def __post_init__(self) -> None:
        check_ranges(self, "traffic")
        if len(self.hourly_rate_pct_per_5min) not in (0, HOURS_A_DAY):
            raise ConfigError("traffic.hourly_rate_pct_per_5min",
                              f"must be one rate for each hour of the day, {HOURS_A_DAY} entries "
                              f"(got {len(self.hourly_rate_pct_per_5min)})")

    def rate_pct_per_5min_at(self, hour: int) -> float:
        """The arrival rate in the ``hour``-th hour of the run (hour 0 starts at midnight)."""
        if self.hourly_rate_pct_per_5min:
            return self.hourly_rate_pct_per_5min[hour % HOURS_A_DAY]
        return self.rate_pct_per_5min

    @property
    def quiet(self) -> bool:
        """No passenger is ever generated: no pattern, or a rate of 0 at every hour."""
        if self.pattern == "none":
            return True
        return max(self.hourly_rate_pct_per_5min or (self.rate_pct_per_5min,)) <= 0


@dataclass(slots=True)
class Passenger:
    ident: int
    arrival_tick: int
    origin: int
    destination: int
    mass_kg: float
    boarded_tick: int = -1  # the doors began to open for the boarding at this tick
    delivered_tick: int = -1  # the doors began to open at the destination at this tick
    last_press_tick: int = -(1 << 40)
    identity: str | None = None  # who the car camera sees (sim/camera.py); None: nobody it could know

    @property
    def going_up(self) -> bool:
        return self.destination > self.origin


def _weighted_landing(rng: random.Random, weights: list[int], exclude: int = -1) -> int:
    candidates = [(landing, weight) for landing, weight in enumerate(weights) if weight > 0 and landing != exclude]
    if not candidates:
        candidates = [(landing, 1) for landing in range(len(weights)) if landing != exclude]
    total = sum(weight for _, weight in candidates)
    pick = rng.random() * total
    for landing, weight in candidates:
        pick -= weight
        if pick < 0:
            return landing
    return candidates[-1][0]


def expected_passengers(traffic: TrafficConfig, population: tuple[int, ...], main_landing: int) -> float:
    """The mean number of passengers generate() makes: the Poisson rate times the duration (hour by hour, with a
    day's pattern)."""
    if traffic.quiet:
        return 0.0
    residents = sum(population) - population[main_landing]
    if not traffic.hourly_rate_pct_per_5min:
        return traffic.rate_pct_per_5min / 100.0 * residents / 300.0 * traffic.duration_s
    hours, rest_s = divmod(traffic.duration_s, HOUR_S)
    pct_seconds = sum(traffic.rate_pct_per_5min_at(hour) * HOUR_S for hour in range(int(hours)))
    pct_seconds += traffic.rate_pct_per_5min_at(int(hours)) * rest_s
    return pct_seconds / 100.0 * residents / 300.0


def generate(traffic: TrafficConfig, population: tuple[int, ...], main_landing: int,
             period_s: float) -> list[Passenger]:
    """The seeded passenger list for the whole run, sorted by arrival."""
    return list(stream(traffic, population, main_landing, period_s))


def stream(traffic: TrafficConfig, population: tuple[int, ...], main_landing: int,
           period_s: float) -> Iterator[Passenger]:
    """generate()'s passengers one at a time, in arrival order: a year's traffic without holding a year's list."""
    if traffic.quiet:
        return
    rng = random.Random(traffic.seed)
    weights = list(population)
    weights[main_landing] = 0
    total_population = sum(weights)
    if total_population == 0:
        return
    mix = (traffic.incoming_pct, traffic.outgoing_pct, traffic.interfloor_pct)
    made = 0
    # Each arrival's own draws follow its time's, so a run without a day's pattern draws exactly as it always has.
    for t_s in _arrival_times(rng, traffic, total_population):
        kind = traffic.pattern
        if kind == "residential":
            kind = rng.choices(("up_peak", "down_peak", "interfloor"), weights=mix)[0]
        if kind == "up_peak":
            origin, destination = main_landing, _weighted_landing(rng, weights)
        elif kind == "down_peak":
            origin, destination = _weighted_landing(rng, weights), main_landing
        else:
            origin = _weighted_landing(rng, weights)
            destination = _weighted_landing(rng, weights, exclude=origin)
        mass = max(20.0, min(150.0, rng.gauss(traffic.passenger_mass_kg, 12.0)))
        yield Passenger(made, round(t_s / period_s), origin, destination, mass)
        made += 1


def _arrival_times(rng: random.Random, traffic: TrafficConfig, total_population: int) -> Iterator[float]:
    """The Poisson arrival times, seconds from the start, before ``traffic.duration_s``. With a day's pattern the
    rate is constant within each hour; a gap drawn past the hour's end is dropped and drawn again from there at the
    next hour's rate, which is exact for a Poisson process (it has no memory)."""
    def per_s(rate_pct_per_5min: float) -> float:
        return rate_pct_per_5min / 100.0 * total_population / 300.0

    t_s = 0.0
    if not traffic.hourly_rate_pct_per_5min:
        rate_per_s = per_s(traffic.rate_pct_per_5min)
        while True:
            t_s += rng.expovariate(rate_per_s)
            if t_s >= traffic.duration_s:
                return
            yield t_s
    hour = 0
    while t_s < traffic.duration_s:
        hour_end_s = (hour + 1) * HOUR_S
        rate_per_s = per_s(traffic.rate_pct_per_5min_at(hour))
        if rate_per_s > 0:
            arrival_s = t_s + rng.expovariate(rate_per_s)
            if arrival_s < hour_end_s:
                t_s = arrival_s
                if t_s < traffic.duration_s:
                    yield t_s
                continue
        t_s = hour_end_s
        hour += 1


class PassengerFlow:
    """The passengers in the building, stepped with the shaft. It presses buttons and loads the car.

    With a ``source`` (stream()) and ``stats`` (sim/runstats.py), memory stays bounded over a year: arrivals are
    drawn from the source a few at a time, and a passenger is counted into ``stats`` and forgotten instead of being
    kept in ``everyone`` and ``finished``."""

    def __init__(self, passengers: list[Passenger], shaft: Shaft, capacity_persons: int, transfer_s: float,
                 source: Iterator[Passenger] | None = None, stats: PassengerStats | None = None) -> None:
        self.pending = sorted(passengers, key=lambda p: (p.arrival_tick, p.ident))
        self.pending.reverse()  # pop() from the end is the next arrival
        self.source = source
        self.stats = stats
        self._not_arrived_in_source = -1  # counted once, by not_arrived()
        self._lookahead = next(source, None) if source is not None else None  # the source's next, not yet pending
        self._refill()
        self.shaft = shaft
        self.capacity = capacity_persons
        self.transfer_ticks = max(1, round(transfer_s / shaft.period_s))
        self.repress_ticks = round(REPRESS_S / shaft.period_s)
        self.waiting: dict[int, list[Passenger]] = {}
        self.in_car: list[Passenger] = []
        self.finished: list[Passenger] = []
        self.evacuated: list[Passenger] = []  # left the car at a rescue landing, short of their own
        self.everyone: list[Passenger] = []
        self.transfer: tuple[Passenger, bool] | None = None  # (who, boarding)
        self.transfer_end_tick = -1
        self.door_open_start_tick: dict[int, int] = {}
        self.door_was_closed = True
        self.next_press_tick = 1 << 62
        self.door_openings = 0
        # Counts arrivals, boardings and alightings: a change in who is where.
        self.changes = 0
        self._last_seen: tuple[object, ...] = ()
        # The car camera (sim/camera.py), when the face feature is simulated, and what it recognised this tick.
        self.camera: Any = None
        self.recognitions: list[Recognition] = []

    def add(self, passenger: Passenger) -> None:
        """A scripted passenger (scenario event)."""
        self.pending.append(passenger)
        self.pending.sort(key=lambda p: (-p.arrival_tick, -p.ident))
        self._refill()

    def _refill(self) -> None:
        """Move the source's next arrival into ``pending`` whenever it comes before pending's next (or pending is
        empty), so that ``pending[-1]`` is always the next arrival, as with the whole list sorted up front."""
        pending = self.pending
        while self._lookahead is not None and (
                not pending or (self._lookahead.arrival_tick, self._lookahead.ident)
                < (pending[-1].arrival_tick, pending[-1].ident)):
            pending.append(self._lookahead)
            self._lookahead = next(self.source, None) if self.source is not None else None

    def not_arrived(self) -> int:
        """Generated passengers that have not arrived yet (the source is drained to count them, once)."""
        if self._not_arrived_in_source < 0:
            rest = sum(1 for _ in self.source) if self.source is not None else 0
            self._not_arrived_in_source = rest + (self._lookahead is not None)
            self.source = None
            self._lookahead = None
        return len(self.pending) + self._not_arrived_in_source

    def next_event_tick(self) -> int:
        candidates = [self.next_press_tick]
        if self.pending:
            candidates.append(self.pending[-1].arrival_tick)
        if self.transfer is not None:
            candidates.append(self.transfer_end_tick)
        return min(candidates)

    def update(self, tick: int, commands: Commands, presses: Presses) -> None:
        """Advance the passengers to ``tick`` given what the car shows; add the buttons they press."""
        shaft = self.shaft
        pending = self.pending
        while pending and pending[-1].arrival_tick <= tick:
            passenger = pending.pop()
            self.changes += 1
            if self.stats is None:
                self.everyone.append(passenger)
            else:
                self.stats.arrived += 1
            self.waiting.setdefault(passenger.origin, []).append(passenger)
            if self._lookahead is not None:
                self._refill()
        door_units = shaft.doorway_units()  # the most open car door: the one they walk through
        landing = -1
        if door_units:
            landing = self._car_landing()
            if self.door_was_closed:
                self.door_open_start_tick[landing] = tick
                self.door_openings += 1
        self.door_was_closed = door_units == 0
        if self.transfer is not None and tick >= self.transfer_end_tick:
            self._finish_transfer(tick, landing, presses, commands)
        if self.transfer is None and door_units == DOOR_TRAVEL_UNITS:
            self._start_transfer(tick, landing, commands)
        shaft.transferring = self.transfer is not None
        if self.waiting or self.in_car:
            # Nobody presses anything new unless what they see changed or a re-press falls due.
            seen = (commands.hall_up_lamps, commands.hall_down_lamps, commands.car_call_lamps, commands.direction,
                    door_units, shaft.speed_m_s == 0.0, self.changes)
            if tick >= self.next_press_tick or seen != self._last_seen:
                self._last_seen = seen
                self._press_buttons(tick, landing, commands, presses)
        else:
            self.next_press_tick = 1 << 62

    def _car_landing(self) -> int:
        position = self.shaft.position_m
        landings = self.shaft.landings_m
        return min(range(len(landings)), key=lambda index: abs(landings[index] - position))

    def _start_transfer(self, tick: int, landing: int, commands: Commands) -> None:
        rescue = commands.rescue_notice  # "power failure, please leave the car": everyone leaves, nobody boards
        for passenger in self.in_car:
            if passenger.destination == landing or rescue:
                self.transfer = (passenger, False)
                self.transfer_end_tick = tick + self.transfer_ticks
                return
        queue = self.waiting.get(landing)
        if not queue or len(self.in_car) >= self.capacity or rescue:
            return
        lantern = commands.direction
        for passenger in queue:
            if lantern == 0 or (lantern > 0) == passenger.going_up:
                self.transfer = (passenger, True)
                self.transfer_end_tick = tick + self.transfer_ticks
                if self.camera is not None:
                    seen = self.camera.on_board(passenger)
                    if seen is not None:
                        self.recognitions.append(seen)
                return

    def _finish_transfer(self, tick: int, landing: int, presses: Presses, commands: Commands) -> None:
        assert self.transfer is not None
        passenger, boarding = self.transfer
        self.transfer = None
        self.changes += 1
        opened = self.door_open_start_tick.get(landing, tick)
        if boarding:
            self.waiting[passenger.origin].remove(passenger)
            if not self.waiting[passenger.origin]:
                del self.waiting[passenger.origin]
            passenger.boarded_tick = max(opened, passenger.arrival_tick)
            self.in_car.append(passenger)
            if self.stats is not None:
                # Nobody still waiting, nor anyone yet to come, arrived before this: their windows can close.
                open_tick = min((p.arrival_tick for queue in self.waiting.values() for p in queue), default=tick)
                self.stats.on_board(passenger.arrival_tick, passenger.boarded_tick, min(open_tick, tick))
            if passenger.destination not in commands.car_call_lamps:
                presses.car.add(passenger.destination)
                passenger.last_press_tick = tick
        elif passenger.destination != landing:
            self.in_car.remove(passenger)  # released by a rescue short of their landing: they take the stairs
            self.evacuated.append(passenger)
        else:
            self.in_car.remove(passenger)
            passenger.delivered_tick = opened
            if self.stats is None:
                self.finished.append(passenger)
            else:
                self.stats.on_delivered(passenger.arrival_tick, passenger.boarded_tick, opened)
        self.shaft.set_load(sum(p.mass_kg for p in self.in_car))

    def _press_buttons(self, tick: int, car_at: int, commands: Commands, presses: Presses) -> None:
        """Anyone whose button is dark presses it, unless the open car here will take them anyway."""
        soonest = 1 << 62
        doors_open_here = self.shaft.doorway_units() > 0
        standing_at = self._car_landing() if self.shaft.speed_m_s == 0.0 else -1
        for landing, queue in self.waiting.items():
            for going_up in (True, False):
                lamps = commands.hall_up_lamps if going_up else commands.hall_down_lamps
                if landing in lamps:
                    continue
                lantern = commands.direction
                if doors_open_here and landing == car_at and (lantern == 0 or (lantern > 0) == going_up):
                    continue
                wanting = [p for p in queue if p.going_up == going_up]
                if not wanting:
                    continue
                newcomer = any(p.last_press_tick < 0 for p in wanting)
                if not newcomer and landing == standing_at and doors_open_here:
                    continue  # left behind by a full car: press again once it has gone (or shut its doors)
                due = max(p.last_press_tick for p in wanting) + self.repress_ticks
                if tick >= due or newcomer:
                    (presses.up if going_up else presses.down).add(landing)
                    for passenger in wanting:
                        passenger.last_press_tick = tick
                    due = tick + self.repress_ticks
                soonest = min(soonest, due)
        for passenger in self.in_car:
            if passenger.destination in commands.car_call_lamps or (doors_open_here and
                                                                    passenger.destination == car_at):
                continue
            due = passenger.last_press_tick + self.repress_ticks
            if tick >= due:
                presses.car.add(passenger.destination)
                passenger.last_press_tick = tick
                due = tick + self.repress_ticks
            soonest = min(soonest, due)
        self.next_press_tick = soonest
