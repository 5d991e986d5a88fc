"""The sense and output steps the firmware's loop and the lockstep simulator share."""

from carctl.core.rates import SOURCES, Freshness, max_age_ticks
from carctl.core.signals import Commands, Direction, Mode
from carctl.protocol.drive_map import DriveCommand, DriveStatus
from carctl.protocol.panelbus import NO_LANDING, CarPanelInputs, CarTopInputs, LandingInputs
from carctl.protocol.sense import (NEVER_SEEN, BoardReadings, Presses, SwitchLevels, landing_outputs, mode_request,
                                   drive_command, output, sense, switch_levels)

FRESH = Freshness.for_period(0.02)


def status(**changes: object) -> DriveStatus:
    values = dict(ready=True, running=False, faulted=False, brake_open=False, zero_speed=True, comm_loss_trip=False,
                  safety_chain_closed=True, speed_m_s=0.0, position_m=5.8, fault_code=0, current_a=0.0,
                  load_kg=75.0, drive_tick=1)
    values.update(changes)
    return DriveStatus(**values)  # type: ignore[arg-type]


def test_before_the_drive_answers_nothing_reads_as_moving_or_safe() -> None:
    inputs = sense(BoardReadings(6), Presses(), FRESH, 0)
    assert inputs.drive_age_ticks == NEVER_SEEN and inputs.car_top_age_ticks == NEVER_SEEN
    assert not inputs.drive_ready and not inputs.safety_chain_closed and not inputs.brake_open
    assert inputs.landing_age_ticks == NEVER_SEEN


def test_readings_and_presses_become_inputs() -> None:
    readings = BoardReadings(6)
    readings.take_drive(status(speed_m_s=-0.5, brake_open=True, running=True))
    readings.take_car_top(CarTopInputs(door_closed_limit=True, door_locked=True, in_door_zone=False))
    readings.take_car_panel(CarPanelInputs(seat_occupied=True, alarm_button=True))
    readings.take_landing(2, LandingInputs(fire_detector=True))
    presses = Presses(car={3}, up={1}, door_open=True)
    inputs = sense(readings, presses, FRESH, 7, requested_mode=Mode.INDEPENDENT)
    assert (inputs.tick, inputs.speed_m_s, inputs.position_m, inputs.load_kg) == (7, -0.5, 5.8, 75.0)
    assert inputs.brake_open and inputs.drive_running and not inputs.in_door_zone
    assert inputs.seat_occupied and inputs.alarm_button and inputs.fire_detected == {2}
    assert inputs.car_calls_pressed == {3} and inputs.hall_up_pressed == {1} and inputs.door_open_button
    assert inputs.mode_request is Mode.INDEPENDENT and inputs.period_s == FRESH.period_s


def test_held_inspection_buttons_count_only_while_the_car_top_reading_is_fresh() -> None:
    readings = BoardReadings(6)
    readings.take_car_top(CarTopInputs(inspection=True, inspection_up=True))
    assert sense(readings, Presses(), FRESH, 0).inspection_up
    for _ in range(FRESH.hold_to_run):
        readings.age_all()
    assert sense(readings, Presses(), FRESH, 0).inspection_up
    readings.age_all()
    assert not sense(readings, Presses(), FRESH, 0).inspection_up


def test_held_cabinet_buttons_count_only_from_the_cabinet_landing_while_its_reading_is_fresh() -> None:
    readings = BoardReadings(6, cabinet_landing=5)
    readings.take_landing(2, LandingInputs(eeo_switch=True, eeo_up=True))  # not the cabinet's board: ignored
    assert not sense(readings, Presses(), FRESH, 0).eeo_up
    readings.take_landing(5, LandingInputs(eeo_switch=True, eeo_down=True))
    assert sense(readings, Presses(), FRESH, 0).eeo_down
    assert switch_levels(readings, main_landing=0).eeo
    for _ in range(FRESH.cabinet_hold_to_run):
        readings.age_all()
    assert sense(readings, Presses(), FRESH, 0).eeo_down
    readings.age_all()
    assert not sense(readings, Presses(), FRESH, 0).eeo_down  # a silent cabinet board: released


