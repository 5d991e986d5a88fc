"""The process table: which parts of the firmware run, and how they are kept running.

The control loop runs in the main process, at real-time priority. Optional parts (the face worker, the platform
link) run as child processes at lower priority, are restarted with a backoff when they die, and never hold up the
loop: nothing in the safety path waits for them. A part whose module is not installed is logged and skipped.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from carctl.runtime.config import FirmwareConfig
from carctl.runtime.loop import StructuredLog

NICENESS = 10
MAX_BACKOFF_S = 60.0


@dataclass(frozen=True, slots=True)
class ProcessSpec:
    name: str
    module: str


# The optional parts, by the processes.<name> switch that enables them.
OPTIONAL = (ProcessSpec("face", "carctl.face.worker"), ProcessSpec("platform", "carctl.platform.agent"))


@dataclass(slots=True)
class _Child:
    spec: ProcessSpec
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    next_start_s: float = 0.0
    backoff_s: float = 1.0


@dataclass(slots=True)
class ProcessTable:
    config: FirmwareConfig
    config_path: Path
    log: StructuredLog
    children: list[_Child] = field(default_factory=list)

    def start(self) -> None:
        for spec in OPTIONAL:
            if not getattr(self.config.processes, spec.name):
                continue
            if importlib.util.find_spec(spec.module) is None:
                self.log.write("process", name=spec.name, state="unavailable", module=spec.module)
                continue
            self.children.append(_Child(spec))
        self.supervise()

    def supervise(self) -> None:
        """Start what is not running; cheap enough to call from the loop every few seconds."""
        now = time.monotonic()
        for child in self.children:
            if child.process is not None and child.process.poll() is None:
                continue
            if child.process is not None:
                self.log.write("process", name=child.spec.name, state="exited", code=child.process.returncode)
                child.process = None
                child.next_start_s = now + child.backoff_s
                child.backoff_s = min(MAX_BACKOFF_S, child.backoff_s * 2)
            if now >= child.next_start_s:
                child.process = subprocess.Popen(
                    [sys.executable, "-m", child.spec.module, "--config", str(self.config_path)],
                    preexec_fn=_lower_priority)
                child.restarts += 1
                self.log.write("process", name=child.spec.name, state="started", pid=child.process.pid)

    def stop(self) -> None:
        for child in self.children:
            if child.process is not None and child.process.poll() is None:
                child.process.terminate()
                try:
                    child.process.wait(timeout=3)
                except subprocess.TimeoutExpired:
                    child.process.kill()


def _lower_priority() -> None:
    from carctl.runtime.realtime import set_lower_priority

    set_lower_priority(NICENESS)
