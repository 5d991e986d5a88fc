"""State and event messages for the platform, and the trapped-passenger alarm (the core's event), from a simulated
car."""

from __future__ import annotations

from dataclasses import replace

from carctl.core.config import BuildingConfig, ControllerConfig
from carctl.core.signals import AlarmPhase, Event, EventKind, Inputs
from carctl.core.state import ControllerState
from carctl.core.supervisor import Fault, SupervisorLimits
from carctl.core.watch import TRAPPED_AFTER_S
from carctl.platform.telemetry import Reporter, event_message, state_message
from carctl.protocol.loopback import event_problem
from carctl.protocol.sense import NEVER_SEEN
from sim.procedures import SimulatedCar


def now_inputs(car: SimulatedCar) -> Inputs:
    """The inputs the car sees now (the simulator skips idle ticks, so take the last ones at the current tick)."""
    inputs = car.sim._previous_inputs
    assert inputs is not None
    return replace(inputs, tick=car.sim.tick)


def test_state_message_carries_the_running_state() -> None:
    car = SimulatedCar()
    car.press_car_call(3)
    car.wait_doors("open", within_s=30, at=3)
    car.set_extra_load(315.0)
    car.run_for(0.1)
    inputs = car.sim._previous_inputs
    assert inputs is not None
    message = state_message(car.sim.state, inputs, 630.0, face_on=False, loop_lag_p99_ms=0.08, time_s=100.0)
    assert message["landing"] == 3 and message["door"] in ("open", "opening")
    assert message["load_pct"] == 50.0 and message["mode"] == "normal" and message["faults"] == []


def test_the_state_says_what_the_car_waits_for_and_never_from_a_drive_that_has_not_answered() -> None:
    limits = SupervisorLimits.from_config(ControllerConfig(building=BuildingConfig(
        landings_m=(3.0, 6.0, 9.0), population=(0, 5, 5))))
    beyond = ControllerState(faults=frozenset({Fault.SHAFT_LIMIT}))
    unanswered = Inputs(tick=1, drive_age_ticks=NEVER_SEEN, position_m=0.0)  # the placeholder: below the pit
    assert state_message(beyond, unanswered, 630.0, False, 0.1, 1.0, limits)["waiting_for"] == "maintenance_reset"
    answered = replace(unanswered, drive_age_ticks=0)
    assert state_message(beyond, answered, 630.0, False, 0.1, 1.0, limits)["waiting_for"] == (
        "emergency_electrical_operation")
    assert state_message(ControllerState(), answered, 630.0, False, 0.1, 1.0, limits)["waiting_for"] == ""


def test_fault_and_mode_events_become_platform_events_with_categories() -> None:
    car = SimulatedCar()
    car.press_car_call(4)
    car.wait_until(lambda: car.shaft.position_m > 3.0, within_s=30, what="moving")
    car.inject("drive_fault")
    car.wait_fault(Fault.DRIVE_FAULT, within_s=1.0)
    car.switch_mode("out_of_service")
    car.run_for(0.1)
    messages = [m for m in (event_message(e, 0.02, 1.0, car.shaft.drive_fault_code) for e in car.events)
                if m is not None]
    raised = next(m for m in messages if m["kind"] == "fault_raised")
    assert raised["category"] == "faults_and_alarms" and raised["fault"] == "drive_fault" and raised["code"] == 21
    assert raised["drive_code"] == 0x21  # the drive's own code: overcurrent
    assert raised["level"] == 4 and "drive" in raised["meaning"]
    mode = next(m for m in messages if m["kind"] == "mode_changed")
    assert (mode["mode_from"], mode["mode_to"], mode["category"]) == ("normal", "out_of_service", "running_state")
    assert len({m["id"] for m in messages}) == len(messages)
    assert not any(m["kind"] == EventKind.DOORS_OPEN.value for m in messages)  # the platform does not need those


