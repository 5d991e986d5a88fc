"""The simulated inverter: the drive register map (carctl.protocol.drive_map) over the shaft physics.

Rules of this module:
- The register block is the pymodbus datastore itself: whatever a Modbus master writes, the drive acts on at its
  next cycle, and whatever it reports is in the block for any master to read (mbpoll included).
- Like a real elevator drive on communication loss: when WATCHDOG has not changed for 0.5 s, the drive ramps the
  car to a controlled stop and then trips with FAULT_CODE COMM_LOSS and the comm-loss status bit; the trip is reset
  by the fault-reset bit once the watchdog is changing again.
"""

from __future__ import annotations

from pymodbus.datastore import ModbusDeviceContext, ModbusSequentialDataBlock, ModbusServerContext

from carctl.protocol import drive_map
from carctl.protocol.drive_map import DriveFaultCode
from sim.physics import Shaft, actuators
from sim.panels import PanelBoards

REGISTER_COUNT = 32


class SimulatedDrive:
    def __init__(self, shaft: Shaft, boards: PanelBoards) -> None:
        self.shaft = shaft
        self.boards = boards
        # pymodbus device contexts add 1 to protocol addresses: a block starting at 1 puts protocol address n at
        # index n of self.block.values.
        self.block = ModbusSequentialDataBlock(1, [0] * REGISTER_COUNT)
        self.context = ModbusServerContext(devices={drive_map.DEVICE_ID: ModbusDeviceContext(hr=self.block)},
                                           single=False)
        self.watchdog = 0
        self.watchdog_changed_s = 0.0
        self.comm_loss_trip = False
        self.armed = False
        self.drive_tick = 0
        self._publish()

    @property
    def registers(self) -> list[int]:
        return self.block.values  # type: ignore[no-any-return]

    def step(self, now_s: float) -> None:
        """One drive cycle at monotonic time now_s: act on the command block, move the shaft, publish status."""
        values = self.registers
        command, watchdog = drive_map.decode_command(values[drive_map.CONTROL:drive_map.CONTROL + 3])
        if watchdog != self.watchdog:
            self.watchdog = watchdog
            self.watchdog_changed_s = now_s
            self.armed = True
        # Like real drives, the watchdog is armed by the first write: a drive that never heard from a controller
        # has nothing to lose.
        silent = self.armed and now_s - self.watchdog_changed_s > drive_map.WATCHDOG_TIMEOUT_S
        shaft = self.shaft
        if silent and not self.comm_loss_trip:
            # Controlled stop first (the run command is ignored), then the trip once the car stands.
            if shaft.speed_m_s == 0.0 and not shaft.brake_open:
                self.comm_loss_trip = True
                shaft.drive_fault_code = DriveFaultCode.COMM_LOSS
        elif self.comm_loss_trip and command.fault_reset and not silent:
            self.comm_loss_trip = False
            shaft.clear("comm_loss")
            if shaft.drive_fault_code == DriveFaultCode.COMM_LOSS:
                # The reset ends the comm-loss trip, not a fault that stood before it (an injected overcurrent
                # trip still there): that one shows again, as a real drive keeps its own fault through a reset.
                shaft.drive_fault_code = shaft.standing_fault_code()
        obey = not silent and not self.comm_loss_trip
        shaft.update(actuators(command, self.boards.car_top_outputs, obey,
                               rear=self.boards.rear_car_top_outputs if shaft.rear is not None else None))
        if "drive_frozen" in shaft.injected:
            return  # a drive whose status block has stopped changing: the same registers, the same TICK
        self.drive_tick = (self.drive_tick + 1) & 0xFFFF
        self._publish()

    def _publish(self) -> None:
        status = self.shaft.drive_status(self.comm_loss_trip, self.drive_tick)
        self.registers[drive_map.STATUS:drive_map.STATUS + drive_map.STATUS_BLOCK_COUNT] = (
            drive_map.encode_status(status))

