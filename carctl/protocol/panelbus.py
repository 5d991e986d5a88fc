"""The panel bus (RS-485, 115200 8N1): frames, CRC, message types and board payloads. Sans-I/O.

Frame: 0x7E, address, type, length, payload[length], crc_lo, crc_hi; CRC-16/MODBUS over address..payload.

Rules of this module:
- Bytes in, frames out (FrameDecoder.feed); frames in, bytes out (encode_frame). No port, no clock.
- The decoder resynchronises on 0x7E, drops a frame with a bad CRC or an impossible length, and counts every byte
  and frame it drops; it never raises on bus data.
- Presses are latched on the board until the master acknowledges them: every STATUS carries the board's sequence
  number and every POLL carries the sequence of the last STATUS the master received. A board clears the presses it
  reported only when it sees that acknowledgement, so a corrupted reply loses no button press.
- Payloads are fixed-length per board kind (docs/panelbus.md); a wrong length is a PayloadError.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SYNC = 0x7E
POLL = 0x01
STATUS = 0x81
CAR_TOP = 0x01
CAR_PANEL = 0x02
# The rear door's car-top board, on a car with doors on both sides (building.door_sides): the same board, payloads
# and handshake as CAR_TOP's, for the rear door operator; polled only on such a car (docs/panelbus.md).
REAR_CAR_TOP = 0x03
LANDING_BASE = 0x10
MAX_PAYLOAD = 32
HEADER_LENGTH = 4
CRC_LENGTH = 2
NO_LANDING = 0xFF
# The car panel's "landing to announce" byte also carries spoken prompts, from 0xF0 (above any landing index): an
# announcement board that predates them ignores a landing it does not have.
PROMPT_HELP_ON_THE_WAY = 0xF0  # the alarm: "your call has been received, help is on the way" (docs/alarm.md)


def landing_address(landing: int) -> int:
    return LANDING_BASE + landing


def _table_entry(byte: int) -> int:
    crc = byte
    for _ in range(8):
        crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


_CRC_TABLE = tuple(_table_entry(byte) for byte in range(256))


def crc16_modbus(data: bytes) -> int:
    """CRC-16/MODBUS (poly 0x8005 reflected, init 0xFFFF): the same CRC as Modbus RTU."""
    crc = 0xFFFF
    table = _CRC_TABLE
    for byte in data:
        crc = (crc >> 8) ^ table[(crc ^ byte) & 0xFF]
    return crc


@dataclass(frozen=True, slots=True)
class Frame:
    address: int
    type: int
    payload: bytes


def encode_frame(address: int, message_type: int, payload: bytes) -> bytes:
    if not 0 <= address <= 0xFF or not 0 <= message_type <= 0xFF:
        raise ValueError("address and type are single bytes")
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload longer than {MAX_PAYLOAD} bytes")
    body = bytes([address, message_type, len(payload)]) + payload
    crc = crc16_modbus(body)
    return bytes([SYNC]) + body + bytes([crc & 0xFF, crc >> 8])


@dataclass(slots=True)
class DecoderCounters:
    frames: int = 0
    bad_crc: int = 0
    bad_length: int = 0
    garbage_bytes: int = 0

    @property
    def dropped(self) -> int:
        return self.bad_crc + self.bad_length


@dataclass(slots=True)
class FrameDecoder:
    """Streaming decoder: feed() any bytes, get the complete good frames."""

    counters: DecoderCounters = field(default_factory=DecoderCounters)
    _buffer: bytearray = field(default_factory=bytearray)

    def feed(self, data: bytes) -> list[Frame]:
        buffer = self._buffer
        buffer.extend(data)
        frames: list[Frame] = []
        counters = self.counters
        while buffer:
            start = buffer.find(SYNC)
            if start < 0:
                counters.garbage_bytes += len(buffer)
                buffer.clear()
                break
            if start:
                counters.garbage_bytes += start
                del buffer[:start]
            if len(buffer) < HEADER_LENGTH:
                break
            length = buffer[3]
            if length > MAX_PAYLOAD:
                counters.bad_length += 1
                del buffer[:1]  # not a frame start after all: look for the next sync byte
                continue
            total = HEADER_LENGTH + length + CRC_LENGTH
            if len(buffer) < total:
                break
            body = bytes(buffer[1:HEADER_LENGTH + length])
            crc = buffer[total - 2] | (buffer[total - 1] << 8)
            if crc != crc16_modbus(body):
                counters.bad_crc += 1
                del buffer[:1]
                continue
            frames.append(Frame(body[0], body[1], body[3:]))
            counters.frames += 1
            del buffer[:total]
        if len(buffer) > 4 * (HEADER_LENGTH + MAX_PAYLOAD + CRC_LENGTH):
            counters.garbage_bytes += len(buffer)
            buffer.clear()
        return frames

    def reset(self) -> None:
        """Forget a partial frame (the master does this before each poll)."""
        if self._buffer:
            self.counters.garbage_bytes += len(self._buffer)
            self._buffer.clear()


class PayloadError(ValueError):
    pass


# Each flags byte's bits, by name, in bit order (bit 0 first): the wire format is these tables, never the order of
# a dataclass's fields. Bits added later go at the end of their table; a board that predates them leaves them 0.
CAR_TOP_POLL_BITS = ("door_open", "door_close", "door_nudge", "door_slow", "car_light", "car_fan")
CAR_TOP_STATUS_BITS = ("door_open_limit", "door_closed_limit", "door_locked", "light_curtain_blocked", "safety_edge",
                       "in_door_zone", "inspection")
CAR_TOP_STATUS_EXTRA_BITS = ("inspection_up", "inspection_down")  # the third byte's bits 0-1
CAR_TOP_STATUS_FOURTH_BITS = ("alarm_battery_low",)  # the fourth byte, optional
# The third byte's bits 2-4: the top terminal's slowdown switches; bits 5-7: the bottom terminal's.
SLOWDOWN_MASK = 0b111
SLOWDOWN_TOP_SHIFT = 2
SLOWDOWN_BOTTOM_SHIFT = 5
CAR_PANEL_POLL_BITS = ("arrow_up", "arrow_down", "gong", "buzzer", "overload_lamp", "rescue_notice",
                       "alarm_transmitted_lamp", "alarm_voice_lamp")
CAR_PANEL_STATUS_BITS = ("door_open_button", "door_close_button", "alarm_button", "accessible_button",
                         "seat_occupied", "independent_key", "fault_reset_key", "alarm_reset_key")
LANDING_POLL_BITS = ("up_lamp", "down_lamp", "arrow_up", "arrow_down", "gong")
LANDING_STATUS_BITS = ("up_pressed", "down_pressed", "fire_switch", "fire_detector", "eeo_switch", "eeo_up",
                       "eeo_down", "learn_button")


def _pack(record: object, names: tuple[str, ...]) -> int:
    value = 0
    for index, name in enumerate(names):
        if getattr(record, name):
            value |= 1 << index
    return value


def _unpack(value: int, names: tuple[str, ...]) -> dict[str, bool]:
    return {name: bool(value >> index & 1) for index, name in enumerate(names)}


def _landing_mask(landings: frozenset[int]) -> bytes:
    mask = 0
    for landing in landings:
        if 0 <= landing < 16:
            mask |= 1 << landing
    return mask.to_bytes(2, "little")


def _mask_landings(data: bytes) -> frozenset[int]:
    mask = int.from_bytes(data, "little")
    return frozenset(index for index in range(16) if mask >> index & 1)


def _expect(payload: bytes, length: int, what: str) -> None:
    if len(payload) != length:
        raise PayloadError(f"{what} payload needs {length} bytes, got {len(payload)}")


# -- car-top board (0x01) ----------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class CarTopOutputs:
    ack: int = 0
    door_open: bool = False
    door_close: bool = False
    door_nudge: bool = False
    door_slow: bool = False
    car_light: bool = True
    car_fan: bool = True  # bit5, added compatibly: a board that predates it ignores the bit

    def to_payload(self) -> bytes:
        return bytes([self.ack & 0xFF, _pack(self, CAR_TOP_POLL_BITS)])

    @classmethod
    def from_payload(cls, payload: bytes) -> CarTopOutputs:
        _expect(payload, 2, "car-top POLL")
        return cls(ack=payload[0], **_unpack(payload[1], CAR_TOP_POLL_BITS))


@dataclass(frozen=True, slots=True)
class CarTopInputs:
    sequence: int = 0
    door_open_limit: bool = False
    door_closed_limit: bool = True
    door_locked: bool = True
    light_curtain_blocked: bool = False
    safety_edge: bool = False
    in_door_zone: bool = True
    inspection: bool = False
    # The inspection station's hold-to-run buttons, in a third byte added later: a board that sends the original
    # two bytes has none pressed.
    inspection_up: bool = False
    inspection_down: bool = False
    # The terminal slowdown switches actuated (bit i: the switch at car.terminal_switches_m[i] from the top or the
    # bottom terminal landing), in the third byte's bits 2-4 and 5-7, added later: a board without them sends 0.
    slowdown_top: int = 0
    slowdown_bottom: int = 0
    # A fourth byte, added later (a board without it sends three): the alarm unit's battery can no longer carry the
    # alarm for an hour (EN 81-28), bit0.
    alarm_battery_low: bool = False

    def to_payload(self) -> bytes:
        extra = (_pack(self, CAR_TOP_STATUS_EXTRA_BITS) | (self.slowdown_top & SLOWDOWN_MASK) << SLOWDOWN_TOP_SHIFT
                 | (self.slowdown_bottom & SLOWDOWN_MASK) << SLOWDOWN_BOTTOM_SHIFT)
        fourth = _pack(self, CAR_TOP_STATUS_FOURTH_BITS)
        return bytes([self.sequence & 0xFF, _pack(self, CAR_TOP_STATUS_BITS), extra, *([fourth] if fourth else [])])

    @classmethod
    def from_payload(cls, payload: bytes) -> CarTopInputs:
        if len(payload) not in (2, 3):
            _expect(payload, 4, "car-top STATUS")
        extra = payload[2] if len(payload) >= 3 else 0
        fourth = payload[3] if len(payload) == 4 else 0
        return cls(sequence=payload[0], **_unpack(payload[1], CAR_TOP_STATUS_BITS),
                   **_unpack(extra, CAR_TOP_STATUS_EXTRA_BITS),
                   slowdown_top=extra >> SLOWDOWN_TOP_SHIFT & SLOWDOWN_MASK,
                   slowdown_bottom=extra >> SLOWDOWN_BOTTOM_SHIFT & SLOWDOWN_MASK,
                   **_unpack(fourth, CAR_TOP_STATUS_FOURTH_BITS))


# -- car operating panel (0x02) ----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class CarPanelOutputs:
    ack: int = 0
    call_lamps: frozenset[int] = frozenset()
    position_landing: int = 0
    arrow_up: bool = False
    arrow_down: bool = False
    gong: bool = False
    buzzer: bool = False
    overload_lamp: bool = False
    announce_landing: int = NO_LANDING
    # bit5, added compatibly: the power-failure notice after a rescue ("please leave the car"), held as a level so a
    # lost frame does not lose it; a panel that predates it ignores the bit.
    rescue_notice: bool = False
    # bits 6-7, added compatibly: the alarm's signals to the rider (EN 81-28, EN 81-70): yellow "alarm transmitted",
    # green "voice connection established"; a panel that predates them ignores the bits.
    alarm_transmitted_lamp: bool = False
    alarm_voice_lamp: bool = False

    def to_payload(self) -> bytes:
        return (bytes([self.ack & 0xFF]) + _landing_mask(self.call_lamps)
                + bytes([self.position_landing & 0xFF, _pack(self, CAR_PANEL_POLL_BITS), self.announce_landing & 0xFF]))

    @classmethod
    def from_payload(cls, payload: bytes) -> CarPanelOutputs:
        _expect(payload, 6, "car panel POLL")
        return cls(ack=payload[0], call_lamps=_mask_landings(payload[1:3]), position_landing=payload[3],
                   announce_landing=payload[5], **_unpack(payload[4], CAR_PANEL_POLL_BITS))


@dataclass(frozen=True, slots=True)
class CarPanelInputs:
    sequence: int = 0
    calls_pressed: frozenset[int] = frozenset()
    door_open_button: bool = False
    door_close_button: bool = False
    alarm_button: bool = False
    accessible_button: bool = False
    seat_occupied: bool = False
    independent_key: bool = False
    fault_reset_key: bool = False
    # bit7, added compatibly: the rescuer's alarm reset key, latched by the board like a button until read (a panel
    # without it leaves it 0, and its alarms end only by a reset elsewhere on the car).
    alarm_reset_key: bool = False

    def to_payload(self) -> bytes:
        return (bytes([self.sequence & 0xFF]) + _landing_mask(self.calls_pressed)
                + bytes([_pack(self, CAR_PANEL_STATUS_BITS)]))

    @classmethod
    def from_payload(cls, payload: bytes) -> CarPanelInputs:
        _expect(payload, 4, "car panel STATUS")
        return cls(sequence=payload[0], calls_pressed=_mask_landings(payload[1:3]),
                   **_unpack(payload[3], CAR_PANEL_STATUS_BITS))


# -- landing boards (0x10 + n) -----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class LandingOutputs:
    ack: int = 0
    up_lamp: bool = False
    down_lamp: bool = False
    arrow_up: bool = False
    arrow_down: bool = False
    gong: bool = False
    position_landing: int = 0

    def to_payload(self) -> bytes:
        return bytes([self.ack & 0xFF, _pack(self, LANDING_POLL_BITS), self.position_landing & 0xFF])

    @classmethod
    def from_payload(cls, payload: bytes) -> LandingOutputs:
        _expect(payload, 3, "landing POLL")
        return cls(ack=payload[0], position_landing=payload[2], **_unpack(payload[1], LANDING_POLL_BITS))


@dataclass(frozen=True, slots=True)
class LandingInputs:
    sequence: int = 0
    up_pressed: bool = False
    down_pressed: bool = False
    fire_switch: bool = False
    fire_detector: bool = False  # bit3, added compatibly: a board without a detector input leaves it 0
    # bits 4-6, added compatibly: the controller cabinet's emergency electrical operation switch and hold-to-run
    # buttons, wired to the landing board beside it (building.cabinet_landing); other boards leave them 0.
    eeo_switch: bool = False
    eeo_up: bool = False
    eeo_down: bool = False
    # bit7, added compatibly: the cabinet's learn button (the shaft learning run, docs/modes.md); other boards leave
    # it 0.
    learn_button: bool = False

    def to_payload(self) -> bytes:
        return bytes([self.sequence & 0xFF, _pack(self, LANDING_STATUS_BITS)])

    @classmethod
    def from_payload(cls, payload: bytes) -> LandingInputs:
        _expect(payload, 2, "landing STATUS")
        return cls(sequence=payload[0], **_unpack(payload[1], LANDING_STATUS_BITS))
