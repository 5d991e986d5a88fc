"""Skipping idle ticks must give exactly the result of stepping every tick."""

import copy
import io
import itertools

import pytest

from carctl.core.signals import EventKind
from sim.lockstep import Lockstep
from sim.physics import DOOR_TRAVEL_UNITS, Actuators, Shaft
from sim.scenario import Scenario, from_dict

TIMING_KEYS = {"wall_seconds", "stepped_ticks", "skipped_ticks"}


def comparable(report: dict) -> dict:
    return {key: value for key, value in report.items() if key not in TIMING_KEYS}


@pytest.mark.slow
def test_skipping_idle_ticks_changes_nothing_over_a_seeded_half_day() -> None:
    """Midnight to noon of the residential pattern: the night's idle hours and the morning peak (stepping all of it
    is most of this test's time; the golden replay covers a whole day)."""
    scenario = from_dict({"traffic": {"duration_s": 43200.0, "seed": 2026}})
    skipped = Lockstep(scenario, skip_idle=True).run()
    stepped = Lockstep(scenario, skip_idle=False).run()
    assert skipped["skipped_ticks"] > 0.8 * (skipped["stepped_ticks"] + skipped["skipped_ticks"])
    assert stepped["skipped_ticks"] == 0
    assert skipped["passengers_served"] > 200
    assert comparable(skipped) == comparable(stepped)


def test_a_steady_shafts_door_advanced_at_once_is_the_door_advanced_tick_by_tick() -> None:
    """Shaft.advance_steady(commands, n) moves the door in closed form (_advance_door): for every door position
    about the limits and in between, every door command (open, close, slow, nudge, both, neither), the car in and
    out of the door zone, the lock counting or not and the door jammed, n steps at once leave the shaft exactly as n
    single steps do, and as n calls of update() with the drive idle."""
    config = from_dict({}).controller
    rates = Shaft(config)
    positions = sorted({0, 1, rates.door_rate_close - 1, rates.door_rate_close, rates.door_rate_open + 1,
                        DOOR_TRAVEL_UNITS // 2, DOOR_TRAVEL_UNITS - rates.door_rate_open,
                        DOOR_TRAVEL_UNITS - 1, DOOR_TRAVEL_UNITS})
    outputs = [(False, False, False, False), (True, False, False, False), (False, True, False, False),
               (False, True, False, True), (False, True, True, False), (True, True, False, False)]
    compared = moved = 0
    for units, door, in_zone, lock_count, jammed in itertools.product(
            positions, outputs, (True, False), (0, 2, rates.lock_ticks), (False, True)):
        commands = Actuators(False, False, 0.0, False, *door)
        for ticks in (1, 2, 3, 7, 40, 400):
            shaft = Shaft(config)
            shaft.door_units, shaft._zone, shaft.lock_count = units, in_zone, lock_count
            shaft.door_motion = 1 if door[0] and units else 0
            if jammed:
                shaft.injected.add("door_jam")
            assert shaft.is_steady(commands)
            by_tick, by_update = copy.deepcopy(shaft), copy.deepcopy(shaft)
            for _ in range(ticks):
                by_tick.advance_steady(commands)
                by_update.update(commands)
            shaft.advance_steady(commands, ticks)
            assert vars(shaft) == vars(by_tick) == vars(by_update), (units, door, in_zone, lock_count, jammed, ticks)
            compared += 1
            moved += shaft.door_units != units
    assert moved > 500 and compared > 3000


