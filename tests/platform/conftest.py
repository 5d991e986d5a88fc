"""A real Mosquitto broker per test, with passwords and the ACL the deployment uses (sim/mosquitto.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sim.mosquitto import MOSQUITTO, PASSWD, Broker, make_certificates
from sim.mosquitto import start_broker as start_mosquitto

USERS = {"platform": "op-secret", "xihan-b7u2": "car2-secret", "xihan-b7u3": "car3-secret"}

__all__ = ["MOSQUITTO", "PASSWD", "USERS", "Broker", "make_certificates", "start_broker"]


def start_broker(directory: Path, tls: bool = False) -> Broker:
    return start_mosquitto(directory, USERS, "xihan", ["b7u2", "b7u3"], "platform", tls=tls)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    if MOSQUITTO is None or PASSWD is None:
        pytest.skip("mosquitto is not installed (Debian package mosquitto; .ci/run installs it)")
    running = start_broker(tmp_path)
    yield running
    running.stop()
