"""Real-time priority and CPU affinity where the system allows them, and a clean no-op where it does not
(a laptop, CI, a container without CAP_SYS_NICE).

Rules of this module:
- The loop runs SCHED_FIFO with SCHED_RESET_ON_FORK: nothing it starts inherits its real-time priority (a child of
  a SCHED_FIFO process is SCHED_FIFO too, where nice means nothing: a face worker at the loop's priority on the
  loop's CPU could hold it past the drive's staleness limit).
- Its workers (set_worker_scheduling, in the child before it runs) are SCHED_OTHER, niced, and kept off the loop's
  CPU when the board has others.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RealtimeResult:
    fifo: bool
    priority: int
    cpus: tuple[int, ...]
    memory_locked: bool
    notes: tuple[str, ...]


def set_realtime(priority: int, cpu: int | None) -> RealtimeResult:
    notes: list[str] = []
    fifo = False
    if priority > 0 and hasattr(os, "sched_setscheduler"):
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO | getattr(os, "SCHED_RESET_ON_FORK", 0),
                                  os.sched_param(priority))
            fifo = True
        except (PermissionError, OSError) as error:
            notes.append(f"SCHED_FIFO not allowed ({error.strerror}); running at normal priority")
    cpus: tuple[int, ...] = ()
    if hasattr(os, "sched_getaffinity"):
        available = os.sched_getaffinity(0)
        _BOARD_CPUS.update(available)  # before the pinning: the CPUs the workers may have
        if cpu is not None:
            if cpu in available:
                try:
                    os.sched_setaffinity(0, {cpu})
                except OSError as error:
                    notes.append(f"CPU affinity not set ({error.strerror})")
            else:
                notes.append(f"CPU {cpu} not available; affinity left as it is")
        cpus = tuple(sorted(os.sched_getaffinity(0)))
    return RealtimeResult(fifo, priority if fifo else 0, cpus, _lock_memory(notes), tuple(notes))


def _lock_memory(notes: list[str]) -> bool:
    """mlockall(MCL_CURRENT | MCL_FUTURE): no page faults on the control path."""
    name = ctypes.util.find_library("c")
    if not name:
        return False
    libc = ctypes.CDLL(name, use_errno=True)
    if libc.mlockall(1 | 2) != 0:
        notes.append(f"mlockall not allowed (errno {ctypes.get_errno()})")
        return False
    return True


# The CPUs the service was given, as set_realtime found them before pinning the loop to its own.
_BOARD_CPUS: set[int] = set()


def set_lower_priority(niceness: int) -> None:
    """For workers that must never delay the control loop (the face worker): at least ``niceness``. Absolute, not
    added: a worker the process table has already niced (+10) and that lowers itself too once ran at 19."""
    try:
        current = os.nice(0)
        if current < niceness:
            os.nice(niceness - current)
    except OSError:
        pass


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_loop(loop_pid: int) -> None:
    """In a worker, before it runs: SIGTERM when the loop's process ends, however it ends (SIGKILL, a crash), so that
    no worker outlives its loop holding what the next loop's workers need: the modem's port, the broker session of
    the car's client id, a side channel a new loop would refuse it on. (The unit's cgroup does the same under
    systemd; this covers a loop run by hand or by a test.) Linux only: elsewhere nothing is done."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)  # the process's own symbols: no library search after a fork
        libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != loop_pid:  # the loop ended between the fork and the prctl: nothing would signal us
        os._exit(1)


def set_worker_scheduling(niceness: int, loop_cpus: set[int]) -> None:
    """In a worker the loop started, before it runs: ordinary scheduling whatever it inherited, ``niceness``, and
    the CPUs other than the loop's (``loop_cpus``) where there are any. Each step is best effort: a system that
    refuses one leaves the worker as it is, never unstarted."""
    if hasattr(os, "sched_setscheduler"):
        try:
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
        except OSError:
            pass
    set_lower_priority(niceness)
    if hasattr(os, "sched_setaffinity"):
        others = (_BOARD_CPUS or set(range(os.cpu_count() or 1))) - loop_cpus
        if others:
            try:
                os.sched_setaffinity(0, others)
            except OSError:
                pass
