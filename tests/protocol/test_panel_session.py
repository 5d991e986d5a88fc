"""The panel bus's handshake and schedule with no port: the firmware's master session against the simulator's boards
(which use the board end of the same handshake), frame by frame, with answers lost, repeated and corrupted."""

from dataclasses import fields

import pytest

from carctl.core.signals import Commands
from carctl.protocol import panelbus
from carctl.protocol.panel_session import BoardLatch, MasterSession, Poll
from carctl.protocol.panelbus import (CAR_PANEL_POLL_BITS, CAR_PANEL_STATUS_BITS, CAR_TOP_POLL_BITS,
                                      CAR_TOP_STATUS_BITS, CAR_TOP_STATUS_EXTRA_BITS, LANDING_POLL_BITS,
                                      LANDING_STATUS_BITS, CarPanelInputs, CarPanelOutputs, CarTopInputs,
                                      CarTopOutputs, LandingInputs, LandingOutputs)
from carctl.protocol.sense import Presses, output
from sim.panels import PanelBoards
from sim.physics import PhysicsConfig, Shaft
from sim.scenario import from_dict

LANDINGS = 6


def boards() -> PanelBoards:
    config = from_dict({}).controller
    return PanelBoards(Shaft(config, PhysicsConfig()), LANDINGS, 0)


def exchange(session: MasterSession, sim: PanelBoards, commands: Commands, lose: set[int] = frozenset(),
             repeat: set[int] = frozenset()) -> Presses:
    """One cycle on a perfect bus, except the addresses whose answer is lost (the board answered, the master did
    not hear it) or heard twice."""
    presses = Presses()
    for poll in session.polls(output(commands)):
        answer = sim.on_bytes(panelbus.encode_frame(poll.address, panelbus.POLL, poll.payload))
        frames = panelbus.FrameDecoder().feed(answer)
        payload = frames[0].payload if frames else None
        if poll.address in lose:
            payload = None
        session.take_answer(poll, payload, presses)
        if poll.address in repeat and payload is not None:
            session.take_answer(poll, payload, presses)
    return presses


def test_a_press_is_taken_once_even_when_its_answer_is_lost_or_repeated() -> None:
    session, sim = MasterSession(LANDINGS, 2), boards()
    sim.press_car_call(4)
    assert exchange(session, sim, Commands(), lose={panelbus.CAR_PANEL}).car == set()  # the board keeps it
    assert exchange(session, sim, Commands(), repeat={panelbus.CAR_PANEL}).car == {4}  # taken once, not twice
    assert exchange(session, sim, Commands()).car == set()  # acknowledged: the board has cleared it


def test_a_board_stuck_on_one_sequence_number_goes_stale_instead_of_looking_fresh() -> None:
    session = MasterSession(LANDINGS, 2)
    stuck = CarPanelInputs(sequence=7, calls_pressed=frozenset({3})).to_payload()
    taken = []
    for _ in range(30):
        session.readings.age_all()
        presses = Presses()
        session.take_answer(Poll(panelbus.CAR_PANEL, b""), stuck, presses)
        taken.append(set(presses.car))
    assert taken[0] == {3} and all(not seen for seen in taken[1:])
    assert session.repeated_status == 29 and session.readings.car_panel_age == 29
    top = CarTopInputs(sequence=5).to_payload()
    session.take_answer(Poll(panelbus.CAR_TOP, b""), top, Presses())
    session.readings.age_all()
    session.take_answer(Poll(panelbus.CAR_TOP, b""), top, Presses())
    assert session.readings.car_top_age == 1


def test_landing_boards_in_turn_and_one_whose_lamp_changed_at_once() -> None:
    session, sim = MasterSession(LANDINGS, 2), boards()
    polled = [[poll.landing for poll in session.polls(output(Commands())) if poll.landing >= 0] for _ in range(3)]
    assert polled[0][:2] == [0, 1] and polled[1][:2] == [2, 3] and polled[2][:2] == [4, 5]
    for _ in range(3):
        exchange(session, sim, Commands())  # every board told: no lamps
    lit = Commands(hall_down_lamps=frozenset({5}))
    landings = [poll.landing for poll in session.polls(output(lit)) if poll.landing >= 0]
    assert 5 in landings  # not a round later
    exchange(session, sim, lit)
    assert sim.lamps()["down"] == [5]