def test_a_rescue_and_a_correction_run_reach_the_platform() -> None:
    car = SimulatedCar()
    car.press_car_call(4)
    car.wait_until(lambda: 6.3 < car.shaft.position_m < 7.3, within_s=30, what="between landings")
    car.inject("power_loss")
    car.wait_doors("open", within_s=30)
    car.clear("power_loss")
    car.inject("position_lost")
    car.wait_doors("closed", within_s=30)
    car.wait_until(lambda: not car.shaft.position_unreferenced, within_s=60, what="referenced")
    car.run_for(1.0)
    messages = [m for m in (event_message(e, 0.02, 1.0) for e in car.events) if m is not None]
    rescued = [m for m in messages if m["kind"] == "rescued"]
    assert [(m["category"], m["landing"]) for m in rescued] == [("faults_and_alarms", 3)]
    corrections = [(m["stage"], m["reason"]) for m in messages if m["kind"] == "correction_run"]
    assert corrections == [("started", "unreferenced"), ("done", "")]
    modes = [(m["mode_from"], m["mode_to"]) for m in messages if m["kind"] == "mode_changed"]
    assert modes == [("normal", "rescue"), ("rescue", "normal")]


def stuck_with_someone_inside() -> tuple[SimulatedCar, Reporter]:
    """A car with 80 kg in it, halted between landings 2 and 3 by a drive fault that stays; and its reporter."""
    car = SimulatedCar()
    reporter = Reporter(car.sim.period_s, 630.0, state_every_s=5.0)
    car.set_extra_load(80.0)
    car.press_car_call(5)
    car.wait_until(lambda: 6.5 < car.shaft.position_m < 7.5, within_s=30, what="between landings")
    car.inject("drive_fault")
    return car, reporter


def test_a_passenger_stuck_between_floors_raises_one_alarm_after_30_s() -> None:
    car, reporter = stuck_with_someone_inside()  # and the drive fault does not clear
    stuck_s = car.t_s
    alarms = []
    seen = len(car.events)
    for _ in range(int((TRAPPED_AFTER_S + 5) / 0.5)):
        car.run_for(0.5)
        events = tuple(car.events[seen:])
        seen = len(car.events)
        messages, _ = reporter.update(car.sim.state, now_inputs(car), events, 0.0, car.t_s)
        alarms += [(car.t_s, m) for m in messages if m["kind"] == "trapped_passenger"]
    assert len(alarms) == 1 and len(car.events_of(EventKind.TRAPPED_PASSENGER)) == 1
    t_s, alarm = alarms[0]
    assert set(alarm) == {"id", "category", "kind", "tick", "waited_s", "position_m", "load_kg", "cause", "faults",
                          "t", "entrapment"}
    assert alarm["cause"] == "outside the door zone" and TRAPPED_AFTER_S <= alarm["waited_s"] < TRAPPED_AFTER_S + 1
    assert alarm["category"] == "faults_and_alarms" and alarm["faults"] == ["drive_fault"]
    assert 6.5 < alarm["position_m"] < 7.5 and alarm["load_kg"] >= 80
    assert stuck_s + TRAPPED_AFTER_S <= alarm["tick"] * car.sim.period_s <= stuck_s + TRAPPED_AFTER_S + 1
    car.clear("drive_fault")
    car.wait_doors("open", within_s=60)
    ended = car.events_of(EventKind.TRAPPED_PASSENGER_ENDED)
    assert len(ended) == 1 and float(ended[0].detail) > TRAPPED_AFTER_S
    assert car.sim.state.trapped_since_tick < 0 and not car.sim.state.trapped


def test_an_empty_car_stuck_is_not_an_entrapment() -> None:
    car = SimulatedCar()
    car.press_car_call(5)
    car.wait_until(lambda: 6.5 < car.shaft.position_m < 7.5, within_s=30, what="between landings")
    car.inject("drive_fault")
    car.run_for(40.0)
    assert car.faults == {Fault.DRIVE_FAULT} and not car.shaft.in_door_zone()
    assert not car.events_of(EventKind.TRAPPED_PASSENGER) and car.sim.state.trapped_since_tick < 0


def test_the_alarm_button_and_the_end_of_an_entrapment_reach_the_platform() -> None:
    pressed = event_message(Event(EventKind.ALARM_BUTTON, 50, -1, "pressed"), 0.02, 1000.0)
    assert pressed is not None and pressed["category"] == "faults_and_alarms"
    assert (pressed["kind"], pressed["button"], pressed["tick"]) == ("alarm_button", "pressed", 50)
    ended = event_message(Event(EventKind.TRAPPED_PASSENGER_ENDED, 9000, -1, "95.5"), 0.02, 1000.0)
    assert ended is not None and (ended["kind"], ended["waited_s"]) == ("trapped_passenger_ended", 95.5)


