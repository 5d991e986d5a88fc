"""The shaft learning run: the landings' true heights measured by the drive's count, from the door-zone vanes.

Rules of this module:
- Started by a press of the learn input (the cabinet's learn button, a level: its rising edge), or by the service
  tool's request (Inputs.commission, one snapshot: the same rules, and "refused:under_way" while a run is under way),
  in a mode that allows it (ModeRules.learning_start: emergency electrical operation, where the cabinet has the
  car), with the car standing at the bottom terminal: in the door zone, below the reference mark, the count
  referenced, doors closed and locked, no stop-at-once fault. Anything else is refused with the reason (a LEARNING
  event); nothing moves. In inspection the press is refused (car_top_inspection): the car-top switch says a mechanic
  may be on the roof, and he is never moved from below.
- The run (mode learning, ModeRules.learning_run) goes up at the inspection speed to the top terminal, recording
  every edge of the door-zone sensor (vanes or magnets at each landing) and of the terminal slowdown switches by the
  count, each at the middle of the tick that saw it change. It stops level with the middle of the top landing's
  vane (the one within a door zone of the typed top landing: the top is not found by counting vanes), and never
  farther than the typed top landing plus half the overtravel (the final limit is judged on the typed table);
  with no vane there, at the typed top landing.
- A landing is the middle of its vane; a terminal landing, whose vane the car cannot pass through, is its one edge
  and half the vane length measured at the other landings. The bottom landing is the count's zero (the drive's
  reference mark sets it): learned farther from it than the levelling accuracy is refused.
- Refused, nothing learned, when the vane count differs from the configured landings, when the run ends outside a
  vane (the top vane passed below the typed top), when two vanes are closer than they can be (run together, or a
  gap too narrow to tell them apart), when a landing is learned farther from its typed height than
  building.learned_tolerance_m (a vane at the wrong place), or when the run is interrupted: a mode change, a
  stop-at-once fault, doors that open, a silent car-top board, a lost count, or a run longer than a whole shaft at
  inspection speed. The car stops; the mode returns to the one the run started from.
- The drive is judged as in the hold-to-run moves: far faster than the inspection speed is speed_deviation
  (inspection.running_away), a count that does not follow the drive's speed reading is position_tracking
  (countwatch.py); both stop the car at once and end the run.
- The result is the state's ``learned`` table, announced by a LEARNING event "done:..."; the runtime writes it (the
  core does no I/O) and builds the next configuration from it.
"""

from __future__ import annotations

import math

from carctl.core import countwatch, motion
from carctl.core.config import BuildingConfig, ConfigError, ControllerConfig
from carctl.core.context import Context
from carctl.core.faults import Fault
from carctl.core.inspection import running_away
from carctl.core.learned import LearnedTable, LearningRun
from carctl.core.modes import RULES, ModeRules, end_learning, start_learning, stop_now
from carctl.core.phases import HOLD, Cue, DriveRequest, Phase, enter
from carctl.core.records import replace
from carctl.core.signals import Commissioning, Direction, Event, EventKind, Inputs
from carctl.core.state import ControllerState

# A vane may be this much longer than two door zones (the vanes are cut to the unlocking zone): longer, and two vanes
# have run together.
VANE_LENGTH_TOLERANCE_M = 0.05
# The narrowest gap between two vanes the run tells apart at inspection speed (about ten ticks at 0.25 m/s); closer
# vanes, or landings closer than two door zones, cannot both be landings of a passenger lift.
MIN_VANE_GAP_M = 0.05
# The bottom landing is the count's zero; learned farther from it than the levelling accuracy, the drive's reference
# mark is wrong (docs/commissioning.md: correct it in the drive).
BOTTOM_FROM_ZERO_M = 0.02
# Margin on the longest the run may take: the brake, and a start.
RUN_MARGIN_S = 10.0


