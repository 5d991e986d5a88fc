"""The car's link to the community platform over MQTT (paho-mqtt 2.x). Never in the safety path.

Topics, for community C and car K: `carctl/C/K/cmd` (commands in), `carctl/C/K/ack` (the verdict on each command,
with the reason when refused), `carctl/C/K/state` (retained), `carctl/C/K/events` (QoS 1, from the outbox).

Rules of this module:
- paho runs its network loop in its own thread; nothing here blocks the control loop, and a broker that is down only
  means the outbox grows and the state waits. Reconnects back off from a random 1-5 s, doubling to 30 s.
- Every command goes through CommandGate, told whether the car's clock is synchronised (carctl/clocksync.py), so a
  command refused as expired by a clock NTP has not yet set says so; its verdict is acknowledged on `ack`; an
  accepted command is handed to the car's handler once and its id remembered on disk, so a replay is refused even
  after a restart.
- An event leaves the outbox only on the broker's PUBACK for it.
- paho calls on_publish while holding its own message lock, so a callback must never wait for a lock that is held
  around publish(), or the two threads deadlock under load. Here the callbacks only note what happened (a deque of
  acknowledged message ids, a flag) and wake the link's own sender thread, which alone publishes events, maps
  message ids to event ids and removes acknowledged events from the outbox.
- No payload can kill a thread. The command gate is total; every paho callback is guarded as well, so a future bug
  in a handler is counted and logged with its traceback, and paho goes on (a poison command redelivered by the
  broker would otherwise kill the network thread again after every restart). A command whose id cannot be read is
  dropped and counted, not acknowledged.
- A watchdog in the sender thread notices a network thread that has ended anyway and starts it again; `connected`
  is cleared meanwhile, so nobody believes a dead link is up.
"""

from __future__ import annotations

import collections
import json
import random
import ssl
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from carctl import clocksync
from carctl.platform.commands import CommandGate, Verdict
from carctl.platform.outbox import Outbox