def test_skipping_gives_the_same_trace_with_faults_and_obstructions() -> None:
    scenario = from_dict({
        "traffic": {"duration_s": 1800.0, "seed": 5, "rate_pct_per_5min": 12.0},
        "events": [
            {"t_s": 100.0, "type": "obstruct", "duration_s": 30.0},
            {"t_s": 300.0, "type": "fault", "kind": "door_jam"},
            {"t_s": 420.0, "type": "clear_fault", "kind": "door_jam"},
            {"t_s": 700.0, "type": "accessible_call", "landing": 3},
            {"t_s": 900.0, "type": "mode", "mode": "out_of_service"},
            {"t_s": 1000.0, "type": "mode", "mode": "normal"},
            # The rescue device takes over 3 s after the mains fail, whether or not the car is idle.
            {"t_s": 1200.0, "type": "fault", "kind": "power_loss"},
            {"t_s": 1290.0, "type": "clear_fault", "kind": "power_loss"},
            {"t_s": 1400.0, "type": "fault", "kind": "position_lost"},
            {"t_s": 1500.0, "type": "controller_restart"},
        ],
    })
    traces = []
    reports = []
    for skip in (True, False):
        buffer = io.StringIO()
        reports.append(comparable(Lockstep(scenario, skip_idle=skip, trace=buffer, trace_every=7).run()))
        traces.append(buffer.getvalue())
    assert reports[0] == reports[1]
    assert traces[0] == traces[1]
    assert traces[0].count("\n") > 1800.0 / 0.02 / 7 * 0.99
    assert '"mode": "rescue"' in traces[0] and '"phase": "correcting"' in traces[0]


def test_skipping_an_idle_car_through_a_power_failure_gives_the_same_trace() -> None:
    """The idle car's ticks are skipped up to the moment the rescue device takes over, not past it."""
    scenario = from_dict({
        "traffic": {"pattern": "none", "duration_s": 400.0, "drain_s": 0.0},
        "events": [{"t_s": 100.0, "type": "fault", "kind": "power_loss"},
                   {"t_s": 250.0, "type": "clear_fault", "kind": "power_loss"}],
    })
    traces = []
    skipped = []
    for skip in (True, False):
        buffer = io.StringIO()
        skipped.append(Lockstep(scenario, skip_idle=skip, trace=buffer).run()["skipped_ticks"])
        traces.append(buffer.getvalue())
    assert skipped[0] > 10_000 and skipped[1] == 0 and traces[0] == traces[1]
    assert '"mode": "rescue"' in traces[0] and '"door": "open"' in traces[0]


def test_same_seed_same_result_and_different_seed_differs() -> None:
    def run(seed: int) -> dict:
        return comparable(Lockstep(from_dict({"traffic": {"duration_s": 1800.0, "seed": seed}})).run())

    assert run(3) == run(3)
    assert run(3) != run(4)


def test_default_run_reports_every_contract_key() -> None:
    report = Lockstep(Scenario()).run()
    for key in ("passengers_generated", "passengers_served", "worst_5min_mean_wait_s", "trips", "door_cycles",
                "safety_violations", "faults", "sim_seconds", "wall_seconds"):
        assert key in report
    for key in ("wait_s", "transit_s", "time_to_destination_s"):
        assert set(report[key]) == {"mean", "p95", "max"}
    assert set(report["levelling_error_mm"]) == {"max", "mean"}
    assert report["safety_violations"] == 0
    assert report["passengers_served"] == report["passengers_generated"] > 5
    assert report["levelling_error_mm"]["max"] <= 5.0


def test_an_alarm_in_the_simulated_car_skipped_or_stepped() -> None:
    """A rider holds the alarm button in a closed car (out it goes), the rescuer resets it; then holds it at open
    doors (held back, logged): the same whether the lockstep skips idle ticks or steps every one."""
    scenario = from_dict({
        "traffic": {"pattern": "none", "duration_s": 60.0, "drain_s": 0.0},
        "events": [
            {"t_s": 5.0, "type": "alarm", "duration_s": 0.5},  # a brush: nothing
            {"t_s": 10.0, "type": "alarm", "duration_s": 2.0},
            {"t_s": 20.0, "type": "alarm_reset"},
            {"t_s": 30.0, "type": "door_open_button"},
            {"t_s": 32.0, "type": "alarm", "duration_s": 2.0},
        ],
    })
    reports = [Lockstep(scenario, skip_idle=skip).run() for skip in (True, False)]
    for report in reports:
        assert (report["alarm_presses"], report["alarms"], report["alarms_filtered"]) == (3, 1, 1)
    assert comparable(reports[0]) == comparable(reports[1])


