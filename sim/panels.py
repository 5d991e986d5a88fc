"""Simulated panel boards: the car-top board, the car operating panel and one board per landing, as slaves on the
panel bus. Bytes in (the master's POLL frames), bytes out (their STATUS answers).

Rules of this module:
- A board answers only a good POLL addressed to it, at once; it takes its outputs (lamps, door commands) from the
  POLL and reports its inputs in the STATUS.
- Presses are latched until acknowledged, by the board's end of the firmware's own handshake
  (carctl/protocol/panel_session.BoardLatch): a press reported in STATUS n is cleared only when a POLL carries ack n.
- The alarm button is a level: reported while it is held, and a press shorter than a poll is latched like any
  other so that it is not lost.
- The boards read the shaft (door limits, lock, light curtain, door zone, seat) through the same Shaft the drive
  moves, so the controller sees one consistent car. The rear door's car-top board (0x03) answers only on a car
  with doors on both sides.
"""

from __future__ import annotations

import time

from carctl.protocol import panelbus
from carctl.protocol.panel_session import BoardLatch
from carctl.protocol.panelbus import (CarPanelInputs, CarPanelOutputs, CarTopInputs, CarTopOutputs, FrameDecoder,
                                      LandingInputs, LandingOutputs, PayloadError)
from sim.physics import DOOR_TRAVEL_UNITS, Shaft


class PanelBoards:
    def __init__(self, shaft: Shaft, landing_count: int, main_landing: int, cabinet_landing: int = -1) -> None:
        self.shaft = shaft
        self.landing_count = landing_count
        self.main_landing = main_landing
        # The controller cabinet beside this landing: its board also reads the emergency electrical operation switch
        # and hold-to-run buttons (-1: the top landing).
        self.cabinet_landing = landing_count - 1 if cabinet_landing < 0 else cabinet_landing
        self.eeo_switch = False
        self.eeo_up = False
        self.eeo_down = False
        self.learn_button = False  # the cabinet's learn button (the shaft learning run), on the same board
        self.decoder = FrameDecoder()
        self.car_top_outputs = CarTopOutputs()
        # The rear door's car-top board (0x03), on a car with doors on both sides.
        self.rear_car_top_outputs = CarTopOutputs()
        self.rear_car_top_sequence = 0
        self.car_panel_outputs = CarPanelOutputs()
        self.landing_outputs = {landing: LandingOutputs() for landing in range(landing_count)}
        self._latches: dict[int, BoardLatch] = {}
        self.car_top_sequence = 0
        self.fire_switch = False
        self.fire_detected: set[int] = set()  # landings whose fire detector is active
        self.inspection = False
        self.inspection_up = False  # the car-top station's hold-to-run buttons
        self.inspection_down = False
        self.independent_key = False
        self.alarm_held = False
        self.prompts: list[str] = []  # the spoken prompts the car panel was asked for, each once (the last 20)
        self.polls_answered = 0
        self.payload_errors = 0
        # Boards that have gone silent (a cut cable): they do not answer.
        self.silent: set[int] = set()
        # Button press to lamp lit, measured at the landing board: when each pending press was made, and the
        # latencies seen so far (seconds).
        self.pressed_at_s: dict[tuple[int, str], float] = {}
        self.press_to_lamp_s: list[float] = []

    def _latch(self, address: int) -> BoardLatch:
        return self._latches.setdefault(address, BoardLatch())

    # -- what people do ------------------------------------------------------------------------------------------

    def press_car_call(self, landing: int, accessible: bool = False) -> None:
        latch = self._latch(panelbus.CAR_PANEL)
        latch.press(f"call:{landing}")
        if accessible:
            latch.press("accessible")

    def press_car_button(self, name: str) -> None:
        """door_open, door_close, alarm, accessible, fault_reset, alarm_reset (the rescuer's key)."""
        self._latch(panelbus.CAR_PANEL).press(name)

    def hold_alarm(self, held: bool) -> None:
        """The alarm button held down (True) or let go (False)."""
        self.alarm_held = held
        if held:
            self._latch(panelbus.CAR_PANEL).press("alarm")

    def press_hall_call(self, landing: int, direction: str) -> None:
        self._latch(panelbus.landing_address(landing)).press(direction)
        self.pressed_at_s[(landing, direction)] = time.monotonic()

    # -- the bus -------------------------------------------------------------------------------------------------

    def on_bytes(self, data: bytes) -> bytes:
        """Feed what the master sent; return what the boards answer."""
        answers = bytearray()
        for frame in self.decoder.feed(data):
            if frame.type != panelbus.POLL or frame.address in self.silent:
                continue
            answer = self.answer(frame.address, frame.payload)
            if answer is not None:
                answers += panelbus.encode_frame(frame.address, panelbus.STATUS, answer)
        return bytes(answers)

    def answer(self, address: int, payload: bytes) -> bytes | None:
        """The STATUS payload the board at ``address`` answers a POLL payload with (None: no such board, a silent
        board, or a POLL payload that does not decode)."""
        if address in self.silent:
            return None
        try:
            answer = self._answer(address, payload)
        except PayloadError:
            self.payload_errors += 1
            return None
        if answer is not None:
            self.polls_answered += 1
        return answer

    def _answer(self, address: int, payload: bytes) -> bytes | None:
        shaft = self.shaft
        if address == panelbus.CAR_TOP:
            self.car_top_outputs = CarTopOutputs.from_payload(payload)
            self.car_top_sequence = (self.car_top_sequence + 1) & 0xFF
            return car_top_reading(shaft, self.car_top_sequence, self.inspection, self.inspection_up,
                                   self.inspection_down).to_payload()
        if address == panelbus.REAR_CAR_TOP and shaft.rear is not None:
            self.rear_car_top_outputs = CarTopOutputs.from_payload(payload)
            self.rear_car_top_sequence = (self.rear_car_top_sequence + 1) & 0xFF
            return rear_car_top_reading(shaft, self.rear_car_top_sequence).to_payload()
        if address == panelbus.CAR_PANEL:
            before = self.car_panel_outputs.announce_landing
            self.car_panel_outputs = CarPanelOutputs.from_payload(payload)
            if (self.car_panel_outputs.announce_landing == panelbus.PROMPT_HELP_ON_THE_WAY
                    and before != panelbus.PROMPT_HELP_ON_THE_WAY):
                self.prompts = [*self.prompts[-19:], "help_on_the_way"]
            latch = self._latch(address)
            latch.acknowledge(self.car_panel_outputs.ack)
            reported = latch.report()
            calls = frozenset(int(name.split(":")[1]) for name in reported if name.startswith("call:"))
            return CarPanelInputs(sequence=latch.sequence, calls_pressed=calls,
                                  door_open_button="door_open" in reported, door_close_button="door_close" in reported,
                                  alarm_button=self.alarm_held or "alarm" in reported,
                                  accessible_button="accessible" in reported, seat_occupied=shaft.seat_occupied,
                                  independent_key=self.independent_key,
                                  fault_reset_key="fault_reset" in reported,
                                  alarm_reset_key="alarm_reset" in reported).to_payload()
        landing = address - panelbus.LANDING_BASE
        if 0 <= landing < self.landing_count:
            outputs = LandingOutputs.from_payload(payload)
            self.landing_outputs[landing] = outputs
            for direction, lit in (("up", outputs.up_lamp), ("down", outputs.down_lamp)):
                pressed = self.pressed_at_s.pop((landing, direction), None) if lit else None
                if pressed is not None:
                    self.press_to_lamp_s.append(time.monotonic() - pressed)
            latch = self._latch(address)
            latch.acknowledge(outputs.ack)
            reported = latch.report()
            fire = self.fire_switch and landing == self.main_landing
            cabinet = landing == self.cabinet_landing
            return LandingInputs(sequence=latch.sequence, up_pressed="up" in reported, down_pressed="down" in reported,
                                 fire_switch=fire, fire_detector=landing in self.fire_detected,
                                 eeo_switch=cabinet and self.eeo_switch, eeo_up=cabinet and self.eeo_up,
                                 eeo_down=cabinet and self.eeo_down,
                                 learn_button=cabinet and self.learn_button).to_payload()
        return None

    # -- what the car shows --------------------------------------------------------------------------------------

    def lamps(self) -> dict[str, list[int]]:
        return {
            "car": sorted(self.car_panel_outputs.call_lamps),
            "up": sorted(n for n, out in self.landing_outputs.items() if out.up_lamp),
            "down": sorted(n for n, out in self.landing_outputs.items() if out.down_lamp),
        }


