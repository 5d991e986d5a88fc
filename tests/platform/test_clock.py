"""The car's clock through the link against a real Mosquitto: an expired command is refused naming the car's clock
when the kernel says it is not synchronised, and naming the command when it is."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from carctl.platform.link import BrokerSettings, PlatformLink
from carctl.platform.outbox import Outbox
from tests.platform.conftest import USERS, Broker
from tests.platform.test_link import KEY, Observer, command


def test_the_ack_says_the_cars_clock_is_the_reason(broker: Broker, tmp_path: Path) -> None:
    synchronised: list[bool | None] = [False]
    applied: list[dict[str, Any]] = []
    car = PlatformLink(BrokerSettings("127.0.0.1", broker.port, "xihan-b7u2", USERS["xihan-b7u2"]), "xihan", "b7u2",
                       KEY, Outbox(tmp_path / "o.db"), lambda c: applied.append(c) or {},
                       clock_synchronised=lambda: synchronised[0])
    car.start()
    operator = Observer(broker.port, "platform", ["carctl/xihan/b7u2/ack"])
    try:
        assert car.connected.wait(10)
        time.sleep(0.2)
        stale = time.time() - 3600  # as a car sees a fresh command while its clock is an hour fast
        for state, reason in ((False, "the car's clock is not synchronised (expired by its clock); check NTP on the "
                                      "car"), (True, "expired"), (None, "expired")):
            synchronised[0] = state
            operator.publish("carctl/xihan/b7u2/cmd", command(issued_at=stale, expires_at=stale + 60))
            _, payload, _ = operator.take(within_s=5)
            ack = json.loads(payload)
            assert (ack["accepted"], ack["reason"]) == (False, reason)
        assert applied == []
    finally:
        operator.close()
        car.stop()
