"""The firmware against the shaft over real protocols, written as procedures."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

import pytest

from hil_tests.wire import WireCar

LANDING_M = [0.0, 2.9, 5.8, 8.7, 11.6, 14.5]


def test_landing_call_is_answered_and_doors_open_there(car: WireCar) -> None:
    car.press_hall_call(3, "down")
    state = car.wait_doors("open", within_s=30, at_m=LANDING_M[3])
    assert state["lamps"]["down"] == []  # served, lamp out
    assert state["indicator"]["landing"] == 3
    assert "arrived" in [e["event"] for e in car.firmware_events()]


def test_same_procedure_over_modbus_rtu(car_rtu: WireCar) -> None:
    car_rtu.press_car_call(2)
    car_rtu.wait_doors("open", within_s=30, at_m=LANDING_M[2])
    assert "arrived" in [e["event"] for e in car_rtu.firmware_events()]
    # At 115,200 baud two transactions do not fit half the 20 ms period: one Read/Write Multiple Registers (0x17)
    # each cycle, which the simulated drive's pymodbus server takes (docs/register-map.md).
    car_rtu.wait_until(lambda _: bool(car_rtu.firmware_health()), within_s=10, what="a health record")
    health = car_rtu.firmware_health()
    assert health["drive_transaction"] == "combined" and not health["drive_combined_refused"], health


def test_light_curtain_reopens_closing_doors(car: WireCar) -> None:
    car.press_car_call(1)
    car.wait_doors("open", within_s=30, at_m=LANDING_M[1])
    car.wait_until(lambda s: s["door"] == "closing" and s["door_open_fraction"] < 0.8, within_s=15,
                   what="doors closing")
    car.send(cmd="obstruct", duration_s=1.0)
    car.wait_doors("open", within_s=5)
    assert "doors_reopened" in [e["event"] for e in car.firmware_events()]


def test_seat_switches_to_the_gentle_profile(car: WireCar) -> None:
    def one_floor_ride_s(target: int) -> float:
        car.press_car_call(target)
        car.wait_until(lambda s: s["speed_m_s"] != 0.0, within_s=20, what="moving")
        return car.wait_until(lambda s: s["speed_m_s"] == 0.0, within_s=20, what="stopped")

    normal = one_floor_ride_s(1)
    car.wait_doors("closed", within_s=20)
    car.send(cmd="seat", occupied=True)
    gentle = one_floor_ride_s(2)
    # Peters: 2.9 m takes 5.17 s at 0.6 m/s², 1.0 m/s³ and 6.50 s at the seat's 0.35 m/s², 0.5 m/s³.
    assert normal == pytest.approx(5.17, abs=0.25)
    assert gentle == pytest.approx(6.50, abs=0.25)


def test_modbus_answers_lost_stop_the_car_within_half_a_second_and_it_resumes(car: WireCar) -> None:
    car.press_car_call(5)
    car.wait_until(lambda s: s["speed_m_s"] > 0.9, within_s=20, what="at rated speed")
    car.send(cmd="modbus", drop=75)  # about 1.5 s of lost answers
    stopped_in = car.wait_until(lambda s: s["speed_m_s"] == 0.0, within_s=2.0, what="stopped")
    assert stopped_in < 0.5
    stopped_at = car.state()["position_m"]
    time.sleep(0.5)
    assert car.state()["position_m"] == stopped_at  # no move while the link is down
    car.wait_until(lambda s: "drive_stale" in car.firmware_faults_raised(), within_s=3, what="fault in the log")
    car.wait_doors("open", within_s=40, at_m=LANDING_M[5])


def test_short_dropouts_at_rated_speed_never_lift_the_brake_before_the_car_is_at_rest(car: WireCar) -> None:
    """The chaos run that found it: 120-400 ms of lost answers at rated speed once lifted the brake again while the
    car still slid on it, half the time for a run the other way. Each cycle has two exchanges (read and write), so
    N cycles of lost answers are 2N dropped frames. Up, down, up with 3, 11 and 50 cycles lost (the lockstep
    procedures, tests/sim/test_standstill.py, sweep every count in both directions)."""
    for ride, cycles in enumerate((3, 11, 50)):
        target = 5 if ride % 2 == 0 else 0
        car.press_car_call(target)
        car.wait_until(lambda s: abs(s["speed_m_s"]) > 0.9, within_s=25, what="at rated speed")
        car.send(cmd="modbus", drop=2 * cycles)
        state = car.wait_doors("open", within_s=60, at_m=LANDING_M[target])
        assert state["fastest_brake_lift_m_s"] < 0.001, (cycles, target, state["fastest_brake_lift_m_s"])
    latched = {"overspeed", "shaft_limit", "unintended_movement", "position_tracking", "speed_deviation",
               "terminal_speed"}
    assert not latched & set(car.firmware_faults_raised()), car.firmware_faults_raised()


def test_cut_cable_trips_the_drive_on_its_watchdog_and_recovery_needs_the_link(car: WireCar) -> None:
    car.press_car_call(4)
    car.wait_until(lambda s: s["speed_m_s"] > 0.9, within_s=20, what="at rated speed")
    car.send(cmd="modbus_cut", duration_s=3.0)
    car.wait_until(lambda s: s["speed_m_s"] == 0.0, within_s=2.0, what="stopped by the drive's watchdog")
    car.wait_until(lambda s: s["comm_loss_trip"], within_s=2.0, what="comm-loss trip")
    assert car.state()["drive_fault_code"] == 0x31
    car.wait_until(lambda s: not s["comm_loss_trip"], within_s=5.0, what="trip reset after the link returns")
    car.wait_doors("open", within_s=40, at_m=LANDING_M[4])


def test_drive_fault_code_stops_the_car_until_it_clears(car: WireCar) -> None:
    car.press_car_call(4)
    car.wait_until(lambda s: s["position_m"] > 3.5, within_s=20, what="between landings")
    car.send(cmd="inject", kind="drive_fault")
    car.wait_until(lambda s: s["speed_m_s"] == 0.0, within_s=1.0, what="stopped")
    car.wait_until(lambda s: "drive_fault" in car.firmware_faults_raised(), within_s=2, what="fault logged")
    time.sleep(1.0)
    assert car.state()["speed_m_s"] == 0.0
    car.send(cmd="clear", kind="drive_fault")
    car.wait_doors("open", within_s=40, at_m=LANDING_M[4])


def test_damaged_modbus_tcp_answers_neither_move_a_standing_car_nor_latch_a_fault(car: WireCar) -> None:
    """Modbus TCP has no checksum: a flipped bit in the status block once read as an overspeed, a car beyond its
    final limit or a count lost, latching faults and starting correction runs. The drive link refuses a status that
    changed faster than the car can (drive_map.Plausibility)."""
    car.press_car_call(2)
    car.wait_doors("open", within_s=30, at_m=LANDING_M[2])
    car.wait_doors("closed", within_s=30)
    for _ in range(6):
        car.send(cmd="modbus", corrupt=100)  # about a second of answers, each with one bit flipped
        time.sleep(1.0)
    time.sleep(1.0)
    latched = {"overspeed", "shaft_limit", "unintended_movement", "position_tracking", "reference_not_found"}
    assert not latched & set(car.firmware_faults_raised()), car.firmware_faults_raised()
    assert not car.firmware_events("correction_run"), car.firmware_events("correction_run")
    assert car.state()["speed_m_s"] == 0.0
    car.wait_until(lambda s: car.firmware_health().get("drive_errors", {}).get("implausible", 0) > 0,
                   within_s=10, what="damaged statuses counted as implausible")
    car.press_car_call(4)
    car.wait_doors("open", within_s=40, at_m=LANDING_M[4])


@pytest.mark.parametrize("kind, fault", [("car_top_silent", "car_top_stale"), ("car_panel_silent", "car_panel_stale"),
                                         ("landing_silent", "landing_stale")])
def test_a_silent_board_injected_over_the_wire_is_heard_as_silent(car: WireCar, kind: str, fault: str) -> None:
    """The wire simulator honours the board-silencing fault kinds the lockstep has: the board stops answering on
    the panel bus, the firmware raises its staleness fault, and clears it when the board answers again."""
    car.send(cmd="inject", kind=kind)
    car.wait_until(lambda s: fault in car.firmware_faults_raised(), within_s=5, what=f"{fault} raised")
    car.send(cmd="clear", kind=kind)
    car.wait_until(lambda s: fault in [r["detail"] for r in car.firmware_events("fault_cleared")], within_s=5,
                   what=f"{fault} cleared")


def test_panel_bus_garbage_is_counted_and_dropped_while_the_car_serves(car: WireCar) -> None:
    car.press_car_call(3)
    for _ in range(10):
        car.send(cmd="panel_garbage", bytes=300)
        car.send(cmd="panel_corrupt", frames=3)
        time.sleep(0.2)
    car.wait_doors("open", within_s=30, at_m=LANDING_M[3])
    car.press_hall_call(1, "up")
    car.wait_doors("open", within_s=40, at_m=LANDING_M[1])
    car.wait_until(lambda s: car.firmware_health().get("tick", 0) > 0, within_s=10, what="a health record")
    health = car.firmware_health()
    assert health["panel_garbage_bytes"] + health["panel_bad_crc"] + health["panel_timeouts"] > 0


def test_controller_killed_mid_trip_restarts_into_a_safe_known_state(car: WireCar) -> None:
    car.press_car_call(5)
    car.wait_until(lambda s: 4.0 < s["position_m"] < 10.0 and s["speed_m_s"] > 0.5, within_s=20,
                   what="mid-trip")
    car.kill_firmware()
    car.wait_until(lambda s: s["speed_m_s"] == 0.0, within_s=3.0, what="the drive stops on its own")
    stopped = car.state()
    assert stopped["door"] == "closed"
    car.restart_firmware()
    # The new controller resets the comm-loss trip, levels at the nearest landing and lets anyone out.
    nearest = min(LANDING_M, key=lambda height: abs(height - stopped["position_m"]))
    car.wait_until(lambda s: abs(s["position_m"] - nearest) <= 0.005 and s["speed_m_s"] == 0.0, within_s=30,
                   what="levelled at the nearest landing")
    car.press_car_call(0)
    car.wait_doors("open", within_s=40, at_m=LANDING_M[0])


def test_the_maintenance_record_over_the_wire_survives_a_kill(car: WireCar) -> None:
    """A fault reset at the car and the inspection key turned on and off, with the controller killed in between:
    the firmware's own record holds each, in a chain `carctl audit verify` finds intact."""
    audit = car.workdir / "audit.log"

    def actions() -> list[tuple[str, dict[str, Any]]]:
        return [(record["action"], record["details"]) for record in map(json.loads, audit.read_bytes().splitlines())]

    car.send(cmd="inject", kind="drive_fault")
    car.wait_until(lambda s: "drive_fault" in car.firmware_faults_raised(), within_s=3, what="the fault raised")
    car.send(cmd="clear", kind="drive_fault")
    car.send(cmd="button", name="fault_reset")
    car.wait_until(lambda s: any(action == "fault_reset" for action, _ in actions()), within_s=3,
                   what="the reset recorded")
    car.send(cmd="key", name="inspection", on=True)
    car.wait_until(lambda s: ("mode_changed", {"from": "normal", "to": "inspection"}) in actions(), within_s=3,
                   what="the switch recorded")
    car.kill_firmware()
    car.restart_firmware()
    # The restarted firmware finds the key on (a switch is seen on at start as a change, and takes the car).
    switched_on = ("mode_switch", {"switch": "inspection", "to": "on"})
    car.wait_until(lambda s: actions().count(switched_on) == 2, within_s=10, what="the key seen on after the restart")
    car.send(cmd="key", name="inspection", on=False)
    car.wait_until(lambda s: ("mode_switch", {"switch": "inspection", "to": "off"}) in actions(), within_s=5,
                   what="the switch off recorded")
    car.stop_firmware()
    recorded = actions()
    assert recorded[0][0] == "fault_reset" and recorded[0][1]["faults_before"] == ["drive_fault"]
    assert recorded[-2:] == [("mode_switch", {"switch": "inspection", "to": "off"}),
                             ("mode_changed", {"from": "inspection", "to": "normal"})]
    verified = subprocess.run([sys.executable, "-m", "carctl.cli", "audit", "verify", "--file", str(audit)],
                              capture_output=True, text=True, timeout=30)
    assert verified.returncode == 0 and verified.stdout.startswith(f"intact: {len(recorded)} records"), verified


