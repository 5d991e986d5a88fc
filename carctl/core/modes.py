"""Operating modes, as a table of what each mode lets the car do, and the changes between them.

Rules of this module:
- A mode changes only on a mode request (key switch, fire-service switch, platform command); the change withdraws
  the calls the new mode does not serve, with an event for each.
- The rest of the core asks ModeRules, never the mode itself, so adding a mode is adding a row. Only the mode
  changes below name modes.
- Rescue is the one mode no request selects: the controller enters it while the drive reports that it runs on the
  rescue device's battery (never in a hold-to-run mode: a mechanic on the car top or at the cabinet has the car)
  and leaves it, back to the mode it interrupted, when the mains return. A request that arrives meanwhile becomes
  the mode to return to; only a hold-to-run mode (inspection, emergency electrical operation) takes over at once.
- A stop-at-once fault stops the car in every mode but for the faults the mode bridges (stop_now()).
- Where the mode sends the car non-stop (recall_landing): the fire landing (the alternate one once the designated
  landing's detector has been seen active, for the rest of fire service), or the rescue landing once chosen.
"""

from __future__ import annotations

from dataclasses import dataclass

from carctl.core import calls as call_registry
from carctl.core.context import Context
from carctl.core.faults import Fault, FaultLevel, worst_level
from carctl.core.records import replace
from carctl.core.signals import Event, EventKind, Inputs, Mode
from carctl.core.state import ControllerState


@dataclass(frozen=True, slots=True)
class ModeRules:
    car_calls: bool  # car-call buttons register calls
    landing_calls: bool  # landing buttons register calls
    cancel_car_calls: bool  # entering the mode cancels registered car calls (else the current ride is finished)
    automatic_runs: bool  # the car moves by itself to serve calls or park
    auto_close: bool  # the doors close by themselves after the dwell (else only on the door-close button)
    park_open: bool  # park with the doors open at the recall landing (fire return, rescue)
    park_at_home: bool  # an idle car returns to its home landing (False: to the recall landing, if any)
    park_out_of_service: bool  # ... at once (no park delay), to car.out_of_service_landing if one is set
    recall_main_landing: bool  # go non-stop to the fire landing (the designated one, or the alternate)
    energy_saving: bool  # an idle car may turn its light and fan off (never in fire service or inspection)
    hold_to_run: bool  # the car moves only while an inspection button is held; any automatic run ends (inspection.py)
    rescue_run: bool  # on the battery: one run at rescue speed to the landing the load makes easiest (rescue.py)
    # Relevel with the doors open. Not on the battery: the rope stretch as passengers leave is within the levelling
    # accuracy, and the battery-fed drive may not be able to lift that side.
    relevel: bool
    correction_runs: bool  # an untrusted position is corrected by a run to the reference mark (correction.py)
    # The hold-to-run buttons are the controller cabinet's (emergency electrical operation), not the car top's.
    hold_to_run_from_cabinet: bool = False
    # Faults that do not stop the car in this mode (they stay active, shown and latched): the electric safety devices
    # EN 81-20 5.12.1.6 lets emergency electrical operation make ineffective, as far as this controller judges them.
    bridged_faults: frozenset[Fault] = frozenset()
    # The periodic brake test may be made at an idle moment (braketest.py): in normal service only, never with a
    # mechanic, a fireman, an attendant or the rescue device in charge of the car.
    brake_test: bool = False
    # The shaft learning run moves the car (learning.py): up from the bottom terminal at the inspection speed.
    learning_run: bool = False
    # A press of the learn input may start the learning run from this mode (emergency electrical operation only:
    # the learn button is in the cabinet, and the cabinet has the car only while no one is on the car roof; no call
    # waits for it).
    learning_start: bool = False
    # The service tool may ask for a brake test in this mode (braketest.py; inspection only, as the learning run:
    # the car is the mechanic's and stands where they left it, no call waits for it).
    brake_test_on_request: bool = False