def test_a_chattering_alarm_button_does_not_flood_the_platform() -> None:
    reporter = Reporter(0.02, 630.0, 60.0)
    inputs = Inputs(tick=0)
    state = SimulatedCar().sim.state
    sent = []
    for tick in range(1500):  # 30 s of a contact toggling every cycle
        event = Event(EventKind.ALARM_BUTTON, tick, -1, "pressed" if tick % 2 == 0 else "released")
        messages, _ = reporter.update(state, inputs, (event,), 0.0, 1000.0 + tick * 0.02)
        sent += [message for message in messages if message["kind"] == "alarm_button"]
    assert [(message["button"], message.get("presses")) for message in sent] == [
        ("pressed", 1), ("released", None), ("pressed", 250), ("released", None), ("pressed", 250),
        ("released", None)]


def test_presses_left_out_are_told_at_the_end_of_the_window_with_the_button_as_it_is() -> None:
    """Press, release, press again 5 s later and hold: the platform must not believe the alarm is over."""
    reporter = Reporter(0.02, 630.0, 60.0)
    state = SimulatedCar().sim.state
    script = {0: "pressed", 50: "released", 250: "pressed"}
    sent = []
    for tick in range(800):
        events = (Event(EventKind.ALARM_BUTTON, tick, -1, script[tick]),) if tick in script else ()
        held = tick >= 250 or tick < 50
        messages, _ = reporter.update(state, Inputs(tick=tick, alarm_button=held), events, 0.0, 1000.0 + tick * 0.02)
        sent += [(tick, message["button"], message.get("presses")) for message in messages
                 if message["kind"] == "alarm_button"]
    assert sent == [(0, "pressed", 1), (50, "released", None), (500, "pressed", 1)]


def test_an_alarm_held_between_floors_reaches_the_platform_with_where_the_car_is() -> None:
    car, reporter = stuck_with_someone_inside()
    seen = len(car.events)
    car.run_for(1.0)
    car.hold_alarm(1.5)
    car.run_for(5.0)
    car.reset_alarm()
    car.run_for(1.0)
    messages, _ = reporter.update(car.sim.state, now_inputs(car), tuple(car.events[seen:]), 0.0, car.t_s)
    alarms = [m for m in messages if m["kind"] == "alarm"]
    # The simulated rescue centre answers the call (sim/modem.py), then the rescuer resets the alarm at the car.
    assert [m["state"] for m in alarms] == ["requested", "voice_connected", "cancelled"]
    requested = alarms[0]
    assert requested["category"] == "faults_and_alarms" and requested["between_landings"]
    assert requested["landing"] is None and 6.5 < requested["position_m"] < 7.5 and requested["load_kg"] >= 80
    assert requested["faults"] == ["drive_fault"] and requested["door"] == "closed"
    assert 3.5 <= alarms[2]["active_s"] <= 4.5  # from the end of the 1 s hold to the reset, 4 s later
    assert all(event_problem(m) is None for m in alarms)  # the link process takes it into its outbox
    # One alarm, one id, from the hold to the reset, which an operator's acknowledgement may name.
    assert len({m["alarm_id"] for m in alarms}) == 1 and len(alarms[0]["alarm_id"]) == 32
    assert reporter.alarm_id == ""
    seen = len(car.events)
    car.hold_alarm(1.5)
    car.run_for(2.0)
    messages, status = reporter.update(car.sim.state, now_inputs(car), tuple(car.events[seen:]), 0.0, car.t_s)
    again = [m for m in messages if m["kind"] == "alarm"]
    assert again and again[0]["alarm_id"] not in {m["alarm_id"] for m in alarms}  # the next alarm is another
    assert status is not None and (status["alarm"], status["alarm_id"]) == (car.sim.state.alarm.value,
                                                                           again[0]["alarm_id"])


def test_the_alarm_and_the_trapped_passenger_event_of_one_entrapment_share_its_id() -> None:
    car, reporter = stuck_with_someone_inside()
    messages: list[dict] = []
    seen = len(car.events)
    car.hold_alarm(1.5)
    for _ in range(int((TRAPPED_AFTER_S + 5) / 0.5)):
        car.run_for(0.5)
        events = tuple(car.events[seen:])
        seen = len(car.events)
        messages += reporter.update(car.sim.state, now_inputs(car), events, 0.0, car.t_s)[0]
    alarm = [m for m in messages if m["kind"] == "alarm"]
    trapped = [m for m in messages if m["kind"] == "trapped_passenger"]
    assert alarm and len(trapped) == 1
    assert {m["entrapment"] for m in alarm} == {trapped[0]["entrapment"]} and len(trapped[0]["entrapment"]) == 32


