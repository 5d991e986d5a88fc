"""Benchmark: what the side channels cost the control loop per cycle, quiet and under a flood.

The loop takes, every cycle, what the platform link and the face worker sent (carctl/runtime/platform_bridge.py,
recognitions.py). Another process floods both sockets as fast as it can with the most expensive datagrams that still
fit (the largest, most separator-dense JSON), once from a process the sockets do not belong to and once as the very
part they belong to (the worst case: every datagram is parsed). Reported: the time of one cycle's take from both,
median and p99, in microseconds. Before the limits, one cycle's take under such a flood cost about 200 ms.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import socket
import statistics
import tempfile
import time
from pathlib import Path

from carctl.platform.keys import write_key
from carctl.runtime.config import from_dict
from carctl.runtime.platform_bridge import PlatformBridge
from carctl.runtime.recognitions import RecognitionInbox
from carctl.runtime.sidechannel import only_process, prepare_socket_dir

CYCLES = 5000
PERIOD_S = 0.02


def _flood(paths: list[str], stop_at: float) -> None:
    datagrams = [b"[" + b"1," * 300 + b"1]", b'{"type":"recognition","resident":"r","home_landing":' + b"1" * 20 + b"}",
                 b"x" * 1500, b'{"type":"mode","mode":"' + b"n" * 900 + b'"}']
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender:
        sender.setblocking(False)
        while time.monotonic() < stop_at:
            for path in paths:
                for datagram in datagrams:
                    try:
                        sender.sendto(datagram, path)
                    except OSError:
                        pass


def _measure(bridge: PlatformBridge, inbox: RecognitionInbox, flood_paths: list[str] | None) -> dict[str, float]:
    flooder = None
    if flood_paths is not None:
        flooder = multiprocessing.Process(target=_flood, args=(flood_paths, time.monotonic() + CYCLES * PERIOD_S + 5))
        flooder.start()
        time.sleep(0.3)
    times = []
    try:
        for _ in range(CYCLES):
            started = time.perf_counter()
            bridge.take()
            inbox.take()
            times.append((time.perf_counter() - started) * 1e6)
            time.sleep(PERIOD_S / 4)  # the flood refills the queues between cycles, as it would in the loop
    finally:
        if flooder is not None:
            flooder.terminate()
            flooder.join()
    ordered = sorted(times)
    return {"median_us": round(statistics.median(ordered), 1), "p99_us": round(ordered[int(0.99 * len(ordered))], 1),
            "max_us": round(ordered[-1], 1)}


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="carctl-bench-") as folder:
        directory = Path(folder)
        write_key(directory / "key", os.urandom(32))
        (directory / "pw").write_text("x")
        config = from_dict({"drive": {"endpoint": "tcp://127.0.0.1:1"}, "panel": {"port": "/dev/null"},
                            "runtime": {"socket_dir": str(directory / "run")},
                            "platform": {"password_file": str(directory / "pw"), "key_file": str(directory / "key"),
                                         "outbox_path": str(directory / "o.db")}})
        socket_dir = prepare_socket_dir(directory / "run")
        results = {}
        for name, sender in (("foreign_sender", only_process(lambda: None)), ("own_part", None)):
            bridge = PlatformBridge(config, socket_dir, **({"sender": sender} if sender else {}))
            inbox = RecognitionInbox(socket_dir, 6, **({"sender": sender} if sender else {}))
            try:
                paths = [str(bridge.inbox.path), str(inbox.inbox.path)]
                results[name] = {"quiet": _measure(bridge, inbox, None), "flood": _measure(bridge, inbox, paths)}
                results[name]["refused"] = bridge.inbox.refused_total() + inbox.inbox.refused_total()
            finally:
                bridge.close()
                inbox.close()
    own = results["own_part"]["flood"]
    print(f"side channels, one cycle's take from both sockets: quiet median {results['own_part']['quiet']['median_us']}"
          f" us; flooded by the parts themselves median {own['median_us']} us, p99 {own['p99_us']} us; flooded by "
          f"another process median {results['foreign_sender']['flood']['median_us']} us")
    print(json.dumps({"benchmark": "sidechannels", **results}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
