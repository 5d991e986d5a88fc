"""Procedures over the wire: the shaft's true state through its control channel, the firmware's through its log."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sim.__main__ import request

ROOT = Path(__file__).resolve().parent.parent
POLL_S = 0.02


# The car on the HIL bench has terminal slowdown switches (configs/sim.toml's car has none fitted): the firmware's
# configuration and the simulated shaft both get them.
BENCH_CAR = "terminal_switches_m = [0.5, 0.25]\n"


def bench_config_text(car_keys: str = "", building_keys: str = "") -> str:
    """configs/sim.toml for the bench car, with ``car_keys`` and ``building_keys`` (TOML lines) added to its [car]
    and [building] tables."""
    text = (ROOT / "configs" / "sim.toml").read_text().replace("[car]\n", "[car]\n" + BENCH_CAR + car_keys, 1)
    return text.replace("[building]\n", "[building]\n" + building_keys, 1)


def simulator_scenario(workdir: Path, car_keys: str = "", physics: str = "", building_keys: str = "") -> Path:
    """The building and the car of the firmware's configuration as a scenario for `sim serve`: the simulated shaft
    is the one the firmware is configured for (its slowdown switches where the firmware expects them, and the
    rest)."""
    firmware = tomllib.loads(bench_config_text(car_keys, building_keys))
    lines = []
    for table in ("building", "car"):
        lines.append(f"[{table}]")
        lines.extend(f"{key} = {json.dumps(value)}" for key, value in firmware.get(table, {}).items())
    if physics:  # the simulated machine's own parts (its brake contacts: docs/scenarios.md, [physics])
        lines.extend(["[physics]", physics])
    path = workdir / "scenario.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def start_simulator(workdir: Path, car_keys: str = "", physics: str = "",
                    building_keys: str = "") -> tuple[subprocess.Popen[str], dict[str, Any]]:
    scenario = simulator_scenario(workdir, car_keys, physics, building_keys)
    with open(workdir / "sim.log", "w") as log:  # the child keeps its own descriptor
        process = subprocess.Popen([sys.executable, "-m", "sim", "serve", "--scenario", str(scenario)], cwd=ROOT,
                                   stdout=subprocess.PIPE, stderr=log, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        raise RuntimeError(f"sim serve did not start: {(workdir / 'sim.log').read_text()}")
    return process, json.loads(line)


def stop_simulator(simulator: subprocess.Popen[str]) -> None:
    simulator.terminate()
    simulator.wait(timeout=10)
    if simulator.stdout is not None:
        simulator.stdout.close()


@contextlib.contextmanager
def running_car(workdir: Path, config: Path, **simulator_keys: str) -> Iterator[WireCar]:
    """`sim serve` with the shaft of ``simulator_keys`` (start_simulator's), and `carctl run` with ``config``
    against it over Modbus TCP and the panel bus; both stopped at the end."""
    simulator, endpoints = start_simulator(workdir, **simulator_keys)
    drive, panel = f"tcp://{endpoints['modbus_tcp']}", endpoints["panel"]
    wire = WireCar(endpoints["control"], workdir, drive, panel)
    wire.config = config
    wire.firmware = start_firmware(workdir, drive, panel, config)
    try:
        wire.wait_until(lambda state: any(r.get("kind") == "start" for r in wire.firmware_records()), within_s=10,
                        what="firmware running")
        time.sleep(0.5)
        yield wire
    finally:
        wire.stop_firmware()
        stop_simulator(simulator)


def firmware_config(workdir: Path, car_keys: str = "", building_keys: str = "") -> Path:
    """configs/sim.toml with a record of latched faults in ``workdir``, as a car in service keeps one (written
    empty before the first start, as the commissioning engineer's reset would leave it), and a maintenance record
    there (docs/audit.md)."""
    record = workdir / "latched.json"
    if not record.exists():
        record.write_text('{"version": 1, "latched": []}')
    text = bench_config_text(car_keys, building_keys).replace('latch_file = ""', f'latch_file = "{record}"')
    text = text.replace('audit_log = ""', f'audit_log = "{workdir / "audit.log"}"')
    path = workdir / "firmware.toml"
    path.write_text(text)
    return path


def start_firmware(workdir: Path, drive: str, panel: str, config: Path | None = None) -> subprocess.Popen[str]:
    config = config if config is not None else firmware_config(workdir)
    with open(workdir / "firmware.log", "a") as log:
        return subprocess.Popen([sys.executable, "-m", "carctl.cli", "run", "--config", str(config), "--drive",
                                 drive, "--panel", panel], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log, text=True)


class ProcedureFailed(AssertionError):
    """A procedure step did not happen in time; the message says what the shaft and the firmware were doing."""


class WireCar:
    def __init__(self, control: str, workdir: Path, drive: str, panel: str) -> None:
        self.control = control
        self.workdir = workdir
        self.drive = drive
        self.panel = panel
        self.firmware: subprocess.Popen[str] | None = None
        self.config: Path | None = None  # the firmware's configuration, when not the bench's default

    # -- the shaft -----------------------------------------------------------------------------------------------

    def send(self, **message: Any) -> dict[str, Any]:
        reply = request(self.control, message)
        if not reply.get("ok"):
            raise ProcedureFailed(f"control channel refused {message}: {reply.get('error')}")
        return reply["state"]  # type: ignore[no-any-return]

    def state(self) -> dict[str, Any]:
        return self.send(cmd="state")

    def press_car_call(self, landing: int) -> None:
        self.send(cmd="car_call", landing=landing)

    def press_hall_call(self, landing: int, direction: str) -> None:
        self.send(cmd="hall_call", landing=landing, direction=direction)

    def wait_until(self, condition: Callable[[dict[str, Any]], bool], within_s: float, what: str) -> float:
        """Poll the true state until condition(state) holds; return the seconds it took."""
        started = time.monotonic()
        deadline = started + within_s
        state = self.state()
        while not condition(state):
            if time.monotonic() > deadline:
                raise ProcedureFailed(f"{what}: not within {within_s} s; shaft: {json.dumps(state)}; "
                                      f"firmware: {self.firmware_tail()}")
            time.sleep(POLL_S)
            state = self.state()
        return time.monotonic() - started

    def wait_doors(self, door: str, within_s: float, at_m: float | None = None) -> dict[str, Any]:
        def reached(state: dict[str, Any]) -> bool:
            return state["door"] == door and (at_m is None or abs(state["position_m"] - at_m) <= 0.005)

        self.wait_until(reached, within_s, f"doors {door}" + (f" at {at_m} m" if at_m is not None else ""))
        return self.state()

    # -- the firmware --------------------------------------------------------------------------------------------

    def firmware_records(self) -> list[dict[str, Any]]:
        path = self.workdir / "firmware.log"
        records = []
        for line in path.read_text().splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
        return records

    def firmware_events(self, event: str | None = None) -> list[dict[str, Any]]:
        return [r for r in self.firmware_records() if r.get("kind") == "event" and (event is None
                                                                                     or r["event"] == event)]

    def firmware_faults_raised(self) -> list[str]:
        return [r["detail"].split(":")[0] for r in self.firmware_events("fault_raised")]

    def firmware_health(self) -> dict[str, Any]:
        health = [r for r in self.firmware_records() if r.get("kind") == "health"]
        return health[-1] if health else {}

    def firmware_tail(self) -> str:
        return " | ".join(json.dumps(r) for r in self.firmware_records()[-6:])

    def kill_firmware(self) -> None:
        assert self.firmware is not None
        self.firmware.send_signal(signal.SIGKILL)
        self.firmware.wait(timeout=5)

    def restart_firmware(self) -> None:
        self.firmware = start_firmware(self.workdir, self.drive, self.panel, self.config)

    def stop_firmware(self) -> None:
        if self.firmware is not None and self.firmware.poll() is None:
            self.firmware.terminate()
            try:
                self.firmware.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.firmware.kill()
                self.firmware.wait(timeout=5)