def test_a_hall_press_reaches_the_master_and_is_cleared_after_its_acknowledgement() -> None:
    session, sim = MasterSession(LANDINGS, LANDINGS), boards()
    sim.press_hall_call(3, "up")
    assert exchange(session, sim, Commands()).up == {3}
    assert exchange(session, sim, Commands()).up == set()


def test_an_answer_that_does_not_decode_is_counted_and_the_reading_ages() -> None:
    session = MasterSession(LANDINGS, 2)
    session.readings.age_all()
    session.take_answer(Poll(panelbus.CAR_TOP, b""), b"\x01", Presses())
    session.take_answer(Poll(panelbus.landing_address(2), b"", 2), b"\x01\x02\x03\x04", Presses())
    assert session.payload_errors == 2
    assert session.readings.car_top_age > 0 and session.readings.landing_age[2] > 0


def test_landing_boards_not_yet_read_at_start_are_not_silent_until_their_maximum_age() -> None:
    session = MasterSession(LANDINGS, 2)
    assert max(session.readings.landing_age) == 0
    for _ in range(60):
        session.readings.age_all()  # nobody answers
    assert min(session.readings.landing_age) == 60  # stale by then (rates: 50 ticks at 20 ms)


def test_the_board_latch_keeps_a_press_until_its_status_is_acknowledged() -> None:
    latch = BoardLatch()
    latch.press("up")
    first = latch.report()
    latch.acknowledge((latch.sequence - 1) & 0xFF)  # an old acknowledgement
    assert latch.report() == first == {"up"}
    latch.acknowledge(latch.sequence)
    assert latch.report() == set()


@pytest.mark.parametrize(("record", "names", "byte_index"), [
    (CarTopOutputs, CAR_TOP_POLL_BITS, 1),
    (CarTopInputs, CAR_TOP_STATUS_BITS, 1),
    (CarTopInputs, CAR_TOP_STATUS_EXTRA_BITS, 2),
    (CarPanelOutputs, CAR_PANEL_POLL_BITS, 4),
    (CarPanelInputs, CAR_PANEL_STATUS_BITS, 3),
    (LandingOutputs, LANDING_POLL_BITS, 1),
    (LandingInputs, LANDING_STATUS_BITS, 1),
])
def test_each_flag_has_its_documented_bit_whatever_the_order_of_the_fields(record: type, names: tuple[str, ...],
                                                                           byte_index: int) -> None:
    """The wire format is the bit tables of panelbus.py: each named flag alone sets exactly its bit."""
    flags = {spec.name for spec in fields(record) if spec.type in ("bool", bool)}
    assert set(names) <= flags
    for bit, name in enumerate(names):
        values = {flag: False for flag in flags}
        values[name] = True
        payload = record(**values).to_payload()
        assert payload[byte_index] == 1 << bit, name
        assert getattr(record.from_payload(payload), name) is True


def test_the_payload_bytes_are_those_of_docs_panelbus_md() -> None:
    """Pinned bytes, so a reordered bit table cannot change the wire unseen."""
    assert CarTopOutputs(ack=9, door_close=True, car_light=False, car_fan=True).to_payload() == bytes([9, 0b100010])
    assert CarTopInputs(sequence=3, door_open_limit=False, door_closed_limit=False, door_locked=False,
                        in_door_zone=True, inspection_down=True).to_payload() == bytes([3, 0b100000, 0b10])
    assert CarPanelInputs(sequence=1, calls_pressed=frozenset({0, 9}), alarm_button=True,
                          fault_reset_key=True).to_payload() == bytes([1, 0b1, 0b10, 0b1000100])
    assert CarPanelOutputs(ack=2, call_lamps=frozenset({1}), position_landing=4, rescue_notice=True,
                           announce_landing=3).to_payload() == bytes([2, 0b10, 0, 4, 0b100000, 3])
    assert LandingOutputs(ack=5, down_lamp=True, gong=True, position_landing=2).to_payload() == bytes(
        [5, 0b10010, 2])
    assert LandingInputs(sequence=8, fire_switch=True, fire_detector=True).to_payload() == bytes([8, 0b1100])