def car_top_reading(shaft: Shaft, sequence: int = 0, inspection: bool = False, inspection_up: bool = False,
                    inspection_down: bool = False) -> CarTopInputs:
    """What the car-top board reads from the shaft: on the wire (PanelBoards) and in lockstep alike."""
    units = shaft.door_units
    return CarTopInputs(sequence=sequence, door_open_limit=units == DOOR_TRAVEL_UNITS, door_closed_limit=units == 0,
                        door_locked=shaft.door_locked(), light_curtain_blocked=shaft.light_curtain_blocked(),
                        safety_edge=False, in_door_zone=shaft.in_door_zone(), inspection=inspection,
                        inspection_up=inspection_up, inspection_down=inspection_down,
                        slowdown_top=shaft.slowdown[0], slowdown_bottom=shaft.slowdown[1],
                        alarm_battery_low="alarm_battery" in shaft.injected)


def rear_car_top_reading(shaft: Shaft, sequence: int = 0) -> CarTopInputs:
    """What the rear door's car-top board reads (a car with doors on both sides): its own operator's limits, lock
    contacts and light curtain, and the car's one door-zone sensor; the inspection station, the slowdown switches and
    the alarm battery are on the front board only (docs/panelbus.md)."""
    rear = shaft.rear
    assert rear is not None, "a rear door's board on a car without one"
    return CarTopInputs(sequence=sequence, door_open_limit=rear.units == DOOR_TRAVEL_UNITS,
                        door_closed_limit=rear.units == 0, door_locked=rear.locked(),
                        light_curtain_blocked=shaft.rear_light_curtain_blocked(), safety_edge=False,
                        in_door_zone=shaft.in_door_zone())