def learn(ctx: Context, state: ControllerState, inputs: Inputs, rules: ModeRules,
          events: list[Event]) -> ControllerState:
    """Before the phase logic: a press of the learn input starts a run or is refused; a run whose mode was left (a
    mode request this tick) is interrupted."""
    requested = inputs.commission is Commissioning.LEARNING_RUN
    pressed = inputs.learn_button and not state.learn_button_held or requested
    if inputs.learn_button is not state.learn_button_held:
        state = replace(state, learn_button_held=inputs.learn_button)
    if state.learning is not None and not rules.learning_run:
        events.append(Event(EventKind.LEARNING, inputs.tick, -1, "interrupted:mode"))
        return replace(state, learning=None)
    if not pressed:
        return state
    if state.learning is not None:
        if requested:  # the page asked: it is told why nothing new starts
            events.append(Event(EventKind.LEARNING, inputs.tick, -1, "refused:under_way"))
        return state
    why = refusal(ctx, state, inputs)
    if why:
        events.append(Event(EventKind.LEARNING, inputs.tick, -1, f"refused:{why}"))
        return state
    events.append(Event(EventKind.LEARNING, inputs.tick, -1, "started"))
    slowdown = (inputs.slowdown_top, inputs.slowdown_bottom)
    run = LearningRun(started_tick=inputs.tick, slowdown=slowdown, last_position_m=inputs.position_m,
                      started_in=state.mode)
    state = start_learning(state, inputs.tick, events)
    if state.phase is Phase.INSPECTING:
        return replace(state, learning=run, phase_tick=inputs.tick, direction=Direction.UP)
    return enter(state, Cue.HOLD_TO_RUN, inputs.tick, learning=run, direction=Direction.UP, run=None)


def refusal(ctx: Context, state: ControllerState, inputs: Inputs) -> str:
    """Why a learning run cannot start now ("" when it can)."""
    rules = RULES[state.mode]
    if not rules.learning_start:
        # The car-top station has the car: a mechanic may be on the roof, and is never moved from below.
        if rules.hold_to_run and not rules.hold_to_run_from_cabinet:
            return "car_top_inspection"
        return "not_in_emergency_electrical"
    if inputs.brake_open or inputs.drive_running or abs(inputs.speed_m_s) > 0.0 or state.settling:
        # (Settling: not yet seen at rest after a stop at once; the brake may not lift, and the run would wait in
        # HALTED with its mode taken.)
        return "car_moving"
    if stop_now(state):
        return "fault"
    if not inputs.door_locked or not inputs.door_closed_limit:
        return "doors_not_locked"
    if inputs.position_unreferenced or state.correction:
        return "position_unreferenced"
    if inputs.car_top_age_ticks > ctx.supervisor_limits.freshness.hold_to_run:
        return "car_top_silent"
    bottom_switches = (1 << len(ctx.car.terminal_switches_m)) - 1
    if (not inputs.in_door_zone or not inputs.below_reference_mark
            or inputs.slowdown_bottom & bottom_switches != bottom_switches):
        return "not_at_bottom"
    return ""


def learning(ctx: Context, state: ControllerState, inputs: Inputs, rules: ModeRules, events: list[Event],
             found: set[Fault]) -> tuple[ControllerState, DriveRequest]:
    """The run, tick by tick (the mode's phase handler): record the edges passed, go up, stop at the top vane."""
    run = state.learning
    tick = inputs.tick
    if run is None:  # the mode without a run (cannot be requested): back to the cabinet
        return end_learning(state, tick, events), HOLD
    why = _interruption(ctx, state, inputs, run)
    if why:
        return _end(state, tick, f"interrupted:{why}", events), HOLD
    if inputs.brake_open or inputs.drive_running:
        state, runaway = running_away(ctx, state, inputs, ctx.car.inspection_speed_m_s)
        if runaway:
            found.add(Fault.SPEED_DEVIATION)  # raised this tick: its stop at once is in this tick's commands
            return _end(state, tick, "interrupted:speed_deviation", events), HOLD
    run = _record(run, inputs)
    seen = vanes_seen(run)
    close = _too_close(ctx, run.edges_m)
    if close:
        return _end(replace(state, learning=run), tick, f"refused:vanes_too_close:{close}", events), HOLD
    if seen > ctx.landing_count:
        return _end(replace(state, learning=run), tick,
                    f"refused:vane_count:{seen}>{ctx.landing_count}", events), HOLD
    top_m = ctx.landings_m[-1]
    target_m = top_m
    if run.edges_m and len(run.edges_m) % 2 == 0:  # inside a vane entered on the way up
        middle_m = run.edges_m[-1] + _half_vane_m(ctx, run.edges_m)
        if abs(middle_m - top_m) <= ctx.building.door_zone_m:
            # The top landing's vane (one nearer the typed top than a door zone): stop level with its middle. Any
            # other vane, however many have been counted, is passed: the top is not found by counting.
            target_m = min(top_m + ctx.building.overtravel_m / 2, middle_m)
    remaining_m = target_m - inputs.position_m
    state, lost = countwatch.watch(ctx, state, inputs, asking=remaining_m > ctx.car.level_tolerance_m)
    if lost:
        found.add(Fault.POSITION_TRACKING)  # the count cannot say where the car is, nor stop it at the top
        return _end(countwatch.resting(state), tick, "interrupted:position_tracking", events), HOLD
    moving = inputs.brake_open or inputs.drive_running
    if remaining_m > ctx.car.level_tolerance_m:
        speed_m_s = motion.levelling_speed_m_s(remaining_m, ctx.car.inspection_speed_m_s, ctx.car.position_gain_per_s)
        return replace(state, learning=run), DriveRequest(Direction.UP, speed_m_s)
    if moving:
        return replace(state, learning=run), HOLD
    state = replace(state, learning=run)
    if seen != ctx.landing_count:
        return _end(state, tick, f"refused:vane_count:{seen}!={ctx.landing_count}", events), HOLD
    if len(run.edges_m) % 2:
        # Stopped outside any vane: the top vane (if fitted) was passed on the way, counted as a landing below the
        # top, and the top landing has none where the typed table says.
        return _end(state, tick, "refused:vane_count:no_top_vane", events), HOLD
    table = table_from(ctx, run)
    bottom_m = table.landings_m[0]
    if abs(bottom_m) > BOTTOM_FROM_ZERO_M:
        return _end(state, tick, f"refused:bottom_off_zero:{bottom_m:.3f}", events), HOLD
    table = replace(table, landings_m=(0.0,) + table.landings_m[1:])
    far = far_from_typed(ctx.building, table.landings_m)
    if far:
        return _end(state, tick, f"refused:far_from_typed:{far}", events), HOLD
    detail = "done:" + ",".join(f"{height:.4f}" for height in table.landings_m)
    return _end(replace(state, learned=table), tick, detail, events), HOLD


