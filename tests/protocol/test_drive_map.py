"""The drive register map, encoded and decoded without a bus."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carctl.protocol import drive_map
from carctl.protocol.drive_map import DecodeError, DriveCommand, DriveStatus


def test_command_block() -> None:
    registers = drive_map.encode_command(DriveCommand(run_up=True, speed_ref_m_s=0.9876, quick_stop=False), 70000)
    assert registers == [drive_map.RUN_UP, 988, 70000 & 0xFFFF]
    command, watchdog = drive_map.decode_command(registers)
    assert command.run_up and not command.run_down and command.speed_ref_m_s == 0.988
    assert watchdog == 70000 & 0xFFFF


def test_speed_reference_is_unsigned_and_clamped() -> None:
    assert drive_map.encode_command(DriveCommand(speed_ref_m_s=-1.0), 0)[1] == 0
    assert drive_map.encode_command(DriveCommand(speed_ref_m_s=99.0), 0)[1] == drive_map.MAX_SPEED_REF_MM_S


def test_status_round_trip_with_negative_speed_and_position() -> None:
    status = DriveStatus(True, True, False, True, False, False, True, -0.731, -0.042, 0, 12.3, 455.0, 65535)
    decoded = drive_map.decode_status(drive_map.encode_status(status))
    assert decoded == status


def test_position_is_32_bit_high_word_first() -> None:
    status = DriveStatus(True, False, False, False, True, False, True, 0.0, 100.0, 0, 0.0, 0.0, 1)
    registers = drive_map.encode_status(status)
    assert (registers[2] << 16) | registers[3] == 100_000


def test_rescue_and_reference_bits_round_trip_and_an_older_drive_reads_as_on_mains_and_referenced() -> None:
    status = DriveStatus(True, True, False, True, False, False, True, 0.2, 3.5, 0, 4.0, 300.0, 7, on_battery=True,
                         position_unreferenced=True, below_reference_mark=True)
    registers = drive_map.encode_status(status)
    assert registers[0] & 0x380 == drive_map.ON_BATTERY | drive_map.UNREFERENCED | drive_map.BELOW_REFERENCE_MARK
    assert drive_map.decode_status(registers) == status
    older = drive_map.decode_status([0x7F, 0, 0, 0, 0, 0, 0, 0])  # every bit an older drive knows
    assert not (older.on_battery or older.position_unreferenced or older.below_reference_mark)


def test_the_brake_test_bit_and_the_brake_status_bits_round_trip_and_an_older_drive_has_neither() -> None:
    registers = drive_map.encode_command(DriveCommand(brake_test=True), 1)
    assert registers[0] == drive_map.BRAKE_TEST == 0x10
    assert drive_map.decode_command(registers)[0] == DriveCommand(brake_test=True)
    assert not drive_map.decode_command(drive_map.encode_command(DriveCommand(run_up=True), 1))[0].brake_test
    status = DriveStatus(True, False, False, False, True, False, True, 0.0, 2.9, 0, 4.0, 0.0, 9, brake_contacts=0b10,
                         brake_test_torque=True)
    registers = drive_map.encode_status(status)
    assert registers[0] & 0x1C00 == drive_map.BRAKE_CONTACT_2 | drive_map.BRAKE_TEST_TORQUE
    assert drive_map.decode_status(registers) == status
    older = drive_map.decode_status([0x3FF, 0, 0, 0, 0, 0, 0, 0])  # every bit a drive before them knows
    assert older.brake_contacts == 0 and not older.brake_test_torque


@pytest.mark.parametrize("registers", [[], [0] * 7, [0] * 9, [0x2000] + [0] * 7, [0x8000] + [0] * 7, [0, -1, 0, 0, 0, 0, 0, 0],
                                       [0, 70000, 0, 0, 0, 0, 0, 0]])
def test_bad_status_blocks_are_decode_errors(registers: list[int]) -> None:
    with pytest.raises(DecodeError):
        drive_map.decode_status(registers)


@pytest.mark.fuzz
@settings(deadline=None)
@given(st.lists(st.integers(-100000, 100000), max_size=12))
def test_fuzz_decode_status_raises_only_decode_error(registers: list[int]) -> None:
    try:
        status = drive_map.decode_status(registers)
    except DecodeError:
        return
    assert len(registers) == drive_map.STATUS_BLOCK_COUNT
    assert -32.768 <= status.speed_m_s <= 32.767
