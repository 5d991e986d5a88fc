"""The operator's alarm.acknowledge must not reach the wrong alarm, nor be reported done when the car will not act
on it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from carctl.platform.agent import Agent
from carctl.protocol import loopback
from carctl.protocol.loopback import AlarmAcknowledged, parse_platform_message
from carctl.runtime.platform_bridge import PlatformBridge
from carctl.runtime.sidechannel import LOOP_FROM_PLATFORM, Sender, prepare_socket_dir

from tests.runtime.test_platform_bridge import car_config

OLD, STANDING = "a" * 32, "b" * 32


def agent_with_state(state: dict[str, Any]) -> tuple[Agent, list[dict[str, Any]]]:
    told: list[dict[str, Any]] = []
    agent = Agent.__new__(Agent)  # the command handler only: no broker, no sockets
    agent.last_state = state
    agent._tell_loop = told.append  # type: ignore[method-assign]
    return agent, told


def test_an_acknowledgement_that_names_no_alarm_is_not_applied_to_whichever_alarm_stands_when_it_arrives() -> None:
    """The operator saw alarm A and sent `carctl platform alarm-ack` (its --alarm is optional and off by default).
    The command may wait up to MAX_LIFETIME_S (600 s) at the broker while the link is down. Meanwhile A was reset at
    the car and a rider started alarm B, which the rescue service has (transmitted). The old command arrives."""
    agent, told = agent_with_state({"alarm": "transmitted", "alarm_id": STANDING})
    try:
        result = agent._acknowledge_alarm("")
    except RuntimeError:
        result = None
    # Refused: it names no alarm and the car cannot say it was issued after B began; B's rider must not hear "help
    # is on the way" on the strength of an acknowledgement of A.
    assert result is None and told == [], (result, told)


def test_an_acknowledgement_the_loop_will_not_apply_is_not_reported_to_the_operator_as_done() -> None:
    """The link process has no state from the loop yet (just restarted): it forwards the acknowledgement and tells the
    operator it is done. The car's alarm is 'requested' (or there is none): the core drops it silently."""
    agent, told = agent_with_state({})
    with pytest.raises(RuntimeError, match="has not reported its alarm yet"):  # refused, with the reason
        agent._acknowledge_alarm(OLD)
    assert told == []


def test_a_stale_acknowledgement_in_the_same_cycle_does_not_wipe_out_a_valid_one(tmp_path: Path) -> None:
    socket_dir = prepare_socket_dir(tmp_path / "run")
    bridge = PlatformBridge(car_config(tmp_path), socket_dir)
    link = Sender(socket_dir, LOOP_FROM_PLATFORM)
    try:
        link.send(loopback.alarm_acknowledged(STANDING))  # the operator's, for the alarm standing
        link.send(loopback.alarm_acknowledged(OLD))  # a late one for an alarm reset since
        time.sleep(0.05)
        bridge.take()
        # The late one does not overwrite the operator's (the bridge keeps the few named since the last cycle).
        assert bridge.take_acknowledgement(STANDING) is True
    finally:
        link.close()
        bridge.close()
