"""Procedures for scenario tests: press a button, wait for the doors, look at what the car did.

Written so a test reads like a commissioning procedure (ArduPilot autotest style):

    car = SimulatedCar()
    car.press_car_call(5)
    car.wait_doors("open", within_s=30)
    assert car.landing == 5

Every wait has a deadline in simulated seconds and fails with what the car was doing. Injected faults are checked
in the shaft before a test relies on them (``car.shaft.injected``), so a test never asserts a reaction to a fault
that did not happen.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from carctl.core.controller import Phase
from carctl.core.signals import Direction, Event, EventKind, Mode, Recognition
from carctl.core.supervisor import Fault
from sim.learnrun import PRESS_S, LearnProcedure
from sim.lockstep import Lockstep
from sim.physics import Shaft
from sim.scenario import from_dict
from sim.traffic import Passenger


class ProcedureFailed(AssertionError):
    pass


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


class SimulatedCar:
    """One car in the lockstep simulator, with no generated traffic unless the scenario asks for it."""

    def __init__(self, scenario: dict[str, Any] | None = None, skip_idle: bool = True) -> None:
        base = {"traffic": {"pattern": "none", "duration_s": 24 * 3600.0, "drain_s": 0.0}}
        self.sim = Lockstep(from_dict(_merge(base, scenario or {})), skip_idle=skip_idle, keep_events=True)
        self._passenger_ident = 1_000_000
        # Let the controller come out of power-up (HALTED) into service: it has seen the car at rest for the settling
        # time (core/standstill.py), or a fault keeps it halted.
        self.run_for(0.5)
        self.sim.advance(self.sim.tick + round(5.0 / self.sim.period_s), stop=lambda: not self.sim.state.settling)
        self.run_for(0.1)

    # -- what the car is doing ----------------------------------------------------------------------------------

    @property
    def shaft(self) -> Shaft:
        return self.sim.shaft

    @property
    def t_s(self) -> float:
        return self.sim.tick * self.sim.period_s

    @property
    def landing(self) -> int:
        """The landing nearest the car's true position."""
        position = self.shaft.position_m
        landings = self.shaft.landings_m
        return min(range(len(landings)), key=lambda index: abs(landings[index] - position))

    @property
    def doors(self) -> str:
        return self.shaft.door_state()

    @property
    def rear_doors(self) -> str:
        """The rear door of a car with doors on both sides ("closed" on a car with one door)."""
        rear = self.shaft.rear
        return "closed" if rear is None else rear.state()

    @property
    def lantern(self) -> Direction:
        return self.sim.commands.direction

    @property
    def phase(self) -> Phase:
        return self.sim.state.phase

    @property
    def faults(self) -> frozenset[Fault]:
        return self.sim.state.faults

    @property
    def events(self) -> list[Event]:
        assert self.sim.event_log is not None
        return self.sim.event_log

    def events_of(self, kind: EventKind) -> list[Event]:
        return [event for event in self.events if event.kind is kind]

    def stops(self) -> list[int]:
        """Landings where the car arrived and opened its doors, in order."""
        return [event.landing for event in self.events_of(EventKind.ARRIVED)]

    def lanterns_at_stops(self) -> list[tuple[int, str]]:
        return [(event.landing, event.detail) for event in self.events_of(EventKind.ARRIVED)]

    def describe(self) -> str:
        shaft = self.shaft
        return (f"t={self.t_s:.2f}s phase={self.phase.value} position={shaft.position_m:.3f}m "
                f"speed={shaft.speed_m_s:.3f}m/s doors={self.doors} lantern={self.lantern.name} "
                f"faults={sorted(f.value for f in self.faults)} calls={self.sim.state.calls}")

    # -- buttons and the world ----------------------------------------------------------------------------------

    def press_car_call(self, landing: int) -> None:
        self.sim.presses.car.add(landing)

    def press_hall_call(self, landing: int, direction: str) -> None:
        (self.sim.presses.up if direction == "up" else self.sim.presses.down).add(landing)

    def press_accessible_call(self, landing: int) -> None:
        self.sim.presses.car.add(landing)
        self.sim.pending.accessible_button = True

    def recognise(self, resident: str, home_landing: int, allowed: tuple[int, ...] = (), source: str = "face") -> None:
        """The face worker (or a card reader) reports a resident in the car."""
        seen = Recognition(resident, home_landing, frozenset(allowed), source)
        self.sim.pending.recognitions = (*self.sim.pending.recognitions, seen)

    def press_door_open(self) -> None:
        self.sim.pending.door_open_button = True

    def press_door_close(self) -> None:
        self.sim.pending.door_close_button = True

    def reset_faults(self) -> None:
        self.sim.pending.fault_reset = True

    def switch_mode(self, mode: str) -> None:
        self.sim.pending.mode_request = Mode(mode)

    def inspection_switch(self, on: bool) -> None:
        """Turn the car-top inspection station's switch on or off (a key switch, unlike switch_mode's request)."""
        self.sim.inspection_switch = on

    def emergency_electrical(self, on: bool) -> None:
        """Turn the controller cabinet's emergency electrical operation switch on or off (buttons released)."""
        self.sim.cabinet = (on, False, False)

    def hold_eeo(self, direction: str | None) -> None:
        """Hold the cabinet's "up" or "down" button (the switch stays as it is); None releases both."""
        self.sim.cabinet = (self.sim.cabinet[0], direction == "up", direction == "down")

    def hold_inspection(self, direction: str | None) -> None:
        """Hold the car-top inspection station's "up" or "down" button; None releases both."""
        self.sim.inspection_buttons = (direction == "up", direction == "down")

    def press_learn(self) -> None:
        """Press the cabinet's learn button (held for learnrun.PRESS_S, then let go)."""
        self.sim.learn_button = True
        self.run_for(PRESS_S)
        self.sim.learn_button = False

    def learn(self, within_s: float = 300.0) -> str:
        """What the scenario event learn does: the cabinet's EEO switch, down to the bottom, the learn button, the
        run, back to normal. Returns how the run ended (the LEARNING event's detail)."""
        procedure = LearnProcedure(self.sim.tick, self.sim.period_s)
        self.sim.learn_procedure = procedure
        self.wait_until(lambda: self.sim.learn_procedure is None, within_s=within_s, what="the learning procedure over")
        return procedure.result

    def detect_fire(self, landing: int) -> None:
        """The fire (smoke) detector at a landing goes active."""
        self.sim.fire_detected = self.sim.fire_detected | {landing}

    def occupy_seat(self) -> None:
        self.shaft.seat_occupied = True

    def free_seat(self) -> None:
        self.shaft.seat_occupied = False

    def hold_alarm(self, duration_s: float) -> None:
        """The car panel's alarm button held down for ``duration_s``."""
        self.sim.alarm_until_tick = self.sim.tick + max(1, round(duration_s / self.sim.period_s))

    def reset_alarm(self) -> None:
        """The rescuer turns the alarm reset key on the car panel."""
        self.sim.pending.alarm_reset = True

    def obstruct_doors(self, duration_s: float) -> None:
        self.shaft.obstructed_until_tick = self.sim.tick + max(1, round(duration_s / self.sim.period_s))

    def obstruct_rear_doors(self, duration_s: float) -> None:
        rear = self.shaft.rear
        if rear is None:
            raise ProcedureFailed("the car has no rear door to obstruct")
        rear.obstructed_until_tick = self.sim.tick + max(1, round(duration_s / self.sim.period_s))

    def set_extra_load(self, load_kg: float) -> None:
        self.shaft.extra_load_kg = load_kg
        self.shaft.set_load(self.shaft.load_kg)

    def inject(self, kind: str) -> None:
        self.sim.inject(kind)
        if kind not in self.shaft.injected:
            raise ProcedureFailed(f"the simulator did not take the fault {kind!r}")

    def clear(self, kind: str) -> None:
        self.sim.clear(kind)

    def restart_controller(self) -> None:
        """The controller reboots; the shaft and the drive (with its position count) carry on."""
        self.sim.restart_controller()

    def add_passenger(self, origin: int, destination: int, mass_kg: float = 75.0) -> Passenger:
        passenger = Passenger(self._passenger_ident, self.sim.tick, origin, destination, mass_kg)
        self._passenger_ident += 1
        self.sim.flow.add(passenger)
        return passenger

    # -- waiting ------------------------------------------------------------------------------------------------

    def run_for(self, seconds: float) -> None:
        self.sim.advance(self.sim.tick + round(seconds / self.sim.period_s))

    def wait_until(self, condition: Callable[[], bool], within_s: float, what: str) -> float:
        """Run until condition() holds; return the simulated seconds it took."""
        start = self.sim.tick
        if condition():
            return 0.0
        if not self.sim.advance(start + round(within_s / self.sim.period_s), stop=condition):
            raise ProcedureFailed(f"{what}: not within {within_s} s ({self.describe()})")
        return (self.sim.tick - start) * self.sim.period_s

    def fastest_until(self, condition: Callable[[], bool], within_s: float, what: str) -> float:
        """Run until condition() holds, as wait_until; return the highest true speed of the car on the way."""
        fastest = abs(self.shaft.speed_m_s)

        def watched() -> bool:
            nonlocal fastest
            fastest = max(fastest, abs(self.shaft.speed_m_s))
            return condition()

        self.wait_until(watched, within_s, what)
        return fastest

    def wait_doors(self, state: str, within_s: float, at: int | None = None) -> float:
        def reached() -> bool:
            return self.doors == state and (at is None or self.landing == at)

        where = f" at landing {at}" if at is not None else ""
        return self.wait_until(reached, within_s, f"doors {state}{where}")

    def wait_rear_doors(self, state: str, within_s: float, at: int | None = None) -> float:
        def reached() -> bool:
            return self.rear_doors == state and (at is None or self.landing == at)

        where = f" at landing {at}" if at is not None else ""
        return self.wait_until(reached, within_s, f"rear doors {state}{where}")

    def ride_to(self, landing: int, within_s: float = 60.0) -> None:
        """Call the car to ``landing`` from inside and wait until its doors have opened there and closed again."""
        self.press_car_call(landing)
        self.wait_doors("open", within_s, at=landing)
        self.wait_doors("closed", within_s)

    def wait_idle(self, within_s: float) -> float:
        """Until every call is served and the doors are closed with the car standing."""
        return self.wait_until(lambda: not self.sim.state.calls.any() and self.doors == "closed"
                               and self.phase is Phase.STANDING, within_s, "car idle")

    def wait_phase(self, phase: Phase, within_s: float) -> float:
        return self.wait_until(lambda: self.phase is phase, within_s, f"phase {phase.value}")

    def wait_fault(self, fault: Fault, within_s: float) -> float:
        return self.wait_until(lambda: fault in self.faults, within_s, f"fault {fault.value}")
