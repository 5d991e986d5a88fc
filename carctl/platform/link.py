"""The car's link to the community platform over MQTT (paho-mqtt 2.x). Never in the safety path.

Topics, for community C and car K: `carctl/C/K/cmd` (commands in), `carctl/C/K/ack` (the verdict on each command,
with the reason when refused), `carctl/C/K/state` (retained), `carctl/C/K/events` (QoS 1, from the outbox).

Rules of this module:
- paho runs its network loop in its own thread; nothing here blocks the control loop, and a broker that is down only
  means the outbox grows and the state waits. Reconnects back off from 1 s to 30 s.
- Every command goes through CommandGate; its verdict is acknowledged on `ack`; an accepted command is handed to the
  car's handler once and its id remembered on disk, so a replay is refused even after a restart.
- An event leaves the outbox only on the broker's PUBACK for it.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from carctl.platform.commands import CommandGate, Verdict
from carctl.platform.outbox import Outbox

Handler = Callable[[dict[str, Any]], dict[str, Any] | None]


@dataclass(frozen=True, slots=True)
class BrokerSettings:
    host: str
    port: int
    username: str
    password: str
    tls_ca_file: str = ""  # TLS when set


def topics(community: str, car: str) -> dict[str, str]:
    base = f"carctl/{community}/{car}"
    return {"cmd": f"{base}/cmd", "ack": f"{base}/ack", "state": f"{base}/state", "events": f"{base}/events"}


class PlatformLink:
    def __init__(self, broker: BrokerSettings, community: str, car: str, key: bytes, outbox: Outbox,
                 handler: Handler, clock: Callable[[], float] = time.time) -> None:
        self.broker = broker
        self.topics = topics(community, car)
        self.outbox = outbox
        self.handler = handler
        self.clock = clock
        self.gate = CommandGate(community, car, key, outbox.seen_commands(clock()))
        self.acks_sent: list[dict[str, Any]] = []
        self._inflight: dict[int, str] = {}  # MQTT message id -> outbox event id
        self._lock = threading.Lock()
        self.connected = threading.Event()
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"carctl-{community}-{car}",
                             protocol=mqtt.MQTTv311, clean_session=False)
        client.username_pw_set(broker.username, broker.password)
        if broker.tls_ca_file:
            client.tls_set(ca_certs=broker.tls_ca_file, cert_reqs=ssl.CERT_REQUIRED)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.max_inflight_messages_set(100)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        self.client = client

    # -- lifecycle -----------------------------------------------------------------------------------------------

    def start(self) -> None:
        self.client.connect_async(self.broker.host, self.broker.port, keepalive=10)
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    # -- what the car sends --------------------------------------------------------------------------------------

    def publish_state(self, state: dict[str, Any]) -> None:
        """Retained, so a platform that subscribes later sees the car's current state at once."""
        if self.connected.is_set():
            self.client.publish(self.topics["state"], json.dumps(state), qos=1, retain=True)

    def send_event(self, event: dict[str, Any]) -> str:
        """Store the event durably, then send it if the broker is there; returns its id."""
        if event.get("kind") == "daily_statistics" and "id" in event:
            event_id = self.outbox.add_statistics(self.topics["events"], event)
        else:
            event_id = self.outbox.add(self.topics["events"], event)
        if self.connected.is_set():
            self.flush()
        return event_id

    def flush(self) -> None:
        """Send what the outbox holds and is not already in flight."""
        with self._lock:
            in_flight = set(self._inflight.values())
            for event_id, topic, payload in self.outbox.pending(limit=500):
                if event_id in in_flight:
                    continue
                info = self.client.publish(topic, payload, qos=1)
                if info.rc == mqtt.MQTT_ERR_SUCCESS:
                    self._inflight[info.mid] = event_id
                else:
                    break

    # -- paho callbacks (its network thread) ---------------------------------------------------------------------

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            return
        client.subscribe(self.topics["cmd"], qos=1)
        self.connected.set()
        with self._lock:
            self._inflight.clear()  # anything unacknowledged is sent again from the outbox
        self.flush()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        self.connected.clear()

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
        with self._lock:
            event_id = self._inflight.pop(mid, None)
        if event_id is not None:
            self.outbox.acknowledge(event_id)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        verdict = self.gate.check(message.payload, self.clock())
        result = None
        if verdict.accepted and verdict.command is not None:
            self.outbox.remember_command(str(verdict.command_id), float(verdict.command["expires_at"]))
            try:
                result = self.handler(verdict.command)
            except Exception as error:  # noqa: BLE001 - a failing handler is reported, never fatal to the link
                verdict = Verdict(False, verdict.command_id, f"failed: {error}")
        ack = verdict.ack(result)
        self.acks_sent.append(ack)
        client.publish(self.topics["ack"], json.dumps(ack), qos=1)
