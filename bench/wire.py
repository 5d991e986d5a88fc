"""Benchmarks over the wire, against `python -m sim serve` in its own process:

- one full control cycle (Modbus TCP status read + command write on loopback, one panel poll on a pty): median and
  p99; and the same with Modbus RTU on a pty, with the relay holding bytes for their time on a 115200 baud line;
- the drive's exchanges alone over RTU, two transactions (0x03, 0x10) against one Read/Write Multiple Registers
  (0x17), at 115200 and 38400 baud, against drive_map.exchange_time_s's estimate (docs/register-map.md);
- a landing button pressed to its lamp lit, through the whole chain (board, panel bus, `carctl run`, panel bus,
  board), measured at the board: median and p99, target under 100 ms.
"""

from __future__ import annotations

import json
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

from carctl.adapters.drive import DriveLink, Endpoint, LinkErrorKind
from carctl.adapters.panelbus import PanelBusMaster
from carctl.protocol import panelbus
from carctl.protocol.drive_map import DriveCommand, DriveStatus, exchange_time_s
from carctl.protocol.panelbus import CarTopOutputs
from sim.__main__ import request

ROOT = Path(__file__).resolve().parent.parent
CYCLES = 1000


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def drive_times_ms(drive_endpoint: str, baud: int, combined: bool) -> dict[str, float]:
    """The drive's exchanges of one cycle alone: read and write, or one 0x17 (the command of the cycle before)."""
    link = DriveLink(Endpoint.parse(drive_endpoint), timeout_s=0.1, baud=baud, combined=combined)
    link.connect()
    link.read_status()
    times = []
    failures = 0
    for watchdog in range(CYCLES // 2):
        started = time.perf_counter()
        status = link.read_status()
        error = link.write_command(DriveCommand(), watchdog)
        times.append((time.perf_counter() - started) * 1000)
        failures += int(not (isinstance(status, DriveStatus) or status.kind is LinkErrorKind.STALE)
                        or error is not None)
        time.sleep(0.002)
    link.close()
    return {"median_ms": round(statistics.median(times), 3), "p99_ms": round(percentile(times, 0.99), 3),
            "failures": failures, "estimate_ms": round(exchange_time_s(baud, combined) * 1000, 1)}


def drive_exchanges_ms() -> dict[str, dict[str, float]]:
    """At 115200 and 38400 baud (a `sim serve` each, its relay holding bytes for their time on such a line)."""
    found = {}
    for baud in (115200, 38400):
        simulator = subprocess.Popen([sys.executable, "-m", "sim", "serve", "--baud", str(baud)], cwd=ROOT,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            assert simulator.stdout is not None
            endpoint = f"rtu:{json.loads(simulator.stdout.readline())['modbus_rtu']}"
            for combined in (False, True):
                found[f"{baud}_{'combined' if combined else 'separate'}"] = drive_times_ms(endpoint, baud, combined)
        finally:
            simulator.terminate()
            simulator.wait(timeout=10)
    return found


def cycle_times_ms(drive_endpoint: str, panel: str) -> dict[str, float]:
    link = DriveLink(Endpoint.parse(drive_endpoint), timeout_s=0.05)
    master = PanelBusMaster(panel, response_timeout_s=0.02)
    link.connect()
    master.open()
    times = []
    failures = 0
    payload = CarTopOutputs(door_close=True).to_payload()
    for watchdog in range(CYCLES):
        started = time.perf_counter()
        status = link.read_status()
        error = link.write_command(DriveCommand(), watchdog)
        frame = master.poll(panelbus.CAR_TOP, payload)
        times.append((time.perf_counter() - started) * 1000)
        # The bench asks faster than the drive ticks: an answer whose TICK has not moved on is a good exchange.
        answered = isinstance(status, DriveStatus) or status.kind is LinkErrorKind.STALE
        failures += int(not answered or error is not None or frame is None)
        time.sleep(0.002)
    link.close()
    master.close()
    return {"median_ms": round(statistics.median(times), 3), "p99_ms": round(percentile(times, 0.99), 3),
            "failures": failures}


def press_to_lamp_ms(endpoints: dict[str, str]) -> list[float]:
    firmware = subprocess.Popen([sys.executable, "-m", "carctl.cli", "run", "--config",
                                 str(ROOT / "configs" / "sim.toml"), "--drive", f"tcp://{endpoints['modbus_tcp']}",
                                 "--panel", endpoints["panel"]], cwd=ROOT, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
    control = endpoints["control"]
    rng = random.Random(5)
    try:
        time.sleep(2.0)
        presses = 0
        deadline = time.monotonic() + 120
        while presses < 60 and time.monotonic() < deadline:
            state = request(control, {"cmd": "state"})["state"]
            lit = state["lamps"]
            choices = [(n, "up") for n in range(5) if n not in lit["up"]] + [
                (n, "down") for n in range(1, 6) if n not in lit["down"]]
            if len(choices) < 3:
                # Most buttons lit: independent service withdraws the landing calls (their lamps go out), and
                # normal service takes new ones again.
                for on in (True, False):
                    request(control, {"cmd": "key", "name": "independent", "on": on})
                    time.sleep(0.3)
                continue
            landing, direction = rng.choice(choices)
            presses += 1
            request(control, {"cmd": "hall_call", "landing": landing, "direction": direction})
            time.sleep(rng.uniform(0.15, 0.4))
        time.sleep(0.5)
        return list(request(control, {"cmd": "state"})["state"]["press_to_lamp_ms"])
    finally:
        firmware.terminate()
        firmware.wait(timeout=10)


def main() -> int:
    simulator = subprocess.Popen([sys.executable, "-m", "sim", "serve"], cwd=ROOT, stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL, text=True)
    try:
        assert simulator.stdout is not None
        endpoints = json.loads(simulator.stdout.readline())
        tcp = cycle_times_ms(f"tcp://{endpoints['modbus_tcp']}", endpoints["panel"])
        rtu = cycle_times_ms(f"rtu:{endpoints['modbus_rtu']}", endpoints["panel"])
        lamps = press_to_lamp_ms(endpoints)
    finally:
        simulator.terminate()
        simulator.wait(timeout=10)
    exchanges = drive_exchanges_ms()
    lamp = {"samples": len(lamps), "median_ms": round(statistics.median(lamps), 1) if lamps else None,
            "p99_ms": round(percentile(lamps, 0.99), 1) if lamps else None}
    ok = bool(lamps) and lamp["p99_ms"] < 100.0  # type: ignore[operator]
    print(f"wire cycle (Modbus TCP read+write, one panel poll): median {tcp['median_ms']} ms, p99 {tcp['p99_ms']} ms;"
          f" with Modbus RTU at 115200 baud: median {rtu['median_ms']} ms, p99 {rtu['p99_ms']} ms")
    for name, times in exchanges.items():
        print(f"drive exchanges over RTU at {name.replace('_', ' baud, ')}: median {times['median_ms']} ms, "
              f"p99 {times['p99_ms']} ms (estimate {times['estimate_ms']} ms, failures {times['failures']})")
    print(f"landing button to lamp lit: median {lamp['median_ms']} ms, p99 {lamp['p99_ms']} ms over "
          f"{lamp['samples']} presses (target under 100 ms) {'OK' if ok else 'BELOW TARGET'}")
    print(json.dumps({"benchmark": "wire", "cycle_tcp": tcp, "cycle_rtu": rtu, "drive_rtu": exchanges,
                      "press_to_lamp": lamp,
                      "meets_target": ok}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
