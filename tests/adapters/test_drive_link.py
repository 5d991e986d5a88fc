"""The drive adapter against a misbehaving Modbus TCP peer: nothing escapes, every bad answer is counted."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carctl.adapters.drive import DriveLink, Endpoint, LinkError, LinkErrorKind
from carctl.protocol.drive_map import DriveCommand, DriveStatus, TickFreshness


class FakeDrive:
    """A TCP peer that answers each request with whatever the test says."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.answer = lambda request: b""
        self.running = True
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while self.running:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            with connection:
                while self.running:
                    try:
                        request = connection.recv(260)
                    except OSError:
                        break
                    if not request:
                        break
                    reply = self.answer(request)
                    if reply:
                        try:
                            connection.sendall(reply)
                        except OSError:
                            break

    def close(self) -> None:
        self.running = False
        self.listener.close()
        self.thread.join(timeout=2)


@pytest.fixture
def fake() -> Iterator[FakeDrive]:
    drive = FakeDrive()
    yield drive
    drive.close()


def mbap(request: bytes, pdu: bytes) -> bytes:
    transaction = request[:2]
    return transaction + b"\x00\x00" + struct.pack(">H", len(pdu) + 1) + request[6:7] + pdu


def test_good_answer_decodes(fake: FakeDrive) -> None:
    registers = [0x51, 0xFFF6, 0, 2900, 0, 12, 80, 7]
    fake.answer = lambda r: mbap(r, bytes([3, 16]) + struct.pack(">8H", *registers)) if r[7] == 3 else mbap(
        r, r[7:12])
    link = DriveLink(Endpoint("tcp", "127.0.0.1", fake.port), timeout_s=0.2)
    status = link.read_status()
    assert isinstance(status, DriveStatus)
    assert status.speed_m_s == -0.01 and status.position_m == 2.9 and status.ready
    assert link.write_command(DriveCommand(run_up=True, speed_ref_m_s=0.5), 1) is None
    link.close()


def test_exception_response_is_a_typed_error(fake: FakeDrive) -> None:
    fake.answer = lambda r: mbap(r, bytes([0x83, 0x02]))
    link = DriveLink(Endpoint("tcp", "127.0.0.1", fake.port), timeout_s=0.2)
    result = link.read_status()
    assert isinstance(result, LinkError) and result.kind is LinkErrorKind.EXCEPTION
    assert link.errors["exception"] == 1
    link.close()


def test_silence_is_a_timeout(fake: FakeDrive) -> None:
    link = DriveLink(Endpoint("tcp", "127.0.0.1", fake.port), timeout_s=0.05)
    result = link.read_status()
    assert isinstance(result, LinkError) and result.kind is LinkErrorKind.TIMEOUT
    link.close()


def test_nobody_listening_is_disconnected() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    link = DriveLink(Endpoint("tcp", "127.0.0.1", port), timeout_s=0.05)
    result = link.read_status()
    assert isinstance(result, LinkError) and result.kind is LinkErrorKind.DISCONNECTED


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pdu=st.one_of(st.binary(max_size=30),
                     st.lists(st.integers(0, 0xFFFF), max_size=10).map(
                         lambda regs: bytes([3, 2 * len(regs)]) + struct.pack(f">{len(regs)}H", *regs)),
                     st.binary(max_size=20).map(lambda b: bytes([3, 16]) + b)))
def test_fuzz_answers_never_raise_and_are_counted(fake: FakeDrive, pdu: bytes) -> None:
    fake.answer = lambda r: mbap(r, pdu)
    link = DriveLink(Endpoint("tcp", "127.0.0.1", fake.port), timeout_s=0.03)
    try:
        results = [link.read_status() for _ in range(3)]  # and again: garbage must not leave it stuck or leaking
        if isinstance(results[0], DriveStatus):
            # A good block, answered three times the same: the repeats have not moved the TICK on. (Bytes after the
            # 16 the byte count names, inside the frame's MBAP length, are not read: pymodbus decodes by the count.)
            assert pdu[:2] == bytes([3, 16]) and len(pdu) >= 18
            assert [r.kind for r in results[1:] if isinstance(r, LinkError)] == [LinkErrorKind.STALE] * 2
        else:
            assert all(isinstance(r, LinkError) and r.kind in (LinkErrorKind.TIMEOUT, LinkErrorKind.MALFORMED,
                                                                LinkErrorKind.EXCEPTION) for r in results)
            assert sum(link.errors.values()) == 3
    finally:
        link.close()


