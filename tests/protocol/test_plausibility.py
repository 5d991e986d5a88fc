"""The drive link's plausibility check (drive_map.Plausibility): a damaged status is refused, a real one never."""

from carctl.protocol.drive_map import REBASE_AFTER, DriveStatus, Plausibility, decode_status, encode_status

PERIOD_S = 0.02
RATED_M_S = 1.0
OVERSPEED_M_S = 1.1
LOWEST_M, HIGHEST_M = -0.3, 14.8  # the supervisor's final limits for the default building


def status(**changes: object) -> DriveStatus:
    values: dict[str, object] = dict(ready=True, running=False, faulted=False, brake_open=False, zero_speed=True,
                                     comm_loss_trip=False, safety_chain_closed=True, speed_m_s=0.0, position_m=5.8,
                                     fault_code=0, current_a=0.0, load_kg=75.0, drive_tick=1)
    values.update(changes)
    return DriveStatus(**values)  # type: ignore[arg-type]


class Reads:
    """Statuses read one control period apart (or more: skip())."""

    def __init__(self) -> None:
        self.check = Plausibility(RATED_M_S)
        self.now_s = 0.0
        self.first_pending = False

    def skip(self, periods: int) -> None:
        self.now_s += periods * PERIOD_S

    def taken(self, reading: DriveStatus) -> bool:
        self.now_s += PERIOD_S
        taken = self.check.check(reading, self.now_s) is None
        self.first_pending = self.check.first_pending
        return taken


def primed(reading: DriveStatus) -> Reads:
    """Reads that have taken ``reading``: the first status is only a candidate until the next agrees with it."""
    reads = Reads()
    assert not reads.taken(reading)
    assert reads.taken(reading)
    return reads


def test_a_real_run_and_an_emergency_stop_are_never_refused() -> None:
    check = primed(status(position_m=0.0))
    position, speed = 0.0, 0.0
    readings = []
    for accel in [0.8] * 60 + [0.0] * 100 + [-0.8] * 40 + [-9.0] * 8:  # up to 1 m/s, cruise, slow, brake hard
        speed = max(0.0, speed + accel * PERIOD_S)
        position += speed * PERIOD_S
        readings.append(status(speed_m_s=round(speed, 3), position_m=round(position, 3), running=True))
    assert all(check.taken(reading) for reading in readings)
    # A count the drive re-references at the mark jumps: taken, as the reference flags changed with it.
    check = primed(status(position_unreferenced=True, position_m=3.2, below_reference_mark=False))
    assert check.taken(status(position_unreferenced=False, position_m=0.1, below_reference_mark=True))


def test_a_jump_faster_than_the_car_is_refused_and_a_single_one_never_becomes_the_baseline() -> None:
    check = primed(status())
    assert not check.taken(status(position_m=5.8 + 65.536))  # the position's high word, one bit flipped
    assert not check.taken(status(speed_m_s=1.2))  # an overspeed out of nowhere
    assert not check.taken(status(speed_m_s=2.5))  # beyond anything the car can do
    assert check.taken(status(position_m=5.801))  # the next good answer is taken against the last good one
    # Three periods later the car may have moved more: limits widen with the time since the last status taken.
    check.skip(2)
    assert check.taken(status(position_m=5.808, speed_m_s=0.25))


def test_a_count_newly_unreferenced_is_taken_only_when_the_next_status_says_so_too() -> None:
    check = primed(status())
    assert not check.taken(status(position_unreferenced=True))  # one flipped bit would mean a correction run
    assert check.taken(status())  # it was a flipped bit
    assert not check.taken(status(position_unreferenced=True, position_m=0.0))
    assert check.taken(status(position_unreferenced=True, position_m=0.0))  # the drive really restarted its count


def test_a_drive_that_insists_is_believed_after_a_while_and_a_first_status_waits_for_a_second() -> None:
    check = primed(status())
    moved = status(position_m=9.0)
    assert [check.taken(moved) for _ in range(REBASE_AFTER)] == [False] * (REBASE_AFTER - 1) + [True]
    # At start there is nothing to compare with: the first status is a candidate, and two that agree are taken; a
    # damaged first answer is simply replaced by the next.
    check = Reads()
    assert not check.taken(status(position_m=2.0 + 65.536)) and check.first_pending
    assert not check.taken(status(position_m=2.0)) and not check.first_pending
    assert check.taken(status(position_m=2.0))


def test_a_speed_its_position_does_not_bear_out_is_refused_however_long_the_gap() -> None:
    check = primed(status())
    check.skip(6)  # answers lost in between widen the bounds on speed and position alike
    assert not check.taken(status(speed_m_s=1.2))  # the car would have moved some 0.08 m: it has not
    assert check.taken(status(speed_m_s=0.0, position_m=5.8))


def test_no_single_flipped_bit_of_a_standing_car_s_speed_or_position_passes_as_overspeed_or_a_final_limit() -> None:
    good = status(position_m=5.8, drive_tick=7)
    registers = encode_status(good)
    for register in (1, 2, 3):  # SPEED, POSITION_HI, POSITION_LO (docs/register-map.md)
        for bit in range(16):
            damaged = list(registers)
            damaged[register] ^= 1 << bit
            reading = decode_status(damaged)
            check = primed(good)
            if check.taken(reading):
                assert abs(reading.speed_m_s) < OVERSPEED_M_S and LOWEST_M <= reading.position_m <= HIGHEST_M
                assert abs(reading.speed_m_s) <= 0.3 and abs(reading.position_m - 5.8) <= 0.07, (register, bit)
