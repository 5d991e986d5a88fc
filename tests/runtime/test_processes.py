"""The process table: the face worker runs only while the community has the feature on, the platform may switch it,
and a part that dies is restarted with a backoff."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from carctl.adapters.drive import DriveLink, Endpoint
from carctl.adapters.panelbus import PanelBusMaster
from carctl.runtime import overrides
from carctl.runtime.config import FirmwareConfig, from_dict, load
from carctl.runtime.loop import ControlLoop, StructuredLog
from carctl.runtime.processes import ProcessTable
from carctl.platform.keys import write_key

# The maintenance record is not what these tests look at: none kept (a car in service keeps one).
BASE = {"drive": {"endpoint": "tcp://127.0.0.1:1"}, "panel": {"port": "/dev/null"}, "runtime": {"audit_log": "",
        "fault_log": "", "latch_file": "", "learned_table": ""}}



def make_loop(config: FirmwareConfig, log: StructuredLog) -> ControlLoop:
    return ControlLoop(config, DriveLink(Endpoint.parse("tcp://127.0.0.1:1"), 0.01), PanelBusMaster("/dev/null"), log)


def records(stream: io.StringIO, kind: str) -> list[dict[str, object]]:
    return [r for r in (json.loads(line) for line in stream.getvalue().splitlines()) if r["kind"] == kind]


def test_feature_off_means_no_worker_no_inbox_no_gallery(tmp_path: Path) -> None:
    config = from_dict({**BASE, "face": {"gallery_dir": str(tmp_path / "gallery"), "key_file": str(tmp_path / "key"),
                                         "source": str(tmp_path / "camera")}})
    log = StructuredLog(io.StringIO())
    loop = make_loop(config, log)
    table = ProcessTable(config, tmp_path / "board.toml", log)
    table.set_enabled("face", loop.face_enabled)
    table.supervise()
    assert table.children == {}
    assert loop.inbox is None
    assert not (tmp_path / "gallery").exists() and not (tmp_path / "key").exists()


def test_feature_on_starts_the_worker_at_lower_priority_and_restarts_it(tmp_path: Path) -> None:
    config_path = tmp_path / "board.toml"
    config_path.write_text(f'[drive]\nendpoint = "tcp://127.0.0.1:1"\n[panel]\nport = "/dev/null"\n'
                           f'[processes]\nface = true\n[face]\ngallery_dir = "{tmp_path}/g"\n'
                           f'key_file = "{tmp_path}/missing-key"\n')
    stream = io.StringIO()
    table = ProcessTable(load(config_path), config_path, StructuredLog(stream))
    table.set_enabled("face", True)
    table.supervise()
    try:
        process = table.children["face"].process
        assert process is not None
        assert process.wait(timeout=60) == 3  # no key: the worker refuses to start; the car is not affected
        table.supervise()
        assert [r["state"] for r in records(stream, "process")] == ["started", "exited"]
        assert table.children["face"].backoff_s == 2.0  # it will be tried again later, not in a tight loop
        assert table.children["face"].process is None
    finally:
        table.stop()


def test_the_platform_switches_the_face_feature_and_the_worker_follows(tmp_path: Path) -> None:
    """face_enabled in the overrides file beats processes.face; switching it opens or closes the loop's inbox and
    starts or stops the worker without blocking the loop."""
    settings = tmp_path / "overrides.json"
    overrides.write(settings, {"face_enabled": True})
    (tmp_path / "pw").write_text("x")
    write_key(tmp_path / "key", b"k" * 32)
    config_path = tmp_path / "board.toml"
    config_path.write_text(f'''[drive]\nendpoint = "tcp://127.0.0.1:1"\n[panel]\nport = "/dev/null"
[processes]\nface = false\nplatform = true
[runtime]\nsocket_dir = "{tmp_path}/run"\naudit_log = "{tmp_path}/audit.log"
fault_log = ""\nlatch_file = ""\nlearned_table = ""
[face]\ngallery_dir = "{tmp_path}/g"\nkey_file = "{tmp_path}/gallery.key"
[platform]\nbroker_port = 1\npassword_file = "{tmp_path}/pw"\nkey_file = "{tmp_path}/key"
community = "xihan"\ncar = "b7u2"
outbox_path = "{tmp_path}/outbox.db"\noverrides_path = "{settings}"
''')
    config = load(config_path)
    stream = io.StringIO()
    log = StructuredLog(stream)
    loop = make_loop(config, log)
    table = ProcessTable(config, config_path, log)
    try:
        assert loop.face_enabled and loop.inbox is not None
        table.set_enabled("face", loop.face_enabled)
        # The platform agent never reaches a broker on port 1, so it runs until it is stopped.
        table.set_enabled("platform", True)
        loop.on_face_switch = lambda enabled: table.set_enabled("face", enabled)
        table.supervise()
        agent = table.children["platform"].process
        assert agent is not None and agent.poll() is None
        overrides.write(settings, {"face_enabled": False})
        loop.reload_overrides()
        assert not loop.face_enabled and loop.inbox is None
        assert "face" not in table.children
        table.set_enabled("platform", False)
        started = time.monotonic()
        while table.stopping and time.monotonic() - started < 10:
            table.supervise()  # reaps without waiting
            time.sleep(0.05)
        assert table.stopping == [] and agent.poll() is not None
        assert [r["state"] for r in records(stream, "face")] == ["on", "off"]
    finally:
        table.stop()
        loop.close_platform()
        if loop.inbox is not None:
            loop.inbox.close()


def test_a_part_that_cannot_be_started_is_logged_and_tried_again(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import subprocess

    config = from_dict({**BASE, "processes": {"face": True}})
    stream = io.StringIO()
    table = ProcessTable(config, tmp_path / "board.toml", StructuredLog(stream))

    def no_fork(*args: object, **kwargs: object) -> None:
        raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(subprocess, "Popen", no_fork)
    table.set_enabled("face", True)
    table.supervise()  # raised into the firmware's start before
    assert [r["state"] for r in records(stream, "process")] == ["not started"]
    assert table.children["face"].process is None and table.children["face"].backoff_s == 2.0


def test_the_backoff_starts_again_after_a_stable_run(tmp_path: Path) -> None:
    from carctl.runtime import processes

    config = from_dict({**BASE, "processes": {"face": True}})
    table = ProcessTable(config, tmp_path / "board.toml", StructuredLog(io.StringIO()))
    table.set_enabled("face", True)
    child = table.children["face"]
    child.backoff_s = 32.0

    class Exited:
        returncode = 1

        def poll(self) -> int:
            return 1

    child.process = Exited()  # type: ignore[assignment]
    child.started_s = time.monotonic() - processes.STABLE_RUN_S - 1
    child.next_start_s = float("inf")
    table.supervise()
    assert child.backoff_s == 2.0  # restarted after 1 s, not 32
    table.children.clear()


WORKER_REPORT = ("import os, json; "
                 "print(json.dumps([os.sched_getscheduler(0), os.nice(0), sorted(os.sched_getaffinity(0))]))")
LOOP = f"""
import json, os, subprocess, sys
from carctl.runtime.realtime import set_realtime
from carctl.runtime import processes
cpus = sorted(os.sched_getaffinity(0))
result = set_realtime(50, cpus[-1])
loop_cpus = processes._loop_cpus()
child = subprocess.run([sys.executable, "-c", {WORKER_REPORT!r}], capture_output=True, text=True,
                       preexec_fn=lambda: processes._worker_scheduling(loop_cpus, os.getppid()))
