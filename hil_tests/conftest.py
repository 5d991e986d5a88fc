"""Hardware-in-the-loop fixtures: the firmware (`carctl run`) and the shaft as separate processes, over real
protocols.

Without options the shaft is `python -m sim serve` (Modbus TCP or RTU, panel bus on a pseudo-terminal). With
`--drive rtu:/dev/ttyUSB0 --panel /dev/ttyAMA0` the same procedures run against a real drive and real boards on a
test bench; they then need `--bench-control HOST:PORT`, a bench rig that presses buttons and reads the car's state
with the same JSON-lines protocol as `sim serve`'s control channel, and are skipped, with the reason, without it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from hil_tests.wire import WireCar, start_firmware, start_simulator


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hil", "hardware-in-the-loop")
    group.addoption("--drive", default=None, help="real drive endpoint, e.g. rtu:/dev/ttyUSB0")
    group.addoption("--panel", default=None, help="real panel bus port, e.g. /dev/ttyAMA0")
    group.addoption("--bench-control", default=None, help="HOST:PORT of the test bench's control channel")


@pytest.fixture(params=["simulator", "hardware"])
def car(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WireCar]:
    yield from _car(request, tmp_path_factory, rtu=False)


@pytest.fixture(params=["simulator", "hardware"])
def car_rtu(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WireCar]:
    yield from _car(request, tmp_path_factory, rtu=True)


def _car(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, rtu: bool) -> Iterator[WireCar]:
    drive = request.config.getoption("--drive")
    panel = request.config.getoption("--panel")
    bench = request.config.getoption("--bench-control")
    hardware = bool(drive or panel)
    if request.param == "hardware" and not hardware:
        pytest.skip("no real hardware given: run with --drive rtu:/dev/ttyUSB0 --panel /dev/ttyAMA0 "
                    "--bench-control HOST:PORT on a test bench")
    if request.param == "simulator" and hardware:
        pytest.skip("real hardware given: the simulated run is left out")
    workdir = tmp_path_factory.mktemp("hil")
    if hardware:
        if not (drive and panel and bench):
            pytest.skip("real hardware needs --drive, --panel and --bench-control (the bench rig's control channel)")
        simulator = None
        endpoints = {"control": bench}
    else:
        simulator, endpoints = start_simulator(workdir)
        drive = f"rtu:{endpoints['modbus_rtu']}" if rtu else f"tcp://{endpoints['modbus_tcp']}"
        panel = endpoints["panel"]
    wire = WireCar(endpoints["control"], workdir, drive, panel)
    wire.firmware = start_firmware(workdir, drive, panel)
    try:
        wire.wait_until(lambda state: any(r.get("kind") == "start" for r in wire.firmware_records()), within_s=10,
                        what="firmware running")
        time.sleep(0.5)  # out of power-up and into service
        yield wire
    finally:
        wire.stop_firmware()
        if simulator is not None:
            simulator.terminate()
            simulator.wait(timeout=10)
            if simulator.stdout is not None:
                simulator.stdout.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "hil_tests" in str(item.fspath):
            item.add_marker(pytest.mark.hil)