def test_an_alarm_outlives_a_controller_restart_until_the_reset() -> None:
    scenario = from_dict({
        "traffic": {"pattern": "none", "duration_s": 40.0, "drain_s": 0.0},
        "events": [{"t_s": 5.0, "type": "alarm", "duration_s": 2.0}, {"t_s": 15.0, "type": "controller_restart"}],
    })
    # Answered by the simulated rescue centre before the restart, and the call (the modem's, which a controller
    # restart does not touch) still up: the alarm comes back and stands, connected, until the reset.
    assert Lockstep(scenario).run()["alarm_at_end"] == "voice_connected"
    reset = from_dict({**{"traffic": {"pattern": "none", "duration_s": 40.0, "drain_s": 0.0}},
                       "events": [{"t_s": 5.0, "type": "alarm", "duration_s": 2.0},
                                  {"t_s": 15.0, "type": "controller_restart"}, {"t_s": 25.0, "type": "alarm_reset"}]})
    assert Lockstep(reset).run()["alarm_at_end"] == "idle"


def test_the_alarm_is_transmitted_through_the_simulated_line_and_the_lamps_follow() -> None:
    from carctl.core.signals import EventKind

    scenario = from_dict({"traffic": {"pattern": "none", "duration_s": 20.0, "drain_s": 0.0},
                          "events": [{"t_s": 2.0, "type": "alarm", "duration_s": 1.5}]})
    for skip in (True, False):
        lockstep = Lockstep(scenario, skip_idle=skip, keep_events=True)
        lockstep.run()
        assert lockstep.event_log is not None
        alarm = [(e.tick, e.detail) for e in lockstep.event_log if e.kind is EventKind.ALARM]
        assert [detail for _, detail in alarm] == ["requested", "voice_connected"]
        requested_tick, connected_tick = alarm[0][0], alarm[1][0]
        # The press (1 s), then the AT exchange and the rescue centre's answer (0.5 s): well within 2 s.
        assert (connected_tick - requested_tick) * lockstep.period_s < 2.0
        assert lockstep.alarm_line.modem.dialled == ["+8653281234567"]
        assert lockstep.commands.alarm_transmitted_lamp and lockstep.commands.alarm_voice_lamp


def test_a_low_alarm_battery_is_shown_and_clears_when_replaced() -> None:
    scenario = from_dict({"traffic": {"pattern": "none", "duration_s": 20.0, "drain_s": 0.0},
                          "events": [{"t_s": 2.0, "type": "fault", "kind": "alarm_battery"},
                                     {"t_s": 10.0, "type": "clear_fault", "kind": "alarm_battery"}]})
    lockstep = Lockstep(scenario, keep_events=True)
    report = lockstep.run()
    assert lockstep.event_log is not None
    details = [(e.kind.value, e.detail.split(":")[0]) for e in lockstep.event_log if "fault" in e.kind.value]
    assert details == [("fault_raised", "alarm_battery"), ("fault_cleared", "alarm_battery")]
    assert report["passengers_served"] == 0 and not report["active_faults"]