forked = subprocess.run([sys.executable, "-c", {WORKER_REPORT!r}], capture_output=True, text=True)
print(json.dumps({{"fifo": result.fifo, "loop": [os.sched_getscheduler(0), sorted(loop_cpus)],
                  "worker": json.loads(child.stdout), "plain_child": json.loads(forked.stdout)}}))
"""


def test_a_worker_of_the_real_time_loop_runs_at_ordinary_priority_off_the_loops_cpu() -> None:
    """The loop is SCHED_FIFO 50 pinned to one CPU (as on the board, run as root here); a worker the process table
    starts is SCHED_OTHER at nice 10 on the other CPUs, and even a child started without the table's care does not
    inherit SCHED_FIFO (SCHED_RESET_ON_FORK)."""
    result = subprocess.run([sys.executable, "-c", LOOP], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    if not report["fifo"]:
        pytest.skip("SCHED_FIFO is not allowed here (not root, or no CAP_SYS_NICE)")
    assert report["loop"][0] == os.SCHED_FIFO | os.SCHED_RESET_ON_FORK or report["loop"][0] == os.SCHED_FIFO
    policy, niceness, cpus = report["worker"]
    assert policy == os.SCHED_OTHER and niceness == 10
    if len(os.sched_getaffinity(0)) > 1:
        assert not set(cpus) & set(report["loop"][1]) and cpus  # kept off the loop's CPU
    assert report["plain_child"][0] == os.SCHED_OTHER  # reset on fork


def test_a_worker_that_lowers_itself_after_the_table_did_stays_at_the_tables_niceness() -> None:
    """The face worker lowers its own priority (for when it is run by hand); under the process table, which has
    already niced it, the two once added up to 19."""
    code = ("import os; from carctl.runtime.realtime import set_lower_priority, set_worker_scheduling; "
            "set_worker_scheduling(10, set()); set_lower_priority(10); a = os.nice(0); set_lower_priority(5); "
            "print(a, os.nice(0))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30,
                            cwd=Path(__file__).resolve().parents[2])
    assert result.stdout.split() == ["10", "10"], result.stderr


ORPHAN = """
import os, subprocess, sys, time
from carctl.runtime.processes import _worker_scheduling

loop_pid = os.getpid()
worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                          preexec_fn=lambda: _worker_scheduling(set(), loop_pid))
print(worker.pid, flush=True)
time.sleep(60)
"""


def test_a_worker_does_not_outlive_a_loop_that_is_killed() -> None:
    """A loop killed outright (SIGKILL, a crash) leaves no worker behind holding the modem's port or the broker's
    session: the next loop's workers found them taken, and the next loop refused the old ones' datagrams."""
    loop = subprocess.Popen([sys.executable, "-c", ORPHAN], stdout=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parents[2])
    try:
        assert loop.stdout is not None
        worker_pid = int(loop.stdout.readline())
        os.kill(worker_pid, 0)  # running
        loop.kill()
        loop.wait(timeout=10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(worker_pid, 0)
            except ProcessLookupError:
                break
            # The worker is the killed loop's child, not ours: init reaps it (waitpid here could only fail).
            time.sleep(0.05)
        else:
            os.kill(worker_pid, 9)
            raise AssertionError("the worker outlived its killed loop")
    finally:
        if loop.poll() is None:
            loop.kill()
        if loop.stdout is not None:
            loop.stdout.close()