Handler = Callable[[dict[str, Any]], dict[str, Any] | None]
REFUSAL_LOG_EVERY_S = 60.0


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
                 handler: Handler, clock: Callable[[], float] = time.time,
                 clock_synchronised: Callable[[], bool | None] = clocksync.clock_synchronised) -> None:
        self.broker = broker
        self.topics = topics(community, car)
        self.outbox = outbox
        self.handler = handler
        self.clock = clock
        self.clock_synchronised = clock_synchronised  # asked for each command: NTP may have synchronised meanwhile
        self.gate = CommandGate(community, car, key, outbox.seen_commands(clock()))
        self.acks_sent: collections.deque[dict[str, Any]] = collections.deque(maxlen=100)  # the latest, for tests
        self.commands_dropped = 0  # payloads without a readable id: nothing to acknowledge
        self.callback_errors = 0
        self.network_restarts = 0
        self.logins_refused = 0
        self._logged_s: dict[str, float] = {}
        # Owned by the sender thread alone: MQTT message id -> outbox event id.
        self._inflight: dict[int, str] = {}
        # Written by paho's callbacks, read by the sender thread (deque appends and pops are atomic).
        self._acknowledged: collections.deque[int] = collections.deque()
        self._reconnected = False
        self._wake = threading.Event()
        self._stopping = False
        self._sender = threading.Thread(target=self._send_loop, name=f"carctl-link-{car}", daemon=True)
        self.connected = threading.Event()
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"carctl-{community}-{car}",
                             protocol=mqtt.MQTTv311, clean_session=False)
        client.username_pw_set(broker.username, broker.password)
        if broker.tls_ca_file:
            client.tls_set(ca_certs=broker.tls_ca_file, cert_reqs=ssl.CERT_REQUIRED)
        # Each car starts its backoff at its own 1-5 s, so that after a broker restart a city's cars do not all
        # reconnect (and handshake TLS) in the same second (docs/scaling.md).
        client.reconnect_delay_set(min_delay=random.uniform(1.0, 5.0), max_delay=30)  # type: ignore[arg-type]
        client.max_inflight_messages_set(100)
        client.on_connect = self._guarded(self._on_connect)
        client.on_disconnect = self._guarded(self._on_disconnect)
        client.on_message = self._guarded(self._on_message)
        client.on_publish = self._guarded(self._on_publish)
        # paho's own last guard as well: an exception from a callback is logged, not raised into its loop.
        client.suppress_exceptions = True
        self.client = client

    # -- lifecycle -----------------------------------------------------------------------------------------------

    def start(self) -> None:
        self._start_network()  # before the sender thread, whose watchdog would take a thread not yet started for dead
        self._sender.start()

    def _start_network(self) -> None:
        self.client.connect_async(self.broker.host, self.broker.port, keepalive=10)
        self.client.loop_start()

    def network_alive(self) -> bool:
        """paho clears its thread when loop_forever ends, whether by disconnect() or by an exception."""
        return self.client._thread is not None  # noqa: SLF001 - paho has no public accessor

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._sender.is_alive():
            self._sender.join(timeout=5)
        self._settle_acknowledged()  # the sender has stopped: what the broker has acknowledged leaves the outbox
        self.client.disconnect()
        self.client.loop_stop()
        # paho 2.2 leaves its wake-up socket pair (and a socket that never connected) open after loop_stop when the
        # broker was never reached; close them so a link that is stopped and started again leaks nothing.
        self.client._reset_sockets()

    # -- what the car sends --------------------------------------------------------------------------------------

    def publish_state(self, state: dict[str, Any]) -> None:
        """Retained, so a platform that subscribes later sees the car's current state at once."""
        if self.connected.is_set():
            self.client.publish(self.topics["state"], json.dumps(state), qos=1, retain=True)

    def send_event(self, event: dict[str, Any]) -> str:
        """Store the event durably and have it sent when the broker is there; returns its id."""
        if event.get("kind") == "daily_statistics" and "id" in event:
            event_id = self.outbox.add_statistics(self.topics["events"], event)
        else:
            event_id = self.outbox.add(self.topics["events"], event)
        self._wake.set()
        return event_id

    # -- the sender thread ---------------------------------------------------------------------------------------

    def _send_loop(self) -> None:
        while not self._stopping:
            self._wake.wait(timeout=1.0)
            self._wake.clear()
            try:
                self._watch_network()
                if self._reconnected:
                    self._reconnected = False
                    self._inflight.clear()  # anything unacknowledged is sent again from the outbox
                self._settle_acknowledged()
                if self.connected.is_set():
                    self._publish_pending()
            except Exception:  # noqa: BLE001 - the sender thread must outlive any bug (an outbox error included)
                self._count_error("sender")
                time.sleep(1.0)

    def _watch_network(self) -> None:
        """Start paho's network thread again if it has ended while the link should run."""
        if self._stopping or self.network_alive():
            return
        self.connected.clear()
        self.network_restarts += 1
        if self._may_log("network thread"):
            print(f"platform link: the network thread had stopped; restarting it ({self.network_restarts} so far)",
                  file=sys.stderr, flush=True)
        self.client._reset_sockets()  # noqa: SLF001 - the dead loop's socket and wake-up pair
        self._start_network()

    def _count_error(self, where: str) -> None:
        self.callback_errors += 1
        if self._may_log(where):
            print(f"platform link: error in {where} ({self.callback_errors} so far, counted; the link goes on):\n"
                  f"{traceback.format_exc()}", file=sys.stderr, flush=True)

    def _may_log(self, what: str) -> bool:
        """Once a minute per kind of trouble: a fault that repeats every second cannot flood the journal."""
        now = time.monotonic()
        if now - self._logged_s.get(what, float("-inf")) < REFUSAL_LOG_EVERY_S:
            return False
        self._logged_s[what] = now
        return True

    def _guarded(self, callback: Callable[..., None]) -> Callable[..., None]:
        """A paho callback that never raises into paho's network thread."""
        def guarded(*args: Any) -> None:
            try:
                callback(*args)
            except Exception:  # noqa: BLE001 - counted and logged with its traceback
                self._count_error(callback.__name__)

        return guarded

    def _settle_acknowledged(self) -> None:
        """Remove the events the broker has acknowledged. Ids of other messages (state, acks) are not events."""
        while self._acknowledged:
            event_id = self._inflight.pop(self._acknowledged.popleft(), None)
            if event_id is not None:
                self.outbox.acknowledge(event_id)

    def _publish_pending(self) -> None:
        """Send what the outbox holds and is not already in flight, oldest first."""
        in_flight = set(self._inflight.values())
        for event_id, topic, payload in self.outbox.pending(limit=500):
            if event_id in in_flight:
                continue
            info = self.client.publish(topic, payload, qos=1)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                return  # the connection went; everything is sent again when it is back
            # Recorded before this thread next settles acknowledgements, so a PUBACK that arrived already is
            # still matched.
            self._inflight[info.mid] = event_id
        if self.outbox.count() > len(self._inflight):
            self._wake.set()  # more than one batch was waiting

    # -- paho callbacks (its network thread) ---------------------------------------------------------------------

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            # A refused login (a wrong password, an account missing from the broker) would otherwise be visible only
            # on the broker: say it, once per minute at most, and count it.
            self.logins_refused += 1
            if self._may_log("login"):
                print(f"platform link: the broker refused the login of {self.broker.username!r} ({reason}); check "
                      f"platform.username and platform.password_file ({self.logins_refused} refusals so far)",
                      file=sys.stderr, flush=True)
            return
        client.subscribe(self.topics["cmd"], qos=1)
        self._reconnected = True
        self.connected.set()
        self._wake.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        self.connected.clear()

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
        self._acknowledged.append(mid)
        self._wake.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        verdict = self.gate.check(message.payload, self.clock(), self.clock_synchronised())
        if verdict.command_id is None:
            self.commands_dropped += 1  # not even its id is readable: there is no one to answer
            return
        result = None
        if verdict.accepted and verdict.command is not None:
            self.outbox.remember_command(str(verdict.command_id), float(verdict.command["expires_at"]))
            try:
                result = self.handler(verdict.command)
            except Exception as error:  # noqa: BLE001 - a failing handler is reported, never fatal to the link
                verdict = Verdict(False, verdict.command_id, f"failed: {str(error)[:200]}")
        ack = verdict.ack(result)
        self.acks_sent.append(ack)
        client.publish(self.topics["ack"], json.dumps(ack), qos=1)

    def health(self) -> dict[str, int]:
        return {"commands_dropped": self.commands_dropped, "callback_errors": self.callback_errors,
                "network_restarts": self.network_restarts, "logins_refused": self.logins_refused}
