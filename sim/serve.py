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
- The control channel is a trust boundary like any other: each line is parsed with carctl.safejson and checked
  against CONTROL_COMMANDS (keys, types, ranges) before anything acts on it. Whatever arrives, the answer is a JSON
  line, `{"ok": false, "error": ...}` for a refusal; a fault kind the simulator does not have is refused with the list
  of those it has (sim.physics.FAULT_KINDS), so nobody believes a fault was injected that never was.
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

from carctl import safejson
from carctl.core.config import DAY_S, ConfigError, ControllerConfig, Range, check_number, shown
from carctl.protocol import panelbus
from sim.drive import SimulatedDrive
from sim.modem import DIALLED_NUMBER, MAX_RESCUE_NUMBERS, RESCUE_ACTIONS, SimulatedModem
from sim.panels import PanelBoards
from sim.physics import FAULT_KINDS, PhysicsConfig, Shaft, UnknownFault
from sim.scenario import ScriptedEvent

# One request is one line of JSON; no command needs more than a few hundred bytes.
CONTROL_LINE_BYTES = 4096
# The keys each command takes (besides "cmd"); any other key is refused, so that a misspelt one is not ignored.
CONTROL_COMMANDS: dict[str, tuple[str, ...]] = {
    "state": (), "car_call": ("landing",), "accessible_call": ("landing",), "hall_call": ("landing", "direction"),
    "button": ("name", "hold_s"), "seat": ("occupied",), "obstruct": ("duration_s", "side"), "load": ("load_kg",),
    "inject": ("kind",), "clear": ("kind",), "modbus": ("drop", "corrupt"), "modbus_cut": ("duration_s",),
    "panel_garbage": ("bytes",), "panel_corrupt": ("frames",), "panel_silent": ("address", "silent"),
    "fire_switch": ("on",), "inspection_run": ("direction",), "fire_detector": ("landing", "on"),
    "key": ("name", "on"), "alarm": ("held",), "eeo_run": ("direction",),
    "rescue": ("action", "number"), "modem": ("dead",), "learn": (),
}
CAR_BUTTONS = ("door_open", "door_close", "alarm", "accessible", "fault_reset", "alarm_reset")
# The cabinet's learn button (`sim ctl learn`) is held this long: read on several polls of its board, then let go.
LEARN_PRESS_S = 0.5
MAX_HOLD_S = 600.0  # `button NAME --hold S`: long enough for any procedure, short enough to end
# Frames or answers a line fault may take: enough for any test, few enough to end.
MAX_LINE_FAULTS = 10_000
_REQUIRED = object()


