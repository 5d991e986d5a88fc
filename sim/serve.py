"""`python -m sim serve`: the simulated shaft in real time, on real protocols.

- The drive as a Modbus server: TCP on a port, and RTU on a pseudo-terminal (pymodbus's own servers).
- The panel boards on a pseudo-terminal: the controller opens its path with pyserial, as it would /dev/ttyAMA0.
- A control channel (JSON lines on a local TCP port) for `python -m sim ctl`: press buttons, inject faults, read the
  shaft's true state.
It prints its endpoints as one JSON line on stdout, then runs until SIGINT or SIGTERM.

Rules of this module:
- One asyncio loop runs everything; the physics steps on a monotonic schedule at the control period and catches up
  if it falls behind, so the simulated time stays real time.
- The RTU line is two pseudo-terminals joined by a relay (as socat would), which can drop or corrupt frames on
  request, and can hold bytes back for the time they would take on the wire at the configured baud rate.
"""

from __future__ import annotations

import asyncio
import json
import os
import pty
import random
import signal
import socket
import sys
import termios
import time
import tty
from dataclasses import dataclass
from typing import Any

from pymodbus.framer import FramerType
from pymodbus.server import ModbusSerialServer, ModbusTcpServer

from carctl.core.config import ControllerConfig
from sim.drive import SimulatedDrive
from sim.panels import PanelBoards
from sim.physics import PhysicsConfig, Shaft


def open_pty() -> tuple[int, int, str]:
    """(master fd, slave fd, slave path) in raw mode; the slave stays open so the master never sees EIO."""
    master, slave = pty.openpty()
    tty.setraw(slave, termios.TCSANOW)
    os.set_blocking(master, False)
    return master, slave, os.ttyname(slave)


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


@dataclass(slots=True)
class LineFaults:
    """Faults the relay puts on a serial line, counted down per frame-sized burst."""

    drop: int = 0
    corrupt: int = 0

    def apply(self, data: bytes, rng: random.Random) -> bytes:
        if self.drop > 0:
            self.drop -= 1
            return b""
        if self.corrupt > 0 and data:
            self.corrupt -= 1
            damaged = bytearray(data)
            damaged[rng.randrange(len(damaged))] ^= 1 << rng.randrange(8)
            return bytes(damaged)
        return data


class PtyRelay:
    """Two pseudo-terminals joined back to back; what one side writes, the other reads."""

    def __init__(self, loop: asyncio.AbstractEventLoop, baud: int, seed: int) -> None:
        self.a_master, self._a_slave, self.a_path = open_pty()
        self.b_master, self._b_slave, self.b_path = open_pty()
        self.loop = loop
        self.byte_time_s = 10.0 / baud if baud > 0 else 0.0
        self.to_b_faults = LineFaults()  # controller -> drive
        self.to_a_faults = LineFaults()  # drive -> controller
        self.rng = random.Random(seed)
        loop.add_reader(self.a_master, self._pump, self.a_master, self.b_master, self.to_b_faults)
        loop.add_reader(self.b_master, self._pump, self.b_master, self.a_master, self.to_a_faults)

    def _pump(self, source: int, target: int, faults: LineFaults) -> None:
        try:
            data = os.read(source, 4096)
        except (BlockingIOError, OSError):
            return
        data = faults.apply(data, self.rng)
        if not data:
            return
        if self.byte_time_s:
            self.loop.call_later(len(data) * self.byte_time_s, self._write, target, data)
        else:
            self._write(target, data)

    @staticmethod
    def _write(target: int, data: bytes) -> None:
        try:
            os.write(target, data)
        except OSError:
            pass