def test_the_first_line_busy_the_alarm_goes_to_the_second_and_a_dead_module_is_a_fault_the_platform_hears() -> None:
    """In the lockstep simulator, through the firmware's own AT session: the rescue service's first number busy, the
    second dialled and answered; then, the rescuer having reset it, a module that answers nothing: a new alarm stands
    requested, the car shows alarm_modem_dead (a fault event to the platform), and the call goes out once the module
    answers again."""
    first, second = "+8653281234567", "053280001111"
    car, reporter = stuck_with_someone_inside()
    car.sim.alarm_line.rescue("busy", first)
    seen = len(car.events)
    car.hold_alarm(1.5)
    car.run_for(4.0)
    assert car.sim.alarm_line.modem.dialled == [first, second]
    assert car.sim.state.alarm is AlarmPhase.VOICE_CONNECTED and car.sim.commands.alarm_voice_lamp
    car.reset_alarm()
    car.run_for(1.0)
    car.inject("modem_dead")
    car.hold_alarm(1.5)
    car.run_for(30.0)
    assert car.sim.state.alarm is AlarmPhase.REQUESTED and Fault.ALARM_MODEM_DEAD in car.sim.state.faults
    assert car.sim.commands.alarm_call and not car.sim.commands.alarm_transmitted_lamp
    car.clear("modem_dead")
    car.run_for(20.0)  # the round again after its backoff
    assert car.sim.state.alarm is AlarmPhase.VOICE_CONNECTED and Fault.ALARM_MODEM_DEAD not in car.sim.state.faults
    messages, _ = reporter.update(car.sim.state, now_inputs(car), tuple(car.events[seen:]), 0.0, car.t_s)
    alarms = [m for m in messages if m["kind"] == "alarm"]
    assert [m["state"] for m in alarms] == ["requested", "voice_connected", "cancelled", "requested",
                                            "voice_connected"]
    assert len({m["alarm_id"] for m in alarms[:3]} | {m["alarm_id"] for m in alarms[3:]}) == 2  # two alarms
    modem = [(m["kind"], m["fault"]) for m in messages if m.get("fault") == "alarm_modem_dead"]
    assert modem == [("fault_raised", "alarm_modem_dead"), ("fault_cleared", "alarm_modem_dead")]


def test_the_alarm_units_battery_is_an_event_of_its_own() -> None:
    car = SimulatedCar()
    reporter = Reporter(car.sim.period_s, 630.0, state_every_s=5.0)
    seen = len(car.events)
    car.inject("alarm_battery")
    car.run_for(2.0)
    car.clear("alarm_battery")
    car.run_for(2.0)
    messages, _ = reporter.update(car.sim.state, now_inputs(car), tuple(car.events[seen:]), 0.0, car.t_s)
    battery = [m for m in messages if m["kind"] == "alarm_battery"]
    assert [m["battery"] for m in battery] == ["low", "ok"]
    assert all(m["category"] == "faults_and_alarms" and event_problem(m) is None for m in battery)
    kinds = [(m["kind"], m.get("fault")) for m in messages if m.get("fault") == "alarm_battery"]
    assert kinds == [("fault_raised", "alarm_battery"), ("fault_cleared", "alarm_battery")]  # as any fault, too
def test_the_platform_hears_each_brake_test_with_its_result() -> None:
    passed = event_message(Event(EventKind.BRAKE_TEST, 10, 0, "passed:1"), 0.02, 1.0)
    unanswered = event_message(Event(EventKind.BRAKE_TEST, 10, 0, "no_answer"), 0.02, 1.0)
    assert passed is not None and passed["category"] == "faults_and_alarms"
    assert (passed["result"], passed["moved_mm"]) == ("passed", 1)
    assert unanswered is not None and (unanswered["result"], unanswered["moved_mm"]) == ("no_answer", None)
    assert event_problem(passed) is None and event_problem(unanswered) is None  # the outbox takes both