def vanes_seen(run: LearningRun) -> int:
    """The vanes the run has found so far: the bottom one it starts in, then each one entered on the way up."""
    return 1 + len(run.edges_m) // 2


def table_from(ctx: Context, run: LearningRun) -> LearnedTable:
    """The landings from the edges of a complete run (one edge of each terminal vane, both of the others)."""
    edges = run.edges_m
    half_m = _half_vane_m(ctx, edges)
    vanes: list[tuple[float | None, float | None]] = [(None, edges[0])]
    vanes += [(edges[index], edges[index + 1]) for index in range(1, len(edges) - 1, 2)]
    vanes.append((edges[-1], None))
    landings = [edges[0] - half_m]
    landings += [(lower + upper) / 2 for lower, upper in vanes[1:-1] if lower is not None and upper is not None]
    landings.append(edges[-1] + half_m)
    return LearnedTable(landings_m=tuple(round(height, 4) for height in landings),
                        vane_edges_m=tuple((_rounded(lower), _rounded(upper)) for lower, upper in vanes),
                        switch_edges=run.switch_edges)


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _half_vane_m(ctx: Context, edges: tuple[float, ...]) -> float:
    """Half the vane length, measured on the vanes passed through (the door zone where none has been)."""
    lengths = [edges[index + 1] - edges[index] for index in range(1, len(edges) - 1, 2)]
    return sum(lengths) / len(lengths) / 2 if lengths else ctx.building.door_zone_m


def _too_close(ctx: Context, edges: tuple[float, ...]) -> str:
    """Which vanes are closer than landings can be ("" none): a vane longer than two door zones is two vanes run
    together; a gap narrower than MIN_VANE_GAP_M cannot be told apart."""
    longest_m = 2 * ctx.building.door_zone_m + VANE_LENGTH_TOLERANCE_M
    for index in range(len(edges) - 1):
        vane = (index + 1) // 2  # edges[index] ends vane ``vane`` (odd index: begins it)
        length_m = edges[index + 1] - edges[index]
        if index % 2 == 0 and length_m < MIN_VANE_GAP_M:
            return f"{vane}-{vane + 1}"
        if index % 2 == 1 and length_m > longest_m:
            return f"{vane}-{vane + 1}"
    return ""