def test_a_fire_detector_that_resets_leaves_the_set() -> None:
    readings = BoardReadings(6)
    readings.take_landing(4, LandingInputs(fire_detector=True))
    readings.take_landing(4, LandingInputs())
    assert readings.fire_detected == frozenset()


def test_key_switches_request_a_mode_when_they_change_and_come_before_the_platform() -> None:
    off = SwitchLevels()
    assert mode_request(off, off, Mode.OUT_OF_SERVICE) is Mode.OUT_OF_SERVICE
    both = SwitchLevels(inspection=True, independent=True)
    assert mode_request(both, off, Mode.OUT_OF_SERVICE) is Mode.INSPECTION
    assert mode_request(SwitchLevels(independent=True), both, None) is Mode.INDEPENDENT
    assert mode_request(off, SwitchLevels(fire=True), None) is Mode.NORMAL
    for held in (SwitchLevels(inspection=True), SwitchLevels(fire=True), SwitchLevels(independent=True)):
        # A mechanic on the car top, a fireman, an attendant: the platform cannot take the car from them.
        assert mode_request(held, held, Mode.NORMAL) is None
        assert mode_request(held, held, Mode.OUT_OF_SERVICE) is None
    readings = BoardReadings(6)
    readings.take_landing(0, LandingInputs(fire_switch=True))
    readings.take_landing(3, LandingInputs(fire_switch=True))  # only the main landing has the fire-service switch
    assert switch_levels(readings, main_landing=0) == SwitchLevels(fire=True)
    assert switch_levels(readings, main_landing=1) == off


def test_output_gives_the_drive_block_and_the_boards_outputs() -> None:
    commands = Commands(run_down=True, speed_ref_m_s=1.0, door_close=True, car_call_lamps=frozenset({0}),
                        hall_up_lamps=frozenset({2}), direction=Direction.DOWN, position_landing=3, gong=True,
                        announce_landing=2)
    outputs = output(commands, drive_fault_reset=True)
    assert outputs.drive.run_down and outputs.drive.speed_ref_m_s == 1.0 and outputs.drive.fault_reset
    assert outputs.car_top.door_close and not outputs.car_top.door_open
    assert outputs.car_panel.call_lamps == {0} and outputs.car_panel.arrow_down
    assert outputs.car_panel.announce_landing == 2
    assert output(Commands()).car_panel.announce_landing == NO_LANDING
    assert landing_outputs(commands, 2).up_lamp and landing_outputs(commands, 2).gong
    assert not landing_outputs(commands, 1).gong


def test_the_drive_command_block_takes_each_field_from_its_own_command() -> None:
    # drive_command() passes the fields in their order: each command alone, against the keyword form.
    for changes, reset in (({"run_up": True}, False), ({"run_down": True}, False), ({"speed_ref_m_s": 0.75}, False),
                           ({"fault_reset": True}, False), ({}, True), ({"quick_stop": True}, False),
                           ({"brake_test": True}, False)):
        expected = DriveCommand(run_up=changes.get("run_up", False), run_down=changes.get("run_down", False),
                                speed_ref_m_s=changes.get("speed_ref_m_s", 0.0),
                                fault_reset=changes.get("fault_reset", False) or reset,
                                quick_stop=changes.get("quick_stop", False),
                                brake_test=changes.get("brake_test", False))
        assert drive_command(Commands(**changes), drive_fault_reset=reset) == expected  # type: ignore[arg-type]


def test_the_table_of_rates_gives_the_same_ticks_at_20_ms_and_more_at_a_shorter_period() -> None:
    assert (FRESH.drive, FRESH.car_top, FRESH.car_panel, FRESH.landing, FRESH.hold_to_run) == (3, 5, 25, 50, 2)
    fast = Freshness.for_period(0.005)
    assert fast.drive == 12 and fast.landing == 200
    slow = Freshness.for_period(0.1)
    assert slow.drive == 2 and slow.car_top == 2  # never fewer than a source's min_ticks
    assert Freshness.for_period(0.02, drive_override_ticks=7).drive == 7
    for source in SOURCES:
        assert max_age_ticks(source, 0.02) * 0.02 >= source.max_age_s - 1e-9