def hold_to_run_up(car: WireCar, switch: str, buttons: str, held_s: float) -> tuple[float, float]:
    """Turn the key switch ``switch`` on, hold the ``buttons`` command's "up" for ``held_s`` and let go: (metres
    moved, the fastest speed seen)."""
    car.wait_until(lambda s: s["speed_m_s"] == 0.0 and s["door"] == "closed", within_s=20, what="standing closed")
    start_m = car.state()["position_m"]
    car.send(cmd="key", name=switch, on=True)
    time.sleep(0.5)
    car.send(cmd=buttons, direction="up")
    fastest = 0.0
    deadline = time.monotonic() + held_s
    while time.monotonic() < deadline:
        fastest = max(fastest, abs(car.state()["speed_m_s"]))
        time.sleep(0.05)
    car.send(cmd=buttons, direction=None)
    car.wait_until(lambda s: s["speed_m_s"] == 0.0, within_s=3.0, what="stopped on release")
    return car.state()["position_m"] - start_m, fastest


def test_inspection_hold_to_run_over_the_wire(car: WireCar) -> None:
    moved_m, fastest = hold_to_run_up(car, "inspection", "inspection_run", 5.0)
    assert 0.5 < moved_m < 1.6 and 0.1 < fastest <= 0.3 + 1e-6
    car.press_car_call(4)
    time.sleep(2.0)
    assert car.state()["speed_m_s"] == 0.0  # calls ignored in inspection
    car.send(cmd="key", name="inspection", on=False)
    car.press_car_call(4)
    car.wait_doors("open", within_s=40, at_m=LANDING_M[4])