def test_the_garbage_that_crashed_pymodbus_is_a_malformed_answer(fake: FakeDrive) -> None:
    """Found by the fuzz test: pymodbus 3.11 raises struct.error decoding this answer."""
    fake.answer = lambda r: mbap(r, b"\x15\xab\xd3\xf2\xe7\xc6?")
    link = DriveLink(Endpoint("tcp", "127.0.0.1", fake.port), timeout_s=0.05)
    try:
        result = link.read_status()
        assert isinstance(result, LinkError) and result.kind is LinkErrorKind.MALFORMED
    finally:
        link.close()


def status_pdu(tick: int) -> bytes:
    return bytes([3, 16]) + struct.pack(">8H", 0x51, 0, 0, 2900, 0, 12, 80, tick)


def test_an_answer_to_another_function_is_refused(fake: FakeDrive) -> None:
    """A late reply to the cycle's other request, or a confused peer: never taken for this request's answer."""
    link = DriveLink(Endpoint("tcp", "127.0.0.1", fake.port), timeout_s=0.2)
    try:
        fake.answer = lambda r: mbap(r, bytes([4]) + status_pdu(7)[1:])  # input registers, not holding
        result = link.read_status()
        assert isinstance(result, LinkError) and result.kind is LinkErrorKind.MALFORMED and "function 4" in result.detail
        fake.answer = lambda r: mbap(r, status_pdu(8))  # a status block as the answer to the write
        error = link.write_command(DriveCommand(), 1)
        assert error is not None and error.kind is LinkErrorKind.MALFORMED
        fake.answer = lambda r: mbap(r, bytes([16]) + struct.pack(">HH", 5, 3))  # the echo of another write
        error = link.write_command(DriveCommand(), 2)
        assert error is not None and "other registers" in error.detail
        assert link.errors["malformed"] == 3
    finally:
        link.close()


def test_a_status_whose_tick_has_not_advanced_is_stale(fake: FakeDrive) -> None:
    ticks = iter([30000, 30001, 30001, 29999, 30002, 5, 6])
    fake.answer = lambda r: mbap(r, status_pdu(next(ticks)))
    link = DriveLink(Endpoint("tcp", "127.0.0.1", fake.port), timeout_s=0.2)
    try:
        kinds = []
        for _ in range(7):
            result = link.read_status()
            kinds.append(result.drive_tick if isinstance(result, DriveStatus) else result.kind.value)
        # Frozen (30001 again) and a little behind (29999, an older answer) are stale; 5 after 30002 is a drive that
        # restarted its count.
        assert kinds == [30000, 30001, "stale", "stale", 30002, 5, 6]
    finally:
        link.close()


def test_the_tick_rule_frozen_late_and_restarted() -> None:
    fresh = TickFreshness()
    seen = [fresh.take(tick) for tick in (100, 101, 101, 99, 102, 103)]
    assert seen == [True, True, False, False, True, True]  # frozen, then a late reply
    # A drive that restarts its count near where it was: its second answer, ahead of the first, is taken.
    assert [fresh.take(tick) for tick in (90, 91, 92)] == [False, True, True]
    # Behind and not advancing among themselves (late replies): not taken; behind but advancing: a restart.
    assert [fresh.take(tick) for tick in (92, 90, 90, 91)] == [False, False, False, True]
    fresh = TickFreshness()
    assert [fresh.take(tick) for tick in (50, 51, 49, 49, 49)] == [True, True, False, False, False]
    # Far behind (beyond a late reply's reach): a restart, taken at once; wrapping 65535 -> 0 is advancing.
    fresh = TickFreshness()
    assert [fresh.take(tick) for tick in (5000, 3, 4)] == [True, True, True]
    fresh = TickFreshness()
    assert [fresh.take(tick) for tick in (65534, 65535, 0, 1)] == [True, True, True, True]
    fresh.forget()
    assert fresh.take(1)  # after a reconnection, whatever it says first


