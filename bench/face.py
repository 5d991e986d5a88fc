"""Benchmarks for the face module, on one core of the reference machine.

- a 640x480 frame to the recognition event (detect on the downscaled frame, encode, match, and the 68-point
  landmarks for blink liveness): median, target
  <= 150 ms;
- a gallery of 10,000 residents (two templates each) searched for one face: median, target <= 2 ms;
- the control loop's lag at 50 Hz as on the board: the loop SCHED_FIFO pinned to one CPU, the real face worker
  started by the process table exactly as `carctl run` starts it (SCHED_OTHER, nice 10, off the loop's CPU) and
  recognising frames as fast as it can, every CPU saturated besides: p99, target < 1 ms.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
import time
from pathlib import Path

from carctl.face.bench import frame_640x480, summary

FACES = Path(__file__).resolve().parent.parent / "tests" / "data" / "faces"


def _one_core() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def _burn(stop_at: float) -> None:
    # At the worker's own niceness, so that the worker keeps a fair share of its CPU and does its work, while
    # every CPU, the loop's included, stays saturated.
    os.nice(10)
    x = 0
    while time.monotonic() < stop_at:
        x += 1


def _board(workdir: Path) -> Path:
    """A firmware configuration as on a car with the feature on: a gallery of two residents enrolled from real
    photos, and for a camera a folder of 640x480 frames (hard links to one frame, so thousands cost nothing) that
    the worker reads as fast as it can."""
    import cv2

    from carctl.face.engine import FaceEngine, load_image
    from carctl.face.gallery import Gallery, Resident

    engine = FaceEngine()
    gallery = Gallery.open(workdir / "gallery", "xihan", workdir / "keys" / "gallery.key", create=True)
    for resident, photo in (("r-obama", FACES / "obama" / "obama_1.jpg"), ("r-biden", FACES / "biden" / "biden_1.jpg")):
        [face] = engine.faces(load_image(photo))
        gallery.enroll(Resident(resident, 2, (0, 2), "c-1", "t", "t", (tuple(map(float, face.encoding)),)))
    camera = workdir / "camera"
    camera.mkdir()
    first = camera / "00000.jpg"
    cv2.imwrite(str(first), cv2.cvtColor(frame_640x480(), cv2.COLOR_RGB2BGR))
    for index in range(1, 5000):
        os.link(first, camera / f"{index:05d}.jpg")
    config = workdir / "board.toml"
    config.write_text(f'''[drive]
endpoint = "tcp://127.0.0.1:1"
[panel]
port = "/dev/null"
[runtime]
socket_dir = "{workdir / 'run'}"
[processes]
face = true
[face]
community = "xihan"
gallery_dir = "{workdir / 'gallery'}"
key_file = "{workdir / 'keys' / 'gallery.key'}"
source = "{camera}"
max_fps = 60
''')
    return config


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def board_lag(seconds: float) -> dict[str, object]:
    """The loop's lag as on the board: SCHED_FIFO pinned to the last CPU, the real face worker started by the
    process table (its own preexec step sets its scheduling) working through frames, every CPU also saturated."""
    import io
    import tempfile

    from bench.loop_lag import run_loop
    from carctl.runtime.config import load
    from carctl.runtime.processes import ProcessTable
    from carctl.runtime.sidechannel import prepare_socket_dir
    from carctl.runtime.structlog import StructuredLog

    with tempfile.TemporaryDirectory() as directory:
        workdir = Path(directory)
        config_path = _board(workdir)
        prepare_socket_dir(workdir / "run")
        stop_at = time.monotonic() + seconds + 30
        burners = [multiprocessing.Process(target=_burn, args=(stop_at,)) for _ in range(os.cpu_count() or 2)]
        for burner in burners:
            burner.start()
        table = ProcessTable(load(config_path), config_path, StructuredLog(io.StringIO()))
        started: dict[str, object] = {}

        def start_worker() -> None:  # once the loop has its priority and CPU, as in carctl run
            table.set_enabled("face", True)
            table.supervise()
            pid = table.pid_of("face")
            assert pid is not None, "the process table did not start the face worker"
            started.update(pid=pid, cpu_s=_cpu_s(pid))

        try:
            lag = run_loop(seconds, 50, cpu=(os.cpu_count() or 1) - 1, on_start=start_worker,
                           on_second=table.supervise)
            pid = table.pid_of("face")
            alive = pid == started["pid"]
            worker = {"pid": pid, "restarts": table.children["face"].restarts,
                      "policy": os.sched_getscheduler(pid) if alive else None,
                      "nice": os.getpriority(os.PRIO_PROCESS, pid) if alive else None,
                      "cpus": sorted(os.sched_getaffinity(pid)) if alive else None,
                      "cpu_s_used": round(_cpu_s(pid) - float(started["cpu_s"]), 1) if alive else None}  # type: ignore[arg-type]
        finally:
            table.stop()
            deadline = time.monotonic() + 5
            while table.pid_of("face") is not None and time.monotonic() < deadline:
                table.supervise()
                time.sleep(0.1)
            for burner in burners:
                burner.terminate()
                burner.join()
    return {**lag, "face_worker": worker}


def main() -> int:
    _one_core()
    measured = summary()
    seconds = float(os.environ.get("CARCTL_BENCH_LAG_S", "30"))
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, os.sched_getaffinity(0) | set(range(os.cpu_count() or 1)))
    lag = board_lag(seconds)
    result = {"benchmark": "face", **measured, "loop_lag_with_face_worker": lag}
    ok = (result["frame_to_event_ms"]["median"] <= 150 and result["gallery_10000_search_ms"]["median"] <= 2
          and lag["lag_p99_ms"] < 1.0 and lag["missed_cycles"] == 0)  # type: ignore[operator,index]
    print(f"face: 640x480 frame to event median {result['frame_to_event_ms']['median']} ms (target <= 150); "
          f"10,000-resident gallery search median {result['gallery_10000_search_ms']['median']} ms (target <= 2); "
          f"loop lag as on the board (SCHED_FIFO on CPU {lag['cpus']}, the face worker started by the process table "
          f"{lag['face_worker']}, every CPU saturated): p99 {lag['lag_p99_ms']} ms, max {lag['lag_max_ms']} ms, "
          f"missed {lag['missed_cycles']} (target < 1 ms) {'OK' if ok else 'BELOW TARGET'}")
    print(json.dumps({**result, "meets_target": ok}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