class ShaftServer:
    def __init__(self, config: ControllerConfig, physics: PhysicsConfig, host: str = "127.0.0.1",
                 modbus_port: int = 0, control_port: int = 0, baud: int = 115200, seed: int = 1) -> None:
        self.config = config
        self.host = host
        self.modbus_port = modbus_port or free_port(host)
        self.control_port = control_port or free_port(host)
        self.baud = baud
        self.seed = seed
        self.period_s = config.car.control_period_s
        self.shaft = Shaft(config, physics)
        building = config.building
        self.boards = PanelBoards(self.shaft, building.landing_count, building.main_landing)
        self.drive = SimulatedDrive(self.shaft, self.boards)
        self.tcp_faults = LineFaults()
        self.rng = random.Random(seed)
        self.started_s = 0.0
        self.late_ticks = 0
        self.panel_corrupt = 0
        self.cut_until_s = 0.0

    # -- Modbus fault hook ---------------------------------------------------------------------------------------

    def _trace_tcp(self, sending: bool, data: bytes) -> bytes:
        if time.monotonic() < self.cut_until_s:
            return b""  # a cut cable: nothing in, nothing out
        return self.tcp_faults.apply(data, self.rng) if sending else data

    # -- panel bus -----------------------------------------------------------------------------------------------

    def _on_panel_bytes(self) -> None:
        try:
            data = os.read(self.panel_master, 4096)
        except (BlockingIOError, OSError):
            return
        answer = self.boards.on_bytes(data)
        if answer:
            if self.panel_corrupt > 0:
                self.panel_corrupt -= 1
                damaged = bytearray(answer)
                damaged[self.rng.randrange(len(damaged))] ^= 0x10
                answer = bytes(damaged)
            try:
                os.write(self.panel_master, answer)
            except OSError:
                pass

    def write_panel_garbage(self, count: int) -> None:
        os.write(self.panel_master, bytes(self.rng.randrange(256) for _ in range(count)))

    # -- physics -------------------------------------------------------------------------------------------------

    async def _physics(self) -> None:
        next_s = time.monotonic()
        while True:
            now = time.monotonic()
            if now < next_s:
                await asyncio.sleep(next_s - now)
            self.drive.step(time.monotonic())
            next_s += self.period_s
            if time.monotonic() - next_s > 5 * self.period_s:
                # Far behind (the machine stalled): count it and resynchronise rather than run a burst.
                self.late_ticks += 1
                next_s = time.monotonic()

    # -- control channel -----------------------------------------------------------------------------------------

    async def _control_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                try:
                    request = json.loads(line)
                    reply = {"ok": True, **self.handle(request)}
                except (ValueError, KeyError, TypeError) as error:
                    reply = {"ok": False, "error": str(error)}
                writer.write((json.dumps(reply) + "\n").encode())
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        """One control command; see `python -m sim ctl --help`."""
        command = request["cmd"]
        boards = self.boards
        shaft = self.shaft
        count = self.config.building.landing_count
        if command in ("car_call", "accessible_call"):
            landing = int(request["landing"])
            if not 0 <= landing < count:
                raise ValueError(f"landing {landing} does not exist")
            boards.press_car_call(landing, accessible=command == "accessible_call")
        elif command == "hall_call":
            landing = int(request["landing"])
            direction = request["direction"]
            if not 0 <= landing < count or direction not in ("up", "down"):
                raise ValueError("hall_call needs an existing landing and direction up or down")
            boards.press_hall_call(landing, direction)
        elif command == "button":
            boards.press_car_button(str(request["name"]))
        elif command == "seat":
            shaft.seat_occupied = bool(request["occupied"])
        elif command == "obstruct":
            shaft.obstructed_until_tick = shaft.tick + max(1, round(float(request["duration_s"]) / self.period_s))
        elif command == "load":
            shaft.extra_load_kg = float(request["load_kg"])
            shaft.set_load(shaft.load_kg)
        elif command == "inject":
            shaft.inject(str(request["kind"]))
        elif command == "clear":
            shaft.clear(str(request["kind"]))
        elif command == "modbus":
            faults = LineFaults(drop=int(request.get("drop", 0)), corrupt=int(request.get("corrupt", 0)))
            self.tcp_faults.drop, self.tcp_faults.corrupt = faults.drop, faults.corrupt
            self.relay.to_a_faults.drop, self.relay.to_a_faults.corrupt = faults.drop, faults.corrupt
        elif command == "modbus_cut":
            self.cut_until_s = time.monotonic() + float(request["duration_s"])
        elif command == "panel_garbage":
            self.write_panel_garbage(int(request["bytes"]))
        elif command == "panel_corrupt":
            self.panel_corrupt = int(request["frames"])
        elif command == "panel_silent":
            address = int(request["address"])
            (boards.silent.add if request.get("silent", True) else boards.silent.discard)(address)
        elif command == "fire_switch":
            boards.fire_switch = bool(request["on"])
        elif command == "inspection_run":
            held = request.get("direction")
            if held not in ("up", "down", None):
                raise ValueError("direction must be up, down or null (released)")
            boards.inspection_up, boards.inspection_down = held == "up", held == "down"
        elif command == "fire_detector":
            (boards.fire_detected.add if request.get("on", True) else boards.fire_detected.discard)(
                int(request["landing"]))
        elif command == "key":
            name = request["name"]
            if name not in ("independent", "inspection"):
                raise ValueError("key must be independent or inspection")
            setattr(boards, "independent_key" if name == "independent" else "inspection", bool(request["on"]))
        elif command != "state":
            raise ValueError(f"unknown command {command!r}")
        return {"state": self.state()}

    def state(self) -> dict[str, Any]:
        shaft = self.shaft
        panel = self.boards.car_panel_outputs
        return {
            "t_s": round(shaft.tick * self.period_s, 3),
            "position_m": round(shaft.position_m, 4),
            "speed_m_s": round(shaft.speed_m_s, 4),
            "door": shaft.door_state(),
            "door_open_fraction": round(shaft.door_open_fraction(), 4),
            "brake_open": shaft.brake_open,
            "load_kg": round(shaft.total_load_kg(), 1),
            "seat_occupied": shaft.seat_occupied,
            "injected": sorted(shaft.injected),
            "drive_fault_code": shaft.drive_fault_code,
            "comm_loss_trip": self.drive.comm_loss_trip,
            "lamps": self.boards.lamps(),
            "indicator": {"landing": panel.position_landing, "up": panel.arrow_up, "down": panel.arrow_down,
                          "buzzer": panel.buzzer, "overload": panel.overload_lamp, "rescue_notice": panel.rescue_notice},
            "on_battery": shaft.on_battery,
            "position_unreferenced": shaft.position_unreferenced,
            "count_m": round(shaft.encoder_m(), 4),
            "car_top": {"door_open": self.boards.car_top_outputs.door_open,
                        "door_close": self.boards.car_top_outputs.door_close,
                        "nudge": self.boards.car_top_outputs.door_nudge,
                        "car_light": self.boards.car_top_outputs.car_light,
                        "car_fan": self.boards.car_top_outputs.car_fan},
            "panel_bus": {"polls_answered": self.boards.polls_answered,
                          "bad_crc": self.boards.decoder.counters.bad_crc,
                          "garbage_bytes": self.boards.decoder.counters.garbage_bytes},
            "late_ticks": self.late_ticks,
            "press_to_lamp_ms": [round(value * 1000, 2) for value in self.boards.press_to_lamp_s[-1000:]],
        }

    # -- run -----------------------------------------------------------------------------------------------------

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        self.relay = PtyRelay(loop, self.baud, self.seed)
        self.panel_master, self._panel_slave, self.panel_path = open_pty()
        loop.add_reader(self.panel_master, self._on_panel_bytes)
        tcp = ModbusTcpServer(self.drive.context, address=(self.host, self.modbus_port),
                              trace_packet=self._trace_tcp)
        rtu = ModbusSerialServer(self.drive.context, framer=FramerType.RTU, port=self.relay.b_path,
                                 baudrate=self.baud)
        control = await asyncio.start_server(self._control_client, self.host, self.control_port)
        tasks = [asyncio.create_task(tcp.serve_forever()), asyncio.create_task(rtu.serve_forever()),
                 asyncio.create_task(self._physics())]
        await asyncio.sleep(0.05)
        print(json.dumps({"modbus_tcp": f"{self.host}:{self.modbus_port}", "modbus_rtu": self.relay.a_path,
                          "panel": self.panel_path, "control": f"{self.host}:{self.control_port}",
                          "period_s": self.period_s, "pid": os.getpid()}), flush=True)
        stop = asyncio.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
        control.close()
        await tcp.shutdown()
        await rtu.shutdown()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def serve(config: ControllerConfig, physics: PhysicsConfig, **options: Any) -> int:
    server = ShaftServer(config, physics, **options)
    try:
        asyncio.run(server.run())
    except KeyboardInterrupt:
        pass
    sys.stdout.flush()
    return 0
