"""Platform link benchmarks against a local Mosquitto (sim/mosquitto.py):

- events per second one car's link sustains: each event written to the SQLite outbox (WAL, synchronous=FULL),
  published at QoS 1 and removed on its PUBACK, until a subscriber on the platform account has every one; and the
  rate at which a backlog stored during a broker outage drains when the broker returns;
- end-to-end event latency at a whole community's load: `python -m sim fleet` with 223 cars in real time, faults
  injected often enough to time a few hundred events.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from carctl.platform.link import BrokerSettings, PlatformLink
from carctl.platform.outbox import Outbox
from sim.fleet import Subscriber, run_fleet
from sim.mosquitto import BrokerUnavailable, start_broker

EVENTS = 2000
USERS = {"platform": "op-secret", "xihan-b1u1": "car-secret"}


def _link(port: int, outbox: Outbox) -> PlatformLink:
    return PlatformLink(BrokerSettings("127.0.0.1", port, "xihan-b1u1", USERS["xihan-b1u1"]), "xihan", "b1u1",
                        b"k" * 32, outbox, lambda c: None)


def _wait_for(subscriber: Subscriber, count: int, within_s: float) -> int:
    seen: set[str] = set()
    deadline = time.monotonic() + within_s
    while len(seen) < count and time.monotonic() < deadline:
        for topic, payload, _ in subscriber.drain():
            if topic.endswith("/events"):
                seen.add(json.loads(payload)["id"])
        time.sleep(0.005)
    return len(seen)


def one_link(directory: Path) -> dict[str, float]:
    broker = start_broker(directory / "broker", USERS, "xihan", ["b1u1"], "platform")
    try:
        subscriber = Subscriber(broker.port, USERS["platform"])
        outbox = Outbox(directory / "outbox.db")
        link = _link(broker.port, outbox)
        link.start()
        try:
            assert link.connected.wait(10)
            time.sleep(0.3)
            started = time.perf_counter()
            for number in range(EVENTS):
                link.send_event({"kind": "bench", "n": number, "t": time.time()})
            stored_s = time.perf_counter() - started
            received = _wait_for(subscriber, EVENTS, 120)
            live_s = time.perf_counter() - started
            while outbox.count() and time.perf_counter() - started < 120:
                time.sleep(0.01)
        finally:
            link.stop()
        # A backlog: events stored with the broker away, then the link connects and drains them.
        for number in range(EVENTS):
            outbox.add(link.topics["events"], {"kind": "bench-backlog", "n": number, "t": time.time()})
        relinked = _link(broker.port, outbox)
        started = time.perf_counter()
        relinked.start()
        try:
            backlog_received = _wait_for(subscriber, EVENTS, 120)
            backlog_s = time.perf_counter() - started
        finally:
            relinked.stop()
            outbox.close()
            subscriber.close()
        return {"events": EVENTS, "received": received, "stored_per_s": round(EVENTS / stored_s),
                "live_events_per_s": round(EVENTS / live_s), "backlog_received": backlog_received,
                "backlog_drain_per_s": round(EVENTS / backlog_s)}
    finally:
        broker.stop()


def main() -> int:
    try:
        with tempfile.TemporaryDirectory(prefix="carctl-bench-") as scratch:
            link = one_link(Path(scratch))
    except BrokerUnavailable as error:
        print(f"bench.platform: skipped: {error}")
        return 0
    print(f"platform: one car's link: {link['live_events_per_s']} events/s stored, published at QoS 1, "
          f"acknowledged and received ({link['received']}/{link['events']}); outbox writes alone "
          f"{link['stored_per_s']}/s; a backlog of {link['events']} drains at {link['backlog_drain_per_s']} events/s "
          f"({link['backlog_received']} received)")
    fleet = run_fleet(cars=223, duration_s=120.0, speed=1.0, faults_per_car_h=30.0, seed=5)
    latency = fleet["event_latency_ms"]
    state = fleet["state_latency_ms"]
    print(f"platform: 223 cars in real time for {fleet['simulated_s']:.0f} s ({fleet['processes']} processes, "
          f"{fleet['connected']} connected): {fleet['messages_per_wall_s']} messages/s; event latency "
          f"median {latency.get('p50')} ms, p99 {latency.get('p99')} ms, max {latency.get('max')} ms over "
          f"{latency['n']} events, {fleet['events_missing']} missing; state latency median {state.get('p50')} ms, "
          f"p99 {state.get('p99')} ms")
    print(json.dumps({"one_link": link, "fleet": fleet}), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