def test_a_scenarios_rescue_centre_busy_on_the_first_line_and_a_dead_module() -> None:
    """The scenario's `rescue` event and `modem_dead` fault, skipped or stepped alike: the first line busy, the
    second answers; a dead module leaves the next alarm requested, shown as alarm_modem_dead, until it answers."""
    scenario = from_dict({
        # Long enough for the round after the module's return: the backoff has doubled while it was dead.
        "traffic": {"pattern": "none", "duration_s": 240.0, "drain_s": 0.0},
        "events": [
            {"t_s": 1.0, "type": "rescue", "action": "busy", "number": "+8653281234567"},
            {"t_s": 2.0, "type": "alarm", "duration_s": 1.5},
            {"t_s": 10.0, "type": "alarm_reset"},
            {"t_s": 12.0, "type": "rescue", "action": "answer"},
            {"t_s": 12.0, "type": "fault", "kind": "modem_dead"},
            {"t_s": 15.0, "type": "alarm", "duration_s": 1.5},
            {"t_s": 60.0, "type": "clear_fault", "kind": "modem_dead"},
        ],
    })
    reports = []
    for skip in (True, False):
        lockstep = Lockstep(scenario, skip_idle=skip, keep_events=True)
        reports.append(lockstep.run())
        assert lockstep.event_log is not None
        alarms = [(e.tick * lockstep.period_s, e.detail) for e in lockstep.event_log if e.kind is EventKind.ALARM]
        assert [detail for _, detail in alarms] == ["requested", "voice_connected", "cancelled", "requested",
                                                    "voice_connected"]
        assert alarms[4][0] > 60.0  # only once the module answers again
        raised = [e.tick * lockstep.period_s for e in lockstep.event_log
                  if e.kind is EventKind.FAULT_RAISED and e.detail.startswith("alarm_modem_dead")]
        assert len(raised) == 1 and 16.5 < raised[0] < 60.0
        assert lockstep.alarm_line.modem.dialled[:2] == ["+8653281234567", "053280001111"]
    assert comparable(reports[0]) == comparable(reports[1])
def test_skipping_gives_the_same_trace_with_brake_contacts_and_periodic_brake_tests() -> None:
    """The idle car's ticks are skipped up to each brake test and to each brake contact's limit, not past them."""
    scenario = from_dict({
        "car": {"brake_contacts": 2, "brake_test_every_h": 0.25},
        "physics": {"brake_contacts": 2},
        "traffic": {"duration_s": 2700.0, "seed": 11, "rate_pct_per_5min": 4.0},
        "events": [{"t_s": 1700.0, "type": "fault", "kind": "weak_brake"}],
    })
    traces = []
    reports = []
    for skip in (True, False):
        buffer = io.StringIO()
        reports.append(comparable(Lockstep(scenario, skip_idle=skip, trace=buffer, trace_every=5).run()))
        traces.append(buffer.getvalue())
    assert reports[0] == reports[1] and traces[0] == traces[1]
    assert [fault["kind"] for fault in reports[0]["faults"]] == ["brake_slipping"]


def test_a_commissioning_request_reaches_the_core_for_one_tick_through_the_shared_sense_step() -> None:
    """The service tool's request (Inputs.commission) passes through the lockstep's sense step as through the
    firmware's loop: none unless set, and set for one tick only. A brake test asked for in inspection is held by the
    simulated drive and passes; asked for in normal service it is refused, with the reason."""
    from carctl.core.signals import Commissioning, EventKind

    scenario = from_dict({"traffic": {"pattern": "none", "duration_s": 30.0, "drain_s": 0.0},
                          "events": [{"t_s": 10.0, "type": "mode", "mode": "inspection"}]})
    lockstep = Lockstep(scenario, keep_events=True)
    lockstep.advance(round(8.0 / lockstep.period_s))
    lockstep.pending.commission = Commissioning.BRAKE_TEST
    lockstep.advance(lockstep.tick + 1)
    assert lockstep.pending.commission is None, "a one-tick input"
    lockstep.advance(round(12.0 / lockstep.period_s))
    lockstep.pending.commission = Commissioning.BRAKE_TEST
    lockstep.advance(round(20.0 / lockstep.period_s))
    assert lockstep.event_log is not None
    details = [e.detail for e in lockstep.event_log if e.kind is EventKind.BRAKE_TEST]
    assert details == ["refused:not_in_inspection", "started", "passed:0"], details