RULES: dict[Mode, ModeRules] = {
    Mode.NORMAL: ModeRules(
        car_calls=True, landing_calls=True, cancel_car_calls=False, automatic_runs=True, auto_close=True,
        park_open=False, park_at_home=True, park_out_of_service=False, recall_main_landing=False,
        energy_saving=True, hold_to_run=False, rescue_run=False, relevel=True, correction_runs=True, brake_test=True),
    Mode.INDEPENDENT: ModeRules(
        car_calls=True, landing_calls=False, cancel_car_calls=False, automatic_runs=True, auto_close=False,
        park_open=False, park_at_home=False, park_out_of_service=False, recall_main_landing=False,
        energy_saving=True, hold_to_run=False, rescue_run=False, relevel=True, correction_runs=True),
    Mode.OUT_OF_SERVICE: ModeRules(
        car_calls=False, landing_calls=False, cancel_car_calls=False, automatic_runs=True, auto_close=True,
        park_open=False, park_at_home=True, park_out_of_service=True, recall_main_landing=False,
        energy_saving=True, hold_to_run=False, rescue_run=False, relevel=True, correction_runs=True),
    Mode.FIRE: ModeRules(
        car_calls=False, landing_calls=False, cancel_car_calls=True, automatic_runs=True, auto_close=True,
        park_open=True, park_at_home=False, park_out_of_service=False, recall_main_landing=True,
        energy_saving=False, hold_to_run=False, rescue_run=False, relevel=True, correction_runs=True),
    # No automatic run of any kind: the mechanic moves the car (a correction run waits for the mode to end).
    Mode.INSPECTION: ModeRules(
        car_calls=False, landing_calls=False, cancel_car_calls=True, automatic_runs=False, auto_close=False,
        park_open=False, park_at_home=False, park_out_of_service=False, recall_main_landing=False,
        energy_saving=False, hold_to_run=True, rescue_run=False, relevel=True, correction_runs=False,
        brake_test_on_request=True),
    # On the rescue device's battery: calls cancelled, one low-speed run to the rescue landing, doors parked open;
    # no relevelling and no correction run on the battery.
    # Emergency electrical operation: as inspection, on the cabinet's buttons; the final limit bridged, so a car
    # beyond a terminal can be brought back into the shaft (inspection.py never drives it farther out). The learning
    # run starts from here: the cabinet has the car only while the car-top switch is off (no one is on the roof).
    Mode.EMERGENCY_ELECTRICAL: ModeRules(
        car_calls=False, landing_calls=False, cancel_car_calls=True, automatic_runs=False, auto_close=False,
        park_open=False, park_at_home=False, park_out_of_service=False, recall_main_landing=False,
        energy_saving=False, hold_to_run=True, rescue_run=False, relevel=False, correction_runs=False,
        hold_to_run_from_cabinet=True, bridged_faults=frozenset({Fault.SHAFT_LIMIT}), learning_start=True),
    Mode.RESCUE: ModeRules(
        car_calls=False, landing_calls=False, cancel_car_calls=True, automatic_runs=True, auto_close=False,
        park_open=True, park_at_home=False, park_out_of_service=False, recall_main_landing=False,
        energy_saving=False, hold_to_run=False, rescue_run=True, relevel=False, correction_runs=False),
    # The shaft learning run, from emergency electrical operation: no calls, doors closed, one run up the shaft at
    # inspection speed; no fault bridged (the final limit is judged on the count again).
    Mode.LEARNING: ModeRules(
        car_calls=False, landing_calls=False, cancel_car_calls=True, automatic_runs=False, auto_close=False,
        park_open=False, park_at_home=False, park_out_of_service=False, recall_main_landing=False,
        energy_saving=False, hold_to_run=False, rescue_run=False, relevel=False, correction_runs=False,
        learning_run=True),
}


def follow_requests(state: ControllerState, inputs: Inputs, events: list[Event]) -> ControllerState:
    """The mode after this tick's request and the drive's on-battery signal."""
    request = inputs.mode_request
    if request is not None and request is not state.mode:
        if state.mode is Mode.RESCUE and not RULES[request].hold_to_run:
            state = replace(state, resume_mode=request)  # taken up when the mains return
        else:
            state = change_mode(state, request, inputs.tick, events)
    if inputs.on_battery:
        rules = RULES[state.mode]
        if state.mode is not Mode.RESCUE and not rules.hold_to_run and not rules.learning_run:
            state = change_mode(state, Mode.RESCUE, inputs.tick, events)
    elif state.mode is Mode.RESCUE:
        state = change_mode(state, state.resume_mode, inputs.tick, events)
    return state


def stop_now(state: ControllerState) -> bool:
    """A stop-at-once fault holds the car: one its mode does not bridge (ModeRules.bridged_faults)."""
    faults = stopping_faults(state)
    return bool(faults) and worst_level(faults) >= FaultLevel.STOP_NOW


def stopping_faults(state: ControllerState) -> frozenset[Fault]:
    """The active faults the supervisor acts on in this mode: all, but for those the mode bridges."""
    bridged = RULES[state.mode].bridged_faults
    return state.faults - bridged if bridged and state.faults else state.faults


def change_mode(state: ControllerState, mode: Mode, tick: int, events: list[Event]) -> ControllerState:
    rules = RULES[mode]
    events.append(Event(EventKind.MODE_CHANGED, tick, -1, f"{state.mode.value}->{mode.value}"))
    calls = call_registry.withdraw(state.calls, tick, not rules.cancel_car_calls, rules.landing_calls,
                                   mode.value, events)
    resume = state.mode if mode is Mode.RESCUE else state.resume_mode
    return replace(state, mode=mode, calls=calls, park_tick=-1, fire_alternate=False, resume_mode=resume,
                   rescue_landing=-1, rescued=False, hold_to_run_armed=False)


def start_learning(state: ControllerState, tick: int, events: list[Event]) -> ControllerState:
    """The learning run takes the car (learning.py has checked that it may)."""
    return change_mode(state, Mode.LEARNING, tick, events)


def end_learning(state: ControllerState, tick: int, events: list[Event],
                 back_to: Mode = Mode.EMERGENCY_ELECTRICAL) -> ControllerState:
    """The learning run is over (learned, refused or interrupted): back to the mode it started from (its switch is
    still on), the car the technician's again."""
    return change_mode(state, back_to, tick, events)


def watch_fire(ctx: Context, state: ControllerState, inputs: Inputs, rules: ModeRules,
               events: list[Event]) -> ControllerState:
    """Fire return avoids the designated landing once its detector has been seen active."""
    if (rules.recall_main_landing and not state.fire_alternate
            and ctx.building.designated_fire_landing in inputs.fire_detected):
        alternate = ctx.building.alternate_fire_landing
        events.append(Event(EventKind.RECALL_CHANGED, inputs.tick, alternate, "designated landing on fire"))
        return replace(state, fire_alternate=True)
    return state


def recall_landing(ctx: Context, state: ControllerState, rules: ModeRules) -> int | None:
    """Where the mode sends the car non-stop: the fire landing, or the rescue landing once chosen."""
    if not rules.recall_main_landing:
        return state.rescue_landing if rules.rescue_run and state.rescue_landing >= 0 else None
    building = ctx.building
    return building.alternate_fire_landing if state.fire_alternate else building.designated_fire_landing


__all__ = ["RULES", "ModeRules", "change_mode", "end_learning", "follow_requests", "recall_landing", "start_learning",
           "stop_now", "stopping_faults", "watch_fire"]
