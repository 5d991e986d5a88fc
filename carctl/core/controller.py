"""step(state, inputs) -> (state, commands, events): the whole car controller, composed of the core modules.

Rules of this module:
- Pure: the same state and inputs give the same outputs, bit for bit. Time is the tick in the inputs; every timer is
  a deadline tick kept in the state, and the tick is used only to compare against those deadlines or to sample the
  running profile. So a car that is standing and waiting returns its state unchanged (the same object), which is
  what lets the lockstep simulator skip idle ticks without changing the result (next_deadline_tick()).
- Order within a tick: the mode (modes.py; then the learn input or the service tool's request, learning.py), the
  standstill watch (standstill.py), fault detection, the brake contacts (brake.py), the brake test's standing faults
  (braketest.py) and the input watch (supervisor.py, watch.py), the supervisor raising and clearing faults (the
  reset key's or the service tool's reset), access and call registration (access.py, calls.py), the brake test
  asked for by the service tool, then the brake test when one is due or under way (braketest.py; while it lasts,
  and at a landing until the drive no longer reports its test torque, no phase handler runs), the phase logic (one
  handler per phase, HANDLERS; inspection.py where the mode is hold-to-run, learning.py in the learning run), the
  faults the logic found, the entrapment watch (on the state after the logic), energy saving, the commands
  (outputs.py), then the supervisor's last word on them (enforce); a quick stop among them starts the car settling
  (standstill.py).
- This module only composes. Each behaviour lives in its own module: the phase table in phases.py, standing and
  relevelling in landing.py, runs in travel.py, HALTED in recovery.py, the correction run in correction.py, rescue
  in rescue.py, the doors in doorway.py (the door machine itself in door.py; a rear door's readings reduced to the
  landing's doorway first, and its commands split between the sides after, in sides.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from carctl.core import (access, alarm, brake, braketest, correction, energy, inspection, landing, learning, outputs,
                         recovery, rescue, sides, standstill, travel, watch)
from carctl.core import calls as call_registry
from carctl.core.config import ControllerConfig
from carctl.core.context import Context
from carctl.core.cruise import Cruise, cruise
from carctl.core.door import DoorPhase
from carctl.core.faults import Fault
from carctl.core.faults import latched as latched_among
from carctl.core.modes import RULES, ModeRules, follow_requests, stop_now, stopping_faults, watch_fire
from carctl.core.phases import HOLD, Cue, DriveRequest, Phase, Run, enter
from carctl.core.records import replace
from carctl.core.signals import AlarmPhase, Commands, Commissioning, Event, Inputs
from carctl.core.state import ControllerState, kept_alarm, latched_faults
from carctl.core.supervisor import detect, enforce, update_faults

# A phase handler: the state after this tick's logic, and what it asks of the drive. It adds to ``found`` any fault
# condition it finds; the supervisor raises it.
Handler = Callable[[Context, ControllerState, Inputs, ModeRules, list[Event], set[Fault]],
                   tuple[ControllerState, DriveRequest]]

HANDLERS: dict[Phase, Handler] = {
    Phase.STANDING: landing.standing,
    Phase.STARTING: travel.starting,
    Phase.RUNNING: travel.running,
    Phase.STOPPING: travel.stopping,
    Phase.RELEVELLING: landing.relevelling,
    Phase.CORRECTING: correction.correcting,
    Phase.HALTED: recovery.halted,
    # Outside a hold-to-run mode a car left INSPECTING is handled as HALTED: it recovers to a landing.
    Phase.INSPECTING: recovery.halted,
}


class Controller:
    """Holds the configuration; step() is a pure function of (state, inputs)."""

    def __init__(self, config: ControllerConfig) -> None:
        self.config = config
        self.context = Context.from_config(config)
        self.timing = self.context.timing
        self.supervisor_limits = self.context.supervisor_limits
        self.landings_m = self.context.landings_m
        self.landing_count = self.context.landing_count

    def initial_state(self, position_m: float = 0.0, latched: Iterable[Fault] | None = frozenset(),
                      alarm: AlarmPhase = AlarmPhase.IDLE) -> ControllerState:
        """After power-up the car is HALTED until the inputs show it safe; then it recovers to the nearest landing.

        ``latched``: the latched faults restored from the record the runtime keeps (latched_faults() of the state
        before the restart). The first step raises them, one FAULT_RAISED event each, so they hold the car from its
        first commands; like any latched fault they stay until a deliberate reset with their condition gone. Only
        faults that latch are taken. None means the record could not be read: a latched fault may be hidden, so
        LATCH_RECORD_UNREADABLE (stop at once, latched) stands in for it, never "no faults".

        ``alarm``: the alarm kept in the same record (kept_alarm() of the state before): still active, until the
        rescuer's reset at the car."""
        restored = frozenset({Fault.LATCH_RECORD_UNREADABLE}) if latched is None else latched_among(latched)
        # Settling: nothing has shown the car at rest yet (it may have been moving when the controller restarted).
        return ControllerState(landing=self.context.nearest_landing(position_m), restored=restored, settling=True,
                               alarm=alarm, alarm_since_tick=0 if alarm is not AlarmPhase.IDLE else -1,
                               brake_test_due_tick=braketest.first_due_tick(self.context),
                               brake_test_overdue_tick=braketest.first_overdue_tick(self.context))

    def nearest_landing(self, position_m: float) -> int:
        return self.context.nearest_landing(position_m)

    def next_deadline_tick(self, state: ControllerState, after: int) -> int:
        """The earliest tick later than ``after`` at which an unchanged state may act on its own timers.

        A safe lower bound: the lockstep loop may skip ticks before it only when the state did not change."""
        timing = self.timing
        candidates = [state.door.deadline_tick, state.door.retry_tick, state.park_tick]
        if state.door.blocked_since_tick >= 0:
            candidates.append(state.door.blocked_since_tick + timing.nudge_after)
        if state.phase is Phase.STARTING:
            candidates.append(state.phase_tick + timing.start_timeout)
        candidates += energy.deadlines(state)
        candidates += watch.deadlines(self.context, state)
        candidates += standstill.deadlines(self.context, state)
        candidates += alarm.deadlines(self.context, state)
        candidates += brake.deadlines(self.context, state)
        candidates += braketest.deadlines(self.context, state)
        return min((tick for tick in candidates if tick > after), default=1 << 62)

    def cruise(self, state: ControllerState, inputs: Inputs, commands: Commands) -> Cruise | None:
        """After a step that took ``state`` and ``inputs`` and returned ``state`` itself and ``commands`` with no
        events: the law step() follows while only the car's motion changes, or None (cruise.py)."""
        return cruise(self.context, state, inputs, commands)

    def step(self, state: ControllerState, inputs: Inputs) -> tuple[ControllerState, Commands, tuple[Event, ...]]:
        ctx = self.context
        if ctx.rear_door:
            # Two door operators: from here on the door fields are the doorway of this landing (sides.py).
            inputs = sides.doorway(ctx.door_sides, state.landing, inputs)
        events: list[Event] = []
        tick = inputs.tick
        before = state
        rules = RULES[state.mode]
        if inputs.mode_request is not None or inputs.on_battery or rules.rescue_run:
            state = follow_requests(state, inputs, events)  # rescue ends when the battery signal does
            rules = RULES[state.mode]
        commission = inputs.commission
        if (inputs.learn_button is not state.learn_button_held or state.learning is not None
                or commission is Commissioning.LEARNING_RUN):
            state = learning.learn(ctx, state, inputs, rules, events)  # the learn input, or a run under way
            rules = RULES[state.mode]
        if inputs.position_unreferenced and not state.correction:
            state = replace(state, correction="unreferenced")
        if rules.recall_main_landing:
            state = watch_fire(ctx, state, inputs, rules, events)
        if state.settling or not inputs.brake_open:  # stopped, or stopping: is it at rest yet (standstill.py)?
            state = standstill.watch(ctx, state, inputs)

        # Fault conditions: the snapshot's, the door machine's, the input watch's; the supervisor raises them.
        found = detect(inputs, ctx.supervisor_limits, state.phase is Phase.RELEVELLING, not state.correction)
        if state.door.fault is not None:
            found.add(state.door.fault)
        if state.settling and standstill.unconfirmed(ctx, state, tick):
            found.add(Fault.STANDSTILL_UNCONFIRMED)
        if ctx.car.brake_contacts:
            state = brake.watch(ctx, state, inputs, found)
        if (state.brake_test_unanswered or inputs.brake_test_torque or state.brake_test_torque_since_tick >= 0
                or 0 <= state.brake_test_overdue_tick <= tick):
            state = braketest.watch(ctx, state, inputs, found)  # the test's unanswered, overdue, torque held on
        if state.restored:
            found |= state.restored  # the latched faults restored at start, raised on the first step
            state = replace(state, restored=frozenset())
        if inputs.alarm_button != state.alarm_pressed:
            state = watch.alarm_button(state, inputs, events)
        hall_up, hall_down = inputs.hall_up_pressed, inputs.hall_down_pressed
        if (inputs.light_curtain_blocked or state.curtain_since_tick >= 0 or hall_up or hall_down
                or state.button_streaks):  # anything for the input watch to look at
            state, hall_up, hall_down = watch.watch_inputs(ctx, state, inputs, found, events)
        faults = state.faults
        # The maintenance reset key, or the service tool's reset: the same deliberate reset.
        reset = inputs.fault_reset or commission is Commissioning.FAULT_RESET
        if found or faults:
            faults = update_faults(faults, found, reset, tick, events)
        found_before_logic = len(found)

        calls = state.calls
        car_pressed = inputs.car_calls_pressed
        if inputs.recognitions or state.authorised:
            state, car_pressed = access.authorisations(ctx, state, inputs, rules, events)
        if ctx.car.permissions_enabled and car_pressed:
            car_pressed = access.permitted(ctx, car_pressed, state.authorised, tick, events)
        if car_pressed or hall_up or hall_down:
            car = ctx.car
            calls = call_registry.register(calls, tick, ctx.landing_count, car_pressed, hall_up, hall_down,
                                           inputs.accessible_button, rules.car_calls, rules.landing_calls, events)
            calls = call_registry.apply_anti_nuisance(calls, tick, inputs.load_kg, car.anti_nuisance_car_calls,
                                                      car.anti_nuisance_load_kg, events)
        if faults is not state.faults or calls is not state.calls:
            state = replace(state, faults=faults, calls=calls)

        # The phase logic.
        phase = state.phase
        if phase is Phase.RUNNING and (calls is not before.calls or faults is not before.faults
                                       or state.mode is not before.mode
                                       or state.fire_alternate != before.fire_alternate):
            state = travel.retarget(ctx, state, inputs, rules)
        if ((state.settling or faults and stop_now(state))
                and phase is not Phase.STANDING and phase is not Phase.HALTED):
            # A stop at once, or the car found moving on its closed brake: whatever drove it is over.
            state = enter(state, Cue.STOP_NOW, tick, run=None)
        if rules.rescue_run:
            state = rescue.rescue(ctx, state, inputs, events)
        if rules.hold_to_run:
            state = inspection.end_automatic_run(state, tick)
        if commission is Commissioning.BRAKE_TEST:
            state = braketest.requested(ctx, state, inputs, rules, events)  # started, or refused with the reason
        if state.brake_test_since_tick >= 0 or 0 <= state.brake_test_due_tick <= tick:
            state = braketest.brake_test(ctx, state, inputs, rules, events, found)
        if (state.brake_test_since_tick >= 0 or inputs.brake_test_torque) and braketest.holds_the_car(state, inputs):
            drive = HOLD  # the car stands for the brake test: nothing departs, parks or opens the doors meanwhile
        elif rules.learning_run:
            state, drive = learning.learning(ctx, state, inputs, rules, events, found)
        elif rules.hold_to_run and inspection.takes_the_buttons(state):
            state, drive = inspection.inspecting(ctx, state, inputs, rules, events, found)
        else:
            state, drive = HANDLERS[state.phase](ctx, state, inputs, rules, events, found)
        if len(found) > found_before_logic:
            # The logic found a condition of its own (a run that lost its position, a correction run that found no
            # mark): raised now, so that its stop-at-once is in this tick's commands.
            state = replace(state, faults=update_faults(state.faults, found, reset, tick, events))

        if state.trapped_since_tick >= 0 or (inputs.load_kg > watch.OCCUPIED_KG and (
                not inputs.in_door_zone or state.door.fault is not None)):  # someone may be held in the car
            state = watch.watch_entrapment(ctx, state, inputs, events)
        if (inputs.alarm_button or state.alarm is not AlarmPhase.IDLE or state.alarm_held_since_tick >= 0
                or inputs.alarm_reset or inputs.alarm_test or state.alarm_prompt_until_tick >= 0):
            # (Tested inline: on the hot path a call that finds nothing to do costs more than the alarm's whole work.)
            state = alarm.watch_alarm(ctx, state, inputs, rules.rescue_run, bool(state.faults) and stop_now(state),
                                      events)
        if state.dark_tick >= 0 or state.dark or (state.phase is Phase.STANDING
                                                  and state.door.phase is DoorPhase.CLOSED):
            state = energy.energy_saving(ctx, state, inputs, rules, events)
        commands = outputs.commands(ctx, state, inputs, drive, events)
        commands = enforce(commands, stopping_faults(state), inputs, state.phase is Phase.RELEVELLING, tick, events,
                           settling=state.settling)
        if commands.quick_stop:
            state = standstill.after_commands(state, commands)
        return state, commands, tuple(events)


__all__ = ["HANDLERS", "Controller", "ControllerState", "Handler", "Phase", "Run", "kept_alarm", "latched_faults"]
