"""The panel bus's handshake and schedule, both ends of it. Sans-I/O: payloads in and out, no port, no clock.

Rules of this module:
- MasterSession is the firmware's bus master: which boards to poll this cycle and with what outputs, and what each
  answer means. The car-top board (and, on a car with doors on both sides, the rear door's car-top board) and the
  car panel are polled every cycle (doors and the buttons in the car matter
  at once); ``landing_polls_per_cycle`` landing boards in turn, plus one whose lamps differ from what it was last
  told, so a landing call's lamp lights on the cycle after the call registers, not a round later; and, while the
  cabinet's emergency electrical operation switch is on, the cabinet landing's board (its hold-to-run buttons).
- Presses are latched on the boards until acknowledged: every STATUS carries the board's sequence number and every
  POLL the sequence of the last STATUS the master took from that board. A board numbers every STATUS anew, so a
  STATUS that repeats the last sequence taken is a repeat (a stuck board, a replayed frame): neither its presses
  nor its reading are taken again, it is counted, and that board's reading ages towards its stale fault.
- BoardLatch is the board's end of the same handshake (the simulator's boards use it; a real board's firmware does
  the same): a press stays reported until a POLL acknowledges the STATUS that carried it, so a lost or corrupted
  answer loses no press and a repeated one registers none twice.
- An answer that does not decode is counted (payload_errors) and leaves that board's reading to age.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from carctl.protocol import panelbus
from carctl.protocol.panelbus import CarPanelInputs, CarTopInputs, LandingInputs, LandingOutputs, PayloadError
from carctl.protocol.sense import BoardReadings, Outputs, Presses, landing_outputs


@dataclass(frozen=True, slots=True)
class Poll:
    address: int
    payload: bytes
    landing: int = -1  # the landing of a landing board; -1 for the car's boards


class MasterSession:
    def __init__(self, landing_count: int, landing_polls_per_cycle: int, cabinet_landing: int = -1,
                 rear_door: bool = False) -> None:
        self.landing_count = landing_count
        self.landing_polls_per_cycle = max(1, min(landing_count, landing_polls_per_cycle))
        self.readings = BoardReadings(landing_count, cabinet_landing, rear_door=rear_door)
        self.rear_door = rear_door
        # The landing boards are read a few per cycle, in turn: each has its maximum age from the start to answer
        # before it counts as silent (a landing_stale raised at every start would only be noise in the fault log).
        self.readings.landing_age = [0] * landing_count
        self.acks: dict[int, int] = {}
        self.cursor = 0
        # What each landing board was last told (it answered the POLL that carried it), for the lamp schedule.
        self.told: dict[int, LandingOutputs] = {}
        self._asked: dict[int, LandingOutputs] = {}
        self.payload_errors = 0
        self.repeated_status = 0  # answers that repeated the board's last sequence number: not taken

    # -- this cycle's polls --------------------------------------------------------------------------------------

    def polls(self, outputs: Outputs) -> list[Poll]:
        """The cycle's polls in order, each carrying the board's outputs and the acknowledgement it is owed."""
        acks = self.acks
        chosen = [Poll(panelbus.CAR_TOP, _with_ack(outputs.car_top.to_payload(), acks.get(panelbus.CAR_TOP, 0))),
                  Poll(panelbus.CAR_PANEL,
                       _with_ack(outputs.car_panel.to_payload(), acks.get(panelbus.CAR_PANEL, 0)))]
        if self.rear_door:  # the rear door's board, right after the front one's (a car with one door never polls it)
            chosen.insert(1, Poll(panelbus.REAR_CAR_TOP, _with_ack(outputs.rear_car_top.to_payload(),
                                                                   acks.get(panelbus.REAR_CAR_TOP, 0))))
        self._asked.clear()
        for landing in self._landings_to_poll(outputs):
            address = panelbus.landing_address(landing)
            wanted = landing_outputs(outputs.commands, landing)
            self._asked[landing] = wanted
            chosen.append(Poll(address, _with_ack(wanted.to_payload(), acks.get(address, 0)), landing))
        return chosen

    def _landings_to_poll(self, outputs: Outputs) -> list[int]:
        chosen = []
        for _ in range(self.landing_polls_per_cycle):
            chosen.append(self.cursor)
            self.cursor = (self.cursor + 1) % self.landing_count
        commands = outputs.commands
        for landing in range(self.landing_count):
            if landing in chosen:
                continue
            told = self.told.get(landing)
            wanted = (landing in commands.hall_up_lamps, landing in commands.hall_down_lamps)
            if told is None or (told.up_lamp, told.down_lamp) != wanted:
                chosen.append(landing)
                break
        # While the cabinet's emergency electrical operation switch is on, its board is read every cycle: the
        # hold-to-run buttons are on it, and a release must be seen at once, however many landings there are.
        cabinet = self.readings.cabinet_landing
        reading = self.readings.landing.get(cabinet)
        if reading is not None and reading.eeo_switch and cabinet not in chosen:
            chosen.append(cabinet)
        return chosen

    # -- what came back ------------------------------------------------------------------------------------------

    def take_answer(self, poll: Poll, payload: bytes | None, presses: Presses) -> None:
        """A board's STATUS payload for ``poll`` (None: no answer in time). Fresh presses go into ``presses``. A
        STATUS that repeats the sequence number last taken from that board is not fresh: a healthy board numbers
        every STATUS anew, so this is a stuck board (or a replayed frame); it is counted and its reading ages."""
        if payload is None:
            return
        readings = self.readings
        address = poll.address
        try:
            if address == panelbus.CAR_TOP:
                top = CarTopInputs.from_payload(payload)
                if self._fresh(address, top.sequence):
                    readings.take_car_top(top)
            elif address == panelbus.REAR_CAR_TOP and self.rear_door:
                rear = CarTopInputs.from_payload(payload)
                if self._fresh(address, rear.sequence):
                    readings.take_rear_car_top(rear)
            elif address == panelbus.CAR_PANEL:
                panel = CarPanelInputs.from_payload(payload)
                if self._fresh(address, panel.sequence):
                    presses.car |= panel.calls_pressed
                    presses.door_open |= panel.door_open_button
                    presses.door_close |= panel.door_close_button
                    presses.accessible |= panel.accessible_button
                    presses.fault_reset |= panel.fault_reset_key
                    presses.alarm_reset |= panel.alarm_reset_key
                    readings.take_car_panel(panel)
            elif poll.landing >= 0:
                hall = LandingInputs.from_payload(payload)
                self.told[poll.landing] = self._asked.get(poll.landing, LandingOutputs())
                if self._fresh(address, hall.sequence):
                    if hall.up_pressed:
                        presses.up.add(poll.landing)
                    if hall.down_pressed:
                        presses.down.add(poll.landing)
                    readings.take_landing(poll.landing, hall)
        except PayloadError:
            self.payload_errors += 1

    def _fresh(self, address: int, sequence: int) -> bool:
        """Whether a STATUS is new; it is acknowledged on the next POLL either way."""
        if self.acks.get(address) == sequence:
            self.repeated_status += 1
            return False
        self.acks[address] = sequence
        return True


def _with_ack(payload: bytes, ack: int) -> bytes:
    """Every POLL payload begins with the acknowledgement byte (panelbus.py)."""
    return bytes((ack & 0xFF,)) + payload[1:]


@dataclass(slots=True)
class BoardLatch:
    """A board's presses waiting for acknowledgement: what it reported under which sequence number."""

    sequence: int = 0
    pending: set[str] = field(default_factory=set)
    reported: set[str] = field(default_factory=set)

    def press(self, name: str) -> None:
        self.pending.add(name)

    def acknowledge(self, ack: int) -> None:
        """A POLL arrived carrying ``ack``: the presses of that STATUS were taken and may be cleared."""
        if ack == self.sequence:
            self.pending -= self.reported
            self.reported = set()

    def report(self) -> set[str]:
        """The presses to put in the next STATUS, under a new sequence number."""
        self.sequence = (self.sequence + 1) & 0xFF
        self.reported = set(self.pending)
        return self.reported


__all__ = ["BoardLatch", "MasterSession", "Poll"]