class Refused(ValueError):
    """A control request that is not carried out; its message is the reply's error."""


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
        """OSError for a host or port that cannot be listened on (checked here, before anything starts)."""
        self.config = config
        self.host = host
        for port in (modbus_port, control_port):
            if port:
                with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    probe.bind((host, port))
        self.modbus_port = modbus_port or free_port(host)
        self.control_port = control_port or free_port(host)
        self.baud = baud
        self.seed = seed
        self.period_s = config.car.control_period_s
        self.shaft = Shaft(config, physics)
        building = config.building
        self.boards = PanelBoards(self.shaft, building.landing_count, building.main_landing,
                                  building.cabinet_landing_index)
        self.drive = SimulatedDrive(self.shaft, self.boards)
        self.tcp_faults = LineFaults()
        self.rng = random.Random(seed)
        self.started_s = 0.0
        self.late_ticks = 0
        self.held_buttons: dict[str, float] = {}  # car-panel buttons held down (sim ctl button NAME --hold S): until
        self.panel_corrupt = 0
        self.cut_until_s = 0.0
        self.modem = SimulatedModem()

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

    # -- the alarm's modem ---------------------------------------------------------------------------------------

    def _on_modem_bytes(self) -> None:
        try:
            data = os.read(self.modem_master, 4096)
        except (BlockingIOError, OSError):
            return
        self._write_modem(self.modem.on_bytes(data, time.monotonic()))

    def _on_modem_time(self) -> None:
        self._write_modem(self.modem.tick(time.monotonic()))

    def _write_modem(self, data: bytes) -> None:
        if data:
            try:
                os.write(self.modem_master, data)
            except OSError:
                pass  # nobody has the modem's port open

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
            self._on_modem_time()  # a call answered by the rescue centre
            if self.held_buttons:
                self._keep_held(time.monotonic())
            next_s += self.period_s
            if time.monotonic() - next_s > 5 * self.period_s:
                # Far behind (the machine stalled): count it and resynchronise rather than run a burst.
                self.late_ticks += 1
                next_s = time.monotonic()

    def _hold_button(self, name: str, hold_s: float) -> None:
        """A car-panel button held down for hold_s: the alarm button is a level on the bus; the others are pressed
        again as long as they are held, as a board latches a held button again after each acknowledgement."""
        self.held_buttons[name] = time.monotonic() + hold_s
        if name == "alarm":
            self.boards.hold_alarm(True)
        elif name == "learn":
            self.boards.learn_button = True
        else:
            self.boards.press_car_button(name)

    def _keep_held(self, now_s: float) -> None:
        for name, until_s in list(self.held_buttons.items()):
            if now_s >= until_s:
                del self.held_buttons[name]
                if name == "alarm":
                    self.boards.hold_alarm(False)
                elif name == "learn":
                    self.boards.learn_button = False
            elif name not in ("alarm", "learn"):
                self.boards.press_car_button(name)

    # -- control channel -----------------------------------------------------------------------------------------

    async def _control_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    line = await reader.readline()
                except ValueError:  # longer than the stream's limit: answered, then the connection is closed
                    writer.write(_reply_line({"ok": False, "error": "request line too long"}))
                    await writer.drain()
                    break
                if not line:
                    break
                writer.write(self.reply(line))
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    def reply(self, line: bytes) -> bytes:
        """The answer to one request line, as a JSON line; never raises."""
        try:
            request = safejson.loads(line, max_bytes=CONTROL_LINE_BYTES, max_depth=2, max_values=64)
            answer = {"ok": True, **self.handle(request)}
        except (safejson.JsonRefused, Refused) as refused:
            answer = {"ok": False, "error": str(refused)}
        return _reply_line(answer)

    def handle(self, request: Any) -> dict[str, Any]:
        """One control command (see `python -m sim ctl --help`); Refused, before anything changes, for a request
        that is not a table, an unknown command or key, or a value of the wrong type or out of range."""
        if not isinstance(request, dict):
            raise Refused(f"a request is a JSON object (got {type(request).__name__})")
        command = request.get("cmd")
        if not isinstance(command, str) or command not in CONTROL_COMMANDS:
            raise Refused(f"unknown command {shown(command)} (known: {', '.join(CONTROL_COMMANDS)})")
        for key in request:
            if key != "cmd" and key not in CONTROL_COMMANDS[command]:
                raise Refused(f"{command} takes no key {shown(key)} (it takes: "
                              f"{', '.join(CONTROL_COMMANDS[command]) or 'none'})")
        self._act(command, request)
        return {"state": self.state()}

    def _act(self, command: str, request: dict[str, Any]) -> None:
        boards = self.boards
        shaft = self.shaft
        last_landing = self.config.building.landing_count - 1
        if command in ("car_call", "accessible_call"):
            boards.press_car_call(_whole(request, "landing", 0, last_landing), accessible=command == "accessible_call")
        elif command == "hall_call":
            landing = _whole(request, "landing", 0, last_landing)
            direction = _choice(request, "direction", ("up", "down"))
            if (direction == "up" and landing == last_landing) or (direction == "down" and landing == 0):
                raise Refused(f"landing {landing} has no {direction} button")
            boards.press_hall_call(landing, direction)
        elif command == "button":
            name = _choice(request, "name", CAR_BUTTONS)
            if "hold_s" in request:
                self._hold_button(name, _number(request, "hold_s", 0.0, MAX_HOLD_S, above=True))
            else:
                boards.press_car_button(name)
        elif command == "alarm":
            boards.hold_alarm(_flag(request, "held"))
        elif command == "seat":
            shaft.seat_occupied = _flag(request, "occupied")
        elif command == "obstruct":
            duration_s = _number(request, "duration_s", 0.0, DAY_S, above=True)
            until_tick = shaft.tick + max(1, round(duration_s / self.period_s))
            if _choice(request, "side", ("front", "rear"), default="front") == "rear":
                if shaft.rear is None:
                    raise Refused("the car has no rear door (building.door_sides)")
                shaft.rear.obstructed_until_tick = until_tick
            else:
                shaft.obstructed_until_tick = until_tick
        elif command == "load":
            load_span = ScriptedEvent.RANGES["load_kg"]
            shaft.extra_load_kg = _number(request, "load_kg", load_span.low, load_span.high)
            shaft.set_load(shaft.load_kg)
        elif command in ("inject", "clear"):
            kind = _choice(request, "kind", FAULT_KINDS)
            if command == "inject":
                shaft.inject(kind)
            else:
                shaft.clear(kind)
            if kind == "modem_dead":  # the module's, not the shaft's (the `modem` command does the same)
                self.modem.dead = command == "inject"
            self._silence_board(kind, silent=command == "inject")
        elif command == "modbus":
            drop = _whole(request, "drop", 0, MAX_LINE_FAULTS, default=0)
            corrupt = _whole(request, "corrupt", 0, MAX_LINE_FAULTS, default=0)
            self.tcp_faults.drop, self.tcp_faults.corrupt = drop, corrupt
            self.relay.to_a_faults.drop, self.relay.to_a_faults.corrupt = drop, corrupt
        elif command == "modbus_cut":
            self.cut_until_s = time.monotonic() + _number(request, "duration_s", 0.0, 3600.0, above=True)
        elif command == "panel_garbage":
            self.write_panel_garbage(_whole(request, "bytes", 1, 65536))
        elif command == "panel_corrupt":
            self.panel_corrupt = _whole(request, "frames", 0, MAX_LINE_FAULTS)
        elif command == "panel_silent":
            address = _whole(request, "address", 0, 255)
            (boards.silent.add if _flag(request, "silent", default=True) else boards.silent.discard)(address)
        elif command == "fire_switch":
            boards.fire_switch = _flag(request, "on")
        elif command == "inspection_run":
            held = _choice(request, "direction", ("up", "down", None), default=None)
            boards.inspection_up, boards.inspection_down = held == "up", held == "down"
        elif command == "fire_detector":
            landing = _whole(request, "landing", 0, last_landing)
            (boards.fire_detected.add if _flag(request, "on", default=True) else boards.fire_detected.discard)(landing)
        elif command == "eeo_run":
            held = _choice(request, "direction", ("up", "down", None), default=None)
            boards.eeo_up, boards.eeo_down = held == "up", held == "down"
        elif command == "rescue":
            action = _choice(request, "action", RESCUE_ACTIONS)
            number = _value(request, "number", None)
            if number is not None and (action == "hangup" or not isinstance(number, str)
                                       or not DIALLED_NUMBER.fullmatch(number)):
                raise Refused(f"number must be a number the car dials (+ and up to 32 digits), with answer, busy or "
                              f"no-answer (got {shown(number)})")
            if number is not None and number not in self.modem.per_number and (
                    len(self.modem.per_number) >= MAX_RESCUE_NUMBERS):
                raise Refused(f"the rescue centre keeps a behaviour for at most {MAX_RESCUE_NUMBERS} numbers "
                              f"(`rescue answer` without a number forgets them)")
            if action == "hangup":
                self.modem.hang_up()
            elif number is not None:
                self.modem.per_number[number] = action
            else:
                self.modem.behaviour = action
                self.modem.per_number.clear()
            self._on_modem_time()
        elif command == "modem":
            self.modem.dead = _flag(request, "dead")
        elif command == "learn":  # the cabinet's learn button, pressed and let go (a level on the bus)
            self._hold_button("learn", LEARN_PRESS_S)
        elif command == "key":
            name = _choice(request, "name", ("independent", "inspection", "eeo"))
            attribute = {"independent": "independent_key", "inspection": "inspection", "eeo": "eeo_switch"}[name]
            setattr(boards, attribute, _flag(request, "on"))

    def _silence_board(self, kind: str, silent: bool) -> None:
        """A silent-board fault over the wire: the board stops answering on the panel bus, as a cut cable would."""
        landings = range(self.config.building.landing_count)
        # The car-top boards share the travelling cable: the rear door's board falls silent with the front one.
        addresses = {"car_top_silent": [panelbus.CAR_TOP, panelbus.REAR_CAR_TOP],
                     "car_panel_silent": [panelbus.CAR_PANEL],
                     "landing_silent": [panelbus.landing_address(landing) for landing in landings]}.get(kind, [])
        for address in addresses:
            (self.boards.silent.add if silent else self.boards.silent.discard)(address)

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
            # Each lift of the brake, and the fastest the car was moving at one (0 unless a run began while it slid
            # on the brake after a stop: docs/faults.md, "Recovery after a stop at once").
            "brake_lifts": shaft.brake_lifts,
            "fastest_brake_lift_m_s": round(shaft.fastest_lift_m_s, 4),
            "load_kg": round(shaft.total_load_kg(), 1),
            "seat_occupied": shaft.seat_occupied,
            "alarm_held": self.boards.alarm_held,
            "prompts": list(self.boards.prompts),  # spoken by the car panel (docs/alarm.md)
            # The alarm's modem and the rescue centre it calls (sim/modem.py).
            "modem": {"dialled": list(self.modem.dialled[-20:]), "calling": self.modem.calling,
                      "connected": self.modem.connected, "dead": self.modem.dead,
                      "rescue": self.modem.behaviour, "rescue_numbers": dict(self.modem.per_number)},
            "injected": sorted(shaft.injected),
            "drive_fault_code": shaft.drive_fault_code,
            "comm_loss_trip": self.drive.comm_loss_trip,
            "lamps": self.boards.lamps(),
            "indicator": {"landing": panel.position_landing, "up": panel.arrow_up, "down": panel.arrow_down,
                          "buzzer": panel.buzzer, "overload": panel.overload_lamp, "rescue_notice": panel.rescue_notice,
                          # The alarm's signals to the rider (EN 81-28): yellow "transmitted", green "voice".
                          "alarm_transmitted": panel.alarm_transmitted_lamp, "alarm_voice": panel.alarm_voice_lamp},
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
            **self._rear_state(),
        }

    def _rear_state(self) -> dict[str, Any]:
        """A car with doors on both sides: its rear door and what the rear door's board was told (nothing on a car
        with one door, whose state reads as before)."""
        rear = self.shaft.rear
        if rear is None:
            return {}
        told = self.boards.rear_car_top_outputs
        return {"rear_door": rear.state(), "rear_door_open_fraction": round(rear.open_fraction(), 4),
                "rear_car_top": {"door_open": told.door_open, "door_close": told.door_close,
                                 "nudge": told.door_nudge}}

    # -- run -----------------------------------------------------------------------------------------------------

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        self.relay = PtyRelay(loop, self.baud, self.seed)
        self.panel_master, self._panel_slave, self.panel_path = open_pty()
        loop.add_reader(self.panel_master, self._on_panel_bytes)
        self.modem_master, self._modem_slave, self.modem_path = open_pty()
        loop.add_reader(self.modem_master, self._on_modem_bytes)
        tcp = ModbusTcpServer(self.drive.context, address=(self.host, self.modbus_port),
                              trace_packet=self._trace_tcp)
        rtu = ModbusSerialServer(self.drive.context, framer=FramerType.RTU, port=self.relay.b_path,
                                 baudrate=self.baud)
        control = await asyncio.start_server(self._control_client, self.host, self.control_port)
        tasks = [asyncio.create_task(tcp.serve_forever()), asyncio.create_task(rtu.serve_forever()),
                 asyncio.create_task(self._physics())]
        await asyncio.sleep(0.05)
        print(json.dumps({"modbus_tcp": f"{self.host}:{self.modbus_port}", "modbus_rtu": self.relay.a_path,
                          "panel": self.panel_path, "modem": self.modem_path,
                          "control": f"{self.host}:{self.control_port}",
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


def _reply_line(answer: dict[str, Any]) -> bytes:
    return (json.dumps(answer) + "\n").encode()


def _value(request: dict[str, Any], key: str, default: Any) -> Any:
    value = request.get(key, default)
    if value is _REQUIRED:
        raise Refused(f"{request['cmd']} needs {key}")
    return value


def _in_range(value: Any, span: Range, key: str, whole: bool) -> None:
    """The configuration's own range check (carctl.core.config), its refusal a control request's."""
    try:
        check_number(value, span, key, whole)
    except ConfigError as error:
        raise Refused(f"{key} {error.message}") from None


def _whole(request: dict[str, Any], key: str, low: int, high: int, default: Any = _REQUIRED) -> int:
    value = _value(request, key, default)
    _in_range(value, Range(low, high), key, whole=True)
    return int(value)


def _number(request: dict[str, Any], key: str, low: float, high: float, above: bool = False) -> float:
    value = _value(request, key, _REQUIRED)
    _in_range(value, Range(low, high, above=above), key, whole=False)
    return float(value)


def _flag(request: dict[str, Any], key: str, default: Any = _REQUIRED) -> bool:
    value = _value(request, key, default)
    if not isinstance(value, bool):
        raise Refused(f"{key} must be true or false (got {shown(value)})")
    return value


def _choice(request: dict[str, Any], key: str, choices: tuple[Any, ...], default: Any = _REQUIRED) -> Any:
    value = _value(request, key, default)
    if not any(value == choice and type(value) is type(choice) for choice in choices):
        if key == "kind":
            raise Refused(str(UnknownFault(value)))
        names = ", ".join("null" if choice is None else choice for choice in choices)
        raise Refused(f"{key} must be one of {names} (got {shown(value)})")
    return value


def serve(config: ControllerConfig, physics: PhysicsConfig, **options: Any) -> int:
    """Run until SIGINT or SIGTERM; 0, or 2 with one line on stderr if the host or a port cannot be listened on."""
    try:
        server = ShaftServer(config, physics, **options)
        asyncio.run(server.run())
    except KeyboardInterrupt:
        pass
    except OSError as error:
        print(f"sim serve: error: cannot listen on {options.get('host', '127.0.0.1')} "
              f"({error.strerror or error})", file=sys.stderr)
        return 2
    sys.stdout.flush()
    return 0