def test_each_input_comes_from_its_own_source() -> None:
    """Change one source at a time: exactly the Inputs field it feeds changes (sense() passes the fields in order,
    for speed, so a swap of two would show here)."""
    from dataclasses import fields, replace

    from carctl.core.signals import Commissioning, Inputs, Recognition

    def readings_from(drive: DriveStatus, top: CarTopInputs, panel: CarPanelInputs, ages: tuple[int, int, int, int],
                      fire: frozenset[int], cabinet: LandingInputs, cabinet_age: int, rear: CarTopInputs,
                      rear_age: int) -> BoardReadings:
        readings = BoardReadings(6, cabinet_landing=5, rear_door=True)
        readings.take_drive(drive)
        readings.take_car_top(top)
        readings.take_rear_car_top(rear)
        readings.rear_car_top_age = rear_age
        readings.take_car_panel(panel)
        for landing in range(6):
            readings.take_landing(landing, LandingInputs(fire_detector=landing in fire))
        readings.take_landing(5, replace(cabinet, fire_detector=5 in fire))
        readings.drive_age, readings.car_top_age, readings.car_panel_age = ages[:3]
        readings.landing_age = [ages[3]] * 5 + [cabinet_age]  # the cabinet's board (landing 5) younger
        return readings

    drive, top, panel = status(), CarTopInputs(), CarPanelInputs()
    ages, fire, presses = (0, 0, 0, 2), frozenset[int](), Presses()
    base_args: dict[str, object] = dict(tick=5, requested_mode=None, recognitions=(), controller_error=False,
                                        latch_record_failing=False)

    def sensed(drive: DriveStatus = drive, top: CarTopInputs = top, panel: CarPanelInputs = panel,
               ages: tuple[int, int, int, int] = ages, fire: frozenset[int] = fire, presses: Presses = presses,
               cabinet: LandingInputs = LandingInputs(), cabinet_age: int = 0, rear: CarTopInputs = top,
               rear_age: int = 0, **changes: object) -> Inputs:
        args = {**base_args, **changes}
        tick = args.pop("tick")
        return sense(readings_from(drive, top, panel, ages, fire, cabinet, cabinet_age, rear, rear_age), presses,
                     FRESH, tick, **args)  # type: ignore

    base = sensed()
    recognition = Recognition("r1", 3, frozenset({0, 3}))
    cases: dict[str, Inputs] = {
        "tick": sensed(tick=6),
        "drive_age_ticks": sensed(ages=(1, 0, 0, 2)),
        "drive_ready": sensed(drive=replace(drive, ready=False)),
        "drive_running": sensed(drive=replace(drive, running=True)),
        "drive_fault_code": sensed(drive=replace(drive, fault_code=0x21)),
        "brake_open": sensed(drive=replace(drive, brake_open=True)),
        "safety_chain_closed": sensed(drive=replace(drive, safety_chain_closed=False)),
        "speed_m_s": sensed(drive=replace(drive, speed_m_s=0.3)),
        "position_m": sensed(drive=replace(drive, position_m=1.0)),
        "load_kg": sensed(drive=replace(drive, load_kg=160.0)),
        "car_top_age_ticks": sensed(ages=(0, 1, 0, 2)),
        "door_open_limit": sensed(top=replace(top, door_open_limit=True)),
        "door_closed_limit": sensed(top=replace(top, door_closed_limit=False)),
        "door_locked": sensed(top=replace(top, door_locked=False)),
        "light_curtain_blocked": sensed(top=replace(top, light_curtain_blocked=True)),
        "safety_edge": sensed(top=replace(top, safety_edge=True)),
        "in_door_zone": sensed(top=replace(top, in_door_zone=False)),
        "car_panel_age_ticks": sensed(ages=(0, 0, 1, 2)),
        "car_calls_pressed": sensed(presses=Presses(car={2})),
        "door_open_button": sensed(presses=Presses(door_open=True)),
        "door_close_button": sensed(presses=Presses(door_close=True)),
        "accessible_button": sensed(presses=Presses(accessible=True)),
        "seat_occupied": sensed(panel=replace(panel, seat_occupied=True)),
        "alarm_button": sensed(panel=replace(panel, alarm_button=True)),
        "landing_age_ticks": sensed(ages=(0, 0, 0, 3)),
        "hall_up_pressed": sensed(presses=Presses(up={1})),
        "hall_down_pressed": sensed(presses=Presses(down={4})),
        "recognitions": sensed(recognitions=(recognition,)),
        "fault_reset": sensed(presses=Presses(fault_reset=True)),
        "controller_error": sensed(controller_error=True),
        "latch_record_failing": sensed(latch_record_failing=True),
        "mode_request": sensed(requested_mode=Mode.FIRE),
        "fire_detected": sensed(fire=frozenset({3})),
        "inspection_up": sensed(top=replace(top, inspection_up=True)),
        "inspection_down": sensed(top=replace(top, inspection_down=True)),
        "on_battery": sensed(drive=replace(drive, on_battery=True)),
        "position_unreferenced": sensed(drive=replace(drive, position_unreferenced=True)),
        "below_reference_mark": sensed(drive=replace(drive, below_reference_mark=True)),
        "slowdown_top": sensed(top=replace(top, slowdown_top=0b011)),
        "slowdown_bottom": sensed(top=replace(top, slowdown_bottom=0b001)),
        "eeo_up": sensed(cabinet=LandingInputs(eeo_switch=True, eeo_up=True)),
        "eeo_down": sensed(cabinet=LandingInputs(eeo_down=True)),
        "cabinet_age_ticks": sensed(cabinet_age=1),
        "alarm_reset": sensed(presses=Presses(alarm_reset=True)),
        "alarm_transmitted": sensed(alarm_channel=(True, False)),
        "alarm_voice": sensed(alarm_channel=(False, True)),
        "alarm_acknowledged": sensed(alarm_acknowledged=True),
        "alarm_modem_dead": sensed(alarm_modem_dead=True),
        "alarm_test": sensed(alarm_test=("ok", False)),
        "alarm_test_failed": sensed(alarm_test=("", True)),
        "alarm_battery_low": sensed(top=replace(top, alarm_battery_low=True)),
        "brake_contacts_lifted": sensed(drive=replace(drive, brake_contacts=0b10)),
        "brake_test_torque": sensed(drive=replace(drive, brake_test_torque=True)),
        "learn_button": sensed(cabinet=LandingInputs(learn_button=True)),
        "landing_table_refused": sensed(landing_table_refused=True),
        "rear_car_top_age_ticks": sensed(rear_age=1),
        "rear_door_open_limit": sensed(rear=replace(top, door_open_limit=True)),
        "rear_door_closed_limit": sensed(rear=replace(top, door_closed_limit=False)),
        "rear_door_locked": sensed(rear=replace(top, door_locked=False)),
        "rear_light_curtain_blocked": sensed(rear=replace(top, light_curtain_blocked=True)),
        "rear_safety_edge": sensed(rear=replace(top, safety_edge=True)),
        "commission": sensed(commission=Commissioning.BRAKE_TEST),
    }
    names = [spec.name for spec in fields(Inputs)]
    assert set(cases) == set(names) - {"period_s"}  # the period is the configuration's, checked elsewhere
    assert base.period_s == FRESH.period_s
    for name, inputs in cases.items():
        changed = {field for field in names if getattr(inputs, field) != getattr(base, field)}
        assert changed == {name}, name


def test_the_service_tools_request_is_an_input_of_one_cycle_and_none_by_default() -> None:
    """The commissioning request reaches the core only in the cycle the loop passes it: the next snapshot, built
    without it, carries none (a request is a press, never a level)."""
    from carctl.core.signals import Commissioning

    readings = BoardReadings(6)
    readings.take_drive(status())
    assert sense(readings, Presses(), FRESH, 1).commission is None
    for request in Commissioning:
        assert sense(readings, Presses(), FRESH, 2, commission=request).commission is request
    assert sense(readings, Presses(), FRESH, 3).commission is None