def test_over_rtu_a_late_reply_is_discarded_before_the_next_request() -> None:
    """A pseudo-terminal stands in for the RS-485 line: a reply that arrives after its timeout is waiting in the
    input when the next request goes out; it is discarded and counted, and the next answer is the right one."""
    import os
    import pty
    import termios
    import tty

    from carctl.protocol.panelbus import crc16_modbus  # the same CRC-16/MODBUS, low byte first

    master, slave = pty.openpty()
    tty.setraw(slave, termios.TCSANOW)
    path = os.ttyname(slave)
    link = DriveLink(Endpoint("rtu", path), timeout_s=0.05)
    try:
        assert link.connect()
        assert isinstance(link.read_status(), LinkError)  # nobody answers in time
        assert len(os.read(master, 64)) == 8  # the drive's side took that request...
        late = bytes([1]) + status_pdu(41)
        os.write(master, late + crc16_modbus(late).to_bytes(2, "little"))  # ...then the late answer arrives

        def answer_next_request() -> None:
            request = b""
            while len(request) < 8:
                request += os.read(master, 64)
            fresh = bytes([1]) + status_pdu(42)
            os.write(master, fresh + crc16_modbus(fresh).to_bytes(2, "little"))

        responder = threading.Thread(target=answer_next_request)
        responder.start()
        status = link.read_status()
        responder.join(timeout=5)
        assert isinstance(status, DriveStatus) and status.drive_tick == 42
        assert link.late_bytes == len(late) + 2
    finally:
        link.close()
        os.close(master)
        os.close(slave)


def test_a_drive_without_read_write_multiple_gets_two_transactions_from_then_on(fake: FakeDrive) -> None:
    """Combined, the cycle's command waits for the next read; a drive that answers 0x17 with "illegal function"
    still gets that command (a write, then the read) and two transactions from then on."""
    seen: list[int] = []

    def answer(request: bytes) -> bytes:
        function = request[7]
        seen.append(function)
        if function == 23:
            return mbap(request, bytes([0x97, 0x01]))  # illegal function
        if function == 3:
            return mbap(request, status_pdu(len(seen)))
        return mbap(request, request[7:12])

    fake.answer = answer
    link = DriveLink(Endpoint("tcp", "127.0.0.1", fake.port), timeout_s=0.2, combined=True)
    assert isinstance(link.read_status(), DriveStatus) and seen == [3]  # nothing kept yet: a read
    assert link.write_command(DriveCommand(run_up=True, speed_ref_m_s=0.5), 1) is None and seen == [3]  # kept
    link.read_status()
    assert seen == [3, 23, 16, 3] and link.combined_refused and not link.combined
    assert link.errors["unsupported"] == 1
    link.write_command(DriveCommand(), 2)
    assert seen[-1] == 16  # written at once now
    link.close()


def test_read_write_multiple_against_the_simulated_drives_modbus_server() -> None:
    """The real pymodbus server of `sim serve`'s drive: one 0x17 transaction writes the command kept from the
    last cycle and reads the status; close() writes the last command kept."""
    import asyncio

    from pymodbus.server import ModbusTcpServer

    from sim.drive import SimulatedDrive
    from sim.panels import PanelBoards
    from sim.physics import Shaft
    from carctl.core.config import ControllerConfig
    from carctl.protocol import drive_map

    config = ControllerConfig()
    shaft = Shaft(config)
    drive = SimulatedDrive(shaft, PanelBoards(shaft, config.building.landing_count, config.building.main_landing))
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    stopping = threading.Event()
    ports: list[int] = []

    def serve() -> None:
        asyncio.set_event_loop(loop)

        async def run() -> None:
            server = ModbusTcpServer(drive.context, address=("127.0.0.1", 0))
            await server.serve_forever(background=True)
            ports.append(server.transport.sockets[0].getsockname()[1])  # type: ignore[union-attr]
            ready.set()
            while not stopping.is_set():
                await asyncio.sleep(0.01)
            await server.shutdown()

        loop.run_until_complete(run())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(5)
    port = ports[0]
    link = DriveLink(Endpoint("tcp", "127.0.0.1", port), timeout_s=0.5, combined=True)
    try:
        assert isinstance(link.read_status(), DriveStatus)
        link.write_command(DriveCommand(quick_stop=True), 41)
        assert drive.registers[drive_map.WATCHDOG] == 0  # kept, not written yet
        drive.step(0.0)  # the drive's next cycle: a new TICK
        assert isinstance(link.read_status(), DriveStatus)
        assert drive.registers[drive_map.WATCHDOG] == 41 and not link.combined_refused  # written with the read
        link.write_command(DriveCommand(), 42)
        link.close()
        assert drive.registers[drive_map.WATCHDOG] == 42  # the last command written at close
    finally:
        stopping.set()
        thread.join(timeout=5)