def test_emergency_electrical_operation_from_the_cabinet_over_the_wire(car: WireCar) -> None:
    """The cabinet's switch and buttons reach the firmware through the top landing's board on the panel bus: the
    car moves only while a button is held, at most at car.eeo_speed_m_s, and the car-top inspection switch takes
    precedence over the cabinet."""
    moved_m, fastest = hold_to_run_up(car, "eeo", "eeo_run", 4.0)
    assert 0.4 < moved_m < 1.3 and 0.1 < fastest <= 0.25 + 1e-6
    car.send(cmd="key", name="inspection", on=True)  # a mechanic on the car top
    time.sleep(0.5)
    held_at_m = car.state()["position_m"]
    car.send(cmd="eeo_run", direction="up")
    time.sleep(1.5)
    car.send(cmd="eeo_run", direction=None)
    assert abs(car.state()["position_m"] - held_at_m) < 0.001  # the cabinet no longer moves the car
    car.send(cmd="key", name="inspection", on=False)
    car.send(cmd="key", name="eeo", on=False)
    time.sleep(0.5)  # the switch off, the cabinet's board is read in turn with the other landings' again
    car.press_car_call(2)
    car.wait_doors("open", within_s=40, at_m=LANDING_M[2])


def test_rescue_on_the_battery_over_the_wire(car: WireCar) -> None:
    car.send(cmd="load", load_kg=450.0)  # heavier than the counterweight: the rescue goes down
    car.press_car_call(5)
    car.wait_until(lambda s: 6.3 < s["position_m"] < 7.3 and s["speed_m_s"] > 0.5, within_s=30,
                   what="between landings 2 and 3")
    car.send(cmd="inject", kind="power_loss")
    car.wait_until(lambda s: s["speed_m_s"] == 0.0, within_s=2.0, what="stopped by the trip")
    assert car.state()["drive_fault_code"] == 0x41 and not car.state()["on_battery"]
    car.wait_until(lambda s: s["on_battery"], within_s=5, what="the rescue device takes over")
    fastest = 0.0

    def released(state: dict[str, Any]) -> bool:
        nonlocal fastest
        fastest = max(fastest, abs(state["speed_m_s"]))
        return state["door"] == "open" and state["indicator"]["rescue_notice"]

    car.wait_until(released, within_s=30, what="doors open with the rescue notice")
    assert abs(car.state()["position_m"] - LANDING_M[2]) <= 0.010 and fastest <= 0.21
    assert [event["landing"] for event in car.firmware_events("rescued")] == [2]
    car.send(cmd="clear", kind="power_loss")
    car.send(cmd="load", load_kg=0.0)
    car.wait_until(lambda s: not s["indicator"]["rescue_notice"], within_s=2, what="notice off")
    car.press_car_call(1)
    car.wait_doors("open", within_s=40, at_m=LANDING_M[1])


def test_a_drive_that_lost_its_count_gets_a_correction_run_over_the_wire(car: WireCar) -> None:
    car.press_car_call(1)
    car.wait_doors("open", within_s=30, at_m=LANDING_M[1])
    car.wait_doors("closed", within_s=30)
    car.kill_firmware()
    car.send(cmd="inject", kind="position_lost")  # the drive restarted too: its count reads 0, unreferenced
    assert car.state()["position_unreferenced"] and abs(car.state()["count_m"]) < 0.001
    car.restart_firmware()
    car.wait_until(lambda s: not s["position_unreferenced"], within_s=60, what="referenced at the mark")
    car.wait_until(lambda s: abs(s["position_m"] - LANDING_M[0]) <= 0.010 and s["speed_m_s"] == 0.0, within_s=30,
                   what="levelled at the bottom landing")
    assert abs(car.state()["count_m"] - car.state()["position_m"]) <= 0.001
    assert [event["detail"] for event in car.firmware_events("correction_run")] == ["started:unreferenced", "done"]
    car.press_car_call(1)
    car.wait_doors("open", within_s=40, at_m=LANDING_M[1])
