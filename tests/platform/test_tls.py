"""The link over TLS (port 8883 in deployment): it verifies the broker's certificate against the configured CA,
delivers events over the encrypted connection, and will not talk to a broker it cannot verify."""

from __future__ import annotations

import gc
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from carctl.platform.link import BrokerSettings, PlatformLink
from carctl.platform.outbox import Outbox
from tests.platform.conftest import MOSQUITTO, PASSWD, USERS, Broker, make_certificates, start_broker
from tests.platform.test_link import KEY, Observer


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[Broker]:
    if MOSQUITTO is None or PASSWD is None:
        pytest.skip("mosquitto is not installed (Debian package mosquitto; .ci/run installs it)")
    running = start_broker(tmp_path, tls=True)
    yield running
    running.stop()


def test_events_travel_over_tls_to_a_verified_broker(tls_broker: Broker, tmp_path: Path) -> None:
    operator = Observer(tls_broker.port, "platform", ["carctl/xihan/b7u2/events"])
    outbox = Outbox(tmp_path / "o.db")
    car = PlatformLink(BrokerSettings("127.0.0.1", tls_broker.tls_port, "xihan-b7u2", USERS["xihan-b7u2"],
                                      str(tmp_path / "ca.pem")), "xihan", "b7u2", KEY, outbox, lambda c: None)
    car.start()
    try:
        assert car.connected.wait(10)
        event_id = car.send_event({"kind": "fault_raised", "fault": "drive_fault"})
        topic, payload, _ = operator.take(within_s=10)
        assert json.loads(payload)["id"] == event_id
        deadline = time.monotonic() + 10
        while outbox.count() and time.monotonic() < deadline:
            time.sleep(0.05)  # the broker's PUBACK, after the subscriber has the event
    finally:
        car.stop()
        operator.close()
    assert outbox.count() == 0
    outbox.close()


# paho-mqtt 2.2 drops the socket of a failed TLS handshake without closing it (as HABApp#88 reported for older
# versions); the garbage collector closes it, with a ResourceWarning that is paho's, not the car's.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning", "ignore::ResourceWarning")
def test_a_broker_whose_certificate_does_not_verify_gets_nothing(tls_broker: Broker, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    wrong_ca, _, _ = make_certificates(other)  # a CA that did not sign the broker's certificate
    outbox = Outbox(tmp_path / "o.db")
    car = PlatformLink(BrokerSettings("127.0.0.1", tls_broker.tls_port, "xihan-b7u2", USERS["xihan-b7u2"],
                                      str(wrong_ca)), "xihan", "b7u2", KEY, outbox, lambda c: None)
    car.start()
    try:
        car.send_event({"kind": "fault_raised", "fault": "drive_fault"})
        assert not car.connected.wait(3)
    finally:
        car.stop()
    assert outbox.count() == 1  # kept for when a trusted broker is reachable
    outbox.close()
    del car
    gc.collect()  # the leaked socket is closed here, under this test's warning filter