def _record(run: LearningRun, inputs: Inputs) -> LearningRun:
    """The edges passed since the last tick, each at the middle of the tick's travel (the sensor changed somewhere
    between the two readings)."""
    position_m = inputs.position_m
    at_m = round((run.last_position_m + position_m) / 2, 4)
    changes: dict[str, object] = {"last_position_m": position_m}
    if inputs.in_door_zone is not run.in_zone:
        changes["in_zone"] = inputs.in_door_zone
        changes["edges_m"] = run.edges_m + (at_m,)
    slowdown = (inputs.slowdown_top, inputs.slowdown_bottom)
    if slowdown != run.slowdown:
        passed = list(run.switch_edges)
        for terminal, now, before in (("top", slowdown[0], run.slowdown[0]), ("bottom", slowdown[1], run.slowdown[1])):
            changed = now ^ before
            bit = 0
            while changed >> bit:
                if changed >> bit & 1:
                    passed.append((f"{terminal}.{bit}", "on" if now >> bit & 1 else "off", at_m))
                bit += 1
        changes["slowdown"] = slowdown
        changes["switch_edges"] = tuple(passed)
    return replace(run, **changes)  # type: ignore[arg-type]


def _interruption(ctx: Context, state: ControllerState, inputs: Inputs, run: LearningRun) -> str:
    car = ctx.car
    if stop_now(state):
        return "fault"
    if not inputs.door_locked or not inputs.door_closed_limit:
        return "doors"
    if inputs.car_top_age_ticks > ctx.supervisor_limits.freshness.hold_to_run:
        return "car_top_silent"
    if inputs.position_unreferenced:
        return "position_unreferenced"
    shaft_m = ctx.landings_m[-1] - ctx.landings_m[0]
    longest = round((shaft_m / car.inspection_speed_m_s + car.start_timeout_s + RUN_MARGIN_S) / car.control_period_s)
    if inputs.tick - run.started_tick > longest:
        return "timeout"
    return ""


def _end(state: ControllerState, tick: int, detail: str, events: list[Event]) -> ControllerState:
    """The run is over (learned, refused or interrupted): the car stops and is the technician's again, in the mode the
    run started from."""
    events.append(Event(EventKind.LEARNING, tick, -1, detail))
    run = state.learning
    state = replace(state, learning=None)
    if run is None or run.started_in is None:
        return end_learning(state, tick, events)
    return end_learning(state, tick, events, run.started_in)



def far_from_typed(building: BuildingConfig, landings_m: tuple[float, ...]) -> str:
    """The first landing farther from its typed height than building.learned_tolerance_m, as "<index>:<off m>"
    ("" none): a vane fitted at the wrong place, or a table some other shaft learned."""
    for index, (learned_m, typed_m) in enumerate(zip(landings_m, building.landings_m)):
        if abs(learned_m - typed_m) > building.learned_tolerance_m:
            return f"{index}:{learned_m - typed_m:+.3f}"
    return ""


def landings_from_detail(detail: str) -> tuple[float, ...] | None:
    """The landing heights of a LEARNING event "done:..." (None for any other detail, or one that does not parse)."""
    if not detail.startswith("done:"):
        return None
    try:
        heights = tuple(float(part) for part in detail[5:].split(","))
    except ValueError:
        return None
    return heights if all(math.isfinite(height) for height in heights) else None


def with_learned_landings(config: ControllerConfig, landings_m: tuple[float, ...]) -> ControllerConfig:
    """The configuration with the learned landings in place of the typed ones; ConfigError if they are not a table a
    learning run of this shaft could have given: their count, the bottom at the count's zero, each landing within
    building.learned_tolerance_m of its typed height, their order and the door zones between them."""
    building = config.building
    if len(landings_m) != building.landing_count:
        raise ConfigError("building.landings_m", f"learned {len(landings_m)} landings, the building has "
                                                 f"{building.landing_count}")
    if abs(landings_m[0]) > BOTTOM_FROM_ZERO_M:
        raise ConfigError("building.landings_m", f"learned bottom landing at {landings_m[0]:.3f} m: the bottom landing "
                                                 f"is the count's zero (the drive's reference mark)")
    far = far_from_typed(building, landings_m)
    if far:
        index, off = far.split(":")
        raise ConfigError("building.learned_tolerance_m",
                          f"learned landing {index} is {off} m from its typed height, more than "
                          f"{building.learned_tolerance_m} m: a table from another shaft, or a vane out of place")
    return replace(config, building=replace(config.building, landings_m=tuple(landings_m)))


__all__ = ["BOTTOM_FROM_ZERO_M", "MIN_VANE_GAP_M", "VANE_LENGTH_TOLERANCE_M", "LearnedTable", "LearningRun",
           "far_from_typed", "landings_from_detail", "learn", "learning", "refusal", "table_from", "vanes_seen",
           "with_learned_landings"]
