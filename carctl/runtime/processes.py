"""The process table: which parts of the firmware run, and how they are kept running.

The control loop runs in the main process, at real-time priority. Optional parts (the face worker, the platform
link, the alarm's modem, the service tool) run as child processes at lower priority, are restarted with a backoff
when they die, and never hold up the loop: nothing in the safety path waits for them. They end with the loop's
process, however it ends (realtime.die_with_loop). A part whose module is not installed is logged and skipped; a part
that cannot be started (no memory, no processes left) is logged and tried again after its backoff. The backoff
doubles from 1 s to 60 s with each exit, and starts again at 1 s after a run of a minute or more.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from carctl.runtime.config import FirmwareConfig
from carctl.runtime.loop import StructuredLog
from carctl.runtime.sidechannel import LOOP_PID_VARIABLE

NICENESS = 10
MAX_BACKOFF_S = 60.0
# A part that ran this long before it exited starts again after the shortest backoff.
STABLE_RUN_S = 60.0


@dataclass(frozen=True, slots=True)
class ProcessSpec:
    name: str
    module: str


# The optional parts, by the processes.<name> switch that enables them.
OPTIONAL = (ProcessSpec("face", "carctl.face.worker"), ProcessSpec("platform", "carctl.platform.agent"),
            ProcessSpec("modem", "carctl.adapters.modem"), ProcessSpec("service", "carctl.service.server"))


@dataclass(slots=True)
class _Child:
    spec: ProcessSpec
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    next_start_s: float = 0.0
    backoff_s: float = 1.0
    started_s: float = 0.0


STOP_GRACE_S = 3.0


@dataclass(slots=True)
class ProcessTable:
    """Which optional parts should run, and keeping them so. Nothing here blocks: set_enabled and supervise are
    called from the control loop (supervise about once a second), so a stopping child is sent SIGTERM and reaped by
    a later supervise, killed if it has not gone within STOP_GRACE_S."""

    config: FirmwareConfig
    config_path: Path
    log: StructuredLog
    children: dict[str, _Child] = field(default_factory=dict)
    # Options a part gets besides --config: what `carctl run` was told over the file (`--modem PORT`).
    extra_args: dict[str, tuple[str, ...]] = field(default_factory=dict)
    stopping: list[tuple[float, subprocess.Popen[bytes]]] = field(default_factory=list)

    def set_enabled(self, name: str, enabled: bool) -> None:
        spec = next(spec for spec in OPTIONAL if spec.name == name)
        if enabled and name not in self.children:
            if importlib.util.find_spec(spec.module) is None:
                self.log.write("process", name=name, state="unavailable", module=spec.module)
                return
            self.children[name] = _Child(spec)
        elif not enabled and name in self.children:
            child = self.children.pop(name)
            if child.process is not None and child.process.poll() is None:
                child.process.terminate()
                self.stopping.append((time.monotonic() + STOP_GRACE_S, child.process))
            self.log.write("process", name=name, state="stopping")

    def supervise(self) -> None:
        """Start what should run and is not running (after its backoff); reap what was stopped."""
        now = time.monotonic()
        for deadline, process in list(self.stopping):
            if process.poll() is not None:
                self.stopping.remove((deadline, process))
            elif now >= deadline:
                process.kill()
        for child in self.children.values():
            if child.process is not None and child.process.poll() is None:
                continue
            if child.process is not None:
                self.log.write("process", name=child.spec.name, state="exited", code=child.process.returncode)
                child.process = None
                if now - child.started_s >= STABLE_RUN_S:
                    child.backoff_s = 1.0  # it had been running well: this is a new failure, not the same one
                child.next_start_s = now + child.backoff_s
                child.backoff_s = min(MAX_BACKOFF_S, child.backoff_s * 2)
            if now >= child.next_start_s:
                self._start(child, now)

    def _start(self, child: _Child, now: float) -> None:
        try:
            # The part takes its side channel's datagrams only from this process (sidechannel.py).
            loop_cpus, loop_pid = _loop_cpus(), os.getpid()
            child.process = subprocess.Popen(
                [sys.executable, "-m", child.spec.module, "--config", str(self.config_path),
                 *self.extra_args.get(child.spec.name, ())],
                preexec_fn=lambda: _worker_scheduling(loop_cpus, loop_pid),
                env={**os.environ, LOOP_PID_VARIABLE: str(os.getpid())})
        except (OSError, subprocess.SubprocessError) as error:
            # No memory, no processes left, an executable that cannot be run: try again after the backoff; the car
            # does not need this part.
            self.log.write("process", name=child.spec.name, state="not started", error=str(error))
            child.next_start_s = now + child.backoff_s
            child.backoff_s = min(MAX_BACKOFF_S, child.backoff_s * 2)
            return
        child.started_s = now
        child.restarts += 1
        self.log.write("process", name=child.spec.name, state="started", pid=child.process.pid)

    def pid_of(self, name: str) -> int | None:
        """The pid of a part while it runs (the only process its side channel takes datagrams from), else None."""
        child = self.children.get(name)
        if child is None or child.process is None or child.process.poll() is not None:
            return None
        return child.process.pid

    def stop(self) -> None:
        for name in list(self.children):
            self.set_enabled(name, False)
        for _, process in self.stopping:
            try:
                process.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.stopping.clear()


def _loop_cpus() -> set[int]:
    """The CPUs the loop runs on (pinned to one on the board: the workers are kept off it)."""
    return set(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else set()


def _worker_scheduling(loop_cpus: set[int], loop_pid: int) -> None:
    from carctl.runtime.realtime import die_with_loop, set_worker_scheduling

    die_with_loop(loop_pid)
    set_worker_scheduling(NICENESS, loop_cpus)