def test_the_cabinet_landing_is_read_every_cycle_while_its_emergency_switch_is_on() -> None:
    """Its hold-to-run buttons must be seen released at once, however many landings share the rotation."""
    landings = 30
    config = from_dict({"building": {"landings_m": [3.0 * n for n in range(landings)],
                                     "population": [5] * landings}}).controller
    sim = PanelBoards(Shaft(config, PhysicsConfig()), landings, 0, cabinet_landing=-1)
    session = MasterSession(landings, 2, cabinet_landing=landings - 1)
    top = panelbus.landing_address(landings - 1)
    exchange(session, sim, Commands())  # the switch off: the top landing waits for its turn in the rotation
    assert top not in {poll.address for poll in session.polls(output(Commands()))}
    sim.eeo_switch = sim.eeo_up = True
    for _ in range(landings):  # its turn comes round once, and from then on it is read every cycle
        exchange(session, sim, Commands())
    for _ in range(20):
        assert top in {poll.address for poll in session.polls(output(Commands()))}
        exchange(session, sim, Commands())
        assert session.readings.landing_age[landings - 1] == 0 and session.readings.landing[landings - 1].eeo_up


def test_the_rear_door_board_is_polled_only_on_a_car_with_a_rear_door() -> None:
    one_door = [poll.address for poll in MasterSession(LANDINGS, 2).polls(output(Commands()))]
    assert panelbus.REAR_CAR_TOP not in one_door and one_door[:2] == [panelbus.CAR_TOP, panelbus.CAR_PANEL]
    rear = MasterSession(LANDINGS, 2, rear_door=True)
    assert [poll.address for poll in rear.polls(output(Commands()))][:3] == [
        panelbus.CAR_TOP, panelbus.REAR_CAR_TOP, panelbus.CAR_PANEL]
    # What the rear board answers is its own reading; a car with one door ignores an answer from 0x03.
    answer = CarTopInputs(sequence=3, door_locked=False, light_curtain_blocked=True).to_payload()
    rear.take_answer(Poll(panelbus.REAR_CAR_TOP, b""), answer, Presses())
    assert not rear.readings.rear_car_top.door_locked and rear.readings.rear_car_top_age == 0
    session = MasterSession(LANDINGS, 2)
    session.take_answer(Poll(panelbus.REAR_CAR_TOP, b""), answer, Presses())
    assert session.readings.rear_car_top.door_locked and session.readings.rear_car_top_age == 0


def test_the_rear_door_commands_reach_the_rear_board_on_the_simulated_bus() -> None:
    config = from_dict({"building": {"door_sides": ["front", "rear", "front", "front", "front", "front"]}}).controller
    sim = PanelBoards(Shaft(config, PhysicsConfig()), LANDINGS, 0)
    session = MasterSession(LANDINGS, 2, rear_door=True)
    exchange(session, sim, Commands(rear_door_open=True, door_close=True))
    assert sim.rear_car_top_outputs.door_open and not sim.rear_car_top_outputs.door_close
    assert sim.car_top_outputs.door_close and not sim.car_top_outputs.door_open
    assert session.readings.rear_car_top_age == 0 and session.readings.rear_car_top.door_closed_limit
    # A silent rear board ages like any other.
    sim.silent.add(panelbus.REAR_CAR_TOP)
    session.readings.age_all()
    exchange(session, sim, Commands())
    assert session.readings.rear_car_top_age == 1
