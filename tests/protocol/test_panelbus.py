"""The panel-bus codec with no port at all: frames, CRC, resynchronisation, payloads, and fuzzing."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carctl.protocol.panelbus import (CAR_PANEL, CAR_TOP, POLL, STATUS, SYNC, CarPanelInputs, CarPanelOutputs,
                                      CarTopInputs, CarTopOutputs, Frame, FrameDecoder, LandingInputs,
                                      LandingOutputs, PayloadError, crc16_modbus, encode_frame, landing_address)


def test_crc_is_crc16_modbus() -> None:
    assert crc16_modbus(b"123456789") == 0x4B37  # the catalogue check value
    frame = encode_frame(CAR_TOP, POLL, b"\x00\x03")
    assert frame[0] == SYNC and frame[1:4] == bytes([CAR_TOP, POLL, 2])
    assert int.from_bytes(frame[-2:], "little") == crc16_modbus(frame[1:-2])


def test_round_trip_in_pieces() -> None:
    wire = encode_frame(CAR_PANEL, STATUS, b"\x05\x08\x00\x01") + encode_frame(0x13, STATUS, b"\x02\x01")
    decoder = FrameDecoder()
    frames = []
    for byte in wire:  # one byte at a time, as a UART may deliver them
        frames += decoder.feed(bytes([byte]))
    assert frames == [Frame(CAR_PANEL, STATUS, b"\x05\x08\x00\x01"), Frame(0x13, STATUS, b"\x02\x01")]
    assert decoder.counters.frames == 2 and decoder.counters.dropped == 0


def test_garbage_before_a_frame_is_counted_and_skipped() -> None:
    decoder = FrameDecoder()
    frames = decoder.feed(b"\x00\x11\x22" + encode_frame(CAR_TOP, STATUS, b"\x01\x02"))
    assert frames == [Frame(CAR_TOP, STATUS, b"\x01\x02")]
    assert decoder.counters.garbage_bytes == 3


def test_bad_crc_is_dropped_and_the_next_frame_still_decodes() -> None:
    good = encode_frame(CAR_TOP, STATUS, b"\x01\x02")
    corrupted = bytearray(good)
    corrupted[5] ^= 0x40
    decoder = FrameDecoder()
    frames = decoder.feed(bytes(corrupted) + good)
    assert frames == [Frame(CAR_TOP, STATUS, b"\x01\x02")]
    assert decoder.counters.bad_crc == 1


def test_impossible_length_is_dropped() -> None:
    decoder = FrameDecoder()
    frames = decoder.feed(bytes([SYNC, CAR_TOP, STATUS, 200]) + encode_frame(CAR_TOP, STATUS, b"\x07\x00"))
    assert frames == [Frame(CAR_TOP, STATUS, b"\x07\x00")]
    assert decoder.counters.bad_length == 1


def test_sync_byte_inside_a_payload_is_fine() -> None:
    payload = bytes([SYNC, SYNC])
    assert FrameDecoder().feed(encode_frame(landing_address(2), STATUS, payload)) == [
        Frame(landing_address(2), STATUS, payload)]


@pytest.mark.parametrize("message", [
    CarTopOutputs(ack=7, door_open=True, door_slow=True),
    CarTopOutputs(ack=8, door_close=True, car_light=False, car_fan=False),
    CarTopInputs(sequence=9, door_open_limit=True, door_closed_limit=False, door_locked=False,
                 light_curtain_blocked=True, in_door_zone=True, inspection=True),
    CarTopInputs(sequence=10, inspection=True, inspection_down=True),
    CarPanelOutputs(ack=200, call_lamps=frozenset({0, 3, 6}), position_landing=4, arrow_down=True, gong=True,
                    announce_landing=4),
    CarPanelInputs(sequence=1, calls_pressed=frozenset({5}), door_close_button=True, seat_occupied=True),
    LandingOutputs(ack=3, up_lamp=True, arrow_up=True, position_landing=2),
    LandingInputs(sequence=255, down_pressed=True, fire_switch=True),
    LandingInputs(sequence=4, up_pressed=True, fire_detector=True),
])
def test_payloads_round_trip(message: object) -> None:
    assert type(message).from_payload(message.to_payload()) == message  # type: ignore[attr-defined]


def test_the_fan_bit_is_bit5_and_an_older_board_still_reads_the_rest() -> None:
    dark = CarTopOutputs(ack=1, door_close=True, car_light=False, car_fan=False).to_payload()
    lit = CarTopOutputs(ack=1, door_close=True).to_payload()
    assert lit[1] ^ dark[1] == 0b110000  # bit4 light, bit5 fan
    assert dark[1] & 0b1111 == lit[1] & 0b1111 == 0b0010  # the door bits are where they always were


def test_a_car_top_status_of_two_bytes_from_an_older_board_means_no_inspection_button() -> None:
    old = bytes([5, 0b1000110])  # closed, locked, inspection switch on
    assert CarTopInputs.from_payload(old) == CarTopInputs(sequence=5, door_closed_limit=True, door_locked=True,
                                                          in_door_zone=False, inspection=True)
    with pytest.raises(PayloadError):
        CarTopInputs.from_payload(bytes([5, 0, 0, 0, 0]))
    # The optional fourth byte: the alarm unit's battery (bit0); sent only when set.
    low = CarTopInputs(sequence=5, alarm_battery_low=True)
    assert len(low.to_payload()) == 4 and CarTopInputs.from_payload(low.to_payload()) == low
    assert len(CarTopInputs(sequence=5).to_payload()) == 3


def test_the_slowdown_switches_ride_in_the_third_byte_after_the_inspection_buttons() -> None:
    reading = CarTopInputs(sequence=9, inspection_up=True, slowdown_top=0b101, slowdown_bottom=0b010)
    payload = reading.to_payload()
    assert payload[2] == 0b010_101_01  # bits 5-7 bottom, 2-4 top, 0-1 the inspection buttons
    assert CarTopInputs.from_payload(payload) == reading
    # An older board's two bytes: no switch actuated.
    old = CarTopInputs.from_payload(bytes([5, 0b1000110]))
    assert old.slowdown_top == old.slowdown_bottom == 0


def test_wrong_payload_length_is_a_payload_error() -> None:
    with pytest.raises(PayloadError, match="needs 4 bytes"):
        CarPanelInputs.from_payload(b"\x00\x00")


@pytest.mark.fuzz
@settings(deadline=None)
@given(st.lists(st.one_of(st.binary(max_size=40),
                          st.builds(lambda a, p: encode_frame(a, STATUS, p), st.integers(0, 255),
                                    st.binary(max_size=32))), max_size=20),
       st.integers(1, 17))
def test_fuzz_decoder_never_raises_and_accounts_for_every_byte(chunks: list[bytes], split: int) -> None:
    wire = b"".join(chunks)
    decoder = FrameDecoder()
    frames = []
    for start in range(0, len(wire), split):
        frames += decoder.feed(wire[start:start + split])
    counters = decoder.counters
    assert counters.frames == len(frames)
    for frame in frames:
        # Every frame it returns is one that was really encoded with a matching CRC.
        assert encode_frame(frame.address, frame.type, frame.payload) in wire


@pytest.mark.fuzz
@settings(deadline=None)
@given(st.lists(st.tuples(st.binary(max_size=20).map(lambda b: b.replace(bytes([SYNC]), b"")),
                          st.integers(0, 255), st.binary(max_size=32)), max_size=12),
       st.integers(1, 9))
def test_fuzz_every_frame_between_garbage_is_found(pieces: list[tuple[bytes, int, bytes]], split: int) -> None:
    """Garbage without sync bytes between good frames: every frame comes out, every garbage byte is counted."""
    wire = b"".join(garbage + encode_frame(address, STATUS, payload) for garbage, address, payload in pieces)
    decoder = FrameDecoder()
    frames = []
    for start in range(0, len(wire), split):
        frames += decoder.feed(wire[start:start + split])
    assert frames == [Frame(address, STATUS, payload) for _, address, payload in pieces]
    assert decoder.counters.garbage_bytes == sum(len(garbage) for garbage, _, _ in pieces)


@pytest.mark.fuzz
@settings(deadline=None)
@given(st.binary(max_size=40))
def test_fuzz_payload_decoders_raise_only_payload_error(payload: bytes) -> None:
    """Any bytes either decode, and then re-encode to the same bytes, or raise PayloadError."""
    for kind in (CarTopOutputs, CarTopInputs, CarPanelOutputs, CarPanelInputs, LandingOutputs, LandingInputs):
        try:
            decoded = kind.from_payload(payload)
        except PayloadError as error:
            assert "needs" in str(error)
            continue
        encoded = decoded.to_payload()
        if kind is CarTopInputs and len(payload) == 2:
            assert len(encoded) == 3 and encoded[2] == 0  # an older board's STATUS: no inspection button held
        elif kind is CarTopInputs and len(payload) == 4:
            # The fourth byte's bit0 only (the alarm battery), sent only when set.
            assert len(encoded) == (4 if payload[3] & 1 else 3) and encoded[3:] == (b"\x01" if payload[3] & 1 else b"")
        else:
            assert len(encoded) == len(payload)
